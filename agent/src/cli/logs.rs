//! `berth logs`: a task's container logs, read from its json-file logs on disk (so they
//! stay readable after the task stopped, and without the agent).

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use berth_agent::ecs::Task;
use berth_agent::store::Store;
use berth_agent::supervisor::logs::rotated;
use berth_agent::supervisor::task::read_status;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The task id or ARN
    pub task: String,
    /// Only this container's log (default: every container's)
    #[arg(long)]
    pub container: Option<String>,
    /// Keep printing new lines until the task stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines newer than this: a duration (10s, 5m, 2h) or an RFC 3339 time
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines of each container
    #[arg(long)]
    pub tail: Option<usize>,
}

pub fn run(ctx: &Context, a: &LogsArgs) -> anyhow::Result<()> {
    let store = Store::open(&ctx.state_dir.join("berth.db"))?;
    let id = berth_agent::ecs::task_id_of(&a.task);
    let task: Task = store
        .task(id)?
        .with_context(|| format!("task {id:?} does not exist (or was cleaned up)"))?;
    let dir = PathBuf::from(&task.local.task_dir);
    let names: Vec<String> = match &a.container {
        Some(c) => {
            if !task.containers.iter().any(|x| &x.name == c) {
                bail!("--container: task {id} has no container {c:?}");
            }
            vec![c.clone()]
        }
        None => task.containers.iter().map(|c| c.name.clone()).collect(),
    };
    let since = a.since.as_deref().map(parse_since).transpose()?;
    let prefix = names.len() > 1;
    let mut offsets = Vec::new();
    for name in &names {
        let path = dir.join("logs").join(format!("{name}.log"));
        let mut lines = read_all(&path);
        if let Some(s) = since {
            lines.retain(|l| line_time(l).is_some_and(|t| t >= s));
        }
        if let Some(n) = a.tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        for l in &lines {
            print_line(name, l, prefix);
        }
        offsets.push((name.clone(), path.clone(), file_len(&path)));
    }
    if !a.follow {
        return Ok(());
    }
    loop {
        let mut grew = false;
        for (name, path, offset) in &mut offsets {
            let len = file_len(path);
            if len < *offset {
                // Rotated: start over on the new file.
                *offset = 0;
            }
            if len > *offset {
                if let Ok(mut f) = std::fs::File::open(&*path) {
                    let _ = f.seek(SeekFrom::Start(*offset));
                    let mut reader = BufReader::new(f);
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if !line.ends_with('\n') {
                            break;
                        }
                        *offset += line.len() as u64;
                        print_line(name, line.trim_end(), prefix);
                        line.clear();
                    }
                    grew = true;
                }
            }
        }
        let stopped = read_status(&dir).is_none_or(|s| s.last_status == "STOPPED");
        if stopped && !grew {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every line of a container's log, oldest rotated file first.
fn read_all(path: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = (1..100)
        .map(|i| rotated(path, i))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn line_time(line: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(line).ok()?;
    berth_agent::ecs::parse_rfc3339(v["time"].as_str()?)
}

pub fn print_line(container: &str, line: &str, prefix: bool) {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return;
    };
    let text = v["log"].as_str().unwrap_or_default();
    let text = if prefix {
        format!("{container} | {text}")
    } else {
        text.to_string()
    };
    if v["stream"] == "stderr" {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// `10s`, `5m`, `2h`, `1d` ago, or an RFC 3339 time, as epoch seconds.
pub fn parse_since(s: &str) -> anyhow::Result<f64> {
    if let Some(t) = berth_agent::ecs::parse_rfc3339(s) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--since {s:?}: use 10s, 5m, 2h, 1d or an RFC 3339 time"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => bail!("--since {s:?}: use 10s, 5m, 2h, 1d or an RFC 3339 time"),
    };
    Ok(berth_agent::ecs::now() - secs)
}
