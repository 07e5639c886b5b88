//! The one harness behind berth's integration tests: it finds the binaries under test, builds
//! the busybox image once, and hands out bundles, runtimes, agents, cgroup readers, consoles,
//! image stores, registries and hand-made image layouts.
//!
//! Tests run as root, in parallel threads and processes, so every container id, bundle,
//! state root and network namespace a test makes is unique to it.

pub mod agent;
pub mod berth;
pub mod bridge;
pub mod bundle;
pub mod cgroup;
pub mod console;
pub mod containerd;
pub mod image;
pub mod netns;
pub mod oci;
pub mod registry;
pub mod runtime;
pub mod service;
pub mod tree;

pub use agent::Agent;
pub use berth::Berth;
pub use bundle::Bundle;
pub use cgroup::ContainerCgroup;
pub use console::ConsoleSocket;
pub use containerd::Containerd;
pub use image::{BusyboxImage, busybox};
pub use netns::NetNs;
pub use runtime::{Output, Runtime};

use std::env;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The directory cargo put this test build's binaries in, e.g. `target/debug`.
///
/// A test executable lives in `<profile dir>/deps/`, which also covers custom profiles and
/// `--target` builds; outside cargo's layout the profile is guessed from debug assertions.
fn profile_dir() -> PathBuf {
    if let Ok(exe) = env::current_exe() {
        if let Some(deps) = exe.parent() {
            if deps.file_name().is_some_and(|name| name == "deps") {
                if let Some(profile) = deps.parent() {
                    return profile.to_path_buf();
                }
            }
        }
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    target_dir().join(profile)
}

/// The runtime binary under test: `BERTH_TEST_RUNTIME` if set, else the `berth-runtime`
/// built by the same cargo profile as this test.
pub fn runtime_bin() -> PathBuf {
    if let Some(bin) = env::var_os("BERTH_TEST_RUNTIME").filter(|bin| !bin.is_empty()) {
        return PathBuf::from(bin);
    }
    let bin = profile_dir().join("berth-runtime");
    assert!(
        bin.is_file(),
        "{}: not built; run `cargo build -p berth-runtime` with the same profile first, \
         or set BERTH_TEST_RUNTIME to a runc-compatible binary",
        bin.display()
    );
    bin
}

/// The `berth` binary under test: `BERTH_TEST_BERTH` if set, else the `berth` built by the
/// same cargo profile as this test. Its `berth-supervisor` must sit next to it.
pub fn berth_bin() -> PathBuf {
    if let Some(bin) = env::var_os("BERTH_TEST_BERTH").filter(|bin| !bin.is_empty()) {
        return PathBuf::from(bin);
    }
    let bin = profile_dir().join("berth");
    assert!(
        bin.is_file(),
        "{}: not built; run `cargo build -p berth-agent -p berth-runtime` with the same \
         profile first, or set BERTH_TEST_BERTH",
        bin.display()
    );
    bin
}

/// The reference runtime that writes bundles' config.json (`runc spec`), so berth is
/// tested against a configuration nobody in this project wrote. `BERTH_TEST_REFERENCE`
/// overrides it.
pub fn reference_runtime_bin() -> PathBuf {
    if let Some(bin) = env::var_os("BERTH_TEST_REFERENCE").filter(|bin| !bin.is_empty()) {
        return PathBuf::from(bin);
    }
    [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|bin| bin.is_file())
    .expect("runc not found: install Debian's runc package (it writes the bundles' config.json)")
}

/// A name no other test, thread or concurrent test process uses: `<label>-<pid>-<n>`.
pub fn unique_name(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{n}", std::process::id())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` saying
/// what was awaited.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` takes `signal` in: it has a handler for it (SigCgt in
/// /proc/PID/status) or blocks it to wait for it (SigBlk). The init of a pid namespace
/// drops the signals it does neither for, so a test that signals a shell's `trap` waits
/// for this first.
pub fn catches(pid: i32, signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let has = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
    };
    has("SigCgt:") || has("SigBlk:")
}

/// Waits until process `pid` takes `signal` in; see [`catches`].
pub fn wait_until_catches(pid: i32, signal: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !catches(pid, signal) {
        if Instant::now() >= deadline {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
            panic!(
                "timed out after {timeout:?} waiting for process {pid} to take signal {signal} in; its status: {status:?}"
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
