//! Bad input: each is refused with a non-zero exit and a one-line error that names what is
//! wrong, and leaves no state and no cgroup behind.

use std::fs;
use std::time::Duration;

use berth_tests::{Bundle, Runtime};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_bundle_without_config_json_is_refused() {
    let bundle = Bundle::new("no-config");
    fs::remove_file(bundle.config_path()).expect("remove config.json");
    let runtime = Runtime::new();
    let id = runtime.new_id("no-config");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("config.json");
}

#[test]
fn a_malformed_config_json_is_refused() {
    let bundle = Bundle::new("bad-config");
    fs::write(
        bundle.config_path(),
        r#"{"ociVersion": "1.0.2", "process": {"#,
    )
    .expect("write config.json");
    let runtime = Runtime::new();
    let id = runtime.new_id("bad-config");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("config.json");
}

#[test]
fn an_unknown_namespace_type_is_refused() {
    let mut bundle = Bundle::new("bad-namespace");
    bundle.namespace("bogusns", None);
    let runtime = Runtime::new();
    let id = runtime.new_id("bad-namespace");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("bogusns");
}

#[test]
fn a_missing_bundle_is_refused() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let missing = dir.path().join("no-such-bundle");
    let runtime = Runtime::new();
    let id = runtime.new_id("no-bundle");

    let out = runtime.create(&id, &missing);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming(missing.to_str().expect("a UTF-8 path"));
}

#[test]
fn a_missing_rootfs_is_refused() {
    let bundle = Bundle::new("no-rootfs");
    fs::remove_dir_all(bundle.rootfs()).expect("remove the rootfs");
    let runtime = Runtime::new();
    let id = runtime.new_id("no-rootfs");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming(bundle.rootfs().to_str().expect("a UTF-8 path"));
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_kept() {
    let mut first = Bundle::new("dup-first");
    first.args(&["sleep", "1000"]);
    let second = Bundle::new("dup-second");
    let runtime = Runtime::new();
    let id = runtime.new_id("dup");
    runtime.create(&id, &first).ok("create the first container");
    let before = runtime.state(&id);

    let out = runtime.create(&id, &second);

    assert_ne!(out.code, 0, "{out:#?}");
    let after = runtime.state(&id);
    assert_eq!(after["status"], "created", "{after}");
    assert_eq!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["bundle"], before["bundle"], "{after}");
    out.assert_error_naming(&id);
}

#[test]
fn an_unknown_signal_is_refused_and_the_container_kept() {
    let mut bundle = Bundle::new("bad-signal");
    bundle.args(&["sleep", "1000"]);
    let runtime = Runtime::new();
    let id = runtime.new_id("bad-signal");
    runtime.create_and_start(&id, &bundle);

    let out = runtime.kill(&id, "SIGBOGUS");

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.wait_status(&id, "running", WAIT);
    out.assert_error_naming("SIGBOGUS");
}

/// The host's hard limit on open files, and the kernel's ceiling for any such limit.
fn nofile_ceiling() -> u64 {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit RLIMIT_NOFILE");
    let nr_open = fs::read_to_string("/proc/sys/fs/nr_open").expect("read /proc/sys/fs/nr_open");
    let nr_open: u64 = nr_open.trim().parse().expect("nr_open is a number");
    hard.max(nr_open)
}

#[test]
fn a_hard_rlimit_above_the_hosts_is_refused() {
    // Above both the current hard limit (raising it needs CAP_SYS_RESOURCE) and
    // fs.nr_open (which not even CAP_SYS_RESOURCE passes), so it fails on any host.
    let hard = nofile_ceiling() + 1;
    let mut bundle = Bundle::new("rlimit");
    bundle.rlimits(json!([{"type": "RLIMIT_NOFILE", "hard": hard, "soft": 1024}]));
    let runtime = Runtime::new();
    let id = runtime.new_id("rlimit");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("RLIMIT_NOFILE");
}

/// A cgroup limit the host refuses fails create after the init is cloned (on v1 the
/// runtime writes the limits while the init mounts): the init, its cgroups and the state
/// must all go.
#[test]
fn a_cpuset_the_host_lacks_is_refused() {
    let mut bundle = Bundle::new("cpuset");
    bundle.resources(json!({"cpu": {"cpus": "1023"}}));
    let runtime = Runtime::new();
    let id = runtime.new_id("cpuset");

    let out = runtime.create(&id, &bundle);

    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("linux.resources.cpu.cpus");
}

#[test]
fn a_sysctl_that_would_change_the_host_is_refused() {
    let host_value = || fs::read_to_string("/proc/sys/vm/swappiness").expect("read swappiness");
    let before = host_value();
    let other = if before.trim() == "13" { "14" } else { "13" };
    let runtime = Runtime::new();

    // Not namespaced at all, and /proc/sys left writable (no readonlyPaths), so only the
    // check stands between the container and the host's setting.
    let mut bundle = Bundle::new("sysctl-host");
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({ "vm.swappiness": other });
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let id = runtime.new_id("sysctl-host");
    let out = runtime.create(&id, &bundle);
    let after = host_value();
    if after != before {
        let _ = fs::write("/proc/sys/vm/swappiness", &before);
    }
    assert_eq!(after, before, "the host's swappiness changed: {out:#?}");
    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("linux.sysctl[vm.swappiness]");

    // Namespaced, but the container shares the host's network namespace.
    let mut bundle = Bundle::new("sysctl-host-net");
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
        let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        namespaces.retain(|n| n["type"] != "network");
    });
    let id = runtime.new_id("sysctl-host-net");
    let out = runtime.create(&id, &bundle);
    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("linux.sysctl[net.ipv4.ip_forward]");

    // The host's network namespace, joined by path, is the host's all the same.
    let host_net = std::path::PathBuf::from(format!("/proc/{}/ns/net", std::process::id()));
    let mut bundle = Bundle::new("sysctl-joined-host-net");
    bundle
        .namespace("network", Some(&host_net))
        .edit(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }));
    let id = runtime.new_id("sysctl-joined-host-net");
    let out = runtime.create(&id, &bundle);
    assert_ne!(out.code, 0, "{out:#?}");
    runtime.assert_nothing_left(&id);
    out.assert_error_naming("linux.sysctl[net.ipv4.ip_forward]");
}
