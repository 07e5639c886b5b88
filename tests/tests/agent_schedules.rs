//! Scheduled tasks as users drive them: create, list, get, update and delete schedules
//! through the `berth` CLI against a real agent, an at() schedule that runs its task once,
//! schedules that outlive an agent restart, and refused input that changes nothing.

use std::time::Duration;

use berth_tests::Agent;
use berth_tests::agent::task_id;
use serde_json::{Value, json};

/// A one-container task definition that exits at once.
fn brief(family: &str) -> Value {
    json!({
        "family": family,
        "networkMode": "host",
        "containerDefinitions": [{
            "name": "app",
            "image": "busybox:latest",
            "essential": true,
            "memory": 32,
            "command": ["sh", "-c", "echo fired"],
        }],
    })
}

fn schedule_names(agent: &Agent) -> Vec<String> {
    let list = agent.json(&["list-schedules"]);
    list["Schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["Name"].as_str().map(str::to_string))
        .collect()
}

/// Every task (any status) the schedule `name` started, as list-tasks finds them.
fn tasks_started_by(agent: &Agent, name: &str) -> Vec<String> {
    let started_by = format!("schedule/{name}");
    let mut all = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        let list = agent.json(&[
            "list-tasks",
            "--started-by",
            &started_by,
            "--desired-status",
            status,
        ]);
        all.extend(
            list["taskArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string)),
        );
    }
    // A task that stops between the two calls is in both lists.
    all.sort();
    all.dedup();
    all
}

/// The UTC wall clock `secs` from now, as at() takes it.
fn utc_in(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + secs;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{now}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn schedules_are_created_listed_shown_updated_and_deleted() {
    let agent = Agent::start();
    agent.register(&brief("nightly-batch"));

    let created = agent.json(&[
        "create-schedule",
        "--name",
        "nightly",
        "--schedule-expression",
        "cron(30 2 * * ? *)",
        "--task-definition",
        "nightly-batch:1",
        "--count",
        "2",
        "--timezone",
        "Europe/Paris",
    ]);
    assert_eq!(
        created["ScheduleArn"],
        "arn:aws:scheduler:local:000000000000:schedule/default/nightly"
    );
    assert_eq!(created["State"], "ENABLED");
    assert_eq!(created["ScheduleExpressionTimezone"], "Europe/Paris");
    assert_eq!(
        created["Target"]["EcsParameters"],
        json!({"TaskDefinitionArn": "nightly-batch:1", "TaskCount": 2})
    );
    assert_eq!(created["LastInvocationDate"], Value::Null);
    // 02:30 in Paris is 01:30 UTC in winter or 00:30 in summer, within a day from now.
    let next = created["NextInvocationDate"]
        .as_f64()
        .expect("a next firing");
    let now = created["CreationDate"].as_f64().expect("a creation date");
    assert!(next > now && next <= now + 86_400.0, "{created:#}");
    let minute_of_hour = (next as u64 % 3600) / 60;
    assert_eq!(minute_of_hour, 30, "fires at :30 UTC: {created:#}");

    let table = agent.berth(["list-schedules"]).ok("list-schedules");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", table.stdout);
    assert!(
        lines[1].starts_with("nightly ")
            && lines[1].contains("ENABLED")
            && lines[1].contains("cron(30 2 * * ? *)")
            && lines[1].contains("Europe/Paris")
            && lines[1].contains("nightly-batch:1"),
        "{}",
        table.stdout
    );

    let shown = agent.berth(["get-schedule", "--name", "nightly"]).ok("get");
    assert!(
        shown.stdout.contains("state: ENABLED") && shown.stdout.contains("count: 2"),
        "{}",
        shown.stdout
    );
    let json = agent.json(&["get-schedule", "--name", "nightly"]);
    assert_eq!(json["Name"], "nightly");
    assert_eq!(json["NextInvocationDate"], created["NextInvocationDate"]);

    let updated = agent.json(&[
        "update-schedule",
        "--name",
        "nightly",
        "--schedule-expression",
        "rate(5 minutes)",
        "--state",
        "DISABLED",
    ]);
    assert_eq!(updated["State"], "DISABLED");
    assert_eq!(updated["ScheduleExpression"], "rate(5 minutes)");
    assert_eq!(updated["NextInvocationDate"], Value::Null, "disabled");
    // What the update did not name stays.
    assert_eq!(updated["Target"]["EcsParameters"]["TaskCount"], 2);
    assert_eq!(updated["ScheduleExpressionTimezone"], "Europe/Paris");

    let enabled = agent.json(&["update-schedule", "--name", "nightly", "--state", "ENABLED"]);
    let next = enabled["NextInvocationDate"].as_f64().expect("next firing");
    let modified = enabled["LastModificationDate"].as_f64().expect("modified");
    assert!(
        (next - modified - 300.0).abs() < 1.0,
        "rate(5 minutes) counts from the moment it was enabled: {enabled:#}"
    );

    let listed = agent.json(&["list-schedules", "--state", "DISABLED"]);
    assert_eq!(listed["Schedules"], json!([]));

    let deleted = agent.berth(["delete-schedule", "--name", "nightly"]);
    assert_eq!(deleted.ok("delete-schedule").stdout.trim(), "nightly");
    assert!(schedule_names(&agent).is_empty());
    agent
        .berth(["get-schedule", "--name", "nightly"])
        .assert_error_naming("nightly");
    agent
        .berth(["delete-schedule", "--name", "nightly"])
        .assert_error_naming("nightly");
}

#[test]
fn an_at_schedule_runs_its_task_once_and_is_then_done() {
    let agent = Agent::start();
    agent.register(&brief("one-off"));
    let at = format!("at({})", utc_in(5));
    agent.json(&[
        "create-schedule",
        "--name",
        "once",
        "--schedule-expression",
        &at,
        "--task-definition",
        "one-off",
    ]);

    let arns = berth_tests::wait_for(
        "the at() schedule to start its task",
        Duration::from_secs(20),
        || Some(tasks_started_by(&agent, "once")).filter(|t| !t.is_empty()),
    );
    let task = agent.describe(&arns[0]);
    assert_eq!(task["startedBy"], "schedule/once", "{task:#}");
    assert!(
        task["taskDefinitionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with("task-definition/one-off:1")),
        "{task:#}"
    );
    let id = task_id(&task);
    let stopped = agent.wait_status(&id, "STOPPED", Duration::from_secs(20));
    assert_eq!(stopped["containers"][0]["exitCode"], 0, "{stopped:#}");

    // Done: shown DISABLED with no next firing, its last firing and the task it ran.
    let done = agent.json(&["get-schedule", "--name", "once"]);
    assert_eq!(done["State"], "DISABLED", "{done:#}");
    assert_eq!(done["NextInvocationDate"], Value::Null, "{done:#}");
    assert!(done["LastInvocationDate"].is_number(), "{done:#}");
    assert_eq!(done["LastRun"]["TaskArns"], json!([task["taskArn"]]));

    // Several more passes of the scheduler, and an agent restart, start nothing more.
    std::thread::sleep(Duration::from_secs(3));
    let mut agent = agent;
    agent.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tasks_started_by(&agent, "once"), arns, "fired once only");
}

#[test]
fn schedules_persist_across_an_agent_restart() {
    let mut agent = Agent::start();
    agent.register(&brief("kept"));
    for (name, expr, state) in [
        ("hourly", "rate(1 hour)", "ENABLED"),
        ("weekdays", "cron(0 9 ? * MON-FRI *)", "DISABLED"),
    ] {
        agent.json(&[
            "create-schedule",
            "--name",
            name,
            "--schedule-expression",
            expr,
            "--task-definition",
            "kept",
            "--state",
            state,
        ]);
    }
    let before = agent.json(&["list-schedules"]);

    agent.kill_agent();
    agent.restart();

    let after = agent.json(&["list-schedules"]);
    assert_eq!(after, before, "the same schedules, states and next firings");
    assert_eq!(schedule_names(&agent), ["hourly", "weekdays"]);
    // The restart itself fired nothing: no slot came due.
    assert!(tasks_started_by(&agent, "hourly").is_empty());
}

#[test]
fn bad_input_is_refused_naming_the_field_and_stores_nothing() {
    let agent = Agent::start();
    agent.register(&brief("real"));
    let create = |name: &str, expr: &str, def: &str, extra: &[&str]| {
        let mut args = vec![
            "create-schedule",
            "--name",
            name,
            "--schedule-expression",
            expr,
            "--task-definition",
            def,
        ];
        args.extend_from_slice(extra);
        agent.berth(&args)
    };

    create("a", "cron(0 12 * * ? *)", "no-such-family", &[]).assert_error_naming("no-such-family");
    create("a", "cron(0 12 * * ? *)", "real:7", &[]).assert_error_naming("real:7");
    agent.register(&brief("retired"));
    agent
        .berth(["deregister-task-definition", "retired:1"])
        .ok("deregister retired:1");
    create("a", "cron(0 12 * * ? *)", "retired:1", &[]).assert_error_naming("retired:1");
    create("a", "cron(0 12 1 * MON *)", "real", &[]).assert_error_naming("cron(0 12 1 * MON *)");
    create("a", "cron(0 0 12 * * ? *)", "real", &[]).assert_error_naming("six fields");
    create("a", "rate(0 minutes)", "real", &[]).assert_error_naming("rate(0 minutes)");
    create("a", "rate(1 minutes)", "real", &[]).assert_error_naming("singular");
    create("a", "at(2020-01-01T00:00:00)", "real", &[]).assert_error_naming("never fires");
    create(
        "a",
        "rate(5 minutes)",
        "real",
        &["--timezone", "Mars/Olympus"],
    )
    .assert_error_naming("Mars/Olympus");
    create("a", "rate(5 minutes)", "real", &["--state", "PAUSED"]).assert_error_naming("State");
    create("a", "rate(5 minutes)", "real", &["--count", "11"]).assert_error_naming("TaskCount");
    create("bad name!", "rate(5 minutes)", "real", &[]).assert_error_naming("Name");
    assert!(schedule_names(&agent).is_empty(), "nothing was stored");

    create("dup", "rate(5 minutes)", "real", &[]).ok("create-schedule dup");
    let first = agent.json(&["get-schedule", "--name", "dup"]);
    create("dup", "rate(2 hours)", "real", &[]).assert_error_naming("dup");
    let update = agent.berth([
        "update-schedule",
        "--name",
        "dup",
        "--schedule-expression",
        "cron(0 12 ? * ? *)",
    ]);
    update.assert_error_naming("cron(0 12 ? * ? *)");
    agent
        .berth([
            "update-schedule",
            "--name",
            "dup",
            "--task-definition",
            "gone",
        ])
        .assert_error_naming("gone");
    agent
        .berth(["update-schedule", "--name", "missing", "--state", "ENABLED"])
        .assert_error_naming("missing");
    let after = agent.json(&["get-schedule", "--name", "dup"]);
    assert_eq!(after, first, "refused changes left the schedule as it was");
    assert_eq!(schedule_names(&agent), ["dup"]);
}
