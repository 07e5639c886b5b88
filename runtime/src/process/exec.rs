//! A new process in a running container: it joins the init's namespaces and cgroup, then
//! takes the same last steps as the init (user, capabilities, seccomp, execve).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::clone::{Forked, clone};
use super::init::{command_line, exec_process};
use super::namespaces::{flag, same_namespace};
use super::step::{Step, StepResult};
use super::sync::{Channel, Msg};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::security::{self, SeccompFilter};

pub struct ExecConfig {
    pub init_pid: i32,
    pub process: Process,
    pub cgroup: Option<Cgroup>,
    pub seccomp: Option<SeccompFilter>,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: i32,
}

/// Namespaces in the order they are joined: user first (it grants the rights for the
/// rest), mount last (it changes the root under our feet).
const ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// Starts the process and returns its host pid once it has exec'd. The caller becomes a
/// child subreaper, so it can wait for the process although an intermediate forked it.
pub fn spawn_exec(cfg: &ExecConfig) -> Result<i32> {
    let mut joins = Vec::new();
    for typ in ORDER {
        // oci-spec shows each kind by its name under /proc/PID/ns.
        let theirs = PathBuf::from(format!("/proc/{}/ns/{typ}", cfg.init_pid));
        let ours = PathBuf::from(format!("/proc/self/ns/{typ}"));
        if same_namespace(&theirs, &ours) == Some(false) {
            let f = File::open(&theirs).map_err(|e| Error::io("open namespace", &theirs, e))?;
            joins.push((f, flag(typ), typ));
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (parent, child) = Channel::pair().map_err(|e| Error::io("create socket pair", "", e))?;
    let cgroup_dir = cfg
        .cgroup
        .as_ref()
        .and_then(|c| c.v2_path())
        .and_then(|p| File::open(p).ok());
    let (forked, in_cgroup) = clone(0, cgroup_dir.as_ref().map(|f| f.as_raw_fd()))
        .map_err(|e| Error::io("fork exec process", "", e))?;
    let pid = match forked {
        Forked::Child => {
            drop(parent);
            // SAFETY: prctl with integer arguments. Until execve this process is the
            // runtime binary inside the container: nothing there may open its /proc/PID/exe.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            let msg = match join_and_exec(cfg, &child, &joins) {
                Ok(never) => match never {},
                Err(msg) => msg,
            };
            let _ = child.send(&Msg::Error(msg));
            // SAFETY: _exit leaves the parent's copy of the process state alone.
            unsafe { libc::_exit(127) }
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    drop(cgroup_dir);
    let result = (|| {
        if let (Some(cg), false) = (&cfg.cgroup, in_cgroup) {
            cg.add_process(pid)?;
        }
        let io = |e| Error::io("talk to exec process", "", e);
        parent
            .send(&Msg::Go {
                in_cgroup: true,
                move_self: Vec::new(),
            })
            .map_err(io)?;
        let mut exec_pid = None;
        loop {
            match parent.recv().map_err(io)? {
                Some(Msg::Pid(p)) => {
                    exec_pid = Some(p);
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                }
                Some(Msg::Error(msg)) => {
                    if let Some(p) = exec_pid {
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p), None);
                    }
                    return Err(Error::Exec(msg));
                }
                Some(other) => return Err(Error::Exec(format!("unexpected message {other:?}"))),
                None => {
                    return exec_pid
                        .ok_or_else(|| Error::Exec("the process exited during setup".into()));
                }
            }
        }
    })();
    if result.is_err() {
        // SAFETY: signalling a process this call created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
    result
}

fn join_and_exec(
    cfg: &ExecConfig,
    chan: &Channel,
    joins: &[(File, CloneFlags, LinuxNamespaceType)],
) -> StepResult<std::convert::Infallible> {
    match chan.recv().step("wait for the runtime")? {
        Some(Msg::Go { .. }) => {}
        other => return Err(format!("expected go, got {other:?}")),
    }
    for (f, flag, name) in joins {
        nix::sched::setns(f.as_fd(), *flag).step(&format!("join {name} namespace"))?;
    }
    // The pid namespace applies to children: the process to exec is the next fork.
    if let Forked::Parent(pid) = clone(0, None).step("fork into the container")?.0 {
        let _ = chan.send(&Msg::Pid(pid));
        // SAFETY: the intermediate is done; _exit leaves shared state alone.
        unsafe { libc::_exit(0) }
    }
    let process = &cfg.process;
    nix::unistd::setsid().step("setsid")?;
    if process.terminal().unwrap_or(false) {
        let socket = cfg
            .console_socket
            .as_ref()
            .ok_or("process.terminal: true needs --console-socket")?;
        super::terminal::setup(socket, process)?;
    }
    if let Some(rl) = process.rlimits() {
        security::set_rlimits(rl).map_err(|e| e.to_string())?;
    }
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).step_path("process.cwd: chdir", cwd)?;
    let (exe, argv, envp) = command_line(process)?;
    exec_process(
        process,
        cfg.seccomp.as_ref(),
        cfg.preserve_fds,
        false,
        &exe,
        &argv,
        &envp,
    )
}
