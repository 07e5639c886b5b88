//! The berth agent under test: `berth agent` on a state dir, socket and run dir of its own,
//! with the busybox image imported, driven through the `berth` command line as users do.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tempfile::TempDir;

use crate::{ContainerCgroup, Output};

/// Where every task's cgroup lives, in each hierarchy.
pub const TASK_CGROUP_ROOT: &str = "/berth/task";

/// How long the agent suites wait for a task to reach a status: long enough for a task
/// to start or stop on a loaded two-core host.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A container script that runs until SIGTERM, and then exits 0 at once.
pub const UNTIL_TERM: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// A busybox container running `sh -c script`, essential, 64 MiB.
pub fn sh(name: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "image": "busybox:latest",
        "essential": true,
        "memory": 64,
        "command": ["sh", "-c", script],
    })
}

/// A task definition on the host's network: the mode that needs no bridge and runs on
/// every cgroup layout, the VM's included.
pub fn host_task(family: &str, containers: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "family": family,
        "networkMode": "host",
        "containerDefinitions": containers,
    })
}

/// How long the drop lets tasks stop on their own before it kills what is left.
const STOP_GRACE: Duration = Duration::from_secs(4);

/// A running `berth agent` and its private directories, all under one temporary
/// directory. Dropping it stops the tasks still running, kills the daemon and every
/// supervisor of its state dir, and removes the directory.
#[derive(Debug)]
pub struct Agent {
    bin: PathBuf,
    dir: TempDir,
    daemon: Option<Child>,
    /// More `berth agent` arguments, for every (re)start.
    daemon_args: Vec<String>,
}

impl Agent {
    /// A fresh state dir with busybox imported as `busybox:latest`, and the daemon
    /// serving on its socket.
    pub fn start() -> Agent {
        let mut agent = Agent::stopped();
        agent.restart();
        agent
    }

    /// The same, with more `berth agent` arguments (such as `--bridge NAME`).
    pub fn start_with(args: &[&str]) -> Agent {
        let mut agent = Agent::stopped();
        agent.daemon_args = args.iter().map(|a| a.to_string()).collect();
        agent.restart();
        agent
    }

    /// The same, but without starting the daemon (for `berth run` and for what commands
    /// say when no agent answers).
    pub fn stopped() -> Agent {
        let bin = crate::berth_bin();
        let supervisor = bin.with_file_name("berth-supervisor");
        assert!(
            supervisor.is_file(),
            "{}: not built; run `cargo build -p berth-agent` first",
            supervisor.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-agent-")
            .tempdir()
            .expect("create a directory for the agent");
        let agent = Agent {
            bin,
            dir,
            daemon: None,
            daemon_args: Vec::new(),
        };
        let layout = &crate::busybox().oci_layout;
        agent
            .berth([
                OsStr::new("image"),
                "import".as_ref(),
                layout.as_os_str(),
                "--tag".as_ref(),
                "busybox:latest".as_ref(),
            ])
            .ok(&format!("berth image import {}", layout.display()));
        agent
    }

    /// The `berth` binary under test.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `<state dir>/tasks/ID`: the task's files.
    pub fn task_dir(&self, id: &str) -> PathBuf {
        self.state_dir().join("tasks").join(id)
    }

    /// The json-file log of one container of a task.
    pub fn log_path(&self, id: &str, container: &str) -> PathBuf {
        self.task_dir(id)
            .join("logs")
            .join(format!("{container}.log"))
    }

    /// What the daemons of this agent wrote to stderr, across restarts.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// `berth --state-dir DIR --socket SOCK ARGS...`, ready to run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.bin);
        command
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .env_remove("BERTH_STATE_DIR")
            .env_remove("BERTH_SOCKET")
            .stdin(Stdio::null());
        command
    }

    /// Runs `berth ARGS...` against this agent and captures its output.
    pub fn berth<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        Output::from_std(output)
    }

    /// `berth --output json ARGS...` parsed; panics unless it exits 0 with JSON.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.berth(&all).ok(&format!("berth {}", args.join(" ")));
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("berth {}: not JSON ({e}): {}", args.join(" "), out.stdout))
    }

    /// Writes `text` to a file of this test (a task definition, say) and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// `register-task-definition FILE` of `definition`; the `taskDefinition` it returns.
    #[track_caller]
    pub fn register(&self, definition: &Value) -> Value {
        let path = self.file(
            &format!("{}.json", crate::unique_name("taskdef")),
            &definition.to_string(),
        );
        let path = path.to_string_lossy().into_owned();
        let mut response = self.json(&["register-task-definition", &path]);
        response["taskDefinition"].take()
    }

    /// `run-task --task-definition DEFINITION`: the id of the one task it starts.
    #[track_caller]
    pub fn run_task(&self, definition: &str) -> String {
        let response = self.json(&["run-task", "--task-definition", definition]);
        let tasks = response["tasks"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            tasks.len(),
            1,
            "run-task {definition}: expected one task: {response:#}"
        );
        task_id(&tasks[0])
    }

    /// `GET PATH` on the agent's socket, as `curl --unix-socket` sends it: the response's
    /// status line and headers, and its body.
    #[track_caller]
    pub fn http_get(&self, path: &str) -> (String, String) {
        use std::io::{Read, Write};
        let socket = self.socket();
        let mut stream = UnixStream::connect(&socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set a read timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: berth\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("send GET {path}: {e}"));
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .unwrap_or_else(|e| panic!("read the answer to GET {path}: {e}"));
        let text = String::from_utf8_lossy(&response).into_owned();
        let (headers, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("GET {path}: no header end in {text:?}"));
        assert!(
            !headers
                .to_lowercase()
                .contains("transfer-encoding: chunked"),
            "GET {path}: a chunked answer: {headers}"
        );
        (headers.to_string(), body.to_string())
    }

    /// `describe-tasks ID`: the task; panics when it is reported missing.
    #[track_caller]
    pub fn describe(&self, id: &str) -> Value {
        let mut response = self.json(&["describe-tasks", id]);
        let task = response["tasks"][0].take();
        assert!(task.is_object(), "describe-tasks {id}: {response:#}");
        task
    }

    /// Polls describe-tasks until the task's lastStatus is `status`, and returns the task.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let task = self.describe(id);
            if task["lastStatus"] == status {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not {status} after {timeout:?}: {task:#}\nagent log:\n{}",
                self.daemon_log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `stop-task ID --reason REASON`, which must succeed.
    #[track_caller]
    pub fn stop_task(&self, id: &str, reason: &str) {
        self.berth(["stop-task", id, "--reason", reason])
            .ok(&format!("stop-task {id}"));
    }

    /// SIGKILLs the daemon; its tasks' supervisors go on.
    pub fn kill_agent(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }

    /// Starts the daemon (killing the running one first), and waits until its socket
    /// answers.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill_agent();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("open the agent's log");
        let run_dir = self.run_dir();
        let daemon = self
            .command([
                OsStr::new("agent"),
                "--run-dir".as_ref(),
                run_dir.as_os_str(),
            ])
            .args(&self.daemon_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} agent: {e}", self.bin.display()));
        self.daemon = Some(daemon);
        let socket = self.socket();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(daemon) = &mut self.daemon {
                if let Ok(Some(status)) = daemon.try_wait() {
                    panic!("berth agent exited ({status}): {}", self.daemon_log());
                }
            }
            if UnixStream::connect(&socket).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "berth agent: no answer on {} after 10 s: {}",
                socket.display(),
                self.daemon_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The task's status.json, as its supervisor last wrote it.
    pub fn status_file(&self, id: &str) -> Value {
        let path = self.task_dir(id).join("status.json");
        fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    }

    /// The pid of the task's supervisor, from its status.json.
    #[track_caller]
    pub fn supervisor_pid(&self, id: &str) -> i32 {
        let status = self.status_file(id);
        status["supervisor_pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("task {id}: no supervisor_pid in {status}"))
    }

    /// The host pid of the task's container `name`, from its supervisor's status.json.
    #[track_caller]
    pub fn container_pid(&self, id: &str, name: &str) -> i32 {
        let status = self.status_file(id);
        status["containers"][name]["pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("task {id}: no pid of container {name} in {status:#}"))
    }

    /// The running supervisors of this agent's tasks: (pid, task id).
    pub fn supervisors(&self) -> Vec<(i32, String)> {
        let tasks = self.state_dir().join("tasks");
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if is_zombie(pid) {
                continue;
            }
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_supervisor = args
                .first()
                .is_some_and(|arg0| arg0.ends_with(b"berth-supervisor"));
            if !is_supervisor {
                continue;
            }
            let task = args.iter().find_map(|arg| {
                let path = Path::new(OsStr::from_bytes(arg));
                path.strip_prefix(&tasks)
                    .ok()
                    .map(|id| id.to_string_lossy().into_owned())
            });
            if let Some(task) = task {
                found.push((pid, task));
            }
        }
        found
    }

    /// What the runtime keeps under `<run dir>/runtime` for the task's containers.
    pub fn runtime_state_of(&self, id: &str) -> Vec<PathBuf> {
        let mut state = Vec::new();
        crate::runtime::find_named(&self.run_dir().join("runtime"), id, 4, &mut state);
        state
    }

    /// Asserts what a user checks once a task is STOPPED: no cgroup of the task in any
    /// hierarchy, no mount under its directory, no process in its cgroups or of its
    /// supervisor, no runtime state under `<run dir>/runtime`.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}"));
        let dirs = cgroup.existing_dirs();
        assert!(dirs.is_empty(), "task {id}: cgroups left behind: {dirs:?}");

        let task_dir = self.task_dir(id);
        let mounts: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|mount| mount.starts_with(&task_dir))
            .collect();
        assert!(
            mounts.is_empty(),
            "task {id}: mounts left under {}: {mounts:?}",
            task_dir.display()
        );

        let in_cgroup = processes_in_cgroup(&format!("{TASK_CGROUP_ROOT}/{id}"));
        assert!(
            in_cgroup.is_empty(),
            "task {id}: processes left in its cgroup: {in_cgroup:?}"
        );
        // The supervisor writes STOPPED as its last act, then exits.
        crate::wait_for(
            &format!("the supervisor of task {id} to exit"),
            Duration::from_secs(3),
            || (!self.supervisors().iter().any(|(_, task)| task == id)).then_some(()),
        );

        let state = self.runtime_state_of(id);
        assert!(
            state.is_empty(),
            "task {id}: runtime state left under {}: {state:?}",
            self.run_dir().join("runtime").display()
        );
    }

    /// Stops what is still running: stop-task through the daemon when it runs, then, with
    /// the daemon gone, SIGTERM to every supervisor left (what stop-task sends), SIGKILL
    /// to the processes of tasks that do not stop in time, and at last to their
    /// supervisors.
    fn stop_everything(&mut self) {
        if self.daemon.is_some() {
            let out = self.berth(["--output", "json", "list-tasks"]);
            let running: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
            for arn in running["taskArns"].as_array().into_iter().flatten() {
                if let Some(arn) = arn.as_str() {
                    let _ = self.berth(["stop-task", arn, "--reason", "test over"]);
                }
            }
        }
        self.kill_agent();
        let started = Instant::now();
        let mut terminated = Vec::new();
        loop {
            let supervisors = self.supervisors();
            let waited = started.elapsed();
            if supervisors.is_empty() || waited > 3 * STOP_GRACE {
                return;
            }
            for (pid, id) in supervisors {
                if waited < STOP_GRACE {
                    if !terminated.contains(&pid) {
                        signal(pid, Signal::SIGTERM);
                        terminated.push(pid);
                    }
                } else if waited < 2 * STOP_GRACE {
                    // The supervisor sees its containers die and cleans up after them.
                    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}"));
                    for process in cgroup.procs_below() {
                        signal(process, Signal::SIGKILL);
                    }
                } else {
                    signal(pid, Signal::SIGKILL);
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn signal(pid: i32, signal: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Best effort throughout: a panic here would hide the test's own failure.
        self.stop_everything();
        let mut leftover: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|mount| mount.starts_with(self.dir.path()))
            .collect();
        leftover.sort_by_key(|mount| std::cmp::Reverse(mount.as_os_str().len()));
        for mount in leftover {
            let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A task's id from its describe-tasks or run-task JSON (the last part of its ARN).
#[track_caller]
pub fn task_id(task: &Value) -> String {
    let arn = task["taskArn"]
        .as_str()
        .unwrap_or_else(|| panic!("no taskArn in {task}"));
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// The container called `name` of a task's JSON.
#[track_caller]
pub fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name:?} in {task:#}"))
}

/// Every mount point in this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|escaped| PathBuf::from(escaped.replace("\\040", " ")))
        .collect()
}

/// Processes, anywhere on the host, whose cgroup in some hierarchy is `cgroup` or below.
pub fn processes_in_cgroup(cgroup: &str) -> Vec<i32> {
    pids_in_cgroup(cgroup)
        .into_iter()
        .filter(|&pid| !is_zombie(pid))
        .collect()
}

/// Zombies (exited, not yet reaped) whose cgroup is `cgroup` or below.
pub fn zombies_in_cgroup(cgroup: &str) -> Vec<i32> {
    pids_in_cgroup(cgroup)
        .into_iter()
        .filter(|&pid| is_zombie(pid))
        .collect()
}

fn pids_in_cgroup(cgroup: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        let inside = text.lines().any(|line| {
            let path = line.splitn(3, ':').nth(2).unwrap_or_default();
            path == cgroup || path.starts_with(&format!("{cgroup}/"))
        });
        if inside {
            found.push(pid);
        }
    }
    found
}

/// The command line of `pid`, its arguments joined by spaces; empty when it is gone.
pub fn command_line(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    args.join(" ")
}

/// The children of `parent` that exited and were never waited for.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&pid| is_zombie(pid) && parent_of(pid) == Some(parent))
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesized command name: state, then the parent's pid.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is alive (and not a zombie).
pub fn is_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z")
}

/// The size of a file, 0 when it does not exist.
pub fn file_len(path: &Path) -> u64 {
    File::open(path)
        .and_then(|file| file.metadata())
        .map_or(0, |meta| meta.len())
}
