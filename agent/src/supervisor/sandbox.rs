//! The process that holds a task's shared namespaces (network, IPC, UTS) for as long as
//! the task lives, so that containers can join them by path in any order.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use berth_runtime::cgroups::Cgroup;
use berth_runtime::process::clone::{Forked, clone};
use nix::sched::CloneFlags;
use nix::unistd::ForkResult;

/// Forks the holder into `cgroup` and returns the pid whose namespaces the containers
/// join. With a shared pid namespace the holder forks once more: that child is pid 1 of
/// the task's pid namespace (it reaps orphans) and the one the containers join.
///
/// The holder is born in the cgroup where the kernel allows it (cgroup2, CLONE_INTO_CGROUP)
/// and moves itself into the v1 hierarchies: moving another process would take the
/// kernel's global threadgroup lock, whose first writer after a quiet spell waits for an
/// RCU grace period (about 15 ms here, on the path to RUNNING).
pub fn start(kinds: &[String], hostname: Option<&str>, cgroup: &Cgroup) -> Result<i32, String> {
    let mut flags = CloneFlags::empty();
    for k in kinds {
        flags |= match k.as_str() {
            "network" => CloneFlags::CLONE_NEWNET,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "uts" => CloneFlags::CLONE_NEWUTS,
            "pid" => CloneFlags::CLONE_NEWPID,
            other => return Err(format!("sandbox: unknown shared namespace {other:?}")),
        };
    }
    let cgroup_dir = cgroup
        .clone_into_path()
        .map(|p| std::fs::File::open(&p).map_err(|e| format!("sandbox: open {}: {e}", p.display())))
        .transpose()?;
    let (rd, wr) = nix::unistd::pipe().map_err(|e| format!("sandbox: pipe: {e}"))?;
    let (forked, born_in_cgroup) = clone(0, cgroup_dir.as_ref().map(|f| f.as_raw_fd()))
        .map_err(|e| format!("sandbox: fork: {e}"))?;
    match forked {
        Forked::Child => {
            drop(rd);
            // The supervisor is single-threaded; the child only makes syscalls and never
            // returns into the caller's code.
            let mut moves: Vec<PathBuf> = cgroup.v1_self_move_files();
            if !born_in_cgroup {
                moves.extend(cgroup.clone_into_path().map(|d| d.join("cgroup.procs")));
            }
            let holder = match join(&moves).and_then(|()| hold(flags, hostname)) {
                Ok(pid) => pid,
                Err(_) => {
                    let _ = nix::unistd::write(&wr, &0i32.to_ne_bytes());
                    // SAFETY: leaving the forked child without the parent's destructors.
                    unsafe { libc::_exit(1) };
                }
            };
            let _ = nix::unistd::write(&wr, &holder.to_ne_bytes());
            drop(wr);
            loop {
                if flags.contains(CloneFlags::CLONE_NEWPID) {
                    // The pid-1 child does the holding; this one goes when it does.
                    if nix::sys::wait::waitpid(None::<nix::unistd::Pid>, None).is_err() {
                        // SAFETY: leaving without the parent's destructors.
                        unsafe { libc::_exit(0) };
                    }
                } else {
                    // SAFETY: pause(2) has no arguments; the holder sleeps until killed.
                    unsafe { libc::pause() };
                }
            }
        }
        Forked::Parent(child) => {
            drop(wr);
            let mut b = [0u8; 4];
            let n = nix::unistd::read(&rd, &mut b).unwrap_or(0);
            let holder = i32::from_ne_bytes(b);
            if n == 4 && holder > 0 {
                Ok(if holder == 1 { child } else { holder })
            } else {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                Err("sandbox: could not join its cgroup or create the task's namespaces".into())
            }
        }
    }
}

/// Moves the calling process into the cgroup: "0" is the writer itself.
fn join(files: &[PathBuf]) -> Result<(), nix::Error> {
    for f in files {
        std::fs::write(f, "0")
            .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    }
    Ok(())
}

/// Creates the namespaces; returns 1 when this process holds them, or the host pid of
/// the pid-1 child that does.
fn hold(flags: CloneFlags, hostname: Option<&str>) -> Result<i32, nix::Error> {
    // SAFETY: prctl with integer arguments: the holder goes with its supervisor.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    nix::sched::unshare(flags)?;
    if flags.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = hostname {
            nix::unistd::sethostname(h)?;
        }
    }
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        loopback_up()?;
    }
    if !flags.contains(CloneFlags::CLONE_NEWPID) {
        return Ok(1);
    }
    // SAFETY: single-threaded; the child only sleeps and reaps.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child.as_raw()),
        ForkResult::Child => {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            loop {
                // pid 1 of the task: reap whatever is orphaned to it. SIGCHLD is ignored
                // by default and would not wake a pause, hence the nap.
                if nix::sys::wait::waitpid(None::<nix::unistd::Pid>, None).is_err() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
    }
}

/// A new network namespace starts with `lo` down; containers of a task talk over it.
fn loopback_up() -> Result<(), nix::Error> {
    // SAFETY: a plain socket(2) call; the fd is owned right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: `fd` is a new socket owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq through a valid pointer.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(nix::Error::last());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}
