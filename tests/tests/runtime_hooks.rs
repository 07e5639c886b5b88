//! OCI hooks: each kind runs, in lifecycle order, with the container's state on stdin.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::{Bundle, Runtime};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Hook kinds in the order the runtime spec's lifecycle runs them.
const LIFECYCLE: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A bundle with one hook of every kind. Each appends its kind to `order` and saves its
/// stdin as `<kind>.json` in a host directory, which the container sees at /hooks.
/// startContainer runs after pivot_root, inside the container, so it writes through
/// /hooks; createContainer runs before pivot_root and the others in the runtime's
/// namespaces, where the host path resolves.
fn bundle_with_hooks(label: &str) -> (Bundle, PathBuf) {
    let mut bundle = Bundle::new(label);
    let log_dir = bundle.path().join("hooks");
    fs::create_dir(&log_dir).expect("create the hooks' directory");
    bundle.bind_mount(&log_dir, "/hooks");
    for kind in LIFECYCLE {
        let dir = if kind == "startContainer" {
            "/hooks".to_string()
        } else {
            log_dir.display().to_string()
        };
        let script = format!("echo {kind} >> {dir}/order && cat > {dir}/{kind}.json");
        bundle.hook(
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", script]}),
        );
    }
    bundle.args(&["true"]);
    (bundle, log_dir)
}

fn order(log_dir: &Path) -> Vec<String> {
    fs::read_to_string(log_dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Each hook kind with the state it read on stdin, once every kind has run exactly once.
#[track_caller]
fn states(log_dir: &Path) -> Vec<(&'static str, Value)> {
    let mut ran = order(log_dir);
    ran.sort_unstable();
    let mut expected = LIFECYCLE.map(str::to_string).to_vec();
    expected.sort_unstable();
    assert_eq!(ran, expected, "every hook should run once");
    LIFECYCLE
        .iter()
        .map(|&kind| {
            let path = log_dir.join(format!("{kind}.json"));
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let state = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{kind} got no state JSON ({e}): {text:.200}"));
            (kind, state)
        })
        .collect()
}

#[test]
fn every_hook_gets_the_container_state_on_stdin() {
    let (bundle, log_dir) = bundle_with_hooks("hooks-state");
    let runtime = Runtime::new();
    let id = runtime.new_id("hooks-state");

    let pid = runtime.create_and_start(&id, &bundle);
    runtime.wait_status(&id, "stopped", WAIT);
    runtime.delete(&id).ok("delete");

    for (kind, state) in states(&log_dir) {
        assert_eq!(state["id"], id.as_str(), "{kind}: {state}");
        assert_eq!(
            state["bundle"],
            bundle.path().to_str().expect("a UTF-8 bundle path"),
            "{kind}: {state}"
        );
        // Hooks in the runtime's namespaces see the init by its host pid.
        if ["prestart", "createRuntime", "poststart"].contains(&kind) {
            assert_eq!(state["pid"], pid, "{kind}: {state}");
        }
    }
}

#[test]
fn hooks_run_in_lifecycle_order() {
    let (bundle, log_dir) = bundle_with_hooks("hooks-order");
    let runtime = Runtime::new();
    let id = runtime.new_id("hooks-order");

    runtime.create(&id, &bundle).ok("create");
    assert_eq!(
        order(&log_dir),
        LIFECYCLE[..3],
        "create runs the creation hooks only"
    );
    runtime.start(&id).ok("start");
    runtime.wait_status(&id, "stopped", WAIT);
    assert_eq!(
        order(&log_dir),
        LIFECYCLE[..5],
        "start runs startContainer, then poststart"
    );
    runtime.delete(&id).ok("delete");
    assert_eq!(order(&log_dir), LIFECYCLE, "delete runs poststop");
}

#[test]
fn large_annotations_reach_every_hook() {
    let (mut bundle, log_dir) = bundle_with_hooks("hooks-annotations");
    // Larger than any fixed message buffer between the runtime and the init.
    let big = "a".repeat(200 * 1024);
    bundle.edit(|c| c["annotations"] = json!({ "org.example.big": big }));
    let runtime = Runtime::new();
    let id = runtime.new_id("hooks-annotations");

    runtime.create_and_start(&id, &bundle);
    runtime.wait_status(&id, "stopped", WAIT);
    runtime.delete(&id).ok("delete");

    for (kind, state) in states(&log_dir) {
        assert_eq!(
            state["annotations"]["org.example.big"]
                .as_str()
                .map(str::len),
            Some(big.len()),
            "{kind}: the annotation should arrive whole"
        );
    }
}

#[test]
fn run_runs_the_hooks_in_lifecycle_order() {
    // With hooks of the start stage, `run` starts through the exec fifo as `start` does;
    // without them the init starts at once. The other hooks run the same either way.
    for start_hooks in [false, true] {
        let (mut bundle, log_dir) = bundle_with_hooks("hooks-run");
        let mut expected = LIFECYCLE.to_vec();
        if !start_hooks {
            bundle.edit(|c| {
                let hooks = c["hooks"].as_object_mut().expect("hooks");
                hooks.remove("startContainer");
                hooks.remove("poststart");
            });
            expected.retain(|k| !["startContainer", "poststart"].contains(k));
        }
        let runtime = Runtime::new();
        let id = runtime.new_id("hooks-run");

        runtime.run(&id, &bundle).ok("run");

        assert_eq!(order(&log_dir), expected, "start hooks: {start_hooks}");
    }
}
