//! What a container can see and do: namespaces, the root filesystem, masked and read-only
//! paths, capabilities and seccomp.

use std::fs;
use std::path::Path;

use berth_tests::{Bundle, NetNs, Runtime};
use serde_json::json;

#[test]
fn the_process_is_pid_1_of_its_pid_namespace() {
    let mut bundle = Bundle::new("pid1");
    bundle.sh("echo $$");
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("pid1"), &bundle).ok("run");

    assert_eq!(out.stdout.trim(), "1");
}

#[test]
fn the_hostname_comes_from_the_config() {
    let mut bundle = Bundle::new("hostname");
    bundle.hostname("berth-hostname-test").args(&["hostname"]);
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("hostname"), &bundle).ok("run");

    assert_eq!(out.stdout.trim(), "berth-hostname-test");
}

#[test]
fn a_new_network_namespace_has_only_loopback() {
    let mut bundle = Bundle::new("netns-new");
    bundle.args(&["ls", "/sys/class/net"]);
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("netns-new"), &bundle).ok("run");

    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["lo"]);
}

#[test]
fn a_network_namespace_joined_by_path_shows_its_interfaces() {
    let netns = NetNs::new();
    netns.run(&["link", "add", "berth0", "type", "bridge"]);
    let mut bundle = Bundle::new("netns-join");
    bundle
        .namespace("network", Some(&netns.path()))
        .args(&["ls", "/sys/class/net"]);
    let runtime = Runtime::new();

    let out = runtime
        .run(&runtime.new_id("netns-join"), &bundle)
        .ok("run");

    let mut interfaces: Vec<&str> = out.stdout.split_whitespace().collect();
    interfaces.sort_unstable();
    assert_eq!(interfaces, ["berth0", "lo"]);
}

#[test]
fn a_readonly_root_refuses_writes() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("readonly-root");
    bundle.readonly_root(true).args(&["touch", "/x"]);

    let refused = runtime.run(&runtime.new_id("readonly-root"), &bundle);

    assert_ne!(refused.code, 0, "touch /x should fail: {refused:#?}");
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{refused:#?}"
    );
    assert!(!bundle.rootfs().join("x").exists(), "/x was written");

    bundle.readonly_root(false);
    runtime
        .run(&runtime.new_id("writable-root"), &bundle)
        .ok("touch /x on a writable root");
    assert!(
        bundle.rootfs().join("x").exists(),
        "/x should be written through to the rootfs"
    );
}

/// Whether a path holds anything on the host: bytes in a file, entries in a directory.
fn has_content_on_host(path: &str) -> bool {
    let path = Path::new(path);
    if path.is_dir() {
        fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
    } else {
        fs::read(path).is_ok_and(|bytes| !bytes.is_empty())
    }
}

#[test]
fn masked_paths_read_empty() {
    let mut bundle = Bundle::new("masked");
    let masked: Vec<String> = bundle.config()["linux"]["maskedPaths"]
        .as_array()
        .expect("runc spec masks paths")
        .iter()
        .filter_map(|path| path.as_str().map(str::to_string))
        .collect();
    let telling: Vec<&String> = masked
        .iter()
        .filter(|path| has_content_on_host(path))
        .collect();
    assert!(
        !telling.is_empty(),
        "none of {masked:?} has content on this host, so masking cannot be seen"
    );
    // For each masked path that exists: "PATH COUNT", entries of a directory, bytes of a file.
    bundle.sh(&format!(
        "for p in {}; do if [ -d $p ]; then echo $p $(ls -A $p | wc -l); \
         elif [ -e $p ]; then echo $p $(cat $p | wc -c); fi; done",
        masked.join(" ")
    ));
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("masked"), &bundle).ok("run");

    for path in telling {
        let line = out
            .stdout
            .lines()
            .find(|line| line.split(' ').next() == Some(path.as_str()));
        assert_eq!(
            line.and_then(|line| line.split(' ').nth(1)),
            Some("0"),
            "{path} has content on the host but should read empty in the container:\n{}",
            out.stdout
        );
    }
    for line in out.stdout.lines() {
        assert!(line.ends_with(" 0"), "a masked path is not empty: {line}");
    }
}

/// Writes a network sysctl, which CAP_NET_ADMIN allows in the container's own netns
/// unless /proc/sys is read-only.
const WRITE_SYSCTL: &str =
    "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward";

#[test]
fn readonly_paths_refuse_writes() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("readonly-paths");
    let readonly = &bundle.config()["linux"]["readonlyPaths"];
    assert!(
        readonly
            .as_array()
            .is_some_and(|paths| paths.contains(&json!("/proc/sys"))),
        "{readonly}"
    );
    bundle.add_capability("CAP_NET_ADMIN").sh(WRITE_SYSCTL);

    let refused = runtime.run(&runtime.new_id("readonly-paths"), &bundle);

    assert_ne!(
        refused.code, 0,
        "writing /proc/sys should fail: {refused:#?}"
    );
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{refused:#?}"
    );

    // The same write succeeds once /proc/sys is no longer listed.
    bundle.edit(|c| c["linux"]["readonlyPaths"] = json!([]));
    let allowed = runtime
        .run(&runtime.new_id("writable-paths"), &bundle)
        .ok("run without readonlyPaths");
    assert_eq!(allowed.stdout.trim(), "1");
}

const CHOWN: &str = "touch /tmp/f && chown 1 /tmp/f && stat -c %u /tmp/f";

#[test]
fn a_dropped_capability_refuses_its_operation() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("caps");
    bundle
        .readonly_root(false)
        .drop_capability("CAP_CHOWN")
        .sh(CHOWN);

    let refused = runtime.run(&runtime.new_id("no-chown"), &bundle);

    assert_ne!(
        refused.code, 0,
        "chown without CAP_CHOWN should fail: {refused:#?}"
    );
    assert!(
        refused.stderr.contains("Operation not permitted"),
        "{refused:#?}"
    );

    bundle.add_capability("CAP_CHOWN");
    let allowed = runtime
        .run(&runtime.new_id("chown"), &bundle)
        .ok("chown with CAP_CHOWN");
    assert_eq!(allowed.stdout.trim(), "1");
}

#[test]
fn a_seccomp_errno_rule_refuses_the_syscall() {
    let mut bundle = Bundle::new("seccomp");
    bundle
        .readonly_root(false)
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        }))
        .sh("mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && echo touch=$?");
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("seccomp"), &bundle).ok("run");

    assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["mkdir=1", "touch=0"],
        "{out:#?}"
    );
    assert!(
        !bundle.rootfs().join("tmp/d").exists(),
        "mkdir created /tmp/d"
    );
}

/// CVE-2019-5736: while the init of a created container waits for `start` it still is the
/// runtime's binary; a process in the container must not be able to reach it through
/// /proc/1/exe (the init keeps the runtime's capabilities until it execs, and is not
/// dumpable). Once the init has exec'd, /proc/1/exe is the container's own program and
/// readable, which shows the check can tell the two apart.
#[test]
fn the_waiting_init_does_not_expose_the_runtime_binary() {
    let mut bundle = Bundle::new("cve-2019-5736");
    bundle.args(&["sleep", "30"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("exe");
    runtime.create(&id, &bundle).ok("create");

    let waiting = runtime.exec(&id, &["sh", "-c", "cat /proc/1/exe > /dev/null"]);
    assert!(
        !waiting.success(),
        "the created container's init exposed /proc/1/exe: {}",
        waiting.stdout
    );
    assert!(
        waiting.stderr.contains("Permission denied"),
        "expected EACCES on /proc/1/exe, got: {}",
        waiting.stderr
    );

    runtime.start(&id).ok("start");
    runtime
        .exec(&id, &["sh", "-c", "cat /proc/1/exe > /dev/null"])
        .ok("after start, /proc/1/exe is the container's own sleep");
    runtime.delete_force(&id).ok("delete");
}

/// The process starts with default signal dispositions and nothing blocked, whatever the
/// caller had (the runtime itself is a Rust program that ignores SIGPIPE; a supervisor
/// blocks SIGTERM for its signalfd).
#[test]
fn the_process_starts_with_default_signals() {
    let mut bundle = Bundle::new("signals");
    bundle.args(&["cat", "/proc/self/status"]);
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("signals"), &bundle).ok("run");

    for field in ["SigBlk", "SigIgn"] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in /proc/self/status: {}", out.stdout));
        let mask = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            mask.chars().all(|c| c == '0'),
            "{field} should be empty, got {mask}"
        );
    }
}

#[test]
fn a_missing_working_directory_is_made_inside_the_root() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let runtime = Runtime::new();
    let mut bundle = Bundle::new("make-cwd");
    // A host directory, and a symlink in the image whose target names it (a directory
    // of that name exists in the image too): the working directory below the link must
    // be made inside the rootfs, never on the host.
    let host = tempfile::tempdir().expect("a host directory");
    let host_target = host.path().display().to_string();
    let inside = bundle.rootfs().join(host_target.trim_start_matches('/'));
    fs::create_dir_all(&inside).expect("the link's target in the rootfs");
    std::os::unix::fs::symlink(&host_target, bundle.rootfs().join("outside"))
        .expect("symlink in the rootfs");
    bundle
        .readonly_root(true)
        .edit(|c| c["process"]["cwd"] = json!("/outside/work/dir"))
        .args(&["pwd"]);

    let out = runtime
        .run(&runtime.new_id("make-cwd"), &bundle)
        .ok("run with a cwd the image lacks, on a read-only root");

    // getcwd shows the path with the link resolved, inside the container.
    assert_eq!(
        out.stdout.trim(),
        format!("{host_target}/work/dir"),
        "{out:#?}"
    );
    assert!(
        !host.path().join("work").exists(),
        "the working directory was made on the host, through the image's symlink"
    );
    let made = inside.join("work/dir");
    let meta = fs::metadata(&made)
        .unwrap_or_else(|e| panic!("{} should be made in the rootfs: {e}", made.display()));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

#[test]
fn a_working_directory_that_is_a_file_is_refused_naming_the_field() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("cwd-file");
    bundle
        .edit(|c| c["process"]["cwd"] = json!("/bin/busybox/sub"))
        .args(&["pwd"]);
    let id = runtime.new_id("cwd-file");

    let out = runtime.run(&id, &bundle);

    out.assert_error_naming("process.cwd");
    assert!(
        !runtime.root().join(&id).exists(),
        "a refused create should leave no state"
    );
}

#[test]
fn a_network_sysctl_is_set_though_proc_sys_is_read_only() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("sysctl-net");
    // What podman asks for in a container with its own network namespace; runc's spec
    // lists /proc/sys among the read-only paths.
    bundle
        .edit(|c| {
            assert!(
                c["linux"]["readonlyPaths"]
                    .as_array()
                    .is_some_and(|p| p.contains(&json!("/proc/sys"))),
                "the reference spec should make /proc/sys read-only: {c:#}"
            );
            c["linux"]["sysctl"] = json!({ "net.ipv4.ping_group_range": "0 0" });
        })
        .sh("cat /proc/sys/net/ipv4/ping_group_range; \
             echo 1 > /proc/sys/net/ipv4/ip_forward && echo writable || echo read-only");

    let out = runtime
        .run(&runtime.new_id("sysctl-net"), &bundle)
        .ok("run with a network sysctl");

    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0\t0", "read-only"], "{out:#?}");
}

/// Whether the kernel runs AppArmor, as the runtime decides it.
fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim_start().starts_with('Y'))
}

/// Waits until process `pid` runs under the test profile; panics after 10 s.
fn wait_until_confined(pid: &str) {
    berth_tests::wait_for(
        &format!("pid {pid} under berth-test-confined"),
        std::time::Duration::from_secs(10),
        || {
            let label = fs::read_to_string(format!("/proc/{pid}/attr/current")).ok()?;
            (label.trim_end_matches('\0').trim() == "berth-test-confined (enforce)").then_some(())
        },
    );
}

/// A profile that allows everything but writes under /denied; loaded into the kernel by
/// apparmor_parser for the life of the value.
struct TestProfile {
    name: String,
    file: tempfile::NamedTempFile,
}

impl TestProfile {
    fn load(name: &str) -> TestProfile {
        use std::io::Write;
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        write!(
            file,
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  \
             file,\n  capability,\n  network,\n  signal,\n  unix,\n  ptrace,\n  mount,\n  \
             umount,\n  pivot_root,\n  deny /denied/** w,\n}}\n"
        )
        .expect("write the profile");
        let out = std::process::Command::new("apparmor_parser")
            .args(["--replace", "--skip-cache"])
            .arg(file.path())
            .output()
            .expect("apparmor_parser runs (tests/setup installs the apparmor package)");
        assert!(
            out.status.success(),
            "apparmor_parser: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestProfile {
            name: name.to_string(),
            file,
        }
    }
}

impl Drop for TestProfile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("apparmor_parser")
            .arg("--remove")
            .arg(self.file.path())
            .output();
    }
}

#[test]
fn an_apparmor_profile_confines_the_process_where_the_host_runs_apparmor() {
    let runtime = Runtime::new();
    let mut bundle = Bundle::new("apparmor");
    bundle.readonly_root(false);
    fs::create_dir_all(bundle.rootfs().join("denied")).unwrap();
    let script = "cat /proc/self/attr/current 2>/dev/null; touch /tmp/allowed && echo allowed; \
                  touch /denied/x 2>/dev/null || echo denied";

    if !apparmor_enabled() {
        // As runc does where AppArmor is off: the field is skipped, loudly.
        bundle
            .edit(|c| c["process"]["apparmorProfile"] = json!("berth-no-such-profile"))
            .sh(script);
        let out = runtime.run(&runtime.new_id("apparmor"), &bundle).ok("run");
        assert!(
            out.stderr
                .contains("process.apparmorProfile: AppArmor is not enabled on this host, skipped"),
            "{out:#?}"
        );
        assert!(out.stdout.contains("allowed"), "{out:#?}");
        assert!(!out.stdout.contains("denied"), "{out:#?}");
        return;
    }

    let profile = TestProfile::load("berth-test-confined");
    bundle
        .edit(|c| c["process"]["apparmorProfile"] = json!(profile.name))
        .sh(script);
    let out = runtime.run(&runtime.new_id("apparmor"), &bundle).ok("run");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["berth-test-confined (enforce)", "allowed", "denied"],
        "{out:#?}"
    );

    // exec runs under the container's profile, or the one it names.
    let id = runtime.new_id("apparmor-exec");
    bundle.args(&["sleep", "30"]);
    let pid = runtime.create_and_start(&id, &bundle);
    // start returns before the init's execve, which is when the profile applies.
    wait_until_confined(&pid.to_string());
    let exec = runtime
        .exec(&id, &["cat", "/proc/self/attr/current"])
        .ok("exec");
    assert_eq!(
        exec.stdout.trim_end_matches('\0').trim(),
        "berth-test-confined (enforce)"
    );
    let unconfined = runtime
        .cmd([
            "exec",
            "--apparmor",
            "unconfined",
            &id,
            "cat",
            "/proc/self/attr/current",
        ])
        .ok("exec --apparmor unconfined");
    assert_eq!(
        unconfined.stdout.trim_end_matches('\0').trim(),
        "unconfined"
    );
    runtime.delete_force(&id).ok("delete --force");

    // Under the small init, the init is confined too, not only the process it forks.
    let id = runtime.new_id("apparmor-init");
    bundle.edit(|c| c["annotations"] = json!({"dev.berth.init": "true"}));
    let init = runtime.create_and_start(&id, &bundle);
    let child = berth_tests::wait_for(
        "the init's child",
        std::time::Duration::from_secs(10),
        || {
            fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().map(str::to_string))
        },
    );
    for pid in [init.to_string(), child] {
        wait_until_confined(&pid);
    }
    runtime.delete_force(&id).ok("delete --force");
    bundle.edit(|c| c["annotations"] = json!({}));

    // A profile the kernel has not loaded fails create, naming the field.
    bundle
        .edit(|c| c["process"]["apparmorProfile"] = json!("berth-no-such-profile"))
        .args(&["true"]);
    let id = runtime.new_id("apparmor-missing");
    let refused = runtime.run(&id, &bundle);
    refused.assert_error_naming("process.apparmorProfile");
    assert!(
        refused.stderr.contains("berth-no-such-profile"),
        "{refused:#?}"
    );
    runtime.assert_nothing_left(&id);
}

/// A new user namespace with `uidMappings`/`gidMappings`: the process is root inside and
/// the mapped ids outside, sees the rootfs (owned by the mapped ids) as root's, and writes
/// files the host sees as the mapped owner.
#[test]
fn a_user_namespace_maps_the_containers_root_to_the_mapped_host_ids() {
    const HOST_ID: u32 = 100_000;
    let out_dir = tempfile::tempdir().expect("create a temporary directory");
    let chown = std::process::Command::new("chown")
        .arg(format!("{HOST_ID}:{HOST_ID}"))
        .arg(out_dir.path())
        .status()
        .expect("spawn chown");
    assert!(chown.success(), "chown the output directory: {chown}");
    let mut bundle = user_namespace_bundle("userns", HOST_ID);
    bundle
        .bind_mount(out_dir.path(), "/out")
        .sh("id -u; id -g; cat /proc/self/uid_map; stat -c '%u %g' /; touch /out/made");
    let runtime = Runtime::new();
    let id = runtime.new_id("userns");

    let out = runtime.run(&id, &bundle).ok("run in a user namespace");

    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        ["0", "0", "0 100000 65536", "0 0"],
        "uid, gid, uid_map and the root's owner inside: {out:#?}"
    );
    let made = fs::metadata(out_dir.path().join("made")).expect("the container wrote /out/made");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((made.uid(), made.gid()), (HOST_ID, HOST_ID));
    runtime.assert_nothing_left(&id);
}

/// The process runs in its cgroup in a user namespace too: the runtime moves it there,
/// since a process in a new user namespace may not write the host's cgroup files.
#[test]
fn a_user_namespace_container_is_in_its_cgroup() {
    let mut bundle = user_namespace_bundle("userns-cgroup", 200_000);
    bundle
        .resources(json!({"pids": {"limit": 7}}))
        .args(&["sleep", "30"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("userns-cgroup");
    runtime.create_and_start(&id, &bundle);

    let state: serde_json::Value =
        serde_json::from_str(&runtime.cmd(["state", id.as_str()]).ok("state").stdout)
            .expect("state JSON");
    let pid = state["pid"].as_i64().expect("state.pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("a Uid line");
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("200000"),
        "seen from the host, the process runs as the mapped uid: {uid_line}"
    );
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    let pids_cgroup = own
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
        .or_else(|| {
            own.lines()
                .find_map(|l| l.strip_prefix("0::").map(String::from))
        })
        .expect("a pids or unified cgroup line");
    assert!(pids_cgroup.ends_with(&id), "{own}");
    let limit = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .iter()
        .map(|root| {
            Path::new(root)
                .join(pids_cgroup.trim_start_matches('/'))
                .join("pids.max")
        })
        .find_map(|f| fs::read_to_string(f).ok())
        .expect("the container's pids.max");
    assert_eq!(limit.trim(), "7");

    runtime.cmd(["delete", "--force", id.as_str()]).ok("delete");
    runtime.assert_nothing_left(&id);
}

/// The spec's `cgroup` mount shows the container's own cgroup: its pids limit is the one
/// the config sets (v1: under the pids hierarchy, v2: at the top), and the process cannot
/// make anything there (berth mounts it read-only; runc's refuses with EACCES).
#[test]
fn the_cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    let mut bundle = Bundle::new("cgroup-mount");
    bundle
        .namespace("cgroup", None)
        .resources(json!({"pids": {"limit": 9}}))
        .sh(
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
             mkdir /sys/fs/cgroup/x && echo made",
        );
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("cgroup-mount"), &bundle);

    assert_eq!(out.stdout.trim(), "9", "{out:#?}");
    assert!(
        out.stderr
            .contains("can't create directory '/sys/fs/cgroup/x'"),
        "{out:#?}"
    );
}

/// A bundle in a new user namespace mapping 0..65535 to `host_id`.., its rootfs owned by
/// the mapped root.
fn user_namespace_bundle(label: &str, host_id: u32) -> Bundle {
    let mut bundle = Bundle::new(label);
    chown_rootfs(&bundle, host_id);
    let maps = json!([{ "containerID": 0, "hostID": host_id, "size": 65536 }]);
    bundle.namespace("user", None).edit(|c| {
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps.clone();
    });
    bundle
}

/// A container that joins another's user and pid namespaces by path (as a pod's
/// containers do): `run` waits for an init forked by an intermediate process and returns
/// its exit status; inside, the process is root of the shared user namespace and sees
/// the first container's processes.
#[test]
fn a_container_joins_the_user_and_pid_namespaces_of_another() {
    let runtime = Runtime::new();
    let mut first = user_namespace_bundle("userns-first", 300_000);
    first.args(&["sleep", "30"]);
    let first_id = runtime.new_id("userns-first");
    let pid = runtime.create_and_start(&first_id, &first);
    let ns = |kind: &str| std::path::PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
    let host_view = fs::read_link(ns("user")).expect("read the first container's userns");

    let mut second = Bundle::new("userns-second");
    chown_rootfs(&second, 300_000);
    second
        .namespace("user", Some(&ns("user")))
        .namespace("pid", Some(&ns("pid")))
        .sh("id -u; readlink /proc/self/ns/user; cat /proc/1/comm; exit 3");
    let second_id = runtime.new_id("userns-second");

    let out = runtime.run(&second_id, &second);

    assert_eq!(out.code, 3, "the process's exit status: {out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["0", host_view.to_str().unwrap(), "sleep"],
        "uid, user namespace, pid 1 of the joined pid namespace: {out:#?}"
    );
    runtime.assert_nothing_left(&second_id);
    runtime
        .cmd(["delete", "--force", first_id.as_str()])
        .ok("delete the first");
    runtime.assert_nothing_left(&first_id);
}

fn chown_rootfs(bundle: &Bundle, host_id: u32) {
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{host_id}:{host_id}")])
        .arg(bundle.rootfs())
        .status()
        .expect("spawn chown");
    assert!(chown.success(), "chown the rootfs: {chown}");
}
