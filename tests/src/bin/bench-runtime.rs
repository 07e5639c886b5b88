//! `run` of /bin/true in the busybox bundle, alternating berth-runtime, runc and crun in
//! one run, beside the floor (unshare of the same namespaces + exec of /bin/true).
//! Every command runs the same way: in a private mount namespace with the cgroup2 mount
//! of hybrid hosts hidden, which crun needs. Prints medians and ratios to crun, in all
//! and above the cost of that wrapper alone (measured as a row of its own).
//!
//! Usage: bench-runtime [RUNS]   (default 50; run as root)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{Bundle, runtime_bin};

const WRAP: &str = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"";

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let mut bundle = Bundle::new("bench");
    bundle.args(&["/bin/true"]).terminal(false);
    let berth = runtime_bin();
    // State roots under /run, where the runtimes keep them by default.
    let root = tempfile::Builder::new()
        .prefix("berth-bench")
        .tempdir_in("/run")
        .expect("temp dir in /run");
    let b = bundle.path().to_path_buf();

    let mut peers: Vec<(&str, Vec<String>)> = vec![(
        "berth-runtime",
        runtime_args(&berth.display().to_string(), &root.path().join("berth"), &b),
    )];
    for peer in ["runc", "crun"] {
        if which(peer) {
            peers.push((peer, runtime_args(peer, &root.path().join(peer), &b)));
        } else {
            eprintln!("bench-runtime: {peer} not installed, left out");
        }
    }
    // The wrapper every row runs under, alone: what each row pays before its runtime
    // starts. The last two columns are each row's time above it.
    peers.push(("wrapper (exec of true)", vec!["/bin/true".to_string()]));
    peers.push((
        "floor (unshare + exec)",
        [
            "unshare",
            "--pid",
            "--fork",
            "--net",
            "--ipc",
            "--uts",
            "--mount",
            "/bin/true",
        ]
        .map(String::from)
        .to_vec(),
    ));

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); peers.len()];
    for i in 0..runs + 3 {
        for (k, (name, args)) in peers.iter().enumerate() {
            let args: Vec<String> = args
                .iter()
                .map(|a| a.replace("{N}", &i.to_string()))
                .collect();
            let start = Instant::now();
            let status = Command::new("unshare")
                .args(["-m", "sh", "-c", WRAP, "sh"])
                .args(&args)
                .status()
                .expect("spawn");
            let took = start.elapsed();
            assert!(status.success(), "{name} failed: {status}");
            // The first rounds warm caches for everyone alike.
            if i >= 3 {
                times[k].push(took);
            }
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median_ms(t)).collect();
    let crun = peers
        .iter()
        .position(|(n, _)| *n == "crun")
        .map(|k| medians[k]);
    let wrapper = peers
        .iter()
        .position(|(n, _)| n.starts_with("wrapper"))
        .map_or(0.0, |k| medians[k]);
    println!("run of /bin/true in the busybox bundle, median of {runs} alternating runs");
    println!(
        "{:<24} {:>10} {:>9} {:>14} {:>9}",
        "runtime", "median ms", "vs crun", "above wrapper", "vs crun"
    );
    for ((name, _), m) in peers.iter().zip(&medians) {
        let ratio = |a: f64, b: Option<f64>| {
            b.map(|c| format!("{:.2}x", a / c))
                .unwrap_or_else(|| "-".into())
        };
        let net = m - wrapper;
        println!(
            "{name:<24} {m:>10.2} {:>9} {net:>14.2} {:>9}",
            ratio(*m, crun),
            ratio(net, crun.map(|c| c - wrapper))
        );
    }
}

fn runtime_args(bin: &str, root: &Path, bundle: &Path) -> Vec<String> {
    vec![
        bin.to_string(),
        "--root".into(),
        root.display().to_string(),
        "run".into(),
        "--bundle".into(),
        bundle.display().to_string(),
        "bench-{N}".into(),
    ]
}

fn which(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn median_ms(t: &mut [Duration]) -> f64 {
    t.sort();
    t[t.len() / 2].as_secs_f64() * 1000.0
}
