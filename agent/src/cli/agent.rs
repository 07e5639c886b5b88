//! `berth agent`: the daemon. The API on the unix socket, the store, the supervisors'
//! reports. Killing it leaves every task running; starting it again picks them up.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use berth_agent::Agent;
use berth_agent::images::{PullBehavior, StoreImages};

use super::Context;

#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// When to pull images tasks use: default (when absent), always, once
    #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "default")]
    pub pull_behavior: PullBehavior,
    /// Seconds stopped tasks stay listed before their files go
    #[arg(
        long,
        env = "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION_SECS",
        default_value_t = 3600
    )]
    pub task_retention: u64,
    /// Registries (HOST:PORT) that may be reached over plain HTTP
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Runtime state and sockets
    #[arg(long, default_value = "/run/berth")]
    pub run_dir: std::path::PathBuf,
    /// The bridge that bridge and awsvpc tasks join (created on first use)
    #[arg(long, env = "BERTH_BRIDGE", default_value = "berth0")]
    pub bridge: String,
    /// The bridge's IPv4 subnet; tasks get addresses from it
    #[arg(long, env = "BERTH_BRIDGE_SUBNET", default_value = "10.77.0.0/16")]
    pub bridge_subnet: String,
    /// Host ports for mappings without a hostPort, FROM-TO
    #[arg(long, env = "ECS_DYNAMIC_HOST_PORT_RANGE", default_value = "49153-65535", value_parser = parse_port_range)]
    pub host_port_range: (u16, u16),
    /// Where the CNI plugins are
    #[arg(long, env = "CNI_PATH", default_value = "/usr/lib/cni")]
    pub cni_path: std::path::PathBuf,
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (from, to) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected FROM-TO, such as 49153-65535"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{p:?} is not a port (1 to 65535)"))
    };
    let (from, to) = (port(from)?, port(to)?);
    if from > to {
        return Err(format!("{s:?}: {from} is above {to}"));
    }
    Ok((from, to))
}

fn check_network(bridge: &str, subnet: &str) -> anyhow::Result<()> {
    if bridge.is_empty()
        || bridge.len() > 15
        || !bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        anyhow::bail!("--bridge {bridge:?}: must be 1 to 15 letters, digits, '-', '_' or '.'");
    }
    let ok = subnet.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<std::net::Ipv4Addr>().is_ok()
            && len.parse::<u8>().is_ok_and(|l| (8..=30).contains(&l))
    });
    if !ok {
        anyhow::bail!(
            "--bridge-subnet {subnet:?}: must be an IPv4 subnet such as 10.77.0.0/16 (prefix 8 to 30)"
        );
    }
    Ok(())
}

pub fn open(
    ctx: &Context,
    a: &AgentArgs,
    notify: Option<std::path::PathBuf>,
) -> anyhow::Result<Agent> {
    let mut cfg = berth_agent::Config::new(&ctx.state_dir, &a.run_dir);
    if let Some(n) = notify {
        cfg.notify_socket = n;
    }
    cfg.pull_behavior = a.pull_behavior;
    cfg.task_retention = Duration::from_secs(a.task_retention);
    check_network(&a.bridge, &a.bridge_subnet)?;
    cfg.network = berth_agent::net::NetworkConfig {
        bridge: a.bridge.clone(),
        subnet: a.bridge_subnet.clone(),
        cni_path: a.cni_path.clone(),
        host_ports: a.host_port_range,
    };
    let images = StoreImages::open(&ctx.state_dir, a.insecure_registries.clone())
        .map_err(|e| anyhow::anyhow!(e))?;
    Agent::open(cfg, Box::new(images)).map_err(|e| anyhow::anyhow!(e))
}

pub fn run(ctx: &Context, a: &AgentArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let agent = open(ctx, a, None)?;
    agent.watch().map_err(|e| anyhow::anyhow!(e))?;
    agent.run_services();
    agent.fire_schedules();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let socket = ctx.socket.clone();
    rt.block_on(async move {
        let serve = berth_agent::api::serve(Arc::new(agent), &socket);
        tracing::info!(socket = %socket.display(), state_dir = %ctx.state_dir.display(), "berth agent ready");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("install SIGTERM handler")?;
        tokio::select! {
            r = serve => r.with_context(|| format!("serve the API on {}", socket.display())),
            _ = term.recv() => {
                tracing::info!("stopping; tasks keep running under their supervisors");
                Ok(())
            }
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
