//! clone3, born into a cgroup where the kernel allows it, with a fork-like fallback.

use std::io;
use std::os::fd::RawFd;

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of the clone this process is on.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// Clones the calling process like fork(2), with `flags` (CLONE_NEW*) and, when `cgroup`
/// is a cgroup2 directory fd, directly into that cgroup. Returns whether the child was
/// born in the cgroup, so the caller knows to move it otherwise.
///
/// The caller must be single-threaded: the child continues with a copy of this thread only.
pub fn clone(flags: libc::c_int, cgroup: Option<RawFd>) -> io::Result<(Forked, bool)> {
    let mut args = CloneArgs {
        flags: flags as u32 as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets
    // a copy of the address space; `args` is a valid clone_args of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc >= 0 {
        return Ok((side(rc as libc::pid_t), cgroup.is_some()));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Old kernels: no clone3, or no CLONE_INTO_CGROUP (E2BIG for the shorter struct).
        Some(libc::ENOSYS) | Some(libc::E2BIG) | Some(libc::EINVAL)
            if cgroup.is_some() || err.raw_os_error() == Some(libc::ENOSYS) =>
        {
            // SAFETY: the raw clone syscall with a null stack behaves like fork.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    (flags | libc::SIGCHLD) as libc::c_ulong,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok((side(rc as libc::pid_t), false))
        }
        _ => Err(err),
    }
}

fn side(rc: libc::pid_t) -> Forked {
    if rc == 0 {
        Forked::Child
    } else {
        Forked::Parent(rc)
    }
}
