//! ECS container restart policies: a container that exits after running for its
//! restartAttemptPeriod is restarted in place, in the same rootfs, logging to the same log;
//! an ignored exit code, an exit before the period and an exit while the task stops are
//! not restarted. ECS allows no period under 60 s, so the main test takes a minute.

use std::thread;
use std::time::{Duration, Instant};

use berth_tests::Agent;
use berth_tests::agent::{TIMEOUT, container, host_task, sh};
use serde_json::{Value, json};

/// The shortest restartAttemptPeriod ECS accepts.
const PERIOD: u64 = 60;

fn restarting(mut c: Value, policy: Value) -> Value {
    c["restartPolicy"] = policy;
    c
}

/// A container's pid as its supervisor last wrote it, and its restartCount.
fn pid_and_restarts(agent: &Agent, id: &str, name: &str) -> (Option<i64>, u64) {
    let status = agent.status_file(id);
    let c = &status["containers"][name];
    (c["pid"].as_i64(), c["restart_count"].as_u64().unwrap_or(0))
}

#[test]
fn a_container_is_restarted_in_place_only_as_its_policy_says() {
    let agent = Agent::start();
    let policy = json!({"enabled": true, "restartAttemptPeriod": PERIOD});
    // The first run marks its rootfs, runs past the period and fails; the second finds
    // the mark (the rootfs is kept), shows its memory limit (its cgroup was made again)
    // and fails at once, too early to be restarted again: the task stops.
    let app = restarting(
        sh(
            "app",
            &format!(
                "if [ -e /ran-once ]; then echo second run; \
                 cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; \
                 sleep 5; exit 5; fi; \
                 touch /ran-once; echo first run; sleep {}; exit 3",
                PERIOD + 1
            ),
        ),
        policy.clone(),
    );
    let mut done = restarting(
        sh("done", &format!("sleep {}; exit 0", PERIOD + 1)),
        json!({"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": PERIOD}),
    );
    done["essential"] = json!(false);
    let mut quick = restarting(sh("quick", "exit 7"), policy.clone());
    quick["essential"] = json!(false);
    // Runs past the period, then gets the task's SIGTERM when app stops it.
    let mut server = restarting(
        sh(
            "server",
            "trap 'exit 143' TERM; while true; do sleep 0.1; done",
        ),
        policy,
    );
    server["essential"] = json!(false);
    agent.register(&host_task("restarts", vec![app, done, quick, server]));
    let id = agent.run_task("restarts");

    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    let first_pid = pid_and_restarts(&agent, &id, "app").0.expect("app's pid");
    // Exiting at once is not restarted: the container has not run for the period.
    let deadline = Instant::now() + TIMEOUT;
    while container(&agent.describe(&id), "quick")["lastStatus"] != "STOPPED" {
        assert!(Instant::now() < deadline, "quick never stopped: {task:#}");
        thread::sleep(Duration::from_millis(100));
    }

    // After the period, app runs again: a new process, restartCount 1, the task RUNNING.
    let deadline = Instant::now() + Duration::from_secs(PERIOD) + TIMEOUT;
    let second_pid = loop {
        let (pid, restarts) = pid_and_restarts(&agent, &id, "app");
        if restarts == 1 {
            break pid;
        }
        assert_eq!(restarts, 0);
        let task = agent.describe(&id);
        assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
        assert_eq!(container(&task, "app")["lastStatus"], "RUNNING", "{task:#}");
        assert!(Instant::now() < deadline, "app never restarted: {task:#}");
        thread::sleep(Duration::from_millis(100));
    };
    let during = agent.describe(&id);
    assert_eq!(during["lastStatus"], "RUNNING", "{during:#}");
    assert_eq!(container(&during, "app")["restartCount"], 1, "{during:#}");
    let second_pid = second_pid.expect("the restarted app's pid");
    assert_ne!(second_pid, first_pid, "the same process after a restart");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["stopCode"], "EssentialContainerExited", "{task:#}");
    let app = container(&task, "app");
    assert_eq!(app["exitCode"], 5, "the second run's exit: {task:#}");
    assert_eq!(app["restartCount"], 1, "{task:#}");
    // The ignored code, the early exit and the exit on the task's stop: no restart.
    for (name, code) in [("done", 0), ("quick", 7), ("server", 143)] {
        let c = container(&task, name);
        assert_eq!(c["exitCode"], code, "{name}: {task:#}");
        assert!(
            c.get("restartCount").is_none(),
            "{name} restarted: {task:#}"
        );
    }

    let logs = agent.berth(["logs", &id, "--container", "app"]).ok("logs");
    let first = logs.stdout.find("first run");
    let second = logs.stdout.find("second run");
    assert!(
        first.is_some() && second.is_some() && first < second,
        "both runs in one log, in order: {}",
        logs.stdout
    );
    assert!(
        logs.stdout.contains(&(64u64 << 20).to_string()),
        "the restarted container's 64 MiB limit: {}",
        logs.stdout
    );
    let table = agent.berth(["describe-tasks", &id]).ok("describe-tasks");
    assert!(
        table.stdout.contains("app:STOPPED exit 5 (restarted once)"),
        "{}",
        table.stdout
    );
    agent.assert_nothing_left(&id);
}

#[test]
fn bad_restart_policies_are_refused_naming_the_field() {
    let agent = Agent::start();
    let p = "containerDefinitions[0].restartPolicy";
    for (policy, field) in [
        (json!({"restartAttemptPeriod": 120}), "enabled"),
        (
            json!({"enabled": true, "restartAttemptPeriod": 59}),
            "restartAttemptPeriod",
        ),
        (
            json!({"enabled": true, "restartAttemptPeriod": 1801}),
            "restartAttemptPeriod",
        ),
        (
            json!({"enabled": true, "ignoredExitCodes": (0..51).collect::<Vec<i32>>()}),
            "ignoredExitCodes",
        ),
    ] {
        let definition = host_task("refused", vec![restarting(sh("app", "true"), policy)]);
        let file = agent.file("refused.json", &definition.to_string());
        let out = agent.berth(["register-task-definition".as_ref(), file.as_os_str()]);
        out.assert_error_naming(&format!("{p}.{field}"));
    }
    let families = agent.json(&["list-task-definition-families", "--status", "ALL"]);
    assert_eq!(families["families"], json!([]), "{families:#}");

    // The bounds are accepted, and the policy is kept as given.
    let policy =
        json!({"enabled": true, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 1800});
    let registered = agent.register(&host_task(
        "bounds",
        vec![restarting(sh("app", "true"), policy.clone())],
    ));
    assert_eq!(
        registered["containerDefinitions"][0]["restartPolicy"],
        policy
    );
}
