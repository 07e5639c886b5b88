//! `berth exec` and `berth stats` against a real agent: exec's exit codes, its view of the
//! container, stdin and terminals; stats and `GET /metrics` figures against the values
//! in the containers' cgroup files.

use std::io::Write;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use berth_tests::agent::{TASK_CGROUP_ROOT, TIMEOUT, UNTIL_TERM, host_task, sh};
use berth_tests::console::{TERMINAL_SIZE, run_on_terminal};
use berth_tests::{Agent, ContainerCgroup, Output};
use serde_json::{Value, json};

/// Registers `definition`, runs it and waits until it is RUNNING; the task id.
fn running(agent: &Agent, definition: Value) -> String {
    let family = definition["family"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    agent.register(&definition);
    let id = agent.run_task(&family);
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    id
}

/// `berth exec ID ARGS...` with stdin closed.
fn exec(agent: &Agent, id: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec", id];
    all.extend_from_slice(args);
    agent.berth(&all)
}

#[track_caller]
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.code, code,
        "{what}: exit code\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

#[test]
fn exec_exits_with_the_commands_code_and_sees_the_container() {
    let agent = Agent::start();
    let mut app = sh("app", "echo made-inside > /tmp/marker; exec sleep 86400");
    app["environment"] = json!([{"name": "GREETING", "value": "from-the-task"}]);
    app["workingDirectory"] = json!("/tmp");
    app["user"] = json!("1000:1000");
    let id = running(&agent, host_task("exec-codes", vec![app]));
    // The marker is written right after start; give the shell a moment.
    let deadline = Instant::now() + TIMEOUT;
    while exec(&agent, &id, &["test", "-e", "/tmp/marker"]).code != 0 {
        assert!(Instant::now() < deadline, "no /tmp/marker in the container");
        thread::sleep(Duration::from_millis(100));
    }

    assert_exit(&exec(&agent, &id, &["--", "true"]), 0, "true");
    assert_exit(
        &exec(&agent, &id, &["--", "sh", "-c", "exit 3"]),
        3,
        "exit 3",
    );
    let killed = exec(&agent, &id, &["--", "sh", "-c", "kill -9 $$"]);
    assert_exit(&killed, 128 + 9, "a command that SIGKILLs itself");
    let missing = exec(&agent, &id, &["--", "no-such-command", "x"]);
    assert_exit(&missing, 127, "a missing command");
    assert!(
        missing.stderr.contains("no-such-command") && missing.stderr.contains("not found"),
        "stderr should name the missing command: {}",
        missing.stderr
    );
    assert_eq!(
        missing.stderr.trim().lines().count(),
        1,
        "{}",
        missing.stderr
    );

    let inside = exec(
        &agent,
        &id,
        &[
            "--",
            "sh",
            "-c",
            "echo $GREETING; cat /tmp/marker; pwd; id -u; cat /proc/self/cgroup",
        ],
    )
    .ok("exec a look around");
    let lines: Vec<&str> = inside.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["from-the-task", "made-inside", "/tmp", "1000"],
        "{}",
        inside.stdout
    );
    assert!(
        !std::path::Path::new("/tmp/marker").exists()
            || std::fs::read_to_string("/tmp/marker").unwrap_or_default() != "made-inside\n",
        "the container's /tmp is the host's"
    );
    // The container's pid namespace: pid 1 is the container's init, not the host's.
    let init = exec(&agent, &id, &["--", "cat", "/proc/1/cmdline"]).ok("exec cat");
    assert_eq!(init.stdout, "sleep\x0086400\x00");
    // Its cgroup: while the command runs, it is one of the container's processes.
    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/app"));
    let mut child = agent
        .command(["exec", &id, "--", "sleep", "7"])
        .spawn()
        .expect("spawn berth exec sleep");
    let deadline = Instant::now() + TIMEOUT;
    let is_exec = |pid: &i32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x007\x00")
    };
    while !cgroup.procs_below().iter().any(is_exec) {
        assert!(
            Instant::now() < deadline,
            "sleep 7 never showed in {cgroup:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();

    // -e and -w as docker exec has them.
    let flags = exec(
        &agent,
        &id,
        &[
            "-e",
            "EXTRA=1",
            "-w",
            "/",
            "--",
            "sh",
            "-c",
            "echo $EXTRA $GREETING; pwd",
        ],
    )
    .ok("exec -e -w");
    assert_eq!(flags.stdout, "1 from-the-task\n/\n");
}

#[test]
fn exec_passes_stdin_only_with_interactive() {
    let agent = Agent::start();
    let id = running(&agent, host_task("exec-stdin", vec![sh("app", UNTIL_TERM)]));
    // Writes a line on berth exec's stdin and closes it only with `close`; what it prints.
    let run_with_input = |args: &[&str], close: bool| {
        let mut child = agent
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth exec");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"typed line\n").expect("write stdin");
        let kept = if close {
            drop(stdin);
            None
        } else {
            Some(stdin)
        };
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            assert!(
                started.elapsed() < TIMEOUT,
                "berth exec {args:?} did not finish"
            );
            thread::sleep(Duration::from_millis(50));
        }
        drop(kept);
        let output = child.wait_with_output().expect("output");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = run_with_input(&["exec", "-i", &id, "--", "cat"], true);
    assert_eq!((code, stdout.as_str()), (Some(0), "typed line\n"));
    // Without -i, cat reads /dev/null and ends although this stdin stays open.
    let (code, stdout) = run_with_input(&["exec", &id, "--", "cat"], false);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
}

#[test]
fn exec_with_a_tty_gets_a_terminal() {
    let agent = Agent::start();
    let id = running(&agent, host_task("exec-tty", vec![sh("app", UNTIL_TERM)]));

    let command = agent.command([
        "exec",
        "-t",
        &id,
        "--",
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-a-tty; stty size; exit 5",
    ]);
    let (code, output) = run_on_terminal(command, b"", TIMEOUT);
    assert_eq!(code, 5, "exit code through the terminal: {output}");
    let tty = output.lines().next().unwrap_or_default();
    assert!(tty.starts_with("/dev/pts/"), "tty prints {output:?}");
    assert!(output.contains("stdin-is-a-tty"), "{output:?}");
    let (rows, columns) = TERMINAL_SIZE;
    assert!(
        output.lines().any(|l| l == format!("{rows} {columns}")),
        "the container's terminal should be as large as berth exec's: {output:?}"
    );

    // Interactive: what is typed on this terminal reaches the shell in the container.
    let command = agent.command(["exec", "-i", "-t", &id, "--", "sh"]);
    let (code, output) = run_on_terminal(
        command,
        b"echo typed-$((40 + 2)); test -t 0 && echo tty-in; exit 7\n",
        TIMEOUT,
    );
    assert_eq!(code, 7, "exit code of the interactive shell: {output}");
    assert!(output.contains("typed-42"), "{output:?}");
    assert!(output.contains("tty-in"), "{output:?}");

    // Without -t, no terminal, even when berth exec itself runs on one.
    let command = agent.command(["exec", &id, "--", "sh", "-c", "test -t 1 || echo no-tty"]);
    let (code, output) = run_on_terminal(command, b"", TIMEOUT);
    assert_eq!((code, output.trim()), (0, "no-tty"));
}

#[test]
fn exec_picks_the_container_and_refuses_what_is_not_running() {
    let agent = Agent::start();
    let mut once = sh("once", "exit 0");
    once["essential"] = json!(false);
    let mut web = sh("web", UNTIL_TERM);
    web["environment"] = json!([{"name": "WHO", "value": "web-box"}]);
    let mut sidecar = sh("sidecar", UNTIL_TERM);
    sidecar["environment"] = json!([{"name": "WHO", "value": "sidecar-box"}]);
    let id = running(&agent, host_task("exec-pick", vec![web, sidecar, once]));

    let which = exec(
        &agent,
        &id,
        &["--container", "sidecar", "sh", "-c", "echo $WHO"],
    )
    .ok("--container");
    assert_eq!(which.stdout, "sidecar-box\n");
    let which = exec(
        &agent,
        &id,
        &["--container", "web", "sh", "-c", "echo $WHO"],
    )
    .ok("--container");
    assert_eq!(which.stdout, "web-box\n");

    let unnamed = exec(&agent, &id, &["hostname"]);
    assert_exit(&unnamed, 125, "no --container in a task of three");
    assert!(
        unnamed.stderr.contains("web, sidecar, once") && unnamed.stderr.contains("--container"),
        "{}",
        unnamed.stderr
    );
    let unknown = exec(&agent, &id, &["--container", "db", "hostname"]);
    assert_exit(&unknown, 125, "an unknown container");
    assert!(unknown.stderr.contains("\"db\""), "{}", unknown.stderr);

    let deadline = Instant::now() + TIMEOUT;
    loop {
        let task = agent.describe(&id);
        if berth_tests::agent::container(&task, "once")["lastStatus"] == "STOPPED" {
            break;
        }
        assert!(Instant::now() < deadline, "container once never stopped");
        thread::sleep(Duration::from_millis(100));
    }
    let exited = exec(&agent, &id, &["--container", "once", "true"]);
    assert_exit(&exited, 125, "a container that exited");
    assert!(exited.stderr.contains("not running"), "{}", exited.stderr);

    let nothing = exec(&agent, "0123456789abcdef0123456789abcdef", &["true"]);
    assert_exit(&nothing, 125, "an unknown task");
    assert!(
        nothing.stderr.contains("does not exist"),
        "{}",
        nothing.stderr
    );

    agent.stop_task(&id, "done");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
    let stopped = exec(&agent, &id, &["--container", "web", "true"]);
    assert_exit(&stopped, 125, "a stopped task");
    assert!(stopped.stderr.contains("STOPPED"), "{}", stopped.stderr);
    assert_eq!(
        stopped.stderr.trim().lines().count(),
        1,
        "{}",
        stopped.stderr
    );
}

/// `berth --output json stats --no-stream ID`: its rows by container name.
fn stats_rows(agent: &Agent, id: &str) -> Vec<Value> {
    let rows = agent.json(&["stats", "--no-stream", id]);
    rows.as_array().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], container: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["container"] == container)
        .unwrap_or_else(|| panic!("no row of {container} in {rows:#?}"))
}

/// What the task's containers run: one busy loop, and three sleeping processes.
fn busy_and_idle(family: &str) -> Value {
    let mut idle = sh("idle", "sleep 1000 & sleep 1000 & exec sleep 1000");
    idle["memory"] = json!(48);
    host_task(
        family,
        vec![
            sh("busy", "trap 'exit 0' TERM; while true; do :; done"),
            idle,
        ],
    )
}

#[test]
fn stats_figures_equal_the_cgroup_files() {
    let agent = Agent::start();
    let id = running(&agent, busy_and_idle("stats"));
    let busy = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/busy"));
    let idle = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/idle"));
    let deadline = Instant::now() + TIMEOUT;
    while idle.pids_current() != 3 {
        assert!(Instant::now() < deadline, "idle never had 3 processes");
        thread::sleep(Duration::from_millis(100));
    }

    let (cpu_before, at_before) = (busy.cpu_usage(), Instant::now());
    let rows = stats_rows(&agent, &id);
    let (cpu_after, at_after) = (busy.cpu_usage(), Instant::now());
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for (name, cgroup) in [("busy", &busy), ("idle", &idle)] {
        let r = row(&rows, name);
        assert_eq!(r["task"], id.as_str());
        assert_eq!(
            r["memoryLimitBytes"],
            cgroup.memory_limit(),
            "{name}: {r:#}"
        );
        assert_eq!(r["pids"], cgroup.pids_current(), "{name}: {r:#}");
        assert_eq!(r["oomKills"], cgroup.oom_kills(), "{name}: {r:#}");
        let usage = r["memoryUsageBytes"].as_u64().unwrap_or(0);
        let expected = cgroup.memory_usage() - cgroup.memory_inactive_file();
        assert!(
            usage.abs_diff(expected) <= 512 * 1024,
            "{name}: memory usage {usage}, the cgroup says {expected}"
        );
        assert!(usage > 0, "{name}: {r:#}");
        let percent = r["memoryPercent"].as_f64().unwrap_or(-1.0);
        let expected = usage as f64 / cgroup.memory_limit() as f64 * 100.0;
        assert!(
            (percent - expected).abs() < 0.01,
            "{name}: {percent} vs {expected}"
        );
    }
    assert_eq!(row(&rows, "busy")["memoryLimitBytes"], 64 << 20);
    assert_eq!(row(&rows, "idle")["memoryLimitBytes"], 48 << 20);
    assert_eq!(row(&rows, "idle")["pids"], 3);
    let used = row(&rows, "busy")["cpuUsageNs"].as_u64().unwrap_or(0) as u128;
    assert!(
        (cpu_before.as_nanos()..=cpu_after.as_nanos()).contains(&used),
        "busy CPU time {used} ns, outside what the cgroup said around it: {cpu_before:?}..{cpu_after:?}"
    );
    let busy_cpu = row(&rows, "busy")["cpuPercent"].as_f64().unwrap_or(0.0);
    let idle_cpu = row(&rows, "idle")["cpuPercent"].as_f64().unwrap_or(100.0);
    // One core kept busy is 100%; a shared two-core test host gives it less at times, so
    // the figure is held against what the cgroup counted over the same second or so.
    let measured = (cpu_after - cpu_before).as_secs_f64() / (at_after - at_before).as_secs_f64();
    let measured = measured * 100.0;
    assert!(
        (20.0..=105.0).contains(&busy_cpu) && (busy_cpu - measured).abs() < 30.0,
        "busy loop at {busy_cpu}%, the cgroup counted {measured:.1}% around it"
    );
    assert!(idle_cpu < 5.0, "sleeping container at {idle_cpu}%");

    // The table a person reads.
    let table = agent.berth(["stats", "--no-stream", &id]).ok("stats table");
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in [
        "TASK",
        "CONTAINER",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
        "OOM KILLS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let idle_line = table
        .stdout
        .lines()
        .find(|l| l.contains(" idle "))
        .unwrap_or_else(|| panic!("no idle row in {}", table.stdout));
    assert!(idle_line.contains("/ 48.00MiB"), "{idle_line}");

    // Without a task named: every running container, this task's among them.
    let all = agent.json(&["stats", "--no-stream"]);
    let mine = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["task"] == id.as_str())
        .count();
    assert_eq!(mine, 2, "{all:#}");
    let nothing = agent.berth(["stats", "--no-stream", "0123456789abcdef0123456789abcdef"]);
    assert_ne!(nothing.code, 0);
    assert!(
        nothing.stderr.contains("does not exist"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn stats_stream_a_table_every_second() {
    let agent = Agent::start();
    let id = running(
        &agent,
        host_task("stats-stream", vec![sh("app", UNTIL_TERM)]),
    );
    let mut child = agent
        .command(["--output", "json", "stats", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn berth stats");
    thread::sleep(Duration::from_millis(3500));
    let _ = child.kill();
    let output = child.wait_with_output().expect("berth stats output");
    let frames: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        (2..=4).contains(&frames.len()),
        "{} frames in 3.5 s",
        frames.len()
    );
    for f in &frames {
        assert_eq!(f[0]["container"], "app", "{f}");
    }
}

#[test]
fn stats_count_oom_kills_of_a_running_container() {
    let agent = Agent::start();
    // tail of /dev/zero buffers one endless line: the OOM killer takes it, the shell lives.
    let mut hog = sh("hog", &format!("tail /dev/zero; {UNTIL_TERM}"));
    hog["memory"] = json!(16);
    let id = running(&agent, host_task("stats-oom", vec![hog]));
    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/hog"));
    let deadline = Instant::now() + TIMEOUT;
    while cgroup.oom_kills() == 0 {
        assert!(Instant::now() < deadline, "tail was never OOM-killed");
        thread::sleep(Duration::from_millis(100));
    }
    let rows = stats_rows(&agent, &id);
    let kills = row(&rows, "hog")["oomKills"].as_u64().unwrap_or(0);
    assert!(kills >= 1, "{rows:#?}");
    assert_eq!(kills, cgroup.oom_kills());
    assert_eq!(agent.describe(&id)["lastStatus"], "RUNNING");
}

/// The samples of `/metrics` as (name, labels, value).
fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let (name, labels) = series
                .split_once('{')
                .map(|(n, rest)| (n, rest.trim_end_matches('}')))
                .unwrap_or((series, ""));
            (name.to_string(), labels.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn metrics_are_prometheus_text_with_the_same_values() {
    let agent = Agent::start();
    let id = running(&agent, busy_and_idle("metrics"));
    let idle = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/idle"));
    let busy = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/busy"));
    let deadline = Instant::now() + TIMEOUT;
    while idle.pids_current() != 3 {
        assert!(Instant::now() < deadline, "idle never had 3 processes");
        thread::sleep(Duration::from_millis(100));
    }

    let cpu_before = busy.cpu_usage();
    let (headers, body) = agent.http_get("/metrics");
    let cpu_after = busy.cpu_usage();
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers
            .to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let names = [
        ("berth_container_cpu_usage_seconds_total", "counter"),
        ("berth_container_memory_usage_bytes", "gauge"),
        ("berth_container_memory_limit_bytes", "gauge"),
        ("berth_container_pids", "gauge"),
        ("berth_container_oom_kills_total", "counter"),
    ];
    for (name, kind) in names {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "no HELP of {name}:\n{body}"
        );
        assert!(
            body.contains(&format!("# TYPE {name} {kind}\n")),
            "no TYPE of {name}:\n{body}"
        );
    }
    let all = samples(&body);
    for (_, _, value) in &all {
        assert!(value.parse::<f64>().is_ok(), "not a number: {value}");
    }
    let value = |name: &str, container: &str| -> f64 {
        let labels = format!("task=\"{id}\",container=\"{container}\",family=\"metrics\"");
        all.iter()
            .find(|(n, l, _)| n == name && *l == labels)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{body}"))
            .2
            .parse()
            .unwrap_or(f64::NAN)
    };
    assert_eq!(
        value("berth_container_memory_limit_bytes", "idle"),
        idle.memory_limit() as f64
    );
    assert_eq!(
        value("berth_container_memory_limit_bytes", "busy"),
        (64 << 20) as f64
    );
    assert_eq!(value("berth_container_pids", "idle"), 3.0);
    assert_eq!(
        value("berth_container_pids", "busy"),
        busy.pids_current() as f64
    );
    assert_eq!(
        value("berth_container_oom_kills_total", "idle"),
        idle.oom_kills() as f64
    );
    let usage = value("berth_container_memory_usage_bytes", "idle");
    let expected = (idle.memory_usage() - idle.memory_inactive_file()) as f64;
    assert!(
        (usage - expected).abs() <= 512.0 * 1024.0,
        "{usage} vs {expected}"
    );
    let cpu = value("berth_container_cpu_usage_seconds_total", "busy");
    assert!(
        cpu_before.as_secs_f64() - 1e-6 <= cpu && cpu <= cpu_after.as_secs_f64() + 1e-6,
        "busy CPU {cpu} s, the cgroup said {cpu_before:?}..{cpu_after:?}"
    );
    assert!(
        all.iter()
            .any(|(n, l, v)| n == "berth_tasks" && l == "status=\"RUNNING\"" && v != "0"),
        "{body}"
    );
}

#[test]
fn exec_and_stats_reach_containers_while_the_agent_is_down() {
    let mut agent = Agent::start();
    let mut app = sh("app", "sleep 1000 & exec sleep 1000");
    app["environment"] = json!([{"name": "WHO", "value": "still-here"}]);
    let id = running(&agent, host_task("agent-down", vec![app]));
    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/app"));
    agent.kill_agent();

    let out = exec(&agent, &id, &["--", "sh", "-c", "echo $WHO"]).ok("exec without the agent");
    assert_eq!(out.stdout, "still-here\n");
    let rows = stats_rows(&agent, &id);
    let r = row(&rows, "app");
    assert_eq!(r["pids"], cgroup.pids_current(), "{r:#}");
    assert_eq!(r["memoryLimitBytes"], cgroup.memory_limit(), "{r:#}");
    agent.restart();
}
