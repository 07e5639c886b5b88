//! Task networking as users of ECS see it: bridge tasks reached through their port
//! mappings, awsvpc tasks on their own address, the names files, ports that cannot be
//! had, and a host left as it was after tasks come and go, crash or not. Each test runs
//! its agent on a bridge and subnet of its own.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use berth_tests::Agent;
use berth_tests::agent::{container, is_alive, task_id};
use berth_tests::bridge::{HostState, TestBridge, free_port, host_ipv4, http_get, udp_ask};
use serde_json::{Value, json};

/// Long enough for a task to start or stop on a loaded two-core host.
const TIMEOUT: Duration = Duration::from_secs(20);

/// busybox httpd serving "hello from NAME" on `port`, in the foreground.
fn web(name: &str, port: u16, mappings: Value) -> Value {
    json!({
        "name": name,
        "image": "busybox:latest",
        "essential": true,
        "memory": 32,
        // httpd as pid 1 ignores SIGTERM; SIGKILL follows soon.
        "stopTimeout": 1,
        "command": ["sh", "-c", format!(
            "mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p {port} -h /www"
        )],
        "portMappings": mappings,
    })
}

fn start(bridge: &TestBridge) -> Agent {
    Agent::start_with(&bridge.agent_args())
}

/// Registers `containers` as a task of `mode` and runs it; the task id.
fn run(agent: &Agent, family: &str, mode: &str, containers: Vec<Value>) -> String {
    agent.register(&json!({
        "family": family,
        "networkMode": mode,
        "containerDefinitions": containers,
    }));
    agent.run_task(family)
}

/// Polls `get` until it answers, for servers that take a moment to listen.
#[track_caller]
fn eventually<T>(what: &str, mut get: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

fn host_port_of(task: &Value, name: &str) -> u16 {
    let bindings = &container(task, name)["networkBindings"];
    bindings[0]["hostPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no hostPort in networkBindings of {name}: {task:#}"))
}

/// Waits a little for the kernel to free what the task's namespace held, then compares.
#[track_caller]
fn assert_settles(bridge: &TestBridge, before: &HostState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = bridge.host_state();
    while now != *before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        now = bridge.host_state();
    }
    assert_eq!(now, *before, "what berth left on the host");
}

fn log_text(agent: &Agent, id: &str, name: &str) -> String {
    std::fs::read_to_string(agent.log_path(id, name)).unwrap_or_default()
}

#[test]
fn bridge_task_answers_on_its_mapped_host_port() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let port = free_port();
    let id = run(
        &agent,
        "web",
        "bridge",
        vec![web(
            "web",
            80,
            json!([{"containerPort": 80, "hostPort": port}]),
        )],
    );
    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    assert_eq!(
        container(&task, "web")["networkBindings"],
        json!([{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": port, "protocol": "tcp"}]),
        "{task:#}"
    );
    let page = eventually("GET localhost", || http_get(local(port)));
    assert!(page.contains("hello from web"), "{page}");
    // Other hosts come in on the host's own address.
    if let Some(ip) = host_ipv4() {
        let page = http_get(SocketAddr::V4(SocketAddrV4::new(ip, port))).unwrap();
        assert!(page.contains("hello from web"), "{page}");
    }
    // Another bridge task reaches it through the host: on the bridge's address (the
    // task's gateway) and, when the host has one, its own address; the mapping turns
    // around on the bridge (hairpin).
    let gateway = bridge
        .subnet
        .split('/')
        .next()
        .and_then(|net| net.rsplit_once('.'))
        .map(|(prefix, _)| format!("{prefix}.1"))
        .unwrap();
    let mut targets = vec![gateway];
    targets.extend(host_ipv4().map(|ip| ip.to_string()));
    let fetches: Vec<String> = targets
        .iter()
        .map(|ip| format!("wget -q -O - http://{ip}:{port}/ || exit 1"))
        .collect();
    let client = json!({
        "name": "client",
        "image": "busybox:latest",
        "essential": true,
        "memory": 32,
        "command": ["sh", "-c", fetches.join("; ")],
    });
    let other = run(&agent, "web-client", "bridge", vec![client]);
    let done = agent.wait_status(&other, "STOPPED", TIMEOUT);
    let log = log_text(&agent, &other, "client");
    assert_eq!(container(&done, "client")["exitCode"], 0, "{done:#}\n{log}");
    assert_eq!(
        log.matches("hello from web").count(),
        targets.len(),
        "{targets:?}: {log}"
    );
    agent.stop_task(&id, "done");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
    agent.assert_nothing_left(&id);
    assert!(http_get(local(port)).is_err(), "port {port} still answers");
}

#[test]
fn ephemeral_host_port_is_reported_and_works() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let id = run(
        &agent,
        "eph",
        "bridge",
        vec![web("web", 8080, json!([{"containerPort": 8080}]))],
    );
    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    let port = host_port_of(&task, "web");
    assert!((49153..=65535).contains(&port), "hostPort {port}");
    let page = eventually("GET the ephemeral port", || http_get(local(port)));
    assert!(page.contains("hello from web"), "{page}");
    agent.stop_task(&id, "done");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
}

#[test]
fn containers_of_a_task_share_localhost_and_get_names_files() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let client = json!({
        "name": "client",
        "image": "busybox:latest",
        "essential": true,
        "memory": 32,
        "hostname": "front",
        "extraHosts": [{"hostname": "db.internal", "ipAddress": "10.1.2.3"}],
        "dnsServers": ["10.0.0.2"],
        "dnsSearchDomains": ["corp.example"],
        "dependsOn": [{"containerName": "server", "condition": "START"}],
        "command": ["sh", "-c",
            "for i in $(seq 50); do wget -q -O - http://127.0.0.1:7000/ && break; sleep 0.1; done; \
             hostname; cat /etc/hosts /etc/resolv.conf; ip -4 -o addr show eth0"],
    });
    let mut server = web("server", 7000, json!([]));
    server["essential"] = json!(false);
    let id = run(&agent, "pair", "bridge", vec![server, client]);
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(container(&task, "client")["exitCode"], 0, "{task:#}");
    let log = log_text(&agent, &id, "client");
    assert!(log.contains("hello from server"), "{log}");
    assert!(log.contains("front"), "hostname: {log}");
    assert!(log.contains("10.1.2.3\\tdb.internal"), "extraHosts: {log}");
    assert!(log.contains("nameserver 10.0.0.2"), "dnsServers: {log}");
    assert!(
        log.contains("search corp.example"),
        "dnsSearchDomains: {log}"
    );
    let prefix = bridge.subnet.rsplit_once('.').map_or("", |x| x.0);
    let address = log
        .split(&format!("inet {prefix}."))
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|host| format!("{prefix}.{host}"))
        .unwrap_or_else(|| panic!("eth0 on the bridge: {log}"));
    // The hostname names the task's address, as in docker and podman, not loopback.
    assert!(
        log.contains(&format!("{address}\\tfront")),
        "hostname to {address} in /etc/hosts: {log}"
    );
    assert!(!log.contains("127.0.0.1\\tfront"), "{log}");
    agent.assert_nothing_left(&id);
}

#[test]
fn a_linked_container_is_reached_by_its_name_and_alias() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    // Only the link puts the server's names in the client's /etc/hosts. (The start
    // order it implies is the plan's: its unit test checks it.)
    let client = json!({
        "name": "client",
        "image": "busybox:latest",
        "essential": true,
        "memory": 32,
        "links": ["server:backend", "server"],
        "command": ["sh", "-c",
            "for i in $(seq 50); do wget -q -O - http://backend:7000/ && break; sleep 0.1; done \
             && wget -q -O - http://server:7000/ && grep -w backend /etc/hosts"],
    });
    let mut server = web("server", 7000, json!([]));
    server["essential"] = json!(false);
    let id = run(&agent, "linked", "bridge", vec![client, server]);
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let log = log_text(&agent, &id, "client");
    assert_eq!(container(&task, "client")["exitCode"], 0, "{task:#}\n{log}");
    assert_eq!(log.matches("hello from server").count(), 2, "{log}");
    assert!(log.contains("127.0.0.1\\tbackend server"), "{log}");
    agent.assert_nothing_left(&id);

    // Outside bridge mode, as in ECS, links are refused when the task is registered.
    let vpc = agent.file(
        "linked-vpc.json",
        &json!({
            "family": "linked-vpc",
            "networkMode": "awsvpc",
            "containerDefinitions": [
                {"name": "a", "image": "busybox:latest", "memory": 32, "links": ["b"]},
                {"name": "b", "image": "busybox:latest", "memory": 32},
            ],
        })
        .to_string(),
    );
    agent
        .berth([
            std::ffi::OsStr::new("register-task-definition"),
            vpc.as_os_str(),
        ])
        .assert_error_naming("containerDefinitions[0].links");
}

#[test]
fn awsvpc_task_answers_on_its_own_address() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let id = run(
        &agent,
        "vpc",
        "awsvpc",
        vec![web("web", 80, json!([{"containerPort": 80}]))],
    );
    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    let attachment = &task["attachments"][0];
    assert_eq!(attachment["type"], "ElasticNetworkInterface", "{task:#}");
    assert_eq!(attachment["status"], "ATTACHED");
    let detail = |name: &str| {
        attachment["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["name"] == name)
            .and_then(|d| d["value"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {name} in {attachment:#}"))
    };
    let ip: Ipv4Addr = detail("privateIPv4Address").parse().unwrap();
    assert!(detail("macAddress").contains(':'));
    assert_eq!(
        container(&task, "web")["networkInterfaces"][0]["privateIpv4Address"],
        ip.to_string()
    );
    assert_eq!(
        container(&task, "web")["networkInterfaces"][0]["attachmentId"],
        attachment["id"]
    );
    let page = eventually("GET the task's address", || {
        http_get(SocketAddr::V4(SocketAddrV4::new(ip, 80)))
    });
    assert!(page.contains("hello from web"), "{page}");

    // Another task reaches it on that address.
    let client = json!({
        "name": "client",
        "image": "busybox:latest",
        "essential": true,
        "memory": 32,
        "command": ["wget", "-q", "-O", "-", format!("http://{ip}/")],
    });
    let other = run(&agent, "vpc-client", "awsvpc", vec![client]);
    let done = agent.wait_status(&other, "STOPPED", TIMEOUT);
    assert_eq!(container(&done, "client")["exitCode"], 0, "{done:#}");
    let log = log_text(&agent, &other, "client");
    assert!(log.contains("hello from web"), "{log}");

    agent.stop_task(&id, "done");
    let stopped = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(stopped["attachments"][0]["status"], "DELETED");
}

/// busybox has no UDP server; the host's python3 answers inside the task's network
/// namespace, through a read-only view of the host's root.
const UDP_ECHO: &str = "import socket\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0', 5353))\n\
while True:\n    d, a = s.recvfrom(512)\n    s.sendto(b'echo ' + d, a)\n";

#[test]
fn udp_port_mapping_answers_datagrams() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    agent.register(&json!({
        "family": "udp",
        "networkMode": "bridge",
        "volumes": [{"name": "hostroot", "host": {"sourcePath": "/"}}],
        "containerDefinitions": [{
            "name": "udp",
            "image": "busybox:latest",
            "essential": true,
            "memory": 64,
            "stopTimeout": 1,
            "mountPoints": [{"sourceVolume": "hostroot", "containerPath": "/host", "readOnly": true}],
            "command": ["chroot", "/host", "python3", "-c", UDP_ECHO],
            "portMappings": [{"containerPort": 5353, "protocol": "udp"}],
        }],
    }));
    let id = agent.run_task("udp");
    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    assert_eq!(
        container(&task, "udp")["networkBindings"][0]["protocol"],
        "udp"
    );
    let port = host_port_of(&task, "udp");
    let answer = eventually("a UDP answer", || udp_ask(local(port), "ping"));
    assert_eq!(answer, "echo ping");
    if let Some(ip) = host_ipv4() {
        let answer = udp_ask(SocketAddr::V4(SocketAddrV4::new(ip, port)), "pong").unwrap();
        assert_eq!(answer, "echo pong");
    }
    agent.stop_task(&id, "done");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
    agent.assert_nothing_left(&id);
}

#[test]
fn a_taken_host_port_fails_the_task_clearly() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let id = run(
        &agent,
        "taken",
        "bridge",
        vec![web(
            "web",
            80,
            json!([{"containerPort": 80, "hostPort": port}]),
        )],
    );
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task:#}");
    let reason = task["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("host port {port}/tcp is already in use")),
        "{reason}"
    );
    agent.assert_nothing_left(&id);
    drop(taken);

    // A port another task holds is taken too.
    let first = agent.run_task("taken");
    agent.wait_status(&first, "RUNNING", TIMEOUT);
    let second = agent.run_task("taken");
    let task = agent.wait_status(&second, "STOPPED", TIMEOUT);
    assert!(
        task["stoppedReason"]
            .as_str()
            .unwrap_or_default()
            .contains("already in use"),
        "{task:#}"
    );
    let page = eventually("GET the first task", || http_get(local(port)));
    assert!(page.contains("hello from web"), "{page}");
}

#[test]
fn reserved_and_mismatched_ports_are_refused_at_registration() {
    let agent = Agent::start();
    let cases = [
        (
            "bridge",
            json!({"containerPort": 80, "hostPort": 22}),
            "containerDefinitions[0].portMappings[0].hostPort: host port 22 is reserved",
        ),
        (
            "host",
            json!({"containerPort": 2375}),
            "containerDefinitions[0].portMappings[0].containerPort: host port 2375 is reserved",
        ),
        (
            "host",
            json!({"containerPort": 80, "hostPort": 8080}),
            "containerDefinitions[0].portMappings[0].hostPort: 8080 must equal containerPort (80) in host network mode",
        ),
        (
            "awsvpc",
            json!({"containerPort": 80, "hostPort": 81}),
            "must equal containerPort (80) in awsvpc network mode",
        ),
    ];
    for (mode, mapping, message) in cases {
        let def = json!({
            "family": "ports",
            "networkMode": mode,
            "containerDefinitions": [web("web", 80, json!([mapping]))],
        });
        let path = agent.file("ports.json", &def.to_string());
        let out = agent.berth(["register-task-definition".as_ref(), path.as_os_str()]);
        assert!(!out.success(), "{mode} {mapping}: accepted");
        assert!(
            out.stderr.contains(message),
            "{mode} {mapping}: {}",
            out.stderr
        );
    }
}

#[test]
fn two_hundred_tasks_leave_the_host_as_it_was() {
    let bridge = TestBridge::new();
    let agent = start(&bridge);
    let quick = json!({
        "name": "quick",
        "image": "busybox:latest",
        "essential": true,
        "memory": 8,
        "command": ["true"],
        "portMappings": [{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}],
    });
    agent.register(&json!({
        "family": "quick",
        "networkMode": "bridge",
        "containerDefinitions": [quick],
    }));
    // The first task makes the bridge; what is there after it is the baseline.
    let first = agent.run_task("quick");
    agent.wait_status(&first, "STOPPED", TIMEOUT);
    let before = bridge.host_state();
    assert!(before.links.is_empty(), "{before:#?}");

    let mut ids = Vec::new();
    for _ in 0..20 {
        let response = agent.json(&["run-task", "--task-definition", "quick", "--count", "10"]);
        let batch: Vec<String> = response["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(task_id)
            .collect();
        assert_eq!(batch.len(), 10, "{response:#}");
        for id in &batch {
            let task = agent.wait_status(id, "STOPPED", Duration::from_secs(60));
            assert_eq!(container(&task, "quick")["exitCode"], 0, "{task:#}");
        }
        ids.extend(batch);
    }
    assert_eq!(ids.len(), 200);
    assert_settles(&bridge, &before);
}

#[test]
fn a_killed_supervisor_leaves_nothing_after_the_agent_sweeps() {
    let bridge = TestBridge::new();
    let mut agent = start(&bridge);
    let first = run(
        &agent,
        "crash",
        "bridge",
        vec![web("web", 80, json!([{"containerPort": 80}]))],
    );
    agent.wait_status(&first, "RUNNING", TIMEOUT);
    agent.stop_task(&first, "baseline");
    agent.wait_status(&first, "STOPPED", TIMEOUT);
    let before = bridge.host_state();

    let id = agent.run_task("crash");
    let task = agent.wait_status(&id, "RUNNING", TIMEOUT);
    let port = host_port_of(&task, "web");
    eventually("GET the task", || http_get(local(port)));
    assert_ne!(
        bridge.host_state(),
        before,
        "the running task shows on the host"
    );

    agent.kill_agent();
    let supervisor = agent.supervisor_pid(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    berth_tests::wait_for("the supervisor to die", Duration::from_secs(5), || {
        (!is_alive(supervisor)).then_some(())
    });
    agent.restart();
    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    assert!(
        task["stoppedReason"]
            .as_str()
            .unwrap_or_default()
            .contains("supervisor"),
        "{task:#}"
    );
    assert_settles(&bridge, &before);
    assert!(http_get(local(port)).is_err(), "port {port} still answers");
}
