//! Named network namespaces made with iproute2's `ip netns`, deleted on drop.

use std::path::PathBuf;
use std::process::Command;

#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl NetNs {
    #[track_caller]
    pub fn new() -> Self {
        let netns = NetNs {
            name: crate::unique_name("berth"),
        };
        netns.ip(&["netns", "add", &netns.name]);
        netns
    }

    /// The bind mount that holds the namespace, for a spec's `namespaces[].path`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `ip -n NAME ARGS...` inside the namespace.
    #[track_caller]
    pub fn run(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        self.ip(&full);
    }

    #[track_caller]
    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("spawn ip (install iproute2): {e}"));
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Best effort: a panic in drop would hide the test's own failure.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
