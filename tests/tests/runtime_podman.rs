//! podman as a real client: `podman --runtime berth-runtime` runs, execs into, stops and
//! removes containers of the busybox image, the way podman users switch OCI runtimes.
//! podman keeps its storage, state and runtime root in a private temporary directory.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use berth_tests::runtime::Output;
use berth_tests::{busybox, runtime_bin, unique_name};

const IMAGE: &str = "docker.io/library/busybox:latest";

/// Limits below this host's hard limits: podman's defaults raise them, which needs
/// CAP_SYS_RESOURCE (the runtime refuses that with its own error, checked elsewhere).
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:4096",
    "--ulimit",
    "nproc=1024:2048",
];

struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        let podman = Podman {
            dir: tempfile::Builder::new()
                .prefix("berth-podman-")
                .tempdir()
                .expect("a directory for podman"),
            runtime: runtime_bin(),
        };
        let archive = format!("oci-archive:{}", busybox().oci_archive.display());
        podman
            .run(["pull", "-q", archive.as_str()])
            .ok("podman pull");
        podman
    }

    fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let d = self.dir.path();
        let out = Command::new("podman")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"])
            .args(args)
            .output()
            .expect("spawn podman");
        Output::from_std(out)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(["rm", "-a", "-f", "-t", "0"]);
    }
}

#[test]
fn podman_run_returns_the_output_and_exit_code() {
    let podman = Podman::new();

    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(ULIMITS);
    args.extend([IMAGE, "sh", "-c", "echo hello from $(hostname); exit 3"]);
    let out = podman.run(&args);

    assert_eq!(out.code, 3, "{out:#?}");
    assert!(out.stdout.starts_with("hello from "), "{out:#?}");
    let left = podman.run(["ps", "-a", "-q"]).ok("podman ps");
    assert_eq!(left.stdout.trim(), "", "--rm should remove the container");
}

#[test]
fn podman_exec_stop_and_rm_drive_a_running_container() {
    let podman = Podman::new();
    let name = unique_name("podman");

    let mut args = vec!["run", "-d", "--name", name.as_str(), "--net", "none"];
    args.extend(ULIMITS);
    args.extend([
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 143' TERM; while :; do sleep 1; done",
    ]);
    podman.run(&args).ok("podman run -d");

    let exec = podman.run(["exec", name.as_str(), "sh", "-c", "ps -o pid,comm; exit 5"]);
    assert_eq!(exec.code, 5, "exec returns the command's status: {exec:#?}");
    assert!(
        exec.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sh"]),
        "exec runs in the container's pid namespace: {exec:#?}"
    );

    // SIGTERM, sent through the runtime's kill, ends it through its trap.
    podman
        .run(["stop", "-t", "10", name.as_str()])
        .ok("podman stop");
    let state = podman
        .run([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            name.as_str(),
        ])
        .ok("podman inspect");
    assert_eq!(state.stdout.trim(), "exited 143", "{state:#?}");

    podman.run(["rm", name.as_str()]).ok("podman rm");
    let left = podman.run(["ps", "-a", "-q"]).ok("podman ps");
    assert_eq!(left.stdout.trim(), "", "rm should remove the container");
}
