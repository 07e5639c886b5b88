//! The berth agent as its users drive it: task definitions, run-task, describe-tasks,
//! stop-task, logs and `berth run`, against a real daemon, its supervisors and the kernel.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use berth_tests::agent::{
    TASK_CGROUP_ROOT, TIMEOUT, UNTIL_TERM, container, file_len, host_task, is_alive, mount_points,
    processes_in_cgroup, sh, task_id, zombies_in_cgroup,
};
use berth_tests::{Agent, ContainerCgroup, wait_until_catches};
use serde_json::{Value, json};

fn arn_of(family_revision: &str) -> String {
    format!("arn:aws:ecs:local:000000000000:task-definition/{family_revision}")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Seconds between two of a task's epoch-second timestamps.
#[track_caller]
fn seconds_between(task: &Value, from: &str, to: &str) -> f64 {
    let at = |field: &str| {
        task[field]
            .as_f64()
            .unwrap_or_else(|| panic!("no {field} in {task:#}"))
    };
    at(to) - at(from)
}

// ---- task definitions ----

/// The AWS CLI reference's register-task-definition example, as given there.
const SLEEP360: &str = r#"{
    "containerDefinitions": [
        {
            "name": "sleep",
            "image": "busybox",
            "cpu": 10,
            "command": [
                "sleep",
                "360"
            ],
            "memory": 10,
            "essential": true
        }
    ],
    "family": "sleep360"
}"#;

/// The ECS developer guide's web server example, on the host's network and with busybox's
/// httpd in place of the httpd image.
const WEBSERVER: &str = r#"{
    "containerDefinitions": [
        {
            "command": [
                "echo '<html><body><h1>Amazon ECS Sample App</h1></body></html>' > /var/www/index.html && httpd -f -p 8080 -h /var/www"
            ],
            "entryPoint": [
                "sh",
                "-c"
            ],
            "essential": true,
            "image": "busybox:latest",
            "logConfiguration": {
                "logDriver": "json-file",
                "options": {
                    "max-size": "10m",
                    "max-file": "3"
                }
            },
            "name": "sample-app",
            "portMappings": [
                {
                    "containerPort": 8080,
                    "hostPort": 8080,
                    "protocol": "tcp"
                }
            ]
        }
    ],
    "cpu": "256",
    "family": "webserver",
    "memory": "512",
    "networkMode": "host",
    "requiresCompatibilities": [
        "EC2"
    ]
}"#;

#[test]
fn task_definitions_register_describe_list_and_deregister() {
    let agent = Agent::start();

    let sleep360 = agent.file("sleep360.json", SLEEP360);
    let registered = agent.json(&[
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", sleep360.display()),
    ]);
    let first = &registered["taskDefinition"];
    assert_eq!(first["taskDefinitionArn"], arn_of("sleep360:1"));
    assert_eq!(first["revision"], 1);
    assert_eq!(first["status"], "ACTIVE");
    assert_eq!(
        first["containerDefinitions"][0]["command"],
        json!(["sleep", "360"])
    );

    // describe-task-definition prints the wrapped form; it registers as it is.
    let described = agent.berth(["--output", "json", "describe-task-definition", "sleep360"]);
    let described = described.ok("describe-task-definition sleep360");
    let wrapped: Value = serde_json::from_str(&described.stdout).expect("describe output is JSON");
    assert_eq!(wrapped["taskDefinition"]["family"], "sleep360");
    let wrapped_file = agent.file("described.json", &described.stdout);
    let second = agent.json(&[
        "register-task-definition",
        &wrapped_file.display().to_string(),
    ]);
    assert_eq!(
        second["taskDefinition"]["taskDefinitionArn"],
        arn_of("sleep360:2")
    );
    assert_eq!(
        second["taskDefinition"]["containerDefinitions"][0]["command"],
        json!(["sleep", "360"])
    );

    let web = agent.file("webserver.json", WEBSERVER);
    let web = agent.json(&["register-task-definition", &web.display().to_string()]);
    assert_eq!(
        web["taskDefinition"]["taskDefinitionArn"],
        arn_of("webserver:1")
    );
    assert_eq!(web["taskDefinition"]["cpu"], "256");
    assert_eq!(web["taskDefinition"]["memory"], "512");

    let latest = agent.json(&["describe-task-definition", "sleep360"]);
    assert_eq!(latest["taskDefinition"]["revision"], 2);
    let pinned = agent.json(&["describe-task-definition", "sleep360:1"]);
    assert_eq!(pinned["taskDefinition"]["revision"], 1);

    let listed = agent.json(&["list-task-definitions"]);
    assert_eq!(
        strings(&listed["taskDefinitionArns"]),
        [
            arn_of("sleep360:1"),
            arn_of("sleep360:2"),
            arn_of("webserver:1")
        ]
    );
    let families = agent.json(&["list-task-definition-families"]);
    assert_eq!(strings(&families["families"]), ["sleep360", "webserver"]);

    // A deregistered revision keeps its running tasks but starts no new ones.
    let id = agent.run_task("sleep360:1");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    let deregistered = agent.json(&["deregister-task-definition", "sleep360:1"]);
    assert_eq!(deregistered["taskDefinition"]["status"], "INACTIVE");
    let described = agent.json(&["describe-task-definition", "sleep360:1"]);
    assert_eq!(described["taskDefinition"]["status"], "INACTIVE");

    let refused = agent.berth(["run-task", "--task-definition", "sleep360:1"]);
    refused.assert_error_naming("sleep360:1");
    assert!(refused.stderr.contains("INACTIVE"), "{refused:#?}");

    let active = agent.json(&["list-task-definitions", "--family-prefix", "sleep360"]);
    assert_eq!(
        strings(&active["taskDefinitionArns"]),
        [arn_of("sleep360:2")]
    );
    let inactive = agent.json(&["list-task-definitions", "--status", "INACTIVE"]);
    assert_eq!(
        strings(&inactive["taskDefinitionArns"]),
        [arn_of("sleep360:1")]
    );

    thread::sleep(Duration::from_millis(500));
    let task = agent.describe(&id);
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert_eq!(container(&task, "sleep")["lastStatus"], "RUNNING");
    let supervisor = agent.supervisor_pid(&id);
    assert!(is_alive(supervisor), "the task's supervisor is gone");

    // The family without a revision is its latest ACTIVE one.
    let newer = agent.run_task("sleep360");
    let newer = agent.describe(&newer);
    assert_eq!(newer["taskDefinitionArn"], arn_of("sleep360:2"));
}

#[test]
fn a_refused_task_definition_names_the_field_and_creates_no_revision() {
    let agent = Agent::start();

    let mut small = host_task("refused", vec![sh("app", "true")]);
    small["containerDefinitions"][0]["memory"] = json!(4);
    let path = agent.file("small.json", &small.to_string());
    let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
    out.assert_error_naming("containerDefinitions[0].memory");

    let mut wrong_type = host_task("refused", vec![sh("app", "true")]);
    wrong_type["containerDefinitions"][0]["cpu"] = json!("lots");
    let path = agent.file("wrong-type.json", &wrong_type.to_string());
    let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
    out.assert_error_naming("containerDefinitions[0].cpu");

    let mut unknown_dependency = host_task("refused", vec![sh("app", "true")]);
    unknown_dependency["containerDefinitions"][0]["dependsOn"] =
        json!([{"containerName": "db", "condition": "START"}]);
    let path = agent.file("dependency.json", &unknown_dependency.to_string());
    let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
    out.assert_error_naming("containerDefinitions[0].dependsOn[0].containerName");

    let malformed = agent.file(
        "malformed.json",
        "{\n  \"family\": \"refused\",\n  \"containerDefinitions\": [\n    {\"name\": \"a\" \"image\": \"busybox\"}\n  ]\n}\n",
    );
    let out = agent.berth(["register-task-definition".as_ref(), malformed.as_os_str()]);
    out.assert_error_naming("line 4 column 18");

    let families = agent.json(&["list-task-definition-families", "--status", "ALL"]);
    assert_eq!(strings(&families["families"]), Vec::<String>::new());
    let described = agent.berth(["describe-task-definition", "refused"]);
    described.assert_error_naming("refused");

    // The refusals used up no revision number.
    let registered = agent.register(&host_task("refused", vec![sh("app", "true")]));
    assert_eq!(registered["revision"], 1);
}

#[test]
fn run_task_options_and_where_the_global_flags_go() {
    let agent = Agent::start();
    agent.register(&host_task(
        "greeter",
        vec![sh("app", "echo defined; sleep 0.2")],
    ));
    let overrides = json!({"containerOverrides": [
        {"name": "app", "command": ["sh", "-c", "echo overridden; sleep 0.2"]}
    ]});
    let response = agent.json(&[
        "run-task",
        "--task-definition",
        "greeter:1",
        "--started-by",
        "nightly-job",
        "--overrides",
        &overrides.to_string(),
    ]);
    let id = task_id(&response["tasks"][0]);
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["startedBy"], "nightly-job");
    let logs = agent.berth(["logs", &id]).ok("logs");
    assert_eq!(logs.stdout, "overridden\n");

    // Flags after the subcommand, and the environment in place of flags.
    let after = Command::new(agent.bin())
        .args([
            "list-tasks",
            "--family",
            "greeter",
            "--desired-status",
            "STOPPED",
        ])
        .arg("--state-dir")
        .arg(agent.state_dir())
        .arg("--socket")
        .arg(agent.socket())
        .args(["--output", "json"])
        .output()
        .expect("run berth");
    assert!(after.status.success(), "{after:?}");
    let listed: Value = serde_json::from_slice(&after.stdout).expect("JSON");
    assert_eq!(
        strings(&listed["taskArns"]),
        [task["taskArn"].as_str().unwrap_or_default()]
    );

    let from_env = Command::new(agent.bin())
        .args([
            "--output",
            "json",
            "list-tasks",
            "--family",
            "other",
            "--desired-status",
            "STOPPED",
        ])
        .env("BERTH_STATE_DIR", agent.state_dir())
        .env("BERTH_SOCKET", agent.socket())
        .output()
        .expect("run berth");
    assert!(from_env.status.success(), "{from_env:?}");
    let listed: Value = serde_json::from_slice(&from_env.stdout).expect("JSON");
    assert_eq!(listed["taskArns"], json!([]));
}

// ---- essential containers and dependsOn ----

#[test]
fn a_non_essential_container_exiting_leaves_the_task_running() {
    let agent = Agent::start();
    let mut helper = sh("helper", "exit 5");
    helper["essential"] = json!(false);
    agent.register(&host_task("sidecar", vec![sh("app", UNTIL_TERM), helper]));
    let id = agent.run_task("sidecar");

    let deadline = Instant::now() + TIMEOUT;
    let task = loop {
        let task = agent.describe(&id);
        if container(&task, "helper")["lastStatus"] == "STOPPED" {
            break task;
        }
        assert!(Instant::now() < deadline, "helper never stopped: {task:#}");
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(container(&task, "helper")["exitCode"], 5);
    thread::sleep(Duration::from_secs(1));
    let task = agent.describe(&id);
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(container(&task, "app")["lastStatus"], "RUNNING");
}

#[test]
fn an_essential_container_exiting_stops_the_task() {
    let agent = Agent::start();
    let mut sidecar = sh("sidecar", UNTIL_TERM);
    sidecar["essential"] = json!(false);
    agent.register(&host_task(
        "short",
        vec![sh("app", "sleep 0.5; exit 0"), sidecar],
    ));
    let id = agent.run_task("short");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["desiredStatus"], "STOPPED");
    assert_eq!(task["stopCode"], "EssentialContainerExited");
    assert_eq!(task["stoppedReason"], "Essential container in task exited");
    assert_eq!(container(&task, "app")["exitCode"], 0);
    // The still-running sidecar was stopped with the task.
    assert_eq!(container(&task, "sidecar")["lastStatus"], "STOPPED");
    assert_eq!(container(&task, "sidecar")["exitCode"], 0);
}

#[test]
fn depends_on_starts_containers_in_order() {
    let agent = Agent::start();
    let mount = json!([{"sourceVolume": "shared", "containerPath": "/shared"}]);
    let with = |mut c: Value, essential: bool, depends_on: Value| {
        c["essential"] = json!(essential);
        c["mountPoints"] = mount.clone();
        c["dependsOn"] = depends_on;
        c
    };
    // Listed in the reverse of the order they must start in.
    let containers = vec![
        with(
            sh("last", "echo last >> /shared/order; cat /shared/order"),
            true,
            json!([
                {"containerName": "first", "condition": "SUCCESS"},
                {"containerName": "after-first", "condition": "COMPLETE"},
            ]),
        ),
        with(
            sh("after-first", "echo after-first >> /shared/order; exit 1"),
            false,
            json!([{"containerName": "first", "condition": "COMPLETE"}]),
        ),
        with(
            sh("beside-first", "echo beside-first >> /shared/order"),
            false,
            json!([{"containerName": "first", "condition": "START"}]),
        ),
        with(
            sh(
                "first",
                "echo first-start >> /shared/order; sleep 1; echo first-end >> /shared/order",
            ),
            false,
            json!([]),
        ),
    ];
    let mut definition = host_task("ordered", containers);
    definition["volumes"] = json!([{"name": "shared"}]);
    agent.register(&definition);
    let id = agent.run_task("ordered");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["stopCode"], "EssentialContainerExited", "{task:#}");
    assert_eq!(container(&task, "first")["exitCode"], 0);
    assert_eq!(container(&task, "beside-first")["exitCode"], 0);
    assert_eq!(container(&task, "after-first")["exitCode"], 1);
    assert_eq!(container(&task, "last")["exitCode"], 0);

    let logs = agent.berth(["logs", &id, "--container", "last"]).ok("logs");
    let mut order: Vec<&str> = logs.stdout.lines().collect();
    // START promises that first's process was started, not that its shell has written
    // its line yet: beside-first may write before or after first-start, but it does not
    // wait for first to end.
    let beside = order.iter().position(|l| *l == "beside-first");
    let end = order.iter().position(|l| *l == "first-end");
    assert!(
        beside.is_some_and(|b| end.is_some_and(|e| b < e)),
        "beside-first wrote before first ended: {order:?}"
    );
    order.retain(|l| *l != "beside-first");
    assert_eq!(
        order,
        ["first-start", "first-end", "after-first", "last"],
        "the order the containers wrote in"
    );
}

#[test]
fn a_success_dependency_that_fails_fails_the_task() {
    let agent = Agent::start();
    let mut migrate = sh("migrate", "exit 1");
    migrate["essential"] = json!(false);
    let mut app = sh("app", UNTIL_TERM);
    app["dependsOn"] = json!([{"containerName": "migrate", "condition": "SUCCESS"}]);
    agent.register(&host_task("migrated", vec![app, migrate]));
    let id = agent.run_task("migrated");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task:#}");
    let reason = task["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("migrate"),
        "the reason names the dependency: {reason}"
    );
    assert_eq!(container(&task, "migrate")["exitCode"], 1);
    let app = container(&task, "app");
    assert_eq!(app["lastStatus"], "STOPPED");
    assert!(app["exitCode"].is_null(), "app never ran: {app:#}");
    assert!(
        !agent.log_path(&id, "app").exists(),
        "app never ran, yet it has a log"
    );
}

// ---- stopping ----

#[test]
fn a_container_ignoring_sigterm_is_killed_after_its_stop_timeout() {
    let agent = Agent::start();
    let mut stubborn = sh("stubborn", "trap '' TERM; while true; do sleep 0.1; done");
    stubborn["stopTimeout"] = json!(2);
    agent.register(&host_task("stubborn", vec![stubborn]));
    let id = agent.run_task("stubborn");
    agent.wait_status(&id, "RUNNING", TIMEOUT);

    agent.stop_task(&id, "maintenance window");
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let took = seconds_between(&task, "stoppingAt", "stoppedAt");
    assert!(
        (1.8..=4.0).contains(&took),
        "stopped {took:.2} s after stopping, not after its 2 s stopTimeout: {task:#}"
    );
    assert_eq!(container(&task, "stubborn")["exitCode"], 137);
    assert_eq!(task["stopCode"], "UserInitiated");
    assert_eq!(task["stoppedReason"], "maintenance window");
}

#[test]
fn a_container_handling_sigterm_exits_at_once_with_its_code() {
    let agent = Agent::start();
    let mut polite = sh(
        "polite",
        "trap 'exit 42' TERM; while true; do sleep 0.1; done",
    );
    polite["stopTimeout"] = json!(10);
    agent.register(&host_task("polite", vec![polite]));
    let id = agent.run_task("polite");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    // Before its trap is set, the shell (pid 1 of its namespace) drops SIGTERM.
    wait_until_catches(agent.container_pid(&id, "polite"), libc::SIGTERM, TIMEOUT);

    agent.stop_task(&id, "done with it");
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let took = seconds_between(&task, "stoppingAt", "stoppedAt");
    assert!(took < 1.5, "took {took:.2} s to stop: {task:#}");
    assert_eq!(container(&task, "polite")["exitCode"], 42);
    assert_eq!(task["stopCode"], "UserInitiated");
    assert_eq!(task["stoppedReason"], "done with it");
}

// ---- the command line ----

#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    // `berth list-task-definitions | head -0`: the reader is gone before berth writes.
    use std::os::unix::process::ExitStatusExt;
    let agent = Agent::start();
    agent.register(&host_task("piped", vec![sh("main", "true")]));
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = agent
        .command(["list-task-definitions"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run berth");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(13), "killed by SIGPIPE: {out:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---- namespaces ----

#[test]
fn a_task_with_its_own_namespaces_runs_with_its_containers_limits() {
    // networkMode none: a sandbox holds the namespaces the containers share, and the
    // containers still get their own limits (on cgroup v2 too, where a cgroup with
    // processes cannot hand its controllers down).
    let agent = Agent::start();
    let mut def = host_task("own-ns", vec![sh("main", UNTIL_TERM)]);
    def["networkMode"] = json!("none");
    def["memory"] = json!("256");
    agent.register(&def);
    let id = agent.run_task("own-ns");
    agent.wait_status(&id, "RUNNING", TIMEOUT);

    let main = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/main"));
    assert_eq!(main.memory_limit(), 64 << 20, "the container's hard limit");
    let task_cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}"));
    assert_eq!(
        task_cgroup.memory_limit(),
        256 << 20,
        "the task's hard limit"
    );
    assert!(
        task_cgroup.procs().is_empty(),
        "no process sits in the task cgroup itself: {:?}",
        task_cgroup.procs()
    );
    agent.stop_task(&id, "checked");
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(container(&task, "main")["exitCode"], 0, "{task:#}");
    agent.assert_nothing_left(&id);
}

// ---- initProcessEnabled ----

fn with_init(mut c: Value) -> Value {
    c["linuxParameters"] = json!({"initProcessEnabled": true});
    c
}

#[test]
fn the_init_forwards_sigterm_to_a_process_that_has_no_handler() {
    // As PID 1 of its namespace, a process without a SIGTERM handler never sees the
    // signal; under the init it is its child, and SIGTERM kills it at once.
    let agent = Agent::start();
    let mut sleeper = with_init(json!({
        "name": "sleeper", "image": "busybox:latest", "memory": 64,
        "command": ["sleep", "600"],
    }));
    sleeper["stopTimeout"] = json!(10);
    agent.register(&host_task("init-term", vec![sleeper]));
    let id = agent.run_task("init-term");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    // Stopped at once: from `start` on, the init holds SIGTERM for the process.

    agent.stop_task(&id, "rolling");
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let took = seconds_between(&task, "stoppingAt", "stoppedAt");
    assert!(
        took < 3.0,
        "took {took:.2} s, as if SIGTERM was ignored: {task:#}"
    );
    assert_eq!(container(&task, "sleeper")["exitCode"], 143, "{task:#}");
}

#[test]
fn the_init_reaps_orphans_and_passes_the_exit_code_on() {
    let agent = Agent::start();
    // The inner shell leaves an orphan behind; the outer one becomes `sleep`, which never
    // waits for anything, so only an init reaps the orphan.
    let script = "cat /proc/1/comm; sh -c 'sleep 0.2 & exit 0'; sleep 5; exit 3";
    agent.register(&host_task("init-reap", vec![with_init(sh("main", script))]));
    let id = agent.run_task("init-reap");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    thread::sleep(Duration::from_millis(1200));
    let cgroup = format!("{TASK_CGROUP_ROOT}/{id}");
    assert!(
        processes_in_cgroup(&cgroup).len() >= 2,
        "the task is still running"
    );
    assert_eq!(zombies_in_cgroup(&cgroup), Vec::<i32>::new(), "no zombie");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(container(&task, "main")["exitCode"], 3, "{task:#}");
    let logs = agent.berth(["logs", &id]).ok("logs");
    assert_eq!(logs.stdout.lines().next(), Some("berth-init"), "{logs:?}");
}

#[test]
fn without_the_init_an_orphan_stays_a_zombie() {
    // The control for the test above: the same script with `exec sleep` as PID 1.
    let agent = Agent::start();
    let script = "sh -c 'sleep 0.2 & exit 0'; exec sleep 600";
    agent.register(&host_task("no-init", vec![sh("main", script)]));
    let id = agent.run_task("no-init");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    thread::sleep(Duration::from_millis(1200));
    let cgroup = format!("{TASK_CGROUP_ROOT}/{id}");
    assert_eq!(zombies_in_cgroup(&cgroup).len(), 1, "the orphan, unreaped");
}

// ---- exit codes ----

#[test]
fn describe_tasks_shows_each_containers_exit_code() {
    let agent = Agent::start();
    let mut side = sh("side", "exit 4");
    side["essential"] = json!(false);
    agent.register(&host_task(
        "codes",
        vec![sh("main", "sleep 0.5; exit 3"), side],
    ));
    let id = agent.run_task("codes");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(container(&task, "main")["exitCode"], 3, "{task:#}");
    assert_eq!(container(&task, "side")["exitCode"], 4, "{task:#}");
    assert_eq!(container(&task, "main")["lastStatus"], "STOPPED");
}

/// `berth run` of `definition`, written to the file `name`, with the agent's run dir.
fn berth_run(agent: &Agent, name: &str, definition: &Value) -> berth_tests::runtime::Output {
    let file = agent.file(name, &definition.to_string());
    let run_dir = agent.run_dir();
    agent.berth([
        "run".as_ref(),
        file.as_os_str(),
        "--run-dir".as_ref(),
        run_dir.as_os_str(),
    ])
}

#[test]
fn berth_run_exits_with_the_essential_containers_code() {
    let agent = Agent::stopped();
    let run = |name: &str, definition: Value| berth_run(&agent, name, &definition);

    let ok = run(
        "ok.json",
        host_task("run-ok", vec![sh("main", "echo hello from berth run")]),
    );
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.stdout.contains("hello from berth run"), "{ok:#?}");

    let three = run(
        "three.json",
        host_task("run-three", vec![sh("main", "exit 3")]),
    );
    assert_eq!(three.code, 3, "{three:#?}");

    let mut missing = host_task("run-missing", vec![sh("main", "true")]);
    missing["containerDefinitions"][0]["image"] = json!("berth-test-no-such-image:latest");
    let missing = run("missing.json", missing);
    assert_eq!(missing.code, 125, "{missing:#?}");
    assert!(
        missing.stderr.contains("berth-test-no-such-image"),
        "the error names the image: {missing:#?}"
    );

    // berth run names its task on stderr; none leaves anything behind.
    for out in [&ok, &three, &missing] {
        let id = out
            .stderr
            .lines()
            .find_map(|line| line.strip_prefix("berth: task "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("berth run named no task: {out:#?}"));
        agent.assert_nothing_left(id);
    }
}

#[test]
fn a_working_directory_the_image_lacks_is_made_as_docker_makes_it() {
    let agent = Agent::stopped();
    let mut c = sh("main", "pwd; ls -ld /srv/app/data");
    c["workingDirectory"] = json!("/srv/app/data");
    c["user"] = json!("1000:1000");
    c["readonlyRootFilesystem"] = json!(true);
    let out = berth_run(&agent, "cwd.json", &host_task("run-cwd", vec![c]));

    assert_eq!(out.code, 0, "{out:#?}");
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("/srv/app/data"), "{out:#?}");
    // Root's and 0755, so the container's user may enter it, as with Docker.
    let listing = lines.next().unwrap_or_default();
    assert!(
        listing.starts_with("drwxr-xr-x") && listing.contains(" root "),
        "{out:#?}"
    );
}

#[test]
fn no_new_privileges_among_docker_security_options_sets_the_flag() {
    let agent = Agent::stopped();
    let flag = "grep NoNewPrivs /proc/self/status";
    let mut nnp = sh("nnp", &format!("sleep 0.5; echo nnp $({flag})"));
    nnp["dockerSecurityOptions"] = json!(["no-new-privileges"]);
    let mut plain = sh("plain", &format!("echo plain $({flag})"));
    plain["essential"] = json!(false);
    let out = berth_run(&agent, "nnp.json", &host_task("run-nnp", vec![nnp, plain]));

    assert_eq!(out.code, 0, "{out:#?}");
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(&format!("{name} NoNewPrivs:")))
            .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
    };
    assert_eq!(line("nnp").as_deref(), Some("1"), "{out:#?}");
    assert_eq!(line("plain").as_deref(), Some("0"), "{out:#?}");
}

#[test]
fn system_controls_set_the_tasks_namespaced_parameters_and_leave_the_hosts() {
    let host = |key: &str| {
        std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/")))
            .unwrap_or_else(|e| panic!("read {key}: {e}"))
            .trim()
            .to_string()
    };
    let (somaxconn, msgmax) = (host("net.core.somaxconn"), host("kernel.msgmax"));
    let pick = |now: &str, a: &'static str, b: &'static str| if now == a { b } else { a };
    let want_somaxconn = pick(&somaxconn, "1234", "1235");
    let want_msgmax = pick(&msgmax, "12345", "12346");

    let agent = Agent::stopped();
    let mut c = sh(
        "main",
        "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/msgmax",
    );
    c["systemControls"] = json!([
        {"namespace": "net.core.somaxconn", "value": want_somaxconn},
        {"namespace": "kernel.msgmax", "value": want_msgmax},
    ]);
    let definition = json!({
        "family": "run-sysctl",
        "networkMode": "none",
        "containerDefinitions": [c],
    });
    let out = berth_run(&agent, "sysctl.json", &definition);

    assert_eq!(out.code, 0, "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, [want_somaxconn, want_msgmax], "{out:#?}");
    assert_eq!(
        host("net.core.somaxconn"),
        somaxconn,
        "the host's value changed"
    );
    assert_eq!(host("kernel.msgmax"), msgmax, "the host's value changed");

    // On the host's network the same parameter is refused before anything starts.
    let mut c = sh("main", "true");
    c["systemControls"] = json!([{"namespace": "net.core.somaxconn", "value": "1"}]);
    let out = berth_run(
        &agent,
        "sysctl-host.json",
        &host_task("sysctl-host", vec![c]),
    );
    out.assert_error_naming("containerDefinitions[0].systemControls[0].namespace");
}

#[test]
fn a_container_with_networking_disabled_has_only_loopback() {
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("the host's netns");
    let agent = Agent::stopped();
    let report =
        "echo $(readlink /proc/self/ns/net) $(sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev)";
    let mut off = sh("off", report);
    off["essential"] = json!(false);
    off["disableNetworking"] = json!(true);
    let mut on = sh("on", report);
    on["dependsOn"] = json!([{"containerName": "off", "condition": "COMPLETE"}]);

    let out = berth_run(
        &agent,
        "no-net.json",
        &host_task("run-no-net", vec![off, on]),
    );

    assert_eq!(out.code, 0, "{out:#?}");
    let line = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} | ")))
            .unwrap_or_else(|| panic!("no output from {name}: {out:#?}"))
            .to_string()
    };
    let host_net = host_net.display().to_string();
    let off = line("off");
    let (off_net, off_links) = off.split_once(' ').unwrap_or((&off, ""));
    assert_ne!(off_net, host_net, "{out:#?}");
    assert_eq!(off_links, "lo", "only loopback: {out:#?}");
    assert!(
        line("on").starts_with(&format!("{host_net} ")),
        "the other container stays on the host's network: {out:#?}"
    );
}

#[test]
fn pseudo_terminal_and_interactive_give_a_pty_and_an_open_stdin_as_docker_does() {
    let agent = Agent::start();
    // cat of stdin for at most 1 s: 0 at end of file (stdin on /dev/null), 143 when
    // the timeout ends it on a stdin that stays open.
    let wait = "timeout 1 cat; echo cat=$?";
    let report = format!("readlink /proc/self/fd/0; {wait}");
    let mut tty = sh(
        "tty",
        &format!(
            "tty; [ -t 1 ] && echo stdout-is-a-tty; echo to-stderr >&2; echo TERM=$TERM; {wait}"
        ),
    );
    tty["pseudoTerminal"] = json!(true);
    let mut open = sh("open", &report);
    open["interactive"] = json!(true);
    let closed = sh("closed", &report);
    let mut containers = vec![tty, open, closed];
    for c in &mut containers {
        c["essential"] = json!(false);
    }
    let mut main = sh("main", "true");
    main["dependsOn"] = json!(
        ["tty", "open", "closed"]
            .map(|name| json!({"containerName": name, "condition": "COMPLETE"}))
    );
    containers.push(main);
    agent.register(&host_task("terminals", containers));
    let id = agent.run_task("terminals");
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(container(&task, "main")["exitCode"], 0, "{task:#}");

    let log = |name: &str| {
        agent
            .berth(["logs", &id, "--container", name])
            .ok("logs")
            .stdout
    };
    let tty = log("tty");
    let lines: Vec<&str> = tty.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{tty:?}");
    assert_eq!(
        lines[1..4],
        ["stdout-is-a-tty", "to-stderr", "TERM=xterm"],
        "{tty:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&"cat=143"),
        "the pty stays open: {tty:?}"
    );
    // On a pty, stderr is the terminal too: Docker logs it all as stdout.
    let file = std::fs::read_to_string(agent.log_path(&id, "tty")).expect("the tty's log");
    assert!(!file.contains("\"stderr\""), "{file}");

    let open = log("open");
    assert!(open.starts_with("pipe:["), "stdin is a pipe: {open:?}");
    assert!(open.ends_with("cat=143\n"), "stdin stays open: {open:?}");
    let closed = log("closed");
    assert!(closed.starts_with("/dev/null"), "{closed:?}");
    assert!(
        closed.ends_with("cat=0\n"),
        "end of file at once: {closed:?}"
    );
}

// ---- the agent's restart ----

#[test]
fn tasks_keep_running_across_a_sigkill_and_restart_of_the_agent() {
    let mut agent = Agent::start();
    let counter = "trap 'exit 0' TERM; i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done";
    agent.register(&host_task("counter", vec![sh("counter", counter)]));
    agent.register(&host_task("seven", vec![sh("seven", "sleep 1; exit 7")]));
    let counting = agent.run_task("counter");
    agent.wait_status(&counting, "RUNNING", TIMEOUT);
    let log = agent.log_path(&counting, "counter");
    berth_tests::wait_for("the counter to log", TIMEOUT, || {
        (file_len(&log) > 0).then_some(())
    });

    let seven = agent.run_task("seven");
    agent.wait_status(&seven, "RUNNING", TIMEOUT);
    let seven_supervisor = agent.supervisor_pid(&seven);

    agent.kill_agent();
    let before = file_len(&log);
    thread::sleep(Duration::from_millis(600));
    assert!(
        file_len(&log) > before,
        "the counter's log stopped growing when the agent died"
    );
    // The second task ends while no agent runs.
    berth_tests::wait_for("the exit-7 task's supervisor to finish", TIMEOUT, || {
        (!is_alive(seven_supervisor)).then_some(())
    });

    agent.restart();
    let task = agent.describe(&counting);
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert_eq!(container(&task, "counter")["lastStatus"], "RUNNING");
    let before = file_len(&log);
    thread::sleep(Duration::from_millis(400));
    assert!(
        file_len(&log) > before,
        "the counter stopped after the restart"
    );

    let task = agent.describe(&seven);
    assert_eq!(task["lastStatus"], "STOPPED", "{task:#}");
    assert_eq!(container(&task, "seven")["exitCode"], 7, "{task:#}");
    assert_eq!(task["stopCode"], "EssentialContainerExited");

    // The restarted agent still reaches the first task's supervisor.
    agent.stop_task(&counting, "after the restart");
    let task = agent.wait_status(&counting, "STOPPED", TIMEOUT);
    assert_eq!(task["stoppedReason"], "after the restart");
    assert_eq!(container(&task, "counter")["exitCode"], 0);
    agent.assert_nothing_left(&counting);
    agent.assert_nothing_left(&seven);
}

// ---- logs ----

#[test]
fn logs_are_readable_after_the_task_stopped() {
    let agent = Agent::start();
    let mut side = sh("side", "echo side-line");
    side["essential"] = json!(false);
    agent.register(&host_task(
        "chatty",
        vec![
            sh("main", "sleep 0.3; echo one; echo two; echo three"),
            side,
        ],
    ));
    let id = agent.run_task("chatty");
    agent.wait_status(&id, "STOPPED", TIMEOUT);

    let main = agent.berth(["logs", &id, "--container", "main"]).ok("logs");
    assert_eq!(main.stdout, "one\ntwo\nthree\n");
    let last = agent
        .berth(["logs", &id, "--container", "main", "--tail", "1"])
        .ok("logs --tail 1");
    assert_eq!(last.stdout, "three\n");
    let side = agent.berth(["logs", &id, "--container", "side"]).ok("logs");
    assert_eq!(side.stdout, "side-line\n");

    let all = agent.berth(["logs", &id]).ok("logs");
    let mut lines: Vec<&str> = all.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "main | one",
            "main | three",
            "main | two",
            "side | side-line"
        ],
        "every container's lines, each named: {all:#?}"
    );
    let recent = agent
        .berth(["logs", &id, "--since", "1h"])
        .ok("logs --since");
    assert_eq!(recent.stdout.lines().count(), 4, "{recent:#?}");

    let unknown = agent.berth(["logs", &id, "--container", "nope"]);
    unknown.assert_error_naming("nope");
}

#[test]
fn logs_follow_prints_lines_as_they_come_until_the_task_stops() {
    let agent = Agent::start();
    agent.register(&host_task(
        "slow",
        vec![sh("app", "echo early; sleep 1.5; echo late; sleep 0.3")],
    ));
    let id = agent.run_task("slow");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    let log = agent.log_path(&id, "app");
    berth_tests::wait_for("the first line", TIMEOUT, || {
        (file_len(&log) > 0).then_some(())
    });

    let follower = agent
        .command(["logs", "-f", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn berth logs -f");
    let out = follower.wait_with_output().expect("wait for berth logs -f");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "early\nlate\n");
    let task = agent.describe(&id);
    assert_eq!(
        task["lastStatus"], "STOPPED",
        "logs -f returned before the task stopped"
    );
}

// ---- bad input ----

#[test]
fn unknown_task_definitions_are_refused() {
    let agent = Agent::start();
    agent.register(&host_task("known", vec![sh("app", "true")]));

    let family = agent.berth(["run-task", "--task-definition", "unknown-family"]);
    family.assert_error_naming("unknown-family");
    let revision = agent.berth(["run-task", "--task-definition", "known:9"]);
    revision.assert_error_naming("known:9");
    let described = agent.berth(["describe-task-definition", "known:9"]);
    described.assert_error_naming("known:9");

    let tasks = agent.json(&["list-tasks", "--desired-status", "STOPPED"]);
    assert_eq!(strings(&tasks["taskArns"]), Vec::<String>::new());
}

#[test]
fn a_missing_image_fails_the_task_naming_the_image() {
    let agent = Agent::start();
    agent.register(&host_task(
        "imageless",
        vec![json!({
            "name": "app",
            "image": "berth-test-no-such-image:1.0",
            "essential": true,
            "memory": 64,
        })],
    ));
    let id = agent.run_task("imageless");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task:#}");
    let reason = task["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("berth-test-no-such-image"),
        "the reason names the image: {reason}"
    );
    agent.assert_nothing_left(&id);
}

#[test]
fn unknown_and_stopped_tasks_are_reported() {
    let agent = Agent::start();
    let unknown = "0123456789abcdef0123456789abcdef";

    let described = agent.json(&["describe-tasks", unknown]);
    assert_eq!(described["tasks"], json!([]));
    assert_eq!(
        described["failures"][0]["reason"], "MISSING",
        "{described:#}"
    );
    assert!(
        described["failures"][0]["arn"]
            .as_str()
            .is_some_and(|arn| arn.contains(unknown)),
        "{described:#}"
    );

    agent.register(&host_task("brief", vec![sh("app", "exit 0")]));
    let id = agent.run_task("brief");
    let both = agent.json(&["describe-tasks", &id, unknown]);
    assert_eq!(both["tasks"].as_array().map(Vec::len), Some(1), "{both:#}");
    assert_eq!(task_id(&both["tasks"][0]), id);
    assert_eq!(both["failures"][0]["reason"], "MISSING", "{both:#}");

    let stop = agent.berth(["stop-task", unknown]);
    stop.assert_error_naming(unknown);

    let stopped = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let again = agent.berth(["stop-task", &id, "--reason", "once more"]);
    again.assert_error_naming(&id);
    let after = agent.describe(&id);
    for field in ["lastStatus", "stopCode", "stoppedReason", "stoppedAt"] {
        assert_eq!(after[field], stopped[field], "stop-task changed {field}");
    }
}

#[test]
fn commands_without_a_running_agent_name_the_socket() {
    let mut agent = Agent::start();
    agent.kill_agent();
    let out = agent.berth(["list-tasks"]);
    let socket = agent.socket().display().to_string();
    out.assert_error_naming(&socket);
    assert!(
        out.stderr.contains("not running"),
        "the error says the agent is not running: {out:#?}"
    );
}

// ---- nothing left behind ----

#[test]
fn stopped_tasks_leave_nothing_behind() {
    let agent = Agent::start();
    let mount = json!([{"sourceVolume": "data", "containerPath": "/data"}]);
    let mut writer = sh("writer", "echo hi > /data/file");
    writer["essential"] = json!(false);
    writer["mountPoints"] = mount.clone();
    let mut reader = sh("reader", "sleep 0.3; cat /data/file");
    reader["mountPoints"] = mount;
    reader["dependsOn"] = json!([{"containerName": "writer", "condition": "SUCCESS"}]);
    let mut finished = host_task("finished", vec![reader, writer]);
    finished["volumes"] = json!([{"name": "data"}]);
    agent.register(&finished);

    let mut stubborn = sh("stubborn", "trap '' TERM; while true; do sleep 0.1; done");
    stubborn["stopTimeout"] = json!(1);
    let mut helper = sh("helper", UNTIL_TERM);
    helper["essential"] = json!(false);
    agent.register(&host_task("stopped", vec![stubborn, helper]));

    let mut failing = sh("failing", "exit 2");
    failing["essential"] = json!(false);
    let mut never = sh("never", UNTIL_TERM);
    never["dependsOn"] = json!([{"containerName": "failing", "condition": "SUCCESS"}]);
    agent.register(&host_task("dependency", vec![never, failing]));

    let finished = agent.run_task("finished");
    let stopped = agent.run_task("stopped");
    let dependency = agent.run_task("dependency");
    let running = agent.wait_status(&stopped, "RUNNING", TIMEOUT);
    let pids: Vec<i64> = agent.status_file(&stopped)["containers"]
        .as_object()
        .into_iter()
        .flat_map(|containers| containers.values())
        .filter_map(|c| c["pid"].as_i64())
        .collect();
    assert_eq!(pids.len(), 2, "two container pids in {running:#}");
    // While it runs, the checks below do see the task's cgroup, mounts and processes.
    let cgroup = format!("{TASK_CGROUP_ROOT}/{stopped}");
    assert!(!ContainerCgroup::at(&cgroup).existing_dirs().is_empty());
    assert!(
        mount_points()
            .iter()
            .any(|mount| mount.starts_with(agent.task_dir(&stopped))),
        "no mount of the running task"
    );
    assert!(processes_in_cgroup(&cgroup).len() >= 2);
    assert!(!agent.runtime_state_of(&stopped).is_empty());
    agent.stop_task(&stopped, "cleanup check");

    for id in [&finished, &stopped, &dependency] {
        let task = agent.wait_status(id, "STOPPED", TIMEOUT);
        agent.assert_nothing_left(id);
        assert!(
            task["stopCode"].is_string(),
            "a stopped task says why: {task:#}"
        );
    }
    for pid in pids {
        let pid = i32::try_from(pid).expect("a pid");
        assert!(!is_alive(pid), "container process {pid} outlived its task");
    }
    let reader = agent.berth(["logs", &finished, "--container", "reader"]);
    assert_eq!(reader.ok("logs").stdout, "hi\n");
    let task = agent.describe(&finished);
    assert_eq!(task_id(&task), finished);
}
