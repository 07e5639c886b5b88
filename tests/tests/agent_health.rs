//! Container health checks as ECS users rely on them: healthCheck commands run inside the
//! container, healthStatus of containers and tasks in describe-tasks, dependsOn HEALTHY,
//! and what is refused at registration.

use std::thread;
use std::time::{Duration, Instant};

use berth_tests::Agent;
use berth_tests::agent::{
    TASK_CGROUP_ROOT, TIMEOUT, UNTIL_TERM, command_line, container, host_task, processes_in_cgroup,
    sh, zombie_children,
};
use serde_json::{Value, json};

/// `c` with a healthCheck of `command`, every 5 s (the shortest ECS allows).
fn checked(mut c: Value, command: Value, retries: u32) -> Value {
    c["healthCheck"] = json!({
        "command": command,
        "interval": 5,
        "timeout": 2,
        "retries": retries,
    });
    c
}

/// Polls describe-tasks until `done` holds for the task, handing every sighting to
/// `seen` first; returns the task and when it was first seen so.
#[track_caller]
fn watch(
    agent: &Agent,
    id: &str,
    timeout: Duration,
    what: &str,
    mut seen: impl FnMut(&Value),
    done: impl Fn(&Value) -> bool,
) -> (Value, Instant) {
    let deadline = Instant::now() + timeout;
    loop {
        let task = agent.describe(id);
        let at = Instant::now();
        seen(&task);
        if done(&task) {
            return (task, at);
        }
        assert!(
            Instant::now() < deadline,
            "task {id}: {what} not seen after {timeout:?}: {task:#}\nagent log:\n{}",
            agent.daemon_log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn health_of(task: &Value, name: &str) -> String {
    container(task, name)["healthStatus"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn checks_that_pass_make_the_containers_and_the_task_healthy() {
    let agent = Agent::start();
    // Each check passes only where the container's process is: its environment, its
    // files (the marker exists in no other filesystem), its user and working directory.
    let marker = format!("/tmp/{}", berth_tests::unique_name("inside"));
    let mut web = checked(
        sh("web", &format!("touch {marker}; {UNTIL_TERM}")),
        json!([
            "CMD-SHELL",
            format!("test \"$FLAVOUR\" = mint && test -f {marker} && test -d /proc/1")
        ]),
        3,
    );
    web["environment"] = json!([{"name": "FLAVOUR", "value": "mint"}]);
    let mut worker = checked(
        sh("worker", UNTIL_TERM),
        json!([
            "CMD",
            "sh",
            "-c",
            "test $(id -u) = 65534 && test $(pwd) = /var/tmp"
        ]),
        3,
    );
    worker["user"] = json!("65534");
    worker["workingDirectory"] = json!("/var/tmp");
    let plain = sh("plain", UNTIL_TERM);
    agent.register(&host_task("healthy", vec![web, worker, plain]));
    let id = agent.run_task("healthy");
    assert!(
        !std::path::Path::new(&marker).exists(),
        "{marker} exists on the host"
    );

    let (task, _) = watch(
        &agent,
        &id,
        TIMEOUT,
        "healthStatus HEALTHY",
        |task| {
            assert_ne!(task["healthStatus"], "UNHEALTHY", "{task:#}");
        },
        |task| task["healthStatus"] == "HEALTHY",
    );
    assert_eq!(health_of(&task, "web"), "HEALTHY", "{task:#}");
    assert_eq!(health_of(&task, "worker"), "HEALTHY", "{task:#}");
    // Without a check there is no verdict, and the task does not wait for one.
    assert_eq!(health_of(&task, "plain"), "UNKNOWN", "{task:#}");
    assert_eq!(task["lastStatus"], "RUNNING");

    let table = agent.berth(["describe-tasks", &id]).ok("describe-tasks");
    assert!(table.stdout.contains("HEALTH"), "{}", table.stdout);
    assert!(
        table.stdout.contains("web:RUNNING HEALTHY"),
        "{}",
        table.stdout
    );

    // The check processes were waited for: nothing of them lingers under the supervisor.
    let supervisor = agent.supervisor_pid(&id);
    assert_eq!(zombie_children(supervisor), Vec::<i32>::new());
    agent.stop_task(&id, "test over");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
    agent.assert_nothing_left(&id);
}

#[test]
fn a_container_turns_unhealthy_after_retries_failed_checks_and_the_task_keeps_running() {
    let agent = Agent::start();
    let retries = 2;
    let web = checked(
        sh(
            "web",
            &format!("touch /tmp/ok; sleep 6; rm /tmp/ok; {UNTIL_TERM}"),
        ),
        json!(["CMD", "test", "-f", "/tmp/ok"]),
        retries,
    );
    agent.register(&host_task("turning", vec![web]));
    let id = agent.run_task("turning");

    let (_, healthy_at) = watch(
        &agent,
        &id,
        TIMEOUT,
        "HEALTHY",
        |_| {},
        |task| health_of(task, "web") == "HEALTHY",
    );
    let (task, unhealthy_at) = watch(
        &agent,
        &id,
        TIMEOUT + Duration::from_secs(10),
        "UNHEALTHY",
        |task| assert_eq!(task["lastStatus"], "RUNNING", "{task:#}"),
        |task| health_of(task, "web") == "UNHEALTHY",
    );
    assert_eq!(task["healthStatus"], "UNHEALTHY", "{task:#}");
    // The first check passes at 5 s, the file goes at 6 s, and the next two checks
    // (10 s and 15 s) fail: retries x interval after the healthy verdict.
    let took = unhealthy_at.duration_since(healthy_at);
    let expected = Duration::from_secs(5 * u64::from(retries));
    assert!(
        took + Duration::from_secs(2) >= expected && took <= expected + Duration::from_secs(5),
        "UNHEALTHY {took:?} after HEALTHY, expected about {expected:?}"
    );

    // A standalone task is not stopped for being unhealthy.
    thread::sleep(Duration::from_secs(3));
    let task = agent.describe(&id);
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert_eq!(task["desiredStatus"], "RUNNING", "{task:#}");
    assert_eq!(task["healthStatus"], "UNHEALTHY", "{task:#}");
    assert_eq!(container(&task, "web")["lastStatus"], "RUNNING");
}

#[test]
fn a_check_past_its_timeout_fails_and_leaves_no_process_behind() {
    let agent = Agent::start();
    // The check would pass if it were let finish; its shell forks the sleep, so killing
    // only the shell would leave the sleep running in the container.
    let web = checked(
        sh("web", UNTIL_TERM),
        json!(["CMD-SHELL", "sleep 30; true"]),
        1,
    );
    agent.register(&host_task("slow-check", vec![web]));
    let id = agent.run_task("slow-check");
    let started = Instant::now();

    let (task, unhealthy_at) = watch(
        &agent,
        &id,
        TIMEOUT,
        "UNHEALTHY",
        |task| assert_ne!(health_of(task, "web"), "HEALTHY", "{task:#}"),
        |task| health_of(task, "web") == "UNHEALTHY",
    );
    assert_eq!(task["healthStatus"], "UNHEALTHY");
    // The first check starts after the interval (5 s) and is killed at its timeout (2 s).
    let took = unhealthy_at.duration_since(started);
    assert!(
        took >= Duration::from_secs(6),
        "UNHEALTHY after {took:?}: before the check's timeout"
    );

    // Two more checks start and time out; each time out takes its sleep with it.
    thread::sleep(Duration::from_secs(9));
    let cgroup = format!("{TASK_CGROUP_ROOT}/{id}");
    let sleeps: Vec<String> = processes_in_cgroup(&cgroup)
        .into_iter()
        .map(command_line)
        .filter(|line| line == "sleep 30")
        .collect();
    assert!(
        sleeps.len() <= 1,
        "timed-out checks left their processes: {sleeps:?}"
    );
    let supervisor = agent.supervisor_pid(&id);
    assert_eq!(zombie_children(supervisor), Vec::<i32>::new());

    agent.stop_task(&id, "test over");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
    agent.assert_nothing_left(&id);
}

#[test]
fn depends_on_healthy_starts_the_container_once_the_other_is_healthy() {
    let agent = Agent::start();
    // The first check (5 s) fails, the second (10 s) passes.
    let db = checked(
        sh("db", &format!("sleep 7; touch /tmp/ready; {UNTIL_TERM}")),
        json!(["CMD", "test", "-f", "/tmp/ready"]),
        3,
    );
    let mut app = sh("app", UNTIL_TERM);
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    app["startTimeout"] = json!(60);
    agent.register(&host_task("ordered", vec![app, db]));
    let id = agent.run_task("ordered");

    let mut db_running_at = None;
    let mut waited_while_unknown = false;
    let (task, app_running_at) = watch(
        &agent,
        &id,
        TIMEOUT + Duration::from_secs(10),
        "app RUNNING",
        |task| {
            let db = container(task, "db");
            let app = container(task, "app");
            if db["lastStatus"] == "RUNNING" {
                db_running_at.get_or_insert_with(Instant::now);
            }
            if app["lastStatus"] != "PENDING" {
                assert_eq!(db["healthStatus"], "HEALTHY", "app started early: {task:#}");
            } else if db["healthStatus"] == "UNKNOWN" && db["lastStatus"] == "RUNNING" {
                waited_while_unknown = true;
            }
        },
        |task| container(task, "app")["lastStatus"] == "RUNNING",
    );
    assert!(waited_while_unknown, "app never seen waiting: {task:#}");
    let db_running_at = db_running_at.expect("db seen RUNNING");
    let waited = app_running_at.duration_since(db_running_at);
    assert!(
        waited >= Duration::from_secs(8),
        "app started {waited:?} after db: before db's second check"
    );
    assert_eq!(task["lastStatus"], "RUNNING");
}

#[test]
fn a_dependency_never_healthy_within_start_timeout_fails_the_task() {
    let agent = Agent::start();
    let db = checked(sh("db", UNTIL_TERM), json!(["CMD", "false"]), 10);
    let mut app = sh("app", "echo started; sleep 100");
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    app["startTimeout"] = json!(8);
    agent.register(&host_task("never-healthy", vec![db, app]));
    let id = agent.run_task("never-healthy");

    let (task, _) = watch(
        &agent,
        &id,
        TIMEOUT + Duration::from_secs(10),
        "STOPPED",
        |task| assert_ne!(container(task, "app")["lastStatus"], "RUNNING", "{task:#}"),
        |task| task["lastStatus"] == "STOPPED",
    );
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task:#}");
    let reason = task["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("\"db\"") && reason.contains("HEALTHY") && reason.contains("startTimeout"),
        "stoppedReason: {reason}"
    );
    let app = container(&task, "app");
    assert_eq!(app["lastStatus"], "STOPPED");
    assert!(app["exitCode"].is_null(), "app ran: {app:#}");
    assert_eq!(app["reason"].as_str(), Some(reason));
    // The task waited the startTimeout out, not less.
    let waited =
        task["stoppingAt"].as_f64().unwrap_or(0.0) - task["createdAt"].as_f64().unwrap_or(0.0);
    assert!(waited >= 8.0, "gave up after {waited} s: {task:#}");
    let logs = agent.berth(["logs", &id, "--container", "app"]);
    assert!(!logs.stdout.contains("started"), "{logs:?}");
    agent.assert_nothing_left(&id);
}

#[test]
fn bad_health_checks_are_refused_naming_the_field() {
    let agent = Agent::start();
    let refuse = |container: Value, field: &str| {
        let def = host_task("refused", vec![container, sh("other", UNTIL_TERM)]);
        let path = agent.file("refused.json", &def.to_string());
        let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
        out.assert_error_naming(field);
    };
    let with = |check: Value| {
        let mut c = sh("web", UNTIL_TERM);
        c["healthCheck"] = check;
        c
    };
    let p = "containerDefinitions[0].healthCheck";
    refuse(
        with(json!({"command": ["curl", "-f", "http://localhost/"]})),
        &format!("{p}.command"),
    );
    refuse(with(json!({"command": ["CMD"]})), &format!("{p}.command"));
    for (field, value) in [
        ("interval", 4),
        ("interval", 301),
        ("timeout", 1),
        ("timeout", 61),
        ("retries", 0),
        ("retries", 11),
        ("startPeriod", -1),
        ("startPeriod", 301),
    ] {
        let mut check = json!({"command": ["CMD", "true"]});
        check[field] = json!(value);
        refuse(with(check), &format!("{p}.{field}"));
    }
    // HEALTHY needs a check on the container depended on; NONE is no check.
    let mut app = sh("web", UNTIL_TERM);
    app["dependsOn"] = json!([{"containerName": "other", "condition": "HEALTHY"}]);
    refuse(
        app.clone(),
        "containerDefinitions[0].dependsOn[0].condition",
    );
    let mut disabled = sh("other", UNTIL_TERM);
    disabled["healthCheck"] = json!({"command": ["NONE"]});
    let def = host_task("refused", vec![app, disabled]);
    let path = agent.file("none.json", &def.to_string());
    let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
    out.assert_error_naming("containerDefinitions[0].dependsOn[0].condition");

    // Nothing was registered; the bounds themselves are accepted.
    let families = agent.json(&["list-task-definition-families", "--status", "ALL"]);
    assert_eq!(families["families"], json!([]), "{families:#}");
    let ok = with(json!({
        "command": ["CMD-SHELL", "true"],
        "interval": 5, "timeout": 60, "retries": 10, "startPeriod": 300,
    }));
    let registered = agent.register(&host_task("bounds", vec![ok]));
    assert_eq!(registered["revision"], 1);
    assert_eq!(
        registered["containerDefinitions"][0]["healthCheck"]["startPeriod"],
        300
    );
}
