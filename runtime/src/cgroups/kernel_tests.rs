//! The module against the running kernel, whatever this host's layout: needs root.

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::bpf::{self, Insn};
use super::devices::{DeviceRule, program};
use super::{Cgroup, Host, Mode};

/// A cgroup under the hierarchy roots, and the processes started in it; removed even when
/// a test fails half-way.
struct Scratch {
    host: Host,
    cgroup: Cgroup,
    relative: String,
    children: Vec<Child>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let host = Host::detect().expect("detect cgroup mounts");
        let relative = format!("/berth-test-{}-{name}", std::process::id());
        let cgroup = Cgroup::new(&host, Some(Path::new(&relative)), name).expect("resolve cgroup");
        cgroup
            .create()
            .expect("create cgroup (run the tests as root)");
        Scratch {
            host,
            cgroup,
            relative,
            children: Vec::new(),
        }
    }

    /// Starts `sh -c script` inside `cgroup`: the shell waits on stdin until it has been
    /// moved, so everything the script runs starts inside.
    fn start(&mut self, cgroup: &Cgroup, script: &str) -> u32 {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        cgroup.add_process(pid as i32).expect("add process");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(b"go\n").expect("release the shell");
        self.children.push(child);
        pid
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cgroup.remove();
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources parse")
}

/// Polls `check` for up to ten seconds: software-emulated test VMs are slow.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The cgroup of `pid` in the hierarchy holding `controller`, or in cgroup2 for "".
fn cgroup_of(pid: u32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then(|| path.to_string())
    })
}

fn interface_file(scratch: &Scratch, controller: &str, v1: &str, v2: &str) -> PathBuf {
    match scratch.cgroup.v2_path() {
        Some(dir) => dir.join(v2),
        None => scratch
            .cgroup
            .v1_dir(controller)
            .expect("controller mounted")
            .join(v1),
    }
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn a_container_cgroup_from_creation_to_removal() {
    let mut scratch = Scratch::new("lifecycle");
    let cgroup = scratch.cgroup.clone();
    let mode = scratch.host.mode();
    assert_eq!(cgroup.v2_path().is_some(), mode == Mode::V2);

    cgroup
        .apply(&resources(
            r#"{"memory": {"limit": 67108864, "swap": 67108864},
                "pids": {"limit": 16},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000}}"#,
        ))
        .expect("apply limits");
    let memory_limit = interface_file(&scratch, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trimmed(&memory_limit), "67108864");
    let quota = interface_file(&scratch, "cpu", "cpu.cfs_quota_us", "cpu.max");
    let expected_quota = if mode == Mode::V2 {
        "50000 100000"
    } else {
        "50000"
    };
    assert_eq!(read_trimmed(&quota), expected_quota);
    let pids_max = interface_file(&scratch, "pids", "pids.max", "pids.max");
    assert_eq!(read_trimmed(&pids_max), "16");

    // The kernel refuses memory+swap below memory: both orders of the v1 writes are needed.
    let raise = r#"{"memory": {"limit": 134217728, "swap": 134217728}}"#;
    cgroup
        .apply(&resources(raise))
        .expect("raise the memory limit");
    let lower = r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#;
    cgroup
        .apply(&resources(lower))
        .expect("lower the memory limit");
    assert_eq!(read_trimmed(&memory_limit), "33554432");

    let devices = r#"{"devices": [{"allow": false, "access": "rwm"},
                                  {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#;
    cgroup
        .apply(&resources(devices))
        .expect("apply device rules");
    if mode != Mode::V2 {
        let list = cgroup
            .v1_dir("devices")
            .expect("devices mounted")
            .join("devices.list");
        assert_eq!(read_trimmed(&list), "c 1:3 rwm");
    }

    // Busy for a moment so that CPU time is charged here, then sleep.
    let busy = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 30";
    let pid = scratch.start(&cgroup, busy);
    assert_eq!(cgroup.pids().expect("pids"), vec![pid as i32]);
    for controller in ["memory", "pids", "cpu", "freezer"] {
        if mode != Mode::V2 {
            assert_eq!(
                cgroup_of(pid, controller).as_deref(),
                Some(scratch.relative.as_str()),
                "{controller}"
            );
        }
    }
    if mode != Mode::V1 {
        assert_eq!(
            cgroup_of(pid, "").as_deref(),
            Some(scratch.relative.as_str())
        );
    }
    eventually("the shell to exec sleep", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });

    let stats = cgroup.stats().expect("stats");
    assert!(stats.cpu.usage_ns > 0, "{stats:?}");
    assert!(stats.memory.usage_bytes > 0, "{stats:?}");
    assert_eq!(stats.memory.limit_bytes, Some(32 << 20));
    assert_eq!(stats.memory.oom_kills, 0);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, Some(16));
    serde_json::to_string(&stats).expect("stats serialize");

    cgroup.freeze().expect("freeze");
    assert!(cgroup.is_frozen().expect("is_frozen"));
    cgroup.thaw().expect("thaw");
    assert!(!cgroup.is_frozen().expect("is_frozen"));

    // A child cgroup, as the agent makes one per container of a task.
    let inner_path = format!("{}/inner", scratch.relative);
    let inner =
        Cgroup::new(&scratch.host, Some(Path::new(&inner_path)), "inner").expect("resolve inner");
    inner.create().expect("create inner");
    let inner_pid = scratch.start(&inner, "exec sleep 30");
    let mut all = vec![pid as i32, inner_pid as i32];
    all.sort_unstable();
    eventually("both processes listed", || {
        cgroup.pids().is_ok_and(|p| p == all)
    });

    cgroup.kill_all(libc::SIGKILL).expect("kill_all");
    for child in &mut scratch.children {
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
    scratch.children.clear();
    assert_eq!(cgroup.pids().expect("pids"), Vec::<i32>::new());

    let dirs: Vec<PathBuf> = cgroup.paths().into_iter().chain(inner.paths()).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    cgroup.remove().expect("remove");
    for dir in dirs {
        assert!(!dir.exists(), "{} is still there", dir.display());
    }
    cgroup.remove().expect("removing twice is fine");
}

#[test]
fn out_of_memory_kills_are_counted() {
    let mut scratch = Scratch::new("oom");
    let cgroup = scratch.cgroup.clone();
    let limit = r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#;
    cgroup.apply(&resources(limit)).expect("apply memory limit");
    assert_eq!(cgroup.oom_kills().expect("oom_kills"), 0);

    // dd reads into a buffer of the block size, which touches every page of it; GNU's
    // and busybox's alike.
    scratch.start(&cgroup, "dd if=/dev/zero of=/dev/null bs=100M count=1");
    let status = scratch.children[0].wait().expect("wait");
    scratch.children.clear();
    assert!(!status.success());
    assert!(cgroup.oom_kills().expect("oom_kills") >= 1);
    assert!(cgroup.stats().expect("stats").memory.oom_kills >= 1);

    cgroup.remove().expect("remove");
    assert!(cgroup.paths().iter().all(|d| !d.exists()));
}

#[test]
fn a_relative_path_lands_under_the_callers_own_cgroup() {
    let host = Host::detect().expect("detect cgroup mounts");
    let name = format!("berth-test-{}-relative", std::process::id());
    let cgroup = Cgroup::new(&host, Some(Path::new(&name)), "relative").expect("resolve");
    let own = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let memory_own = match host.mode() {
        Mode::V2 => cgroup_of(std::process::id(), ""),
        Mode::V1 | Mode::Hybrid => cgroup_of(std::process::id(), "memory"),
    }
    .expect("own memory cgroup");
    let memory_dir = match cgroup.v2_path() {
        Some(dir) => dir,
        None => cgroup
            .v1_dir("memory")
            .expect("memory mounted")
            .to_path_buf(),
    };
    let expected = Path::new(&memory_own).join(&name);
    assert!(
        memory_dir.ends_with(expected.strip_prefix("/").unwrap_or(&expected)),
        "{own}"
    );

    cgroup.create().expect("create");
    assert!(cgroup.paths().iter().all(|d| d.is_dir()));
    cgroup.remove().expect("remove");
    assert!(cgroup.paths().iter().all(|d| !d.exists()));
}

/// What a process in `cgroup` may open: `name r-`, `name -w`, ... for each of /dev/null,
/// /dev/zero and /dev/full. The shell's stderr is already open, so the script itself never
/// needs /dev/null.
fn device_access(cgroup: &Cgroup) -> String {
    let script = "read go; for d in null zero full; do r=- w=-; \
        (exec 3</dev/$d) && r=r; (exec 3>/dev/$d) && w=w; \
        echo \"$d $r$w\"; done";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    cgroup.add_process(child.id() as i32).expect("add process");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(b"go\n").expect("release the shell");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('\n', ", ")
}

fn device_rules(json: &str) -> Vec<DeviceRule> {
    resources(json)
        .devices()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|r| DeviceRule::from_spec(r).expect("valid rule"))
        .collect()
}

/// The eBPF filter decides on any host with a cgroup2 hierarchy, hybrid ones included,
/// where it is attached to the cgroup's unified twin.
#[test]
fn the_device_filter_allows_only_what_the_rules_allow() {
    let scratch = Scratch::new("devices");
    let Some(dir) = scratch.cgroup.unified.as_ref().map(|d| d.path.clone()) else {
        eprintln!("skipped: this host has no cgroup2 hierarchy");
        return;
    };
    let cgroup = &scratch.cgroup;
    assert_eq!(device_access(cgroup), "null rw, zero rw, full rw");

    let null_and_read_only_zero = device_rules(
        r#"{"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"}]}"#,
    );
    let code = program(&null_and_read_only_zero).expect("program");
    bpf::attach_device_filter(&dir, &code).expect("attach the filter");
    assert_eq!(device_access(cgroup), "null rw, zero r-, full --");

    // A second filter replaces the first rather than adding to it: /dev/null closes.
    let only_full = device_rules(
        r#"{"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"}]}"#,
    );
    let code = program(&only_full).expect("program");
    bpf::attach_device_filter(&dir, &code).expect("replace the filter");
    assert_eq!(device_access(cgroup), "null --, zero --, full r-");

    // A program the verifier refuses comes back with its reason; the filter stays.
    let refused = bpf::attach_device_filter(&dir, &[Insn::exit()])
        .expect_err("exit without a result")
        .to_string();
    assert!(
        refused.contains(": load: ")
            && refused.contains("the verifier says: ")
            && refused.contains("R0"),
        "{refused}"
    );
    assert_eq!(device_access(cgroup), "null --, zero --, full r-");
}
