//! The small init a container gets when its spec asks for one (the annotation
//! [`INIT_ANNOTATION`], which ECS's `initProcessEnabled` sets): PID 1 forwards the signals
//! it receives to the container's process and reaps every orphan, the way `docker run
//! --init` (tini) does, and exits with the process's status.
//!
//! It is the runtime's init forked at the last moment, after the process's user,
//! capabilities, no_new_privs and seccomp are in place: it holds no more privilege than the
//! process itself. It never calls execve, so it stays non-dumpable, and a process in the
//! container cannot open its /proc/1/exe (the runtime binary) without CAP_SYS_PTRACE.

use std::convert::Infallible;
use std::ffi::CString;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::step::StepResult;

/// `"true"` runs the process under this init.
pub const INIT_ANNOTATION: &str = "dev.berth.init";

/// Whether the spec's annotations ask for the init.
pub fn wanted(spec: &oci_spec::runtime::Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Signals the kernel raises for a fault of this very process; those stay unblocked.
const SYNCHRONOUS: [Signal; 6] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The signals the init waits for and forwards: all but [`SYNCHRONOUS`].
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for s in SYNCHRONOUS {
        set.remove(s);
    }
    set
}

/// Blocks the signals the init forwards. The runtime's init calls it before `start`
/// returns: a SIGTERM sent from then on is held for the init to forward, where PID 1
/// without a handler would drop it.
pub fn block_forwarded() -> StepResult<()> {
    forwarded()
        .thread_block()
        .map_err(|e| format!("init: block signals: {e}"))
}

/// Forks: the child execs the process; this process becomes its init and never returns.
pub fn exec_under_init(
    exec: &CString,
    argv: &[CString],
    envp: &[CString],
    apparmor: Option<&str>,
) -> StepResult<Infallible> {
    let blocked = forwarded();
    // Blocked before the fork (and since `start`), so no signal sent in between is lost:
    // the init picks it up with sigwait, the child unblocks right before execve.
    block_forwarded()?;
    // SAFETY: the runtime's init is single-threaded here, so the child may run any code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("init: fork: {e}"))? {
        ForkResult::Child => {
            isolate_in_own_group();
            let _ = SigSet::empty().thread_set_mask();
            let err = nix::unistd::execve(exec, argv, envp).unwrap_err();
            eprintln!("exec {}: {err}", exec.to_string_lossy());
            // SAFETY: _exit leaves the init's copy of the process state alone.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            // The child enters the profile when it execs; the init, which never does,
            // enters it now, so it holds no more than the process it forks.
            if let Some(profile) = apparmor {
                if let Err(e) =
                    crate::security::apply_apparmor(profile, crate::security::Transition::Now)
                {
                    eprintln!("init: {e}");
                }
            }
            let code = supervise(child, &blocked);
            // SAFETY: _exit skips destructors and atexit handlers of the runtime.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The process gets a process group of its own and, when stdin is a terminal, that
/// terminal's foreground: Ctrl-C reaches it once, from the terminal, not twice through the
/// init as well. Errors are fine: stdin may be no terminal.
fn isolate_in_own_group() {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SAFETY: tcsetpgrp on fd 0 with our own group; SIGTTOU is still blocked, so a
    // background group may take the terminal.
    unsafe { libc::tcsetpgrp(0, libc::getpgrp()) };
}

/// Forwards signals to `child` and reaps every child until `child` exits; returns the exit
/// code the init leaves with (the process's, or 128+N when signal N killed it).
fn supervise(child: Pid, blocked: &SigSet) -> i32 {
    name_self();
    // Orphans of a shared pid namespace come here too, not to the namespace's PID 1.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // Nothing of the runtime stays open in the init: it never execs, so close-on-exec
    // flags would not close the sync socket, the state directory or preserved fds.
    // SAFETY: close_range on fds this process owns and no longer uses.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    loop {
        let signal = match blocked.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, signal);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Waits for every exited child; the exit code once `child` is among them.
fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == child => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// `ps` in the container shows the init as what it is, not as the runtime.
fn name_self() {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-init".as_ptr(), 0, 0, 0) };
}
