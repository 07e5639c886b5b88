//! ECS services as their users drive them: create-service, update-service, delete-service,
//! describe-services and list-tasks --service-name against a real daemon, its supervisors
//! and the kernel; tasks killed from outside or failing their health checks, rolling
//! deployments, the circuit breaker, and an agent killed in the middle of a deployment.

use std::thread;
use std::time::{Duration, Instant};

use berth_tests::Agent;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Long enough for a few tasks to start or stop on a loaded two-core host.
const TIMEOUT: Duration = Duration::from_secs(40);

/// Sleeps until SIGTERM, then exits 0 at once.
const SLEEPER: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

/// A task definition `family` of one busybox container `app` running `sh -c script`.
fn definition(family: &str, script: &str) -> Value {
    json!({
        "family": family,
        "networkMode": "host",
        "containerDefinitions": [{
            "name": "app",
            "image": "busybox:latest",
            "essential": true,
            "memory": 32,
            "command": ["sh", "-c", script],
        }],
    })
}

fn revision_of(arn: &Value) -> String {
    let arn = arn.as_str().unwrap_or_default();
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

fn messages(service: &Value) -> Vec<String> {
    service["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn create(agent: &Agent, name: &str, definition: &str, count: u32, config: Option<&str>) -> Value {
    let count = count.to_string();
    let mut args = vec![
        "create-service",
        "--service-name",
        name,
        "--task-definition",
        definition,
        "--desired-count",
        &count,
    ];
    if let Some(c) = config {
        args.extend(["--deployment-configuration", c]);
    }
    agent.json(&args)["service"].clone()
}

fn update(agent: &Agent, name: &str, args: &[&str]) -> Value {
    let mut all = vec!["update-service", "--service", name];
    all.extend_from_slice(args);
    agent.json(&all)["service"].clone()
}

#[test]
fn a_service_keeps_its_tasks_running_scales_and_is_deleted() {
    let agent = Agent::start();
    agent.register(&definition("svc-keep", SLEEPER));
    let created = create(&agent, "keep", "svc-keep", 3, None);
    assert_eq!(
        created["serviceArn"],
        "arn:aws:ecs:local:000000000000:service/default/keep"
    );
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["desiredCount"], 3);
    assert_eq!(
        created["deploymentConfiguration"],
        json!({"maximumPercent": 200, "minimumHealthyPercent": 100,
               "deploymentCircuitBreaker": {"enable": false, "rollback": false}})
    );
    let deployment = created["deployments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(deployment.starts_with("ecs-svc/"), "{created:#}");

    let service = agent.wait_steady("keep", 3, TIMEOUT);
    assert_eq!(revision_of(&service["taskDefinition"]), "svc-keep:1");
    let listed = agent.json(&["list-services"]);
    assert_eq!(listed["serviceArns"], json!([created["serviceArn"]]));

    // The service's tasks, and only those, are listed with --service-name.
    let loner = agent.run_task("svc-keep");
    let tasks = agent.service_tasks("keep", "RUNNING");
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    assert!(!tasks.contains(&loner));
    for id in &tasks {
        let task = agent.describe(id);
        assert_eq!(task["startedBy"], deployment.as_str());
        assert_eq!(task["group"], "service:keep");
        assert_eq!(task["lastStatus"], "RUNNING");
    }

    // A container killed from outside: its task stops and another takes its place.
    let victim = tasks[0].clone();
    let pid = agent.container_pid(&victim, "app");
    let killed = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill the container's process");
    let stopped = agent.wait_status(&victim, "STOPPED", TIMEOUT);
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");
    let service = agent.wait_service("keep", "back to 3 running", TIMEOUT, |s| {
        s["runningCount"] == 3
    });
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(15), "replaced after {took:?}");
    let now_running = agent.service_tasks("keep", "RUNNING");
    assert_eq!(now_running.len(), 3, "{now_running:?}");
    assert!(!now_running.contains(&victim));
    let replacement = now_running
        .iter()
        .find(|id| !tasks.contains(id))
        .expect("a replacement task");
    assert!(
        messages(&service)
            .iter()
            .any(|m| m == &format!("(service keep) has started 1 tasks: (task {replacement}).")),
        "{:#?}",
        messages(&service)
    );

    // Events have timestamps, newest first.
    let times: Vec<f64> = service["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["createdAt"].as_f64().expect("createdAt is epoch seconds"))
        .collect();
    assert!(times.len() >= 3, "{service:#}");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(times[0] > 1.7e9, "{times:?}");

    // Scale out, then in.
    update(&agent, "keep", &["--desired-count", "5"]);
    agent.wait_steady("keep", 5, TIMEOUT);
    assert_eq!(agent.service_tasks("keep", "RUNNING").len(), 5);
    update(&agent, "keep", &["--desired-count", "1"]);
    let service = agent.wait_service("keep", "scaled to 1", TIMEOUT, |s| {
        s["runningCount"] == 1 && s["pendingCount"] == 0
    });
    assert!(
        messages(&service)
            .iter()
            .any(|m| m.starts_with("(service keep) has stopped 4 running tasks:")),
        "{:#?}",
        messages(&service)
    );
    let left = agent.service_tasks("keep", "RUNNING");
    assert_eq!(left.len(), 1, "{left:?}");
    for id in agent.service_tasks("keep", "STOPPED") {
        if id == victim {
            continue;
        }
        let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
        assert_eq!(task["stopCode"], "ServiceSchedulerInitiated", "{task:#}");
    }

    // Deleting a service that still has tasks to run is refused, as ECS refuses it.
    let refused = agent.berth(["delete-service", "--service", "keep"]);
    refused.assert_error_naming("The service cannot be stopped while it is scaled above 0.");
    assert_eq!(agent.describe_service("keep")["status"], "ACTIVE");
    assert_eq!(agent.service_tasks("keep", "RUNNING"), left);

    // --force deletes it, its tasks stop, and it is listed no more.
    let deleted = agent.json(&["delete-service", "--service", "keep", "--force"]);
    assert_eq!(deleted["service"]["status"], "DRAINING");
    agent.wait_service("keep", "INACTIVE", TIMEOUT, |s| s["status"] == "INACTIVE");
    agent.wait_status(&left[0], "STOPPED", TIMEOUT);
    assert_eq!(agent.json(&["list-services"])["serviceArns"], json!([]));
    assert_eq!(agent.describe(&loner)["lastStatus"], "RUNNING");
}

#[test]
fn describe_services_reports_unknown_names_and_bad_input_leaves_nothing() {
    let agent = Agent::start();
    agent.register(&definition("svc-bad", SLEEPER));
    let described = agent.json(&["describe-services", "--services", "nope"]);
    assert_eq!(described["services"], json!([]));
    assert_eq!(
        described["failures"],
        json!([{"arn": "arn:aws:ecs:local:000000000000:service/default/nope", "reason": "MISSING"}])
    );

    let out = agent.berth([
        "create-service",
        "--service-name",
        "bad",
        "--task-definition",
        "svc-bad",
        "--desired-count",
        "1",
        "--deployment-configuration",
        "minimumHealthyPercent=150",
    ]);
    out.assert_error_naming("deploymentConfiguration.minimumHealthyPercent");
    let out = agent.berth([
        "create-service",
        "--service-name",
        "bad",
        "--task-definition",
        "svc-missing:4",
        "--desired-count",
        "1",
    ]);
    out.assert_error_naming("svc-missing:4");
    let out = agent.berth([
        "update-service",
        "--service",
        "nope",
        "--desired-count",
        "1",
    ]);
    out.assert_error_naming("Service not found");
    let listed = agent.json(&["list-services"]);
    assert_eq!(listed["serviceArns"], json!([]));
    assert!(agent.json(&["list-tasks"])["taskArns"] == json!([]));

    // The same name twice is refused while the first is there.
    create(&agent, "twice", "svc-bad", 0, None);
    let out = agent.berth([
        "create-service",
        "--service-name",
        "twice",
        "--task-definition",
        "svc-bad",
        "--desired-count",
        "0",
    ]);
    out.assert_error_naming("not idempotent");
}

#[test]
fn a_new_revision_rolls_out_without_going_under_minimum_healthy_percent() {
    let agent = Agent::start();
    agent.register(&definition("svc-roll", SLEEPER));
    // Of 3 tasks: at least 2 healthy (50 % rounded up), at most 4 in all (150 % rounded
    // down).
    create(
        &agent,
        "roll",
        "svc-roll",
        3,
        Some("minimumHealthyPercent=50,maximumPercent=150"),
    );
    agent.wait_steady("roll", 3, TIMEOUT);
    let old = agent.service_tasks("roll", "RUNNING");

    agent.register(&definition("svc-roll", &format!("echo v2; {SLEEPER}")));
    let updated = update(&agent, "roll", &["--task-definition", "svc-roll:2"]);
    let deployments = updated["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(deployments.len(), 2, "{updated:#}");
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(deployments[1]["status"], "ACTIVE");
    assert_eq!(revision_of(&deployments[0]["taskDefinition"]), "svc-roll:2");

    let mut lowest = u64::MAX;
    let mut highest = 0;
    let service = agent.wait_service("roll", "rolled out", TIMEOUT, |s| {
        let running = s["runningCount"].as_u64().unwrap_or(0);
        let all = running + s["pendingCount"].as_u64().unwrap_or(0);
        lowest = lowest.min(running);
        highest = highest.max(all);
        s["deployments"].as_array().is_some_and(|d| d.len() == 1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
            && s["runningCount"] == 3
    });
    assert!(lowest >= 2, "runningCount fell to {lowest}");
    assert!(highest <= 4, "{highest} tasks at once");
    assert_eq!(revision_of(&service["taskDefinition"]), "svc-roll:2");
    let id = deployments[0]["id"].as_str().unwrap_or_default();
    assert!(
        messages(&service).contains(&format!(
            "(service roll) (deployment {id}) deployment completed."
        )),
        "{:#?}",
        messages(&service)
    );
    let now = agent.service_tasks("roll", "RUNNING");
    assert_eq!(now.len(), 3);
    for task in &now {
        assert!(!old.contains(task));
        assert_eq!(
            revision_of(&agent.describe(task)["taskDefinitionArn"]),
            "svc-roll:2"
        );
    }
    for task in &old {
        let task = agent.wait_status(task, "STOPPED", TIMEOUT);
        assert_eq!(task["stopCode"], "ServiceSchedulerInitiated");
    }
    // A forced deployment replaces the tasks with the same revision.
    update(&agent, "roll", &["--force-new-deployment"]);
    agent.wait_service("roll", "redeployed", TIMEOUT, |s| {
        s["deployments"].as_array().is_some_and(|d| d.len() == 1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
            && s["runningCount"] == 3
            && s["pendingCount"] == 0
            && s["deployments"][0]["id"] != deployments[0]["id"]
    });
    let again = agent.service_tasks("roll", "RUNNING");
    assert!(again.iter().all(|t| !now.contains(t)), "{again:?} {now:?}");
}

#[test]
fn a_revision_that_exits_at_once_trips_the_circuit_breaker_and_rolls_back() {
    let agent = Agent::start();
    agent.register(&definition("svc-cb", SLEEPER));
    create(
        &agent,
        "cb",
        "svc-cb",
        2,
        Some("deploymentCircuitBreaker={enable=true,rollback=true}"),
    );
    let steady = agent.wait_steady("cb", 2, TIMEOUT);
    let good = steady["deployments"][0]["id"].clone();
    let old = agent.service_tasks("cb", "RUNNING");

    agent.register(&definition("svc-cb", "exit 1"));
    let updated = update(&agent, "cb", &["--task-definition", "svc-cb:2"]);
    let bad = updated["deployments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Rolled back: the good deployment is primary again and the failed one is gone.
    let service = agent.wait_service("cb", "rolled back", TIMEOUT, |s| {
        s["deployments"][0]["id"] == good
            && s["deployments"].as_array().is_some_and(|d| d.len() == 1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
            && s["runningCount"] == 2
    });
    assert_eq!(revision_of(&service["taskDefinition"]), "svc-cb:1");
    let events = messages(&service);
    let good = good.as_str().unwrap_or_default();
    for expected in [
        format!("(service cb) (deployment {bad}) deployment failed: tasks failed to start."),
        format!("(service cb) (deployment {bad}) deployment rolled back to {good}."),
        format!("(service cb) (deployment {good}) deployment completed."),
    ] {
        assert!(
            events.contains(&expected),
            "{expected:?} not in {events:#?}"
        );
    }
    // The failure threshold of 2 tasks is 3 failed tasks; those exited on their own.
    let failed = agent.json(&[
        "list-tasks",
        "--started-by",
        &bad,
        "--desired-status",
        "STOPPED",
    ]);
    let failed = failed["taskArns"].as_array().cloned().unwrap_or_default();
    assert!(failed.len() >= 3, "{failed:?}");
    let exited = failed
        .iter()
        .filter_map(|arn| arn.as_str())
        .filter(|arn| agent.describe(arn)["stopCode"] == "EssentialContainerExited")
        .count();
    assert!(exited >= 3, "{failed:?}");
    // The tasks of the good revision ran throughout.
    assert_eq!(agent.service_tasks("cb", "RUNNING"), old);
}

#[test]
fn an_agent_killed_during_a_deployment_finishes_it_after_a_restart() {
    let mut agent = Agent::start();
    agent.register(&definition("svc-restart", SLEEPER));
    create(&agent, "restart", "svc-restart", 3, None);
    agent.wait_steady("restart", 3, TIMEOUT);
    let old = agent.service_tasks("restart", "RUNNING");

    agent.register(&definition("svc-restart", &format!("echo v2; {SLEEPER}")));
    let updated = update(&agent, "restart", &["--task-definition", "svc-restart:2"]);
    let new_deployment = updated["deployments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Kill it once the new deployment has tasks but before it is done.
    agent.wait_service("restart", "rolling", TIMEOUT, |s| {
        s["deployments"][0]["pendingCount"].as_u64().unwrap_or(0)
            + s["deployments"][0]["runningCount"].as_u64().unwrap_or(0)
            > 0
    });
    agent.kill_agent();
    thread::sleep(Duration::from_millis(500));
    agent.restart();

    let service = agent.wait_steady("restart", 3, TIMEOUT);
    assert_eq!(service["deployments"][0]["id"], new_deployment.as_str());
    assert_eq!(revision_of(&service["taskDefinition"]), "svc-restart:2");
    let running = agent.service_tasks("restart", "RUNNING");
    assert_eq!(running.len(), 3, "{running:?}");
    // No duplicates: the deployment started 3 tasks in all, across both agents.
    let started_by = |status: &str| {
        agent.json(&[
            "list-tasks",
            "--started-by",
            &new_deployment,
            "--desired-status",
            status,
        ])["taskArns"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(started_by("RUNNING"), 3);
    for task in &old {
        agent.wait_status(task, "STOPPED", TIMEOUT);
    }
}

#[test]
fn tasks_that_cannot_start_are_throttled() {
    let agent = Agent::start();
    agent.register(&json!({
        "family": "svc-throttle",
        "networkMode": "host",
        "containerDefinitions": [{
            "name": "app",
            "image": "busybox:latest",
            "essential": true,
            "memory": 32,
            "command": ["/no/such/program"],
        }],
    }));
    create(&agent, "throttle", "svc-throttle", 1, None);
    let throttled = "(service throttle) is unable to consistently start tasks successfully.";
    agent.wait_service("throttle", "throttled", TIMEOUT, |s| {
        messages(s).iter().any(|m| m == throttled)
    });
    let tried = || {
        agent.service_tasks("throttle", "STOPPED").len()
            + agent.service_tasks("throttle", "RUNNING").len()
    };
    let before = tried();
    assert!(before >= 3, "{before} tasks tried");
    // The next try waits 10 s after the third failure, then longer.
    thread::sleep(Duration::from_secs(5));
    assert_eq!(tried(), before);
    let task = agent.describe(&agent.service_tasks("throttle", "STOPPED")[0]);
    assert_eq!(task["lastStatus"], "STOPPED");
    assert!(task.get("startedAt").is_none(), "{task:#}");
}

#[test]
fn an_unhealthy_service_task_is_replaced() {
    let agent = Agent::start();
    // Healthy while /tmp/ok exists; every task's container makes it at start, and the
    // test removes it in the first task only.
    let mut healthy = definition("svc-health", &format!("touch /tmp/ok; {SLEEPER}"));
    healthy["containerDefinitions"][0]["healthCheck"] = json!({
        "command": ["CMD-SHELL", "test -f /tmp/ok"],
        "interval": 5,
        "timeout": 2,
        "retries": 2,
    });
    agent.register(&healthy);
    create(&agent, "health", "svc-health", 1, None);
    // With a health check, the deployment completes only once the task is HEALTHY.
    agent.wait_steady("health", 1, TIMEOUT);
    let first = agent.service_tasks("health", "RUNNING");
    assert_eq!(first.len(), 1, "{first:?}");
    let victim = first[0].clone();
    assert_eq!(agent.describe(&victim)["healthStatus"], "HEALTHY");

    agent
        .berth(["exec", &victim, "--", "rm", "/tmp/ok"])
        .ok("exec rm /tmp/ok");
    let removed = Instant::now();
    // UNHEALTHY after `retries` failed checks, an interval apart; the scheduler then
    // stops the task at once, which keeps its verdict.
    let mut unhealthy_at = None;
    let deadline = removed + TIMEOUT;
    let stopped = loop {
        let task = agent.describe(&victim);
        if unhealthy_at.is_none()
            && (task["healthStatus"] == "UNHEALTHY" || task["lastStatus"] == "STOPPED")
        {
            unhealthy_at = Some(removed.elapsed());
        }
        if task["lastStatus"] == "STOPPED" {
            break task;
        }
        assert!(
            Instant::now() < deadline,
            "task {victim} not stopped after {TIMEOUT:?}: {task:#}\nagent log:\n{}",
            agent.daemon_log()
        );
        thread::sleep(Duration::from_millis(100));
    };
    let unhealthy_at = unhealthy_at.unwrap_or_default();
    assert!(
        unhealthy_at >= Duration::from_secs(4) && unhealthy_at < Duration::from_secs(20),
        "UNHEALTHY {unhealthy_at:?} after the file went"
    );
    assert_eq!(stopped["healthStatus"], "UNHEALTHY", "{stopped:#}");
    assert_eq!(
        stopped["stopCode"], "ServiceSchedulerInitiated",
        "{stopped:#}"
    );
    assert_eq!(
        stopped["stoppedReason"], "Task failed container health checks",
        "{stopped:#}"
    );

    // A replacement takes its place and turns healthy: its own container made /tmp/ok.
    agent.wait_service("health", "back to 1 running", TIMEOUT, |s| {
        s["runningCount"] == 1 && s["pendingCount"] == 0
    });
    let now_running = agent.service_tasks("health", "RUNNING");
    assert_eq!(now_running.len(), 1, "{now_running:?}");
    let replacement = now_running[0].clone();
    assert_ne!(replacement, victim);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let task = agent.describe(&replacement);
        if task["healthStatus"] == "HEALTHY" {
            assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
            break;
        }
        assert!(
            Instant::now() < deadline && task["healthStatus"] != "UNHEALTHY",
            "replacement {replacement} not HEALTHY: {task:#}\nagent log:\n{}",
            agent.daemon_log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let service = agent.wait_steady("health", 1, TIMEOUT);
    let events = messages(&service);
    for expected in [
        format!("(service health) (task {victim}) failed container health checks."),
        format!("(service health) has started 1 tasks: (task {replacement})."),
    ] {
        assert!(
            events.contains(&expected),
            "{expected:?} not in {events:#?}"
        );
    }
}
