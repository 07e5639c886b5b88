//! The per-task supervisor: a small process, started by the agent and detached from it,
//! that creates the task's containers through the runtime library in dependsOn order,
//! owns their stdout and stderr (json-file logs), waits for their exits, stops them with
//! SIGTERM then SIGKILL after their stopTimeout, runs their health checks, and writes
//! every change to `status.json` atomically. The agent may die and come back at any time: the supervisor
//! and the containers go on, and the status file holds the truth.

pub mod health;
pub mod logs;
mod memory;
pub mod sandbox;
pub mod task;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::cgroups::{Cgroup, Host};
use berth_runtime::container::ExecOptions;
use berth_runtime::container::state::{now_rfc3339, write_atomic, write_volatile};
use berth_runtime::process::terminal::ConsoleListener;
use berth_runtime::{Container, CreateOptions};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::net::{self, TaskNetwork};
use health::{CheckResult, ContainerHealth, Health, Judging};
use logs::LogFile;
use task::{
    Condition, ContainerSpec, ContainerStatus, STATUS_FILE, STOP_FILE, StopRequest, TASK_FILE,
    TaskSpec, TaskStatus,
};

/// The sandbox's cgroup below the task's: a name no container can have (container names
/// are letters, digits, `-` and `_`).
pub const SANDBOX_CGROUP: &str = ".sandbox";

pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Stopped,
}

struct Member {
    spec: ContainerSpec,
    phase: Phase,
    container: Option<Container>,
    pid: Option<i32>,
    exit_code: Option<i32>,
    /// stdout and stderr read ends, until they reach end of file; on a pty, its master
    /// is the one stream (stdout).
    streams: [Option<OwnedFd>; 2],
    /// The write end of an `interactive` container's stdin, held open and never written.
    stdin: Option<OwnedFd>,
    log: Option<LogFile>,
    /// When SIGKILL follows the SIGTERM of a stop.
    kill_at: Option<Instant>,
    status: ContainerStatus,
    health: ContainerHealth,
    /// When the container started, for the health check's start period.
    started: Option<Instant>,
    /// When the next health check runs, while the container runs and has one.
    check_due: Option<Instant>,
    check: Option<RunningCheck>,
}

/// A health check process in the container, the supervisor's child.
struct RunningCheck {
    pid: i32,
    kill_at: Instant,
}

struct Supervisor {
    dir: PathBuf,
    task: TaskSpec,
    status: TaskStatus,
    members: Vec<Member>,
    task_cgroup: Option<Cgroup>,
    sandbox: Option<i32>,
    /// Sockets holding the task's host ports.
    held_ports: Vec<OwnedFd>,
    /// CNI ADD was tried, so DEL is owed.
    connected: bool,
    stopping: bool,
    /// Whether the pages of start-up were released once every container had started.
    released_startup_pages: bool,
    /// When the containers began to wait for their dependencies, for startTimeout.
    began: Instant,
}

/// Runs the task in `task_dir` to its end; the return value is the process exit code.
pub fn run(task_dir: &Path) -> i32 {
    let text = match std::fs::read(task_dir.join(TASK_FILE)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "berth-supervisor: read {}: {e}",
                task_dir.join(TASK_FILE).display()
            );
            return 2;
        }
    };
    let task: TaskSpec = match serde_json::from_slice(&text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "berth-supervisor: {}: {e}",
                task_dir.join(TASK_FILE).display()
            );
            return 2;
        }
    };
    // SAFETY: prctl with integer arguments: orphans of the containers come to us.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    if mask.thread_block().is_err() {
        return 2;
    }
    let Ok(sigfd) = SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    ) else {
        return 2;
    };
    let mut sup = Supervisor::new(task_dir, task);
    sup.save();
    if let Err(reason) = sup.prepare() {
        sup.fail_to_start(&reason);
    }
    sup.began = Instant::now();
    sup.event_loop(&sigfd);
    sup.teardown();
    0
}

impl Supervisor {
    fn new(dir: &Path, task: TaskSpec) -> Supervisor {
        let members = task
            .containers
            .iter()
            .map(|c| Member {
                spec: c.clone(),
                phase: Phase::Pending,
                container: None,
                pid: None,
                exit_code: None,
                streams: [None, None],
                stdin: None,
                log: None,
                kill_at: None,
                health: ContainerHealth::default(),
                started: None,
                check_due: None,
                check: None,
                status: ContainerStatus {
                    last_status: "PENDING".into(),
                    runtime_id: runtime_id(&task.task_id, &c.name),
                    ..Default::default()
                },
            })
            .collect();
        let status = TaskStatus {
            last_status: "PENDING".into(),
            supervisor_pid: std::process::id(),
            ..Default::default()
        };
        Supervisor {
            dir: dir.to_path_buf(),
            task,
            status,
            members,
            task_cgroup: None,
            sandbox: None,
            held_ports: Vec::new(),
            connected: false,
            stopping: false,
            released_startup_pages: false,
            began: Instant::now(),
        }
    }

    /// The task cgroup and the namespace holder, before any container.
    fn prepare(&mut self) -> Result<(), String> {
        let host = Host::detect().map_err(|e| e.to_string())?;
        let cg = Cgroup::new(
            &host,
            Some(Path::new(&self.task.task_cgroup)),
            &self.task.task_id,
        )
        .map_err(|e| e.to_string())?;
        cg.create().map_err(|e| e.to_string())?;
        self.task_cgroup = Some(cg.clone());
        if let Some(res) = &self.task.task_resources {
            cg.apply(res).map_err(|e| e.to_string())?;
        }
        if !self.task.shared_namespaces.is_empty() {
            // The holder counts against the task, like ECS's pause container, from a
            // cgroup of its own: on cgroup v2 a cgroup with processes cannot hand its
            // controllers down to the containers' cgroups.
            let sandbox_cg = Cgroup::new(
                &host,
                Some(&Path::new(&self.task.task_cgroup).join(SANDBOX_CGROUP)),
                &self.task.task_id,
            )
            .and_then(|c| c.create().map(|()| c))
            .map_err(|e| format!("sandbox cgroup: {e}"))?;
            let pid = sandbox::start(
                &self.task.shared_namespaces,
                self.task.hostname.as_deref(),
                &sandbox_cg,
            )?;
            self.sandbox = Some(pid);
        }
        if let (Some(net), Some(pid)) = (self.task.network.clone(), self.sandbox) {
            self.connect(&net, pid)?;
        }
        Ok(())
    }

    /// Holds the task's host ports, then puts the sandbox's network namespace on the
    /// bridge with its port mappings.
    fn connect(&mut self, net: &TaskNetwork, sandbox: i32) -> Result<(), String> {
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos().into())
                .unwrap_or(0);
        let (bindings, held) = net::ports::reserve(&net.ports, net.config.host_ports, seed)
            .map_err(|e| e.to_string())?;
        self.held_ports = held;
        let netns = PathBuf::from(format!("/proc/{sandbox}/ns/net"));
        // The ports are on record before the address, so that whoever releases the task
        // finds them.
        self.status.network = Some(net::NetworkStatus {
            mode: net.mode.clone(),
            bindings: bindings.clone(),
            ..Default::default()
        });
        self.save();
        self.connected = true;
        let status =
            net::bridge::attach(&self.task.task_id, &net.config, &net.mode, &netns, bindings)
                .map_err(|e| e.to_string())?;
        if !status.bindings.is_empty() {
            // Connections from the host's loopback to a mapped port leave on the bridge
            // with a loopback source until masqueraded; the kernel drops those unless the
            // bridge allows them.
            route_localnet(&net.config.bridge)?;
            // On record first, so that whoever releases the task finds the address.
            self.status.network = Some(status.clone());
            self.save();
            net::nat::publish(&net.config.bridge, &status.ipv4, &status.bindings)
                .map_err(|e| e.to_string())?;
        }
        for m in &self.members {
            if let Some(hostname) = m.spec.spec.hostname().as_deref() {
                let hosts = self.dir.join(&m.spec.name).join("hosts");
                net::point_hostname(&hosts, hostname, &status.ipv4)
                    .map_err(|e| format!("{}: {e}", hosts.display()))?;
            }
        }
        self.status.network = Some(status);
        self.save();
        Ok(())
    }

    /// Host ports unpublished, then the veth and the address lease released.
    fn disconnect(&mut self) {
        let Some(net) = self.task.network.clone() else {
            return;
        };
        if !std::mem::take(&mut self.connected) {
            return;
        }
        let netns = self
            .sandbox
            .map(|pid| PathBuf::from(format!("/proc/{pid}/ns/net")));
        let status = self.status.network.clone().unwrap_or_default();
        let ipv4 = Some(status.ipv4.as_str()).filter(|ip| !ip.is_empty());
        if let Err(e) = net::release(
            &self.task.task_id,
            &net,
            &status.bindings,
            ipv4,
            netns.as_deref(),
        ) {
            eprintln!("berth-supervisor: task {}: {e}", self.task.task_id);
        }
        self.held_ports.clear();
    }

    fn fail_to_start(&mut self, reason: &str) {
        self.begin_stop("TaskFailedToStart", reason);
    }

    fn event_loop(&mut self, sigfd: &SignalFd) {
        loop {
            let started = !self.stopping && self.start_ready_containers();
            // The containers just started and the task's phase go out in one save, so
            // no reader sees every essential container RUNNING in a PENDING task.
            if self.promote_task() || started {
                self.save();
            }
            if !self.released_startup_pages
                && self.members.iter().all(|m| m.phase != Phase::Pending)
            {
                memory::release_startup_pages();
                self.released_startup_pages = true;
            }
            if self.members.iter().all(|m| m.phase != Phase::Running) && self.stopping {
                return;
            }
            if self.members.iter().all(|m| m.phase == Phase::Stopped) {
                return;
            }
            let timeout = self.next_deadline();
            let mut fds: Vec<nix::poll::PollFd> = vec![nix::poll::PollFd::new(
                sigfd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let mut which = Vec::new();
            for (i, m) in self.members.iter().enumerate() {
                for (s, fd) in m.streams.iter().enumerate() {
                    if let Some(fd) = fd {
                        fds.push(nix::poll::PollFd::new(
                            fd.as_fd(),
                            nix::poll::PollFlags::POLLIN,
                        ));
                        which.push((i, s));
                    }
                }
            }
            let ms = timeout
                .map(|d| d.as_millis().min(60_000) as u16)
                .unwrap_or(60_000u16);
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            for (k, (i, s)) in which.iter().enumerate() {
                if ready[k + 1] {
                    self.drain(*i, *s, false);
                }
            }
            if ready[0] {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    match info.ssi_signo as i32 {
                        libc::SIGCHLD => self.reap(),
                        _ => self.stop_requested(),
                    }
                }
            }
            self.kill_overdue();
            self.run_health_checks();
        }
    }

    /// The soonest of: a SIGKILL after a stop, a health check to start or to time out,
    /// a dependency wait to give up.
    fn next_deadline(&self) -> Option<Duration> {
        let now = Instant::now();
        self.members
            .iter()
            .flat_map(|m| {
                let waiting = (m.phase == Phase::Pending && !self.stopping)
                    .then(|| m.spec.start_timeout().map(|t| self.began + t))
                    .flatten();
                [
                    m.kill_at,
                    m.check_due,
                    m.check.as_ref().map(|c| c.kill_at),
                    waiting,
                ]
            })
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    /// Starts every pending container whose dependencies are met; fails the task when a
    /// dependency can no longer be met or a container cannot start. True when it started
    /// any and has not saved since.
    fn start_ready_containers(&mut self) -> bool {
        let mut started = false;
        loop {
            let mut started_any = false;
            for i in 0..self.members.len() {
                if self.members[i].phase != Phase::Pending {
                    continue;
                }
                match self.dependencies_met(i) {
                    Ok(true) => {}
                    Ok(false) => match self.members[i].spec.start_timeout() {
                        Some(t) if self.began.elapsed() >= t => {
                            let reason = self.start_timed_out(i, t);
                            self.mark_never_started(i, &reason);
                            self.begin_stop("TaskFailedToStart", &reason);
                            return false;
                        }
                        _ => continue,
                    },
                    Err(reason) => {
                        self.mark_never_started(i, &reason);
                        self.begin_stop("TaskFailedToStart", &reason);
                        return false;
                    }
                }
                if let Err(e) = self.start_member(i) {
                    let reason = format!("CannotStartContainerError: {e}");
                    self.mark_never_started(i, &reason);
                    self.begin_stop("TaskFailedToStart", &reason);
                    return false;
                }
                started_any = true;
                started = true;
            }
            if !started_any {
                return started;
            }
        }
    }

    fn dependencies_met(&self, i: usize) -> Result<bool, String> {
        for dep in &self.members[i].spec.depends_on {
            if !self.dependency_met(i, dep)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether container `i`'s dependency `dep` is met; an error when it never can be.
    fn dependency_met(&self, i: usize, dep: &task::Dependency) -> Result<bool, String> {
        let Some(d) = self.members.iter().find(|m| m.spec.name == dep.container) else {
            return Err(format!("dependsOn: no container {:?}", dep.container));
        };
        let met = match dep.condition {
            Condition::Start => d.phase != Phase::Pending,
            Condition::Complete => d.phase == Phase::Stopped,
            Condition::Success => {
                if d.phase == Phase::Stopped && d.exit_code != Some(0) {
                    return Err(format!(
                        "dependency {:?} of container {:?} exited with {} instead of succeeding",
                        dep.container,
                        self.members[i].spec.name,
                        d.exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "no exit code".into())
                    ));
                }
                d.phase == Phase::Stopped
            }
            Condition::Healthy => {
                if d.phase == Phase::Stopped && d.pid.is_some() {
                    return Err(format!(
                        "dependency {:?} of container {:?} stopped before it was healthy",
                        dep.container, self.members[i].spec.name
                    ));
                }
                d.phase == Phase::Running && d.health.status == Health::Healthy
            }
        };
        if d.phase == Phase::Stopped
            && d.pid.is_none()
            && matches!(dep.condition, Condition::Start | Condition::Healthy)
        {
            return Err(format!("dependency {:?} never started", dep.container));
        }
        Ok(met)
    }

    /// Why container `i` gave up waiting: its first dependency not met in time.
    fn start_timed_out(&self, i: usize, timeout: Duration) -> String {
        let spec = &self.members[i].spec;
        let unmet = spec
            .depends_on
            .iter()
            .find(|dep| !matches!(self.dependency_met(i, dep), Ok(true)));
        match unmet {
            Some(dep) => format!(
                "dependency {:?} of container {:?} was not {} within its startTimeout of {} s",
                dep.container,
                spec.name,
                condition_word(dep.condition),
                timeout.as_secs()
            ),
            None => format!(
                "the dependencies of container {:?} were not met within its startTimeout of {} s",
                spec.name,
                timeout.as_secs()
            ),
        }
    }

    fn start_member(&mut self, i: usize) -> Result<(), String> {
        let bundle = self.dir.join("containers").join(&self.members[i].spec.name);
        let rootfs = bundle.join("rootfs");
        // A restart finds its rootfs mounted.
        if self.members[i].started.is_none() {
            mount_rootfs(&self.members[i].spec, &bundle, &rootfs)?;
        }

        let mut spec = self.members[i].spec.spec.clone();
        if let Some(pid) = self.sandbox {
            fill_namespace_paths(&mut spec, pid);
        }
        let config = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
        write_volatile(&bundle.join("config.json"), &config).map_err(|e| e.to_string())?;

        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
        let log_path = logs.join(format!("{}.log", self.members[i].spec.name));
        let log = LogFile::open(
            &log_path,
            self.members[i].spec.log_max_size,
            self.members[i].spec.log_max_files,
        )
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;

        let id = self.members[i].status.runtime_id.clone();
        let mut opts = CreateOptions {
            id: id.clone(),
            bundle: bundle.clone(),
            ..Default::default()
        };
        let root = &self.task.runtime_root;
        let console = if self.members[i].spec.on_terminal() {
            std::fs::create_dir_all(root).map_err(|e| format!("create {}: {e}", root.display()))?;
            let path = root.join(format!(".console-{}-{i}", std::process::id()));
            let listener = ConsoleListener::bind(&path)
                .map_err(|e| format!("bind {}: {e}", path.display()))?;
            opts.console_socket = Some(path);
            Some(listener)
        } else {
            None
        };
        let (container, stdin, streams) = match console {
            // The init's stdio becomes the pty's slave; its master comes back on the
            // console socket while the container is created.
            Some(listener) => {
                let null = dev_null().ok_or("open /dev/null")?;
                let container = with_stdio(None, &null, &null, || Container::create(root, &opts))
                    .map_err(|e| e.to_string())?;
                let master = listener.receive().map_err(|e| {
                    let _ = container.delete(true);
                    format!("receive the container's pty: {e}")
                })?;
                (container, None, [Some(master), None])
            }
            None => {
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                let (stdin_r, stdin_w) = match self.members[i].spec.interactive {
                    true => pipe().map(|(r, w)| (Some(r), Some(w)))?,
                    false => (None, None),
                };
                // The init inherits this process's stdio: point it at the pipes for the
                // clone.
                let created = with_stdio(stdin_r.as_ref(), &out_w, &err_w, || {
                    Container::create(root, &opts)
                });
                let container = created.map_err(|e| e.to_string())?;
                (container, stdin_w, [Some(out_r), Some(err_r)])
            }
        };
        container.start().map_err(|e| e.to_string())?;
        let now = now_rfc3339();
        let m = &mut self.members[i];
        m.pid = Some(container.saved.pid);
        m.container = Some(container);
        m.phase = Phase::Running;
        m.streams = streams;
        m.stdin = stdin;
        m.log = Some(log);
        m.status.last_status = "RUNNING".into();
        m.status.pid = m.pid;
        m.status.started_at = Some(now);
        let started = Instant::now();
        m.started = Some(started);
        m.check_due = m
            .spec
            .health_check
            .as_ref()
            .map(|hc| started + Duration::from_secs(hc.interval_secs));
        Ok(())
    }

    /// Starts the health checks that are due and kills those past their timeout.
    fn run_health_checks(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if m.phase != Phase::Running {
                continue;
            }
            if let Some(check) = m.check.as_ref().filter(|c| c.kill_at <= now) {
                kill_check(check.pid);
                m.check = None;
                self.check_ended(i, CheckResult::TimedOut);
                continue;
            }
            let m = &mut self.members[i];
            if m.check.is_some() || m.check_due.is_none_or(|t| t > now) {
                continue;
            }
            m.check_due = None;
            let (Some(container), Some(hc)) = (&m.container, &m.spec.health_check) else {
                continue;
            };
            let opts = ExecOptions {
                args: hc.command.clone(),
                ..Default::default()
            };
            // The check's output is not kept: its exit code is the verdict.
            let spawned = match dev_null() {
                Some(null) => with_stdio(None, &null, &null, || container.spawn_exec(&opts)),
                None => container.spawn_exec(&opts),
            };
            match spawned {
                Ok(pid) => {
                    m.check = Some(RunningCheck {
                        pid,
                        kill_at: Instant::now() + Duration::from_secs(hc.timeout_secs),
                    });
                }
                Err(_) => self.check_ended(i, CheckResult::Failed),
            }
        }
    }

    /// Records a check's result, plans the next one, and saves when health changed.
    fn check_ended(&mut self, i: usize, result: CheckResult) {
        let m = &mut self.members[i];
        let Some(hc) = &m.spec.health_check else {
            return;
        };
        let judging = Judging {
            retries: hc.retries,
            start_period: Duration::from_secs(hc.start_period_secs),
        };
        let since_start = m.started.map(|t| t.elapsed()).unwrap_or_default();
        let interval = Duration::from_secs(hc.interval_secs);
        let changed = m.health.record(result, since_start, judging);
        if m.phase == Phase::Running && !self.stopping {
            m.check_due = Some(Instant::now() + interval);
        }
        if changed {
            m.status.health_status = m.health.status;
            self.update_task_health();
            self.save();
        }
    }

    fn update_task_health(&mut self) {
        self.status.health_status =
            health::task_health(self.members.iter().map(|m| health::Member {
                essential: m.spec.essential,
                has_check: m.spec.health_check.is_some(),
                status: m.health.status,
            }));
    }

    fn mark_never_started(&mut self, i: usize, reason: &str) {
        let m = &mut self.members[i];
        m.phase = Phase::Stopped;
        m.status.last_status = "STOPPED".into();
        m.status.reason = Some(reason.to_string());
        m.status.stopped_at = Some(now_rfc3339());
    }

    /// PENDING until every essential container runs, then RUNNING; true when it turned
    /// RUNNING now. The caller saves.
    fn promote_task(&mut self) -> bool {
        let ready = self.status.last_status == "PENDING"
            && !self.stopping
            && self
                .members
                .iter()
                .filter(|m| m.spec.essential)
                .all(|m| m.phase == Phase::Running);
        if ready {
            self.status.last_status = "RUNNING".into();
            self.status.started_at = Some(now_rfc3339());
        }
        ready
    }

    fn drain(&mut self, i: usize, s: usize, to_eof: bool) {
        let m = &mut self.members[i];
        let Some(fd) = &m.streams[s] else { return };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    if let Some(log) = &mut m.log {
                        let _ = log.flush_partial(s, &now_rfc3339());
                    }
                    m.streams[s] = None;
                    return;
                }
                Ok(n) => {
                    if let Some(log) = &mut m.log {
                        let _ = log.write(s, &buf[..n], &now_rfc3339());
                    }
                    if !to_eof {
                        return;
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN) => return,
                // A pty's master reads EIO once the container's side is closed: the end.
                Err(_) => {
                    if let Some(log) = &mut m.log {
                        let _ = log.flush_partial(s, &now_rfc3339());
                    }
                    m.streams[s] = None;
                    return;
                }
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(None::<nix::unistd::Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, c)) => (pid.as_raw(), c),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if Some(pid) == self.sandbox {
                self.sandbox = None;
                continue;
            }
            if let Some(i) = self
                .members
                .iter()
                .position(|m| m.check.as_ref().is_some_and(|c| c.pid == pid))
            {
                self.members[i].check = None;
                let result = if code == 0 {
                    CheckResult::Passed
                } else {
                    CheckResult::Failed
                };
                self.check_ended(i, result);
                continue;
            }
            let Some(i) = self
                .members
                .iter()
                .position(|m| m.pid == Some(pid) && m.phase == Phase::Running)
            else {
                continue;
            };
            self.container_exited(i, code);
        }
    }

    fn container_exited(&mut self, i: usize, code: i32) {
        let oom = self.members[i]
            .container
            .as_ref()
            .and_then(|c| c.saved.cgroup.as_ref())
            .and_then(|cg| cg.oom_kills().ok())
            .is_some_and(|n| n > 0);
        let m = &mut self.members[i];
        m.phase = Phase::Stopped;
        m.exit_code = Some(code);
        m.kill_at = None;
        m.check_due = None;
        if let Some(check) = m.check.take() {
            kill_check(check.pid);
        }
        m.status.last_status = "STOPPED".into();
        m.status.exit_code = Some(code);
        m.status.stopped_at = Some(now_rfc3339());
        if oom {
            m.status.reason = Some(OOM_REASON.into());
        }
        // What is left in the pipes belongs to the log; processes that still hold the
        // write end (orphans) are killed with the container below.
        if let Some(c) = m.container.take() {
            let _ = c.delete(true);
        }
        m.stdin = None;
        for s in 0..2 {
            self.drain(i, s, true);
        }
        if self.restart_due(i, code) {
            self.restart(i);
            return;
        }
        // An essential container's exit stops the task in the same save, so no reader
        // sees it STOPPED in a task that still runs.
        if self.members[i].spec.essential && !self.stopping {
            self.status.essential_exited = Some(self.members[i].spec.name.clone());
            self.begin_stop("EssentialContainerExited", ESSENTIAL_EXITED);
        } else {
            self.save();
        }
    }

    /// Whether container `i`'s restartPolicy restarts it after this exit.
    fn restart_due(&self, i: usize, code: i32) -> bool {
        let m = &self.members[i];
        let ran = m.started.map(|t| t.elapsed()).unwrap_or_default();
        m.spec
            .restart_policy
            .as_ref()
            .is_some_and(|p| p.restarts(code, ran, self.stopping))
    }

    /// Starts container `i` again in its own rootfs (what it wrote is kept, as with
    /// `docker restart`), under the same runtime id, logging to the same file. Its health
    /// starts over. If it cannot start, it stops as if it had no policy.
    fn restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        let fresh = ContainerStatus {
            restart_count: m.status.restart_count + 1,
            runtime_id: m.status.runtime_id.clone(),
            ..ContainerStatus::default()
        };
        let exited = std::mem::replace(&mut m.status, fresh);
        m.health = ContainerHealth::default();
        self.update_task_health();
        match self.start_member(i) {
            Ok(()) => self.save(),
            Err(e) => {
                let m = &mut self.members[i];
                m.status = ContainerStatus {
                    reason: Some(format!("CannotStartContainerError: restart: {e}")),
                    ..exited
                };
                self.update_task_health();
                if self.members[i].spec.essential && !self.stopping {
                    self.status.essential_exited = Some(self.members[i].spec.name.clone());
                    self.begin_stop("EssentialContainerExited", ESSENTIAL_EXITED);
                } else {
                    self.save();
                }
            }
        }
    }

    fn stop_requested(&mut self) {
        let req: StopRequest = std::fs::read(self.dir.join(STOP_FILE))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_else(|| StopRequest {
                stop_code: "UserInitiated".into(),
                reason: "Task stopped by user".into(),
            });
        self.begin_stop(&req.stop_code, &req.reason);
    }

    /// SIGTERM to every running container; SIGKILL follows after its stopTimeout.
    fn begin_stop(&mut self, code: &str, reason: &str) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.status.stop_code = Some(code.into());
        self.status.stopped_reason = Some(reason.into());
        self.status.stopping_at = Some(now_rfc3339());
        self.status.last_status = "STOPPING".into();
        let now = Instant::now();
        for m in &mut self.members {
            m.check_due = None;
            if let Some(check) = m.check.take() {
                kill_check(check.pid);
            }
            match m.phase {
                Phase::Running => {
                    if let Some(c) = &m.container {
                        let _ = c.kill(libc::SIGTERM, false);
                    }
                    m.kill_at = Some(now + m.spec.stop_timeout());
                }
                Phase::Pending => {
                    m.phase = Phase::Stopped;
                    m.status.last_status = "STOPPED".into();
                }
                Phase::Stopped => {}
            }
        }
        self.save();
    }

    fn kill_overdue(&mut self) {
        let now = Instant::now();
        for m in &mut self.members {
            if m.phase == Phase::Running && m.kill_at.is_some_and(|t| t <= now) {
                if let Some(c) = &m.container {
                    let _ = c.kill(libc::SIGKILL, true);
                }
                m.kill_at = None;
            }
        }
    }

    /// Everything the task made goes: containers, rootfs mounts, the task cgroup, the
    /// namespace holder. Then the task is STOPPED.
    fn teardown(&mut self) {
        for m in &mut self.members {
            if let Some(c) = m.container.take() {
                let _ = c.delete(true);
            }
            let rootfs = self
                .dir
                .join("containers")
                .join(&m.spec.name)
                .join("rootfs");
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        }
        self.disconnect();
        if let Some(pid) = self.sandbox.take() {
            // SAFETY: kill(2) on the holder this process forked.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.task_cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.remove();
        }
        if self.status.stop_code.is_none() {
            self.status.stop_code = Some("EssentialContainerExited".into());
            self.status.stopped_reason = Some(ESSENTIAL_EXITED.into());
        }
        let now = now_rfc3339();
        self.status.stopping_at.get_or_insert_with(|| now.clone());
        self.status.stopped_at = Some(now);
        self.status.last_status = "STOPPED".into();
        self.save();
    }

    fn save(&mut self) {
        self.status.containers = self
            .members
            .iter()
            .map(|m| (m.spec.name.clone(), m.status.clone()))
            .collect::<BTreeMap<_, _>>();
        if let Ok(text) = serde_json::to_vec_pretty(&self.status) {
            // Only the end of a task must outlive the host: while it runs, a host crash
            // ends it, and the agent reports that from the dead supervisor.
            let path = self.dir.join(STATUS_FILE);
            let _ = if self.status.last_status == "STOPPED" {
                write_atomic(&path, &text)
            } else {
                write_volatile(&path, &text)
            };
        }
        if let Some(sock) = &self.task.notify_socket {
            if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
                let _ = s.send_to(self.task.task_id.as_bytes(), sock);
            }
        }
    }
}

/// SIGKILL to a health check and whatever it started: the check leads its own session,
/// so its pid names its process group. It is reaped with the other children.
fn kill_check(pid: i32) {
    // SAFETY: kill(2) on a process group this supervisor's exec created.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

fn dev_null() -> Option<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
        .map(OwnedFd::from)
}

fn condition_word(c: Condition) -> &'static str {
    match c {
        Condition::Start => "START",
        Condition::Complete => "COMPLETE",
        Condition::Success => "SUCCESS",
        Condition::Healthy => "HEALTHY",
    }
}

pub fn runtime_id(task_id: &str, container: &str) -> String {
    format!("{task_id}-{container}")
}

/// Placeholders `{sandbox}` in namespace paths become the holder's pid.
fn fill_namespace_paths(spec: &mut oci_spec::runtime::Spec, sandbox: i32) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let Some(nss) = linux.namespaces_mut() else {
        return;
    };
    for ns in nss.iter_mut() {
        if let Some(p) = ns.path() {
            let s = p
                .to_string_lossy()
                .replace("{sandbox}", &sandbox.to_string());
            ns.set_path(Some(PathBuf::from(s)));
        }
    }
}

/// The container's rootfs: an overlay of the image's layers with a fresh upper and work
/// directory, so nothing is copied per container.
fn mount_rootfs(c: &ContainerSpec, bundle: &Path, rootfs: &Path) -> Result<(), String> {
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    if let (Some(digest), Some(dir)) = (&c.image, &c.image_store) {
        use berth_runtime::image::{Digest, Store};
        std::fs::create_dir_all(rootfs).map_err(|e| format!("create {}: {e}", rootfs.display()))?;
        let store = Store::open(dir).map_err(|e| e.to_string())?;
        let digest = Digest::parse(digest).map_err(|e| e.to_string())?;
        let image = store.load_image(&digest).map_err(|e| e.to_string())?;
        return store
            .mount_rootfs(&image, &upper, &work, rootfs)
            .map_err(|e| e.to_string());
    }
    let layers = &c.layers;
    for d in [&upper, &work, &rootfs.to_path_buf()] {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    if layers.is_empty() {
        return Err("the image has no layers".into());
    }
    let lower: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount overlay on {}: {e}", rootfs.display()))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// Runs `f` with fd 0 on `stdin` (else /dev/null) and fds 1 and 2 on the given pipes,
/// then puts the supervisor's own stdio back.
fn with_stdio<T>(
    stdin: Option<&OwnedFd>,
    out: &OwnedFd,
    err: &OwnedFd,
    f: impl FnOnce() -> T,
) -> T {
    let saved: Vec<i32> = (0..3)
        // SAFETY: dup(2) of the standard descriptors.
        .map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) })
        .collect();
    let null = match stdin {
        Some(_) => None,
        None => std::fs::File::open("/dev/null").ok(),
    };
    let input = stdin
        .map(|fd| fd.as_raw_fd())
        .or(null.as_ref().map(|n| n.as_raw_fd()));
    // SAFETY: dup2 onto this process's stdio; the originals are saved above.
    unsafe {
        if let Some(fd) = input {
            libc::dup2(fd, 0);
        }
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(err.as_raw_fd(), 2);
    }
    let r = f();
    for (fd, s) in saved.iter().enumerate() {
        if *s >= 0 {
            // SAFETY: restoring the saved descriptors, then closing the copies.
            unsafe {
                libc::dup2(*s, fd as i32);
                libc::close(*s);
            }
        }
    }
    r
}

/// Lets traffic with a loopback source out on `bridge` (`route_localnet`), as the CNI
/// portmap plugin does for its localhost mappings.
fn route_localnet(bridge: &str) -> Result<(), String> {
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|e| format!("{path}: {e}"))
}
