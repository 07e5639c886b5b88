//! The container lifecycle and the runc-compatible commands, checked as a user of
//! `runc` would check them.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use berth_tests::console::read_until_hangup;
use berth_tests::{Bundle, ConsoleSocket, ContainerCgroup, Runtime, wait_for, wait_until_catches};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn run_returns_the_exit_code_of_the_process() {
    let mut bundle = Bundle::new("exit-code");
    bundle.sh("exit 3");
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("exit-code"), &bundle);

    assert_eq!(out.code, 3, "{out:#?}");
}

#[test]
fn run_reports_a_process_killed_by_sigkill_as_137() {
    let mut bundle = Bundle::new("sigkill");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("sigkill");

    let run = runtime.spawn_run(&id, &bundle);
    runtime.wait_status(&id, "running", WAIT);
    runtime.kill(&id, "KILL").ok("kill KILL");
    let out = run.wait_with_output().expect("wait for run");

    assert_eq!(berth_tests::runtime::exit_code(out.status), 137, "{out:#?}");
}

#[test]
fn run_detach_leaves_the_process_running_without_a_start() {
    let mut bundle = Bundle::new("detach");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("detach");

    runtime.run_detached(&id, &bundle).ok("run --detach");

    let pid = runtime.pid(&id);
    assert_eq!(runtime.status(&id), "running");
    wait_for("the process itself to run", WAIT, || {
        fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| cmd == b"sleep\x001000\x00")
            .then_some(())
    });
    let again = runtime.start(&id);
    assert_ne!(again.code, 0, "start of a running container: {again:#?}");
    assert!(again.stderr.contains(&id), "{again:#?}");
    runtime.kill(&id, "KILL").ok("kill");
    runtime.wait_status(&id, "stopped", WAIT);
    runtime.delete(&id).ok("delete");
}

/// The ELF program header types of the executable at `path`.
fn program_header_types(path: &Path) -> Vec<u32> {
    let elf = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        &elf[..5],
        b"\x7fELF\x02",
        "{}: not a 64-bit ELF",
        path.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let offset = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| {
            let at = offset + i * size;
            u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes"))
        })
        .collect()
}

#[test]
fn the_runtime_binary_is_linked_statically() {
    // runtime/static-gcc links it so: no loader to run and no shared library to map at
    // each start (README, dependency notes). PT_INTERP is 3, PT_DYNAMIC 2.
    let bin = berth_tests::runtime_bin();
    let types = program_header_types(&bin);
    assert!(!types.is_empty(), "{}: no program headers", bin.display());
    assert!(
        !types.contains(&3) && !types.contains(&2),
        "{} asks for a dynamic loader: program headers {types:?}",
        bin.display()
    );
}

#[test]
fn state_goes_from_created_to_running_to_stopped() {
    let mut bundle = Bundle::new("state");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("state");

    runtime.create(&id, &bundle).ok("create");
    let created = runtime.state(&id);
    assert_eq!(created["status"], "created", "{created}");
    assert_eq!(created["id"], id.as_str(), "{created}");
    assert_eq!(
        created["bundle"],
        bundle.path().to_str().expect("a UTF-8 bundle path"),
        "{created}"
    );
    let version = created["ociVersion"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("1."),
        "ociVersion should be a 1.x version: {created}"
    );
    let timestamp = created["created"].as_str().unwrap_or_default();
    assert!(
        timestamp.len() >= 20 && timestamp.as_bytes()[4] == b'-' && timestamp.contains('T'),
        "created should be an RFC 3339 timestamp: {created}"
    );
    let pid = created["pid"].as_i64().unwrap_or_default();
    assert!(pid > 0, "a created container has its init's pid: {created}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} of {created} does not exist"
    );

    runtime.start(&id).ok("start");
    let running = runtime.state(&id);
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["pid"], pid, "start keeps the init's pid: {running}");
    assert_eq!(running["created"], created["created"], "{running}");

    runtime.kill(&id, "KILL").ok("kill");
    let stopped = runtime.wait_status(&id, "stopped", WAIT);
    assert_eq!(stopped["id"], id.as_str(), "{stopped}");
    runtime.delete(&id).ok("delete");
}

/// A shell that ends on SIGTERM: as pid 1 it would otherwise ignore the signal.
const ENDS_ON_TERM: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

#[test]
fn kill_takes_signal_names_with_and_without_sig_and_numbers() {
    for signal in ["TERM", "SIGKILL", "9"] {
        let mut bundle = Bundle::new("kill");
        bundle.sh(ENDS_ON_TERM);
        let runtime = Runtime::new();
        let id = runtime.new_id("kill");
        let pid = runtime.create_and_start(&id, &bundle);
        // Before its trap is set, the shell (pid 1 of its namespace) drops SIGTERM.
        wait_until_catches(pid, libc::SIGTERM, WAIT);

        runtime.kill(&id, signal).ok(&format!("kill {signal}"));

        runtime.wait_status(&id, "stopped", WAIT);
        runtime.delete(&id).ok("delete");
    }
}

/// The pids in `cgroup` that run `sleep 1000`.
fn sleepers(cgroup: &ContainerCgroup) -> usize {
    let is_sleeper = |pid: &i32| {
        fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| cmd == b"sleep\x001000\x00")
    };
    cgroup.procs().iter().filter(|pid| is_sleeper(pid)).count()
}

#[test]
fn kill_all_signals_every_process_not_only_the_init() {
    let mut bundle = Bundle::new("kill-all");
    // The init catches USR1 and lives on; its children die of it.
    bundle.sh("trap 'echo caught' USR1; sleep 1000 & sleep 1000 & while :; do sleep 0.1; done");
    let runtime = Runtime::new();
    let id = runtime.new_id("kill-all");
    let pid = runtime.create_and_start(&id, &bundle);
    let cgroup = ContainerCgroup::of_pid(pid);
    wait_for("two sleepers in the container", WAIT, || {
        (sleepers(&cgroup) == 2).then_some(())
    });

    runtime.kill(&id, "USR1").ok("kill USR1");
    wait_for("the init to catch USR1", WAIT, || {
        runtime.stdout(&id).contains("caught").then_some(())
    });
    assert_eq!(
        sleepers(&cgroup),
        2,
        "kill without --all signals the init alone"
    );

    runtime.kill_all(&id, "USR1").ok("kill --all USR1");
    wait_for("kill --all to end the sleepers", WAIT, || {
        (sleepers(&cgroup) == 0).then_some(())
    });
    assert_eq!(
        runtime.status(&id),
        "running",
        "the init survives the signal it catches"
    );

    runtime.kill_all(&id, "KILL").ok("kill --all KILL");
    runtime.wait_status(&id, "stopped", WAIT);
}

#[test]
fn delete_removes_the_state_and_the_cgroups() {
    let mut bundle = Bundle::new("delete");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("delete");
    let pid = runtime.create_and_start(&id, &bundle);
    let cgroup = ContainerCgroup::of_pid(pid);
    assert!(
        !cgroup.dirs().is_empty(),
        "the container has cgroups: {cgroup:?}"
    );
    assert!(
        !runtime.state_left_for(&id).is_empty(),
        "a running container has state under --root"
    );

    runtime.kill(&id, "KILL").ok("kill");
    runtime.wait_status(&id, "stopped", WAIT);
    runtime.delete(&id).ok("delete");

    assert!(
        !runtime.cmd(["state", id.as_str()]).success(),
        "state of a deleted container should fail"
    );
    runtime.assert_nothing_left(&id);
    assert!(
        cgroup.is_removed(),
        "cgroup directories left: {:?}",
        cgroup.dirs()
    );
}

#[test]
fn delete_refuses_a_running_container_unless_forced() {
    let mut bundle = Bundle::new("delete-running");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("delete-running");
    let pid = runtime.create_and_start(&id, &bundle);

    let refused = runtime.delete(&id);
    assert_ne!(
        refused.code, 0,
        "delete of a running container should fail: {refused:#?}"
    );
    assert_eq!(runtime.status(&id), "running");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the init should still run"
    );

    runtime.delete_force(&id).ok("delete --force");
    assert!(
        !runtime.cmd(["state", id.as_str()]).success(),
        "state of a deleted container should fail"
    );
    wait_for("the init to be gone", WAIT, || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for whoever adopted it.
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    runtime.assert_nothing_left(&id);
}

#[test]
fn exec_runs_in_the_namespaces_of_the_container() {
    let mut bundle = Bundle::new("exec");
    bundle.hostname("berth-exec").args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("exec");
    runtime.create_and_start(&id, &bundle);

    let hostname = runtime.exec(&id, &["hostname"]).ok("exec hostname");
    assert_eq!(hostname.stdout.trim(), "berth-exec");

    let pid = runtime
        .exec(&id, &["sh", "-c", "echo $$"])
        .ok("exec echo $$");
    let pid: i32 = pid
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("exec printed {pid:?}: {e}"));
    assert!(
        pid > 1,
        "the exec'd shell is not the init, yet numbered in the container: {pid}"
    );

    let ps = runtime.exec(&id, &["ps"]).ok("exec ps");
    let init = ps
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some("1"));
    assert!(
        init.is_some_and(|line| line.contains("sleep 1000")),
        "ps in the container should show the init as pid 1:\n{}",
        ps.stdout
    );

    let net = runtime
        .exec(&id, &["ls", "/sys/class/net"])
        .ok("exec ls /sys/class/net");
    assert_eq!(net.stdout.split_whitespace().collect::<Vec<_>>(), ["lo"]);

    let status = runtime.exec(&id, &["sh", "-c", "exit 7"]);
    assert_eq!(
        status.code, 7,
        "exec returns the process's exit code: {status:#?}"
    );
}

#[test]
fn exec_process_file_runs_the_process_it_describes() {
    let mut bundle = Bundle::new("exec-process");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("exec-process");
    runtime.create_and_start(&id, &bundle);
    let process = bundle.process_file(&["sh", "-c", "echo from-process-file; exit 5"]);

    let out = runtime.exec_process(&id, &process);

    assert_eq!(out.code, 5, "{out:#?}");
    assert_eq!(out.stdout.trim(), "from-process-file");
}

#[test]
fn pause_freezes_the_container_and_resume_thaws_it() {
    let mut bundle = Bundle::new("pause");
    bundle
        .readonly_root(false)
        .sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done");
    let runtime = Runtime::new();
    let id = runtime.new_id("pause");
    runtime.create_and_start(&id, &bundle);
    let counter_file = bundle.rootfs().join("tmp/counter");
    let counter = || {
        fs::read_to_string(&counter_file)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    wait_for("the counter to count", WAIT, || {
        counter().filter(|n| *n > 2)
    });

    runtime.pause(&id).ok("pause");
    assert_eq!(runtime.status(&id), "paused");
    let frozen = counter();
    thread::sleep(Duration::from_secs(1));
    assert_eq!(counter(), frozen, "a paused container should not count");

    runtime.resume(&id).ok("resume");
    assert_eq!(runtime.status(&id), "running");
    wait_for("the counter to count again", WAIT, || {
        counter().filter(|n| Some(*n) > frozen.map(|f| f + 2))
    });
}

#[test]
fn a_terminal_container_talks_through_the_console_socket() {
    let mut bundle = Bundle::new("tty");
    bundle.terminal(true).sh("echo hello-tty; tty");
    let runtime = Runtime::new();
    let id = runtime.new_id("tty");
    let console = ConsoleSocket::bind();
    let socket = console.path().to_str().expect("a UTF-8 socket path");

    runtime
        .create_with(&id, &bundle, &["--console-socket", socket])
        .ok("create --console-socket");
    let master = console.receive(WAIT);
    runtime.start(&id).ok("start");
    let output = read_until_hangup(&master, WAIT);

    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    assert!(lines.contains(&"hello-tty"), "terminal output: {output:?}");
    assert!(
        lines.iter().any(|line| line.starts_with("/dev/pts/")),
        "tty should name a pseudoterminal: {output:?}"
    );
}

#[test]
fn spec_writes_a_config_the_runtime_can_run() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::with_spec_from("spec", runtime.bin());
    bundle.terminal(false).sh("echo spec-ok");

    let out = runtime
        .run(&runtime.new_id("spec"), &bundle)
        .ok("run a spec of its own");

    assert_eq!(out.stdout.trim(), "spec-ok");
}

#[test]
fn features_reports_the_supported_oci_versions() {
    let runtime = Runtime::new();

    let out = runtime.cmd(["features"]).ok("features");

    let features: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("features: not JSON ({e}): {}", out.stdout));
    for field in ["ociVersionMin", "ociVersionMax"] {
        let version = features[field].as_str().unwrap_or_default();
        assert!(
            version.starts_with("1."),
            "{field} should be a 1.x version: {features}"
        );
    }
}

#[test]
fn version_names_the_runtime_and_the_spec() {
    let runtime = Runtime::new();

    let out = runtime.cmd(["--version"]).ok("--version");

    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("version"),
        "first line should give the version: {}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|line| line.starts_with("spec: 1.")),
        "--version should name the OCI runtime spec version: {}",
        out.stdout
    );
}

#[test]
fn list_shows_the_container() {
    let mut bundle = Bundle::new("list");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("list");
    runtime.create(&id, &bundle).ok("create");
    let pid = runtime.pid(&id);

    let table = runtime.cmd(["list"]).ok("list");
    let row = table
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(id.as_str()));
    let row = row.unwrap_or_else(|| panic!("list should show {id}:\n{}", table.stdout));
    assert!(
        row.contains("created"),
        "list should show {id} as created: {row}"
    );

    let states = runtime.list_json();
    let state = states.iter().find(|state| state["id"] == id.as_str());
    let state = state.unwrap_or_else(|| panic!("list --format json should show {id}: {states:?}"));
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["pid"], pid, "{state}");
}

#[test]
fn ps_json_lists_the_init_pid() {
    let mut bundle = Bundle::new("ps");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("ps");
    let pid = runtime.create_and_start(&id, &bundle);

    let pids = runtime.ps_pids(&id);

    assert!(
        pids.contains(&pid),
        "ps --format json should list init pid {pid}: {pids:?}"
    );
}

#[test]
fn json_log_records_a_failed_command_as_an_error() {
    let runtime = Runtime::new();
    let log_dir = tempfile::tempdir().expect("create a log directory");
    let log = log_dir.path().join("runtime.log");
    let missing = runtime.new_id("no-such-container");

    let out = runtime.cmd([
        OsStr::new("--log"),
        log.as_os_str(),
        OsStr::new("--log-format"),
        OsStr::new("json"),
        OsStr::new("state"),
        OsStr::new(&missing),
    ]);

    assert_ne!(
        out.code, 0,
        "state of a missing container should fail: {out:#?}"
    );
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {}: {e}", log.display()));
    let entries: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
        })
        .collect();
    assert!(
        entries.iter().any(|entry| entry["level"] == "error"
            && entry["msg"].as_str().is_some_and(|msg| !msg.is_empty())),
        "the log should hold a {{\"level\":\"error\",\"msg\":...}} line: {text:?}"
    );
}
