//! The container's init, from the clone to execve: namespaces, rootfs, hooks, the wait on
//! the exec fifo, then the process's identity, capabilities and seccomp.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::InitConfig;
use super::clone::Forked;
use super::step::{Step, StepResult};
use super::sync::{Channel, Msg};
use crate::{rootfs, security};

/// Runs in the cloned child and never returns.
pub fn run(cfg: &InitConfig, chan: Channel) -> ! {
    // SAFETY: prctl with integer arguments only. The child must not outlive a runtime that
    // dies mid-create, and must not be dumpable (its /proc/self/exe is the runtime binary).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let code = match prepare(cfg, &chan) {
        Ok(ready) => match start(cfg, ready, &chan) {
            Ok(never) => match never {},
            Err(msg) => {
                eprintln!("berth-runtime: container {}: {msg}", cfg.id);
                127
            }
        },
        Err(msg) => {
            let _ = chan.send(&Msg::Error(msg));
            1
        }
    };
    // SAFETY: _exit skips destructors and atexit handlers that belong to the parent's copy.
    unsafe { libc::_exit(code) }
}

/// What the init holds while it waits for `start`.
struct Ready {
    /// Where the exec fifo is; none when the runtime says `Start` instead.
    state_dir: Option<OwnedFd>,
    exec: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn prepare(cfg: &InitConfig, chan: &Channel) -> StepResult<Ready> {
    crate::trace::step("init: running");
    let (mut in_cgroup, move_self) = match chan.recv().step("wait for the runtime")? {
        Some(Msg::Go {
            in_cgroup,
            move_self,
        }) => (in_cgroup, move_self),
        other => return Err(format!("expected go from the runtime, got {other:?}")),
    };
    crate::trace::step("init: go");
    if in_cgroup {
        move_into(&move_self)?;
    }
    let spec = &cfg.spec;
    cfg.namespaces.enter()?;
    cfg.namespaces.become_root()?;
    if cfg.namespaces.needs_intermediate() {
        // The init forked below must be born inside the cgroup.
        if !in_cgroup {
            join_cgroup(chan, &move_self)?;
            in_cgroup = true;
        }
        // A joined pid namespace applies to children only: the init is the next fork.
        match super::clone::clone(0, None)
            .step("fork into the joined pid namespace")?
            .0
        {
            Forked::Parent(pid) => {
                let _ = chan.send(&Msg::Pid(pid));
                // SAFETY: the intermediate's work is done; _exit leaves the copy's state alone.
                unsafe { libc::_exit(0) }
            }
            Forked::Child => {}
        }
    }
    if in_cgroup {
        cfg.namespaces.enter_cgroup()?;
    }
    nix::unistd::setsid().step("setsid")?;

    // Opened before pivot_root hides it.
    let state_dir: Option<OwnedFd> = match &cfg.exec_fifo {
        Some(fifo) => Some(
            File::open(fifo.parent().unwrap_or(Path::new("/")))
                .step_path("open state directory", fifo)?
                .into(),
        ),
        None => None,
    };

    crate::trace::step("init: namespaces entered");
    // Into the cgroup once the runtime says it is ready: before a mount that shows it, or
    // else after the mounts.
    let mut join = || -> StepResult<()> {
        if !in_cgroup {
            join_cgroup(chan, &move_self)?;
            cfg.namespaces.enter_cgroup()?;
            in_cgroup = true;
            crate::trace::step("init: in its cgroup");
        }
        Ok(())
    };
    let new_mnt = cfg.namespaces.has_new(LinuxNamespaceType::Mount);
    let root = if new_mnt {
        Some(rootfs::prepare(
            spec,
            &cfg.rootfs,
            cfg.cgroup.as_ref(),
            &mut join,
        )?)
    } else {
        None
    };
    join()?;
    crate::trace::step("init: mounts done");

    let hooks = spec.hooks().as_ref();
    let wants_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_container().as_ref().is_some_and(|v| !v.is_empty())
    });
    if wants_hooks {
        chan.send(&Msg::HooksNeeded).step("ask for hooks")?;
        let state = match chan.recv().step("wait for hooks")? {
            Some(Msg::HooksDone(state)) => state,
            Some(Msg::Error(e)) => return Err(e),
            other => return Err(format!("expected hooks done, got {other:?}")),
        };
        if let Some(list) = hooks.and_then(|h| h.create_container().as_ref()) {
            crate::container::hooks::run_stage("createContainer", list, &state)
                .map_err(|e| e.to_string())?;
        }
    }

    if let Some(root) = &root {
        rootfs::enter(root, &cfg.rootfs, cfg.no_pivot)?;
    } else {
        nix::unistd::chroot(&cfg.rootfs).step_path("chroot", &cfg.rootfs)?;
    }
    if let Some(process) = spec.process() {
        // Before a read-only root is remounted: runc and Docker make a missing one.
        rootfs::create_cwd(process.cwd())?;
    }
    if root.is_some() {
        rootfs::finish(spec)?;
    }
    drop(root);
    crate::trace::step("init: pivoted, paths masked");

    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).step("hostname")?;
    }
    if let Some(d) = spec.domainname() {
        let c = CString::new(d.as_str()).step("domainname")?;
        // SAFETY: `c` is a valid string of the length given.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } < 0 {
            return Err(format!("domainname: {}", std::io::Error::last_os_error()));
        }
    }

    let process = spec.process().as_ref().ok_or("process: missing")?;
    if process.terminal().unwrap_or(false) {
        let socket = cfg
            .console_socket
            .as_ref()
            .ok_or("process.terminal: true needs --console-socket")?;
        super::terminal::setup(socket, process)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        security::set_oom_score_adj(adj).map_err(|e| e.to_string())?;
    }
    if let Some(rl) = process.rlimits() {
        security::set_rlimits(rl).map_err(|e| e.to_string())?;
    }

    let cwd = process.cwd();
    nix::unistd::chdir(cwd).step_path("process.cwd: chdir", cwd)?;
    // A cwd that resolved outside the root (through a leaked fd, CVE-2024-21626) shows as
    // an unreachable path.
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(format!(
                "process.cwd: {} is outside the container",
                cwd.display()
            ));
        }
    }

    let (exec, argv, envp) = command_line(process)?;

    // SAFETY: prctl with integer arguments: from here on the init may outlive the runtime.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    // Without a fifo, `run` may forward a signal as soon as it said `Start`: an init that
    // forwards signals holds them from now on.
    if state_dir.is_none() && super::reaper::wanted(spec) {
        super::reaper::block_forwarded()?;
    }
    chan.send(&Msg::Ready).step("report ready")?;
    Ok(Ready {
        state_dir,
        exec,
        argv,
        envp,
    })
}

/// Waits until the runtime has made the cgroup (or moved this process into it), then
/// moves itself in through `move_self`, if any.
fn join_cgroup(chan: &Channel, move_self: &[PathBuf]) -> StepResult<()> {
    match chan.recv().step("wait for the cgroup")? {
        Some(Msg::InCgroup) => move_into(move_self),
        Some(Msg::Error(e)) => Err(e),
        other => Err(format!(
            "expected in-cgroup from the runtime, got {other:?}"
        )),
    }
}

/// Writes "0" to each v1 `tasks` file: this thread moves itself into that hierarchy.
fn move_into(move_self: &[PathBuf]) -> StepResult<()> {
    for file in move_self {
        std::fs::write(file, "0").step_path("move into the container's cgroup", file)?;
    }
    Ok(())
}

fn start(cfg: &InitConfig, ready: Ready, chan: &Channel) -> StepResult<Infallible> {
    let fifo = match &ready.state_dir {
        Some(dir) => Some(wait_for_start(dir)?),
        None => {
            match chan.recv().step("wait for start")? {
                Some(Msg::Start) => {}
                other => return Err(format!("expected start from the runtime, got {other:?}")),
            }
            None
        }
    };
    drop(ready.state_dir);
    let spec = &cfg.spec;
    // Before `start` hears back: it runs the poststart hooks as soon as it does, and those
    // come after startContainer.
    if let Some(list) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let state = crate::container::state::running_state_json(cfg, std::process::id() as i32);
        crate::container::hooks::run_stage("startContainer", list, &state)
            .map_err(|e| e.to_string())?;
    }
    let init = super::reaper::wanted(spec);
    if let Some(fifo) = fifo {
        if init {
            super::reaper::block_forwarded()?;
        }
        tell_start(fifo)?;
    }
    let process = spec.process().as_ref().ok_or("process: missing")?;
    exec_process(
        process,
        cfg.seccomp.as_ref(),
        cfg.preserve_fds,
        init,
        &ready.exec,
        &ready.argv,
        &ready.envp,
    )
}

/// Blocks until `start` opens the exec fifo.
fn wait_for_start(state_dir: &OwnedFd) -> StepResult<OwnedFd> {
    let name = c"exec.fifo";
    // SAFETY: `state_dir` is a live directory fd and `name` a valid C string. The open
    // blocks until a reader appears, which is the point.
    let fd = unsafe {
        libc::openat(
            state_dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "open exec fifo: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Tells `start` that this init is going ahead with the user's process.
fn tell_start(fifo: OwnedFd) -> StepResult<()> {
    // SAFETY: `fifo` is open and the buffer one byte long.
    let rc = unsafe { libc::write(fifo.as_raw_fd(), c"0".as_ptr().cast(), 1) };
    if rc != 1 {
        return Err(format!(
            "write exec fifo: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The last steps of any container process, init or exec: identity, capabilities,
/// no_new_privs and seccomp, stray fds, execve (under the small init when `init`).
pub fn exec_process(
    process: &Process,
    seccomp: Option<&security::SeccompFilter>,
    preserve_fds: i32,
    init: bool,
    exec: &CString,
    argv: &[CString],
    envp: &[CString],
) -> StepResult<Infallible> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    // The profile applies at execve, so nothing the runtime does before it is confined.
    let apparmor = process.apparmor_profile().as_deref();
    if let Some(profile) = apparmor {
        security::apply_apparmor(profile, security::Transition::OnExec)
            .map_err(|e| e.to_string())?;
    }
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the drop.
    if let (Some(f), false) = (seccomp, nnp) {
        f.load().map_err(|e| e.to_string())?;
    }
    security::switch_user(process.user()).map_err(|e| e.to_string())?;
    security::set_umask(process.user());
    security::apply_capabilities(process.capabilities().as_ref()).map_err(|e| e.to_string())?;
    if nnp {
        security::set_no_new_privileges().map_err(|e| e.to_string())?;
        if let Some(f) = seccomp {
            f.load().map_err(|e| e.to_string())?;
        }
    }
    close_stray_fds(preserve_fds)?;
    // The init keeps what `start` blocked for it to forward; its child unblocks them.
    reset_signals(!init);
    crate::trace::step("init: exec");
    if init {
        return super::reaper::exec_under_init(exec, argv, envp, apparmor);
    }
    let err = nix::unistd::execve(exec, argv, envp).unwrap_err();
    Err(format!("exec {}: {err}", exec.to_string_lossy()))
}

/// The process starts with every signal at its default action and (with `unblock`) none
/// blocked, whatever the caller had: a supervisor that blocks SIGTERM for its signalfd, or
/// Rust's ignored SIGPIPE, must not leak into the container (a shell's `trap ... TERM`
/// would never fire).
fn reset_signals(unblock: bool) {
    // The kernel's struct sigaction: glibc's wrapper refuses the signals it reserves for
    // itself (32, 33), which a parent may still have left ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct of the kernel's layout and size 8 sets
        // the default action; the old action is not asked for.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    if unblock {
        let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    }
}

/// Marks every fd above stdio and the preserved ones close-on-exec, so nothing of the
/// runtime (state dir, sockets, cgroup dirs) leaks into the container.
pub fn close_stray_fds(preserve_fds: i32) -> StepResult<()> {
    let first = 3 + preserve_fds.max(0) as u32;
    for fd in 3..first as i32 {
        // SAFETY: clearing FD_CLOEXEC on an fd the caller asked to pass on.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(format!("close_range: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The program (found in the container's PATH), argv and environment to execve.
pub fn command_line(process: &Process) -> StepResult<(CString, Vec<CString>, Vec<CString>)> {
    let env = environment(process);
    let args = process
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or("process.args: empty")?;
    let exec = find_executable(&args[0], &env)?;
    let argv = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .step("process.args")?;
    let envp = env
        .into_iter()
        .map(CString::new)
        .collect::<Result<Vec<_>, _>>()
        .step("process.env")?;
    Ok((exec, argv, envp))
}

/// process.env, with PATH and HOME filled in when missing, as other runtimes do.
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    env
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<_> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

/// args[0] as execvp would find it, looked up in the container's PATH.
pub fn find_executable(arg0: &str, env: &[String]) -> StepResult<CString> {
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![PathBuf::from(arg0)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/bin:/usr/bin:/bin");
        path.split(':').map(|d| Path::new(d).join(arg0)).collect()
    };
    for c in &candidates {
        let Ok(cs) = CString::new(c.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `cs` is a valid C string.
        let ok = unsafe { libc::access(cs.as_ptr(), libc::X_OK) } == 0;
        if ok && !c.is_dir() {
            return Ok(cs);
        }
    }
    Err(format!(
        "process.args[0]: executable {arg0:?} not found in $PATH"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_finds_sh() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(
            find_executable("sh", &env).unwrap().to_str().unwrap(),
            "/bin/sh"
        );
        let err = find_executable("no-such-binary", &env).unwrap_err();
        assert!(err.contains("process.args[0]"), "{err}");
    }
}
