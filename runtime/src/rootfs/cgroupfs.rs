//! A `cgroup` mount inside the container: the container's own cgroup directories, never
//! the host's whole hierarchy.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::mount::MsFlags;

use super::mounts::MountOptions;
use super::resolve::{mkdir_all, open_in_root, proc_fd_path};
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
    for dir in cgroup.paths() {
        let Ok(rel) = dir.strip_prefix(HOST_CGROUP_ROOT) else {
            continue;
        };
        let Some(name) = rel.components().next() else {
            continue;
        };
        let inner = dest.join(name.as_os_str());
        let t = mkdir_all(root, &inner)?;
        bind(&dir, &proc_fd_path(&t), opts.flags)?;
        readonly_remount(root, &inner, opts.flags)?;
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
    let remount = flags & !MsFlags::MS_REMOUNT;
    if remount.is_empty() {
        return Ok(());
    }
    let t = open_in_root(root, dest, libc::O_PATH)?;
    nix::mount::mount(
        None::<&str>,
        proc_fd_path(&t).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | remount,
        None::<&str>,
    )?;
    Ok(())
}
