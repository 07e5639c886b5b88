//! `berth exec`: a command in a running container of a task, started through the runtime
//! library (the container's namespaces, cgroup, user, environment, working directory and
//! seccomp filter), as `docker exec` and ECS Exec do. The exit code is the command's.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use nix::fcntl::OFlag;

use berth_agent::ecs::Task;
use berth_agent::supervisor::task::{TASK_FILE, TaskSpec, read_status};
use berth_runtime::container::ExecOptions;
use berth_runtime::process::terminal::{
    ConsoleListener, RawTerminal, copy_window_size, follow_window_size, relay, window_size,
};
use berth_runtime::process::{forward_signals, wait_exit_code};
use berth_runtime::{Container, Status};

use super::Context;

/// `berth exec` could not start the command (docker's 125): no such task or container,
/// or it is not running.
const EXEC_FAILED: i32 = 125;
/// The command was found but could not be run (docker's 126).
const CANNOT_RUN: i32 = 126;
/// The command was not found in the container (docker's 127).
const NOT_FOUND: i32 = 127;

/// How long the output of a finished command may keep coming (from processes it left
/// behind holding the terminal) before `berth exec` returns.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The task id or ARN
    pub task: String,
    /// The container to run in (may be left out when the task has one container)
    #[arg(long)]
    pub container: Option<String>,
    /// Pass stdin to the command (without it the command reads /dev/null)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable, KEY=VALUE (repeatable)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as UID[:GID] instead of the container's user
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// The working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// A reason `berth exec` did not run the command, and the exit code that says so.
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: EXEC_FAILED,
            error: e.into(),
        }
    }
}

pub fn run(ctx: &Context, a: &ExecArgs) -> anyhow::Result<i32> {
    match exec(ctx, a) {
        Ok(code) => Ok(code),
        Err(f) => {
            let msg = format!("{:#}", f.error).replace('\n', " ");
            eprintln!("berth: {msg}");
            Ok(f.code)
        }
    }
}

fn exec(ctx: &Context, a: &ExecArgs) -> Result<i32, Failure> {
    for kv in &a.env {
        if !kv.contains('=') || kv.starts_with('=') {
            return Err(anyhow::anyhow!("--env {kv:?}: use KEY=VALUE").into());
        }
    }
    let task = ctx.find_task(&a.task)?;
    let names: Vec<&str> = task.containers.iter().map(|c| c.name.as_str()).collect();
    let name = pick_container(task.id(), &names, a.container.as_deref())?;
    let container = running_container(&task, name)?;
    let opts = ExecOptions {
        args: a.command.clone(),
        tty: a.tty,
        cwd: a.workdir.as_ref().map(Into::into),
        env: a.env.clone(),
        user: a.user.clone(),
        ..Default::default()
    };
    if a.tty {
        with_terminal(&container, opts, a.interactive)
    } else {
        if !a.interactive {
            stdin_from_dev_null()?;
        }
        let streams = Streams::through_pipes(a.interactive)?;
        let spawned = container.spawn_exec(&opts);
        let copying = streams.start_copying()?;
        let pid = spawned.map_err(start_failure)?;
        forward_signals(pid, FORWARDED);
        let code = wait_exit_code(pid)?;
        for done in copying {
            let _ = done.recv_timeout(DRAIN);
        }
        Ok(code)
    }
}

/// Without -t the command must not get this process's terminal (it could read or steer
/// it): each of stdin, stdout and stderr that is a terminal reaches the command through a
/// pipe, copied here, as docker's stream does. Files and pipes are handed on as they are.
struct Streams {
    /// (our descriptor, the terminal it was, the end of the pipe we copy to or from)
    relays: Vec<(i32, OwnedFd, OwnedFd)>,
}

impl Streams {
    /// Puts pipes in place of the terminals among fds 0 (with `stdin`), 1 and 2, for the
    /// command to inherit.
    fn through_pipes(stdin: bool) -> anyhow::Result<Streams> {
        let fds: &[i32] = if stdin { &[0, 1, 2] } else { &[1, 2] };
        let mut relays = Vec::new();
        for &fd in fds {
            // SAFETY: fds 0-2 stay open for the life of the process.
            let ours = unsafe { BorrowedFd::borrow_raw(fd) };
            if !nix::unistd::isatty(ours).unwrap_or(false) {
                continue;
            }
            let terminal = ours
                .try_clone_to_owned()
                .with_context(|| format!("duplicate fd {fd}"))?;
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("create a pipe")?;
            let (theirs, kept) = if fd == 0 {
                (read, write)
            } else {
                (write, read)
            };
            // SAFETY: replaces one of this process's stdio descriptors with a pipe end it
            // owns; the terminal stays open in `terminal`.
            if unsafe { libc::dup2(theirs.as_raw_fd(), fd) } < 0 {
                return Err(std::io::Error::last_os_error()).context("put a pipe on stdio");
            }
            relays.push((fd, terminal, kept));
        }
        Ok(Streams { relays })
    }

    /// Gives this process its terminals back (so that only the command holds the pipes)
    /// and copies between them and the pipes; each channel reports when its copy ended.
    fn start_copying(self) -> anyhow::Result<Vec<mpsc::Receiver<()>>> {
        let mut done = Vec::new();
        for (fd, terminal, kept) in self.relays {
            // SAFETY: puts the saved terminal back on this process's stdio descriptor.
            if unsafe { libc::dup2(terminal.as_raw_fd(), fd) } < 0 {
                return Err(std::io::Error::last_os_error()).context("restore stdio");
            }
            let (from, to) = if fd == 0 {
                (File::from(terminal), File::from(kept))
            } else {
                (File::from(kept), File::from(terminal))
            };
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                copy(from, to);
                let _ = tx.send(());
            });
            // stdin ends when the user ends it, not when the command exits.
            if fd != 0 {
                done.push(rx);
            }
        }
        Ok(done)
    }
}

fn copy(mut from: File, mut to: File) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Signals `berth exec` passes on to the command.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The command on a pty of the container's, relayed to this process's stdio; with
/// `interactive`, this terminal is in raw mode meanwhile and its keys go to the command.
fn with_terminal(
    container: &Container,
    mut opts: ExecOptions,
    interactive: bool,
) -> Result<i32, Failure> {
    let path = container
        .root
        .join(format!(".exec-{}.console", std::process::id()));
    let listener =
        ConsoleListener::bind(&path).with_context(|| format!("bind {}", path.display()))?;
    opts.console_socket = Some(path);
    // The pty gets this terminal's size before the command starts, so that it never
    // sees 0x0 (resizes later follow SIGWINCH).
    opts.console_size = window_size();
    let pid = container.spawn_exec(&opts).map_err(start_failure)?;
    forward_signals(pid, FORWARDED);
    let master = listener
        .receive()
        .context("receive the command's terminal")?;
    drop(listener);
    let resize = master.try_clone().context("duplicate the pty")?;
    let _raw = if interactive {
        Some(RawTerminal::attach(&resize))
    } else {
        copy_window_size(resize.as_raw_fd());
        None
    };
    follow_window_size(&resize);
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        relay(master, interactive);
        let _ = done.send(());
    });
    let code = wait_exit_code(pid)?;
    let _ = finished.recv_timeout(DRAIN);
    Ok(code)
}

/// The container to exec in: the one named, or the task's only one.
fn pick_container<'a>(
    task: &str,
    names: &[&'a str],
    wanted: Option<&str>,
) -> anyhow::Result<&'a str> {
    match wanted {
        Some(w) => names.iter().find(|n| **n == w).copied().ok_or_else(|| {
            anyhow::anyhow!(
                "--container: task {task} has no container {w:?} (it has {})",
                names.join(", ")
            )
        }),
        None => match names {
            [one] => Ok(one),
            _ => Err(anyhow::anyhow!(
                "task {task} has containers {}: choose one with --container",
                names.join(", ")
            )),
        },
    }
}

/// The runtime's container `name` of the task, if it is running.
fn running_container(task: &Task, name: &str) -> anyhow::Result<Container> {
    let id = task.id();
    if task.last_status == "STOPPED" {
        anyhow::bail!("task {id} is STOPPED: no container to exec in");
    }
    let dir = Path::new(&task.local.task_dir);
    let spec_path = dir.join(TASK_FILE);
    let spec: TaskSpec = std::fs::read(&spec_path)
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .with_context(|| format!("task {id}: no task spec at {}", spec_path.display()))?;
    let not_running = || anyhow::anyhow!("container {name:?} of task {id} is not running");
    let status = read_status(dir).ok_or_else(not_running)?;
    let runtime_id = &status
        .containers
        .get(name)
        .ok_or_else(not_running)?
        .runtime_id;
    let container = Container::load(&spec.runtime_root, runtime_id).map_err(|_| not_running())?;
    match container.status() {
        Status::Running => Ok(container),
        other => Err(anyhow::anyhow!(
            "container {name:?} of task {id} is {other}: cannot exec"
        )),
    }
}

/// Why the command did not start, with docker's exit codes: 127 when it does not exist,
/// 126 when it cannot be run, 125 when the container refused.
fn start_failure(e: berth_runtime::Error) -> Failure {
    Failure {
        code: start_failure_code(&e),
        error: e.into(),
    }
}

fn start_failure_code(e: &berth_runtime::Error) -> i32 {
    match e {
        berth_runtime::Error::Exec(msg) if msg.contains("not found") => NOT_FOUND,
        berth_runtime::Error::Exec(_) => CANNOT_RUN,
        _ => EXEC_FAILED,
    }
}

/// Without -i the command must not read this terminal (docker gives it /dev/null).
fn stdin_from_dev_null() -> anyhow::Result<()> {
    let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("make /dev/null stdin")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_only_container_needs_no_name() {
        assert_eq!(pick_container("t1", &["app"], None).unwrap(), "app");
        assert_eq!(pick_container("t1", &["app"], Some("app")).unwrap(), "app");
    }

    #[test]
    fn several_containers_need_a_name_and_errors_list_them() {
        let names = ["web", "sidecar"];
        assert_eq!(
            pick_container("t1", &names, Some("sidecar")).unwrap(),
            "sidecar"
        );
        let e = pick_container("t1", &names, None).unwrap_err().to_string();
        assert_eq!(
            e,
            "task t1 has containers web, sidecar: choose one with --container"
        );
        let e = pick_container("t1", &names, Some("db"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--container: task t1 has no container \"db\" (it has web, sidecar)"
        );
    }

    #[test]
    fn start_failures_exit_as_docker_exec_does() {
        use berth_runtime::Error;
        let missing = Error::Exec("process.args[0]: executable \"nope\" not found in $PATH".into());
        assert_eq!(start_failure_code(&missing), 127);
        let denied = Error::Exec("exec /etc/passwd: EACCES: Permission denied".into());
        assert_eq!(start_failure_code(&denied), 126);
        let stopped = Error::WrongStatus {
            id: "c".into(),
            status: "stopped".into(),
            op: "exec",
        };
        assert_eq!(start_failure_code(&stopped), 125);
    }
}
