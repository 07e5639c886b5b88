//! Container samples as Prometheus text exposition (format 0.0.4), for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::ContainerSample;

/// The content type of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Metric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&ContainerSample) -> String,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "berth_container_cpu_usage_seconds_total",
        kind: "counter",
        help: "CPU time the container has used, in seconds.",
        value: |s| seconds(s.cpu_usage_ns),
    },
    Metric {
        name: "berth_container_memory_usage_bytes",
        kind: "gauge",
        help: "Memory the container uses, without the inactive page cache.",
        value: |s| s.memory_usage_bytes.to_string(),
    },
    Metric {
        name: "berth_container_memory_limit_bytes",
        kind: "gauge",
        help: "The memory the container may use: its limit, its task's, or the host's.",
        value: |s| s.memory_limit_bytes.to_string(),
    },
    Metric {
        name: "berth_container_pids",
        kind: "gauge",
        help: "Processes and threads in the container.",
        value: |s| s.pids.to_string(),
    },
    Metric {
        name: "berth_container_oom_kills_total",
        kind: "counter",
        help: "Processes of the container the kernel's OOM killer has killed.",
        value: |s| s.oom_kills.to_string(),
    },
];

/// The metrics of the running containers in `samples`, then the tasks by status.
pub fn render(samples: &[ContainerSample], tasks_by_status: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    let running: Vec<&ContainerSample> = samples.iter().filter(|s| s.running).collect();
    for m in METRICS {
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
        for s in &running {
            let _ = writeln!(
                out,
                "{}{{task=\"{}\",container=\"{}\",family=\"{}\"}} {}",
                m.name,
                label(&s.task_id),
                label(&s.container),
                label(&s.family),
                (m.value)(s)
            );
        }
    }
    let _ = writeln!(out, "# HELP berth_tasks Tasks on this host by last status.");
    let _ = writeln!(out, "# TYPE berth_tasks gauge");
    for (status, n) in tasks_by_status {
        let _ = writeln!(out, "berth_tasks{{status=\"{}\"}} {n}", label(status));
    }
    out
}

/// Nanoseconds as seconds, exactly (no float rounding of large counters).
fn seconds(ns: u64) -> String {
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return (ns / 1_000_000_000).to_string();
    }
    let text = format!("{}.{frac:09}", ns / 1_000_000_000);
    text.trim_end_matches('0').to_string()
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ContainerSample {
        ContainerSample {
            task_arn: "arn:aws:ecs:local:000000000000:task/default/abc".into(),
            task_id: "abc".into(),
            family: "web".into(),
            container: "app".into(),
            running: true,
            cpu_usage_ns: 1_500_000_000,
            memory_usage_bytes: 4096,
            memory_limit_bytes: 64 << 20,
            pids: 3,
            oom_kills: 1,
            read_at_ns: 7,
        }
    }

    #[test]
    fn every_metric_has_help_type_and_one_line_per_running_container() {
        let mut stopped = sample();
        stopped.container = "done".into();
        stopped.running = false;
        let counts = BTreeMap::from([("RUNNING".to_string(), 1), ("STOPPED".to_string(), 2)]);
        let text = render(&[sample(), stopped], &counts);
        let expected = "\
# HELP berth_container_cpu_usage_seconds_total CPU time the container has used, in seconds.
# TYPE berth_container_cpu_usage_seconds_total counter
berth_container_cpu_usage_seconds_total{task=\"abc\",container=\"app\",family=\"web\"} 1.5
# HELP berth_container_memory_usage_bytes Memory the container uses, without the inactive page cache.
# TYPE berth_container_memory_usage_bytes gauge
berth_container_memory_usage_bytes{task=\"abc\",container=\"app\",family=\"web\"} 4096
# HELP berth_container_memory_limit_bytes The memory the container may use: its limit, its task's, or the host's.
# TYPE berth_container_memory_limit_bytes gauge
berth_container_memory_limit_bytes{task=\"abc\",container=\"app\",family=\"web\"} 67108864
# HELP berth_container_pids Processes and threads in the container.
# TYPE berth_container_pids gauge
berth_container_pids{task=\"abc\",container=\"app\",family=\"web\"} 3
# HELP berth_container_oom_kills_total Processes of the container the kernel's OOM killer has killed.
# TYPE berth_container_oom_kills_total counter
berth_container_oom_kills_total{task=\"abc\",container=\"app\",family=\"web\"} 1
# HELP berth_tasks Tasks on this host by last status.
# TYPE berth_tasks gauge
berth_tasks{status=\"RUNNING\"} 1
berth_tasks{status=\"STOPPED\"} 2
";
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = sample();
        s.family = "a\"b\\c\nd".into();
        let text = render(&[s], &BTreeMap::new());
        assert!(text.contains(r#"family="a\"b\\c\nd""#), "{text}");
    }

    #[test]
    fn seconds_keep_every_nanosecond() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(2_000_000_000), "2");
        assert_eq!(seconds(1_000_000_001), "1.000000001");
        assert_eq!(seconds(u64::MAX), "18446744073.709551615");
    }
}
