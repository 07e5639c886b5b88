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
