//! A `cgroup` mount inside the container: the container's own cgroup directories, never
//! the host's whole hierarchy.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;

use super::mounts::{MountOptions, set_flags_recursive};
use super::resolve::{cstring, mkdir_all, open_in_root, proc_fd_path};
use crate::cgroups::Cgroup;

const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub fn mount(
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
    cgroup: Option<&Cgroup>,
) -> io::Result<()> {
    let target = mkdir_all(root, dest)?;
    let flags = opts.flags & !MsFlags::MS_RDONLY;
    let Some(cgroup) = cgroup else {
        return Ok(());
    };
    if let Some(v2) = cgroup.v2_path() {
        // In a cgroup namespace a fresh cgroup2 mount shows only the container's subtree;
        // a bind of its directory shows the same without one.
        let p = proc_fd_path(&target);
        let fresh = nix::mount::mount(
            Some("cgroup2"),
            p.as_str(),
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        );
        if fresh.is_err() {
            bind(&v2, &p, opts.flags)?;
            readonly_remount(root, dest, opts.flags)?;
        }
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        proc_fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )?;
    // The tmpfs is new and empty: a directory per hierarchy is made and opened relative
    // to it, with no symlink to resolve on the way.
    let tmpfs = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY)?;
    let mut names = Vec::new();
    for dir in cgroup.paths() {
        let Ok(rel) = dir.strip_prefix(HOST_CGROUP_ROOT) else {
            continue;
        };
        let Some(name) = rel.components().next() else {
            continue;
        };
        let name = cstring(Path::new(name.as_os_str()))?;
        // SAFETY: `tmpfs` is a live directory fd and `name` a valid C string.
        if unsafe { libc::mkdirat(tmpfs.as_raw_fd(), name.as_ptr(), 0o755) } < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        let point = open_below(&tmpfs, &name)?;
        bind(&dir, &proc_fd_path(&point), opts.flags)?;
        names.push(name);
    }
    // One call makes the tmpfs and every bind on it read-only (nosuid, ...); a kernel
    // without mount_setattr gets a remount of each.
    if set_flags_recursive(tmpfs.as_fd(), opts.flags)? {
        return Ok(());
    }
    for name in &names {
        // Opened again, the name now leads to the bind mount on top.
        let mounted = open_below(&tmpfs, name)?;
        remount_readonly(&proc_fd_path(&mounted), opts.flags)?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let t = open_in_root(root, dest, libc::O_PATH)?;
        nix::mount::mount(
            None::<&str>,
            proc_fd_path(&t).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

fn bind(source: &Path, target: &str, _flags: MsFlags) -> io::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    Ok(())
}

fn readonly_remount(root: BorrowedFd<'_>, dest: &Path, flags: MsFlags) -> io::Result<()> {
    let t = open_in_root(root, dest, libc::O_PATH)?;
    remount_readonly(&proc_fd_path(&t), flags)
}

/// Applies `flags` (read-only, nosuid, ...) to the bind mount at `target`.
fn remount_readonly(target: &str, flags: MsFlags) -> io::Result<()> {
    let remount = flags & !MsFlags::MS_REMOUNT;
    if remount.is_empty() {
        return Ok(());
    }
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | remount,
        None::<&str>,
    )?;
    Ok(())
}

/// The directory `name` right below `dir`, opened O_PATH without following a symlink.
fn open_below(dir: &OwnedFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is a live directory fd and `name` a valid C string.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by this process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
