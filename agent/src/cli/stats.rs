//! `berth stats`: CPU, memory and process use of task containers, as `docker stats` shows
//! them: a table refreshed every second, or one with --no-stream. The counters come from
//! the agent (`GET /stats`), or straight from the cgroups when no agent runs.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use berth_agent::api::client::{Client, ClientError};
use berth_agent::stats::{self, ContainerSample, Samples, cpu_percent, memory_percent};
use berth_agent::store::{Store, TaskFilter};

use super::{Context, OutputFormat, output};

/// The time CPU use is measured over, and between refreshes.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Task ids or ARNs (default: every task not yet stopped)
    pub tasks: Vec<String>,
    /// Print one table and exit instead of refreshing it every second
    #[arg(long)]
    pub no_stream: bool,
    /// Also show containers that are not running
    #[arg(short, long)]
    pub all: bool,
}

/// One line of the table, or one object of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub task_arn: String,
    pub task: String,
    pub family: String,
    pub container: String,
    pub running: bool,
    pub cpu_percent: f64,
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub memory_percent: f64,
    pub pids: u64,
    pub oom_kills: u64,
}

pub fn run(ctx: &Context, a: &StatsArgs) -> anyhow::Result<()> {
    // Named tasks are looked for among every task, as docker finds a named container
    // whatever its state.
    let wanted: Vec<String> = a
        .tasks
        .iter()
        .map(|t| berth_agent::ecs::task_id_of(t).to_string())
        .collect();
    let fetch_all = a.all || !wanted.is_empty();
    let mut before = fetch(ctx, fetch_all)?;
    for id in &wanted {
        if !before.containers.iter().any(|c| &c.task_id == id) {
            anyhow::bail!("task {id:?} does not exist");
        }
    }
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(INTERVAL);
        let after = fetch(ctx, fetch_all)?;
        let mut shown = rows(&before, &after);
        shown.retain(|r| {
            if wanted.is_empty() {
                a.all || r.running
            } else {
                wanted.contains(&r.task)
            }
        });
        print(ctx.output, &shown, !a.no_stream, tty)?;
        if a.no_stream {
            return Ok(());
        }
        before = after;
    }
}

/// The counters of the containers of the tasks not yet stopped (of every task with
/// `all`): from the agent, or read here when none runs.
fn fetch(ctx: &Context, all: bool) -> anyhow::Result<Samples> {
    match Client::new(&ctx.socket).stats(all) {
        Ok(s) => Ok(s),
        Err(ClientError::NotRunning { .. }) => {
            let store = Store::open(&ctx.state_dir.join("berth.db"))?;
            let tasks = store.tasks(&TaskFilter {
                active_only: !all,
                ..Default::default()
            })?;
            Ok(stats::sample(&tasks))
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// The rows of the later samples, with CPU use measured since the earlier ones.
pub fn rows(before: &Samples, after: &Samples) -> Vec<Row> {
    let earlier: BTreeMap<(&str, &str), &ContainerSample> = before
        .containers
        .iter()
        .map(|c| ((c.task_id.as_str(), c.container.as_str()), c))
        .collect();
    after
        .containers
        .iter()
        .map(|c| {
            let cpu = earlier
                .get(&(c.task_id.as_str(), c.container.as_str()))
                .map(|b| cpu_percent(b, c))
                .unwrap_or(0.0);
            Row {
                task_arn: c.task_arn.clone(),
                task: c.task_id.clone(),
                family: c.family.clone(),
                container: c.container.clone(),
                running: c.running,
                cpu_percent: round2(cpu),
                cpu_usage_ns: c.cpu_usage_ns,
                memory_usage_bytes: c.memory_usage_bytes,
                memory_limit_bytes: c.memory_limit_bytes,
                memory_percent: round2(memory_percent(c)),
                pids: c.pids,
                oom_kills: c.oom_kills,
            }
        })
        .collect()
}

fn print(format: OutputFormat, rows: &[Row], stream: bool, tty: bool) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json if stream => {
            // One document per refresh, one line each, for a reader to take line by line.
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, rows).context("write JSON to stdout")?;
            writeln!(out).context("write to stdout")?;
            out.flush().context("write to stdout")
        }
        OutputFormat::Json => output::json(&rows),
        OutputFormat::Table => {
            if stream && tty {
                // Clear the screen and go home, as docker stats redraws.
                print!("\x1b[2J\x1b[H");
            }
            output::table(
                &[
                    "TASK",
                    "CONTAINER",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "PIDS",
                    "OOM KILLS",
                ],
                &rows.iter().map(table_row).collect::<Vec<_>>(),
            )?;
            std::io::stdout().flush().context("write to stdout")
        }
    }
}

fn table_row(r: &Row) -> Vec<String> {
    if !r.running {
        let none = "--".to_string();
        return vec![
            r.task.clone(),
            r.container.clone(),
            none.clone(),
            "-- / --".into(),
            none.clone(),
            none.clone(),
            none,
        ];
    }
    vec![
        r.task.clone(),
        r.container.clone(),
        format!("{:.2}%", r.cpu_percent),
        format!(
            "{} / {}",
            binary_size(r.memory_usage_bytes),
            binary_size(r.memory_limit_bytes)
        ),
        format!("{:.2}%", r.memory_percent),
        r.pids.to_string(),
        r.oom_kills.to_string(),
    ]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// `1.5MiB`, as docker stats prints memory (powers of 1024).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    format!("{value:.2}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(container: &str, at: u64, cpu: u64) -> ContainerSample {
        ContainerSample {
            task_id: "t1".into(),
            container: container.into(),
            running: true,
            cpu_usage_ns: cpu,
            memory_usage_bytes: 32 << 20,
            memory_limit_bytes: 128 << 20,
            pids: 2,
            read_at_ns: at,
            ..Default::default()
        }
    }

    #[test]
    fn rows_measure_cpu_per_container_between_samples() {
        let second = 1_000_000_000;
        let before = Samples {
            containers: vec![sample("busy", 0, 0), sample("idle", 0, 7)],
        };
        let after = Samples {
            containers: vec![
                sample("busy", second, second),
                sample("idle", second, 7 + second / 100),
                sample("new", second, 5 * second),
            ],
        };
        let rows = rows(&before, &after);
        let cpu: Vec<(&str, f64)> = rows
            .iter()
            .map(|r| (r.container.as_str(), r.cpu_percent))
            .collect();
        assert_eq!(cpu, [("busy", 100.0), ("idle", 1.0), ("new", 0.0)]);
        assert_eq!(rows[0].memory_percent, 25.0);
        assert_eq!(rows[0].pids, 2);
    }

    #[test]
    fn table_cells_as_docker_prints_them() {
        let row = rows(
            &Samples::default(),
            &Samples {
                containers: vec![sample("app", 1, 1)],
            },
        )
        .remove(0);
        assert_eq!(
            table_row(&row),
            [
                "t1",
                "app",
                "0.00%",
                "32.00MiB / 128.00MiB",
                "25.00%",
                "2",
                "0"
            ]
        );
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(1536), "1.50KiB");
    }
}
