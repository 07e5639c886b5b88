//! `berth run FILE`: one task in the foreground with the agent embedded in this process
//! (no daemon): register, run, stream the containers' logs, and exit with the essential
//! container's exit code.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;

use berth_agent::api::Actions;
use berth_agent::ecs::Task;

use super::Context;
use super::agent::AgentArgs;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The task definition file (ECS JSON)
    pub file: PathBuf,
    /// ECS overrides JSON, or file://PATH
    #[arg(long)]
    pub overrides: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Returns the exit code to leave with.
pub fn run(ctx: &Context, a: &RunArgs) -> anyhow::Result<i32> {
    let body = super::tasks::read_definition(&a.file)?;
    // Its own notify socket, so that it can run beside a daemon on the same host.
    let notify = a
        .agent
        .run_dir
        .join(format!("notify-{}.sock", std::process::id()));
    let agent = super::agent::open(ctx, &a.agent, Some(notify.clone()))?;
    agent.watch().map_err(|e| anyhow::anyhow!(e))?;
    let result = follow(&agent, a, body);
    let _ = std::fs::remove_file(&notify);
    result
}

fn follow(agent: &berth_agent::Agent, a: &RunArgs, body: serde_json::Value) -> anyhow::Result<i32> {
    let registered = agent
        .call("RegisterTaskDefinition", body)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let td = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut req = json!({"taskDefinition": td, "startedBy": "berth-run"});
    if let Some(o) = &a.overrides {
        req["overrides"] = match o.strip_prefix("file://") {
            Some(p) => super::tasks::read_definition(std::path::Path::new(p))?,
            None => serde_json::from_str(o).context("--overrides")?,
        };
    }
    let resp = agent
        .call("RunTask", req)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let Some(task) = resp["tasks"].as_array().and_then(|t| t.first()).cloned() else {
        bail!("the task did not start: {}", resp["failures"]);
    };
    let id = task["taskArn"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    eprintln!("berth: task {id} ({td})");

    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let mut stop_sent = false;
    let mut follower = LogFollower::default();
    let task = loop {
        let Some(t) = agent.task(&id) else {
            bail!("task {id} vanished")
        };
        follower.pump(&t);
        if t.last_status == "STOPPED" {
            // The supervisor has drained every pipe into the logs before it says STOPPED.
            break t;
        }
        if INTERRUPTED.load(Ordering::Relaxed) && !stop_sent {
            let _ = agent.call(
                "StopTask",
                json!({"task": id, "reason": "Interrupted (berth run)"}),
            );
            stop_sent = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(exit_code(&task))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// The essential container's exit code, as ECS users read a task's result; a task that
/// never ran its containers exits 125 (docker run's code for errors before the start).
fn exit_code(task: &Task) -> i32 {
    let reason = task.stopped_reason.clone().unwrap_or_default();
    if task.stop_code.as_deref() == Some("TaskFailedToStart") {
        eprintln!("berth: task failed to start: {reason}");
        return 125;
    }
    for c in &task.containers {
        if let Some(r) = &c.reason {
            eprintln!("berth: container {}: {r}", c.name);
        }
    }
    eprintln!("berth: task stopped: {reason}");
    let exited: Vec<_> = task
        .containers
        .iter()
        .filter(|c| c.exit_code.is_some())
        .collect();
    exited
        .iter()
        .find(|c| Some(&c.name) == task.local.essential_exited.as_ref())
        .or(exited.first())
        .and_then(|c| c.exit_code)
        .unwrap_or(1)
}

#[derive(Default)]
struct LogFollower {
    offsets: std::collections::BTreeMap<String, u64>,
}

impl LogFollower {
    fn pump(&mut self, task: &Task) {
        use std::io::{BufRead, BufReader, Seek, SeekFrom};
        let prefix = task.containers.len() > 1;
        for c in &task.containers {
            let path = PathBuf::from(&task.local.task_dir)
                .join("logs")
                .join(format!("{}.log", c.name));
            let offset = self.offsets.entry(c.name.clone()).or_insert(0);
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < *offset {
                *offset = 0;
            }
            let _ = f.seek(SeekFrom::Start(*offset));
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                *offset += line.len() as u64;
                super::logs::print_line(&c.name, line.trim_end(), prefix);
                line.clear();
            }
        }
    }
}
