//! The spec's mounts: options parsed into mount(2) flags, then mounted on a destination
//! resolved inside the rootfs.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::resolve::{mkdir_all, open_in_root, proc_fd_path, touch};
use crate::cgroups::Cgroup;

/// A mount's options split the way mount(2) wants them.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the first mount call.
    pub flags: MsFlags,
    /// Propagation flags, applied with separate calls after the mount.
    pub propagation: MsFlags,
    /// Filesystem data ("size=65536k,mode=755").
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
}

/// Parses OCI mount options; unknown options are filesystem data, as mount(8) treats them.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
        bind: false,
        recursive: false,
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match opt.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if opt.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                o.propagation = base | rec;
                continue;
            }
            // Options that name behaviour of other runtimes' mount helpers, not mount(2).
            "tmpcopyup" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" | "norbind" => {
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o.data = data.join(",");
    o
}

/// Whether `m` shows cgroup directories: a cgroup mount, or a bind of a path below the
/// host's cgroup mounts.
pub fn shows_cgroup(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
        || m.source()
            .as_deref()
            .is_some_and(|s| s.starts_with("/sys/fs/cgroup"))
}

/// Mounts `m` inside the rootfs opened as `root`. `cgroup` is the container's cgroup, for
/// mounts of type cgroup on hosts with v1 hierarchies.
pub fn mount_one(root: BorrowedFd<'_>, m: &Mount, cgroup: Option<&Cgroup>) -> io::Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "none" });
    let dest = m.destination();
    let source = m.source().as_deref();

    if typ == "cgroup" || typ == "cgroup2" {
        return super::cgroupfs::mount(root, dest, &opts, cgroup);
    }

    let target = if opts.bind {
        let src = source.ok_or_else(|| io::Error::other("bind mount without a source"))?;
        let meta = std::fs::metadata(src)?;
        if meta.is_dir() {
            mkdir_all(root, dest)?
        } else {
            touch(root, dest)?
        }
    } else {
        mkdir_all(root, dest)?
    };
    let target_path = proc_fd_path(&target);

    if opts.bind {
        let mut flags = MsFlags::MS_BIND;
        if opts.recursive {
            flags |= MsFlags::MS_REC;
        }
        nix::mount::mount(
            source,
            target_path.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )?;
        // Bind mounts ignore every flag but MS_BIND and MS_REC on the first call: the rest
        // needs a remount of the new mount, reached through a fresh fd on it.
        let remount = opts.flags & !(MsFlags::MS_REMOUNT);
        if !remount.is_empty() {
            let mounted = open_in_root(root, dest, libc::O_PATH)?;
            let keep = locked_flags(&proc_fd_path(&mounted));
            nix::mount::mount(
                None::<&str>,
                proc_fd_path(&mounted).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | remount | keep,
                None::<&str>,
            )?;
        }
    } else {
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let result = nix::mount::mount(source, target_path.as_str(), Some(typ), opts.flags, data);
        match result {
            // A sysfs in a network namespace the container does not own cannot be mounted;
            // a read-only bind of the host's is what other runtimes fall back to.
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                nix::mount::mount(
                    Some("/sys"),
                    target_path.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )?;
                let mounted = open_in_root(root, dest, libc::O_PATH)?;
                nix::mount::mount(
                    None::<&str>,
                    proc_fd_path(&mounted).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | opts.flags,
                    None::<&str>,
                )?;
            }
            other => other?,
        }
    }

    if !opts.propagation.is_empty() {
        let mounted = open_in_root(root, dest, libc::O_PATH)?;
        nix::mount::mount(
            None::<&str>,
            proc_fd_path(&mounted).as_str(),
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Flags the kernel refuses to clear on a remount of a bind mount in a user namespace
/// (nosuid, nodev, noexec and the atime flags of the source): read back and kept.
pub fn locked_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The atime field; relatime is its value 0.
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// The (attr_set, attr_clr) pair of mount_setattr(2) that applies mount `flags`: the
/// per-mount flags are set, an atime flag replaces the atime field, others stay.
fn mount_attr_of(flags: MsFlags) -> (u64, u64) {
    let mut set = 0;
    let mut clr = 0;
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(ms) {
            set |= attr;
        }
    }
    for (ms, attr) in [
        (MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_RELATIME, 0),
    ] {
        if flags.contains(ms) {
            set |= attr;
            clr |= MOUNT_ATTR_ATIME;
            break;
        }
    }
    (set, clr)
}

/// Applies `flags` (read-only, nosuid, nodev, noexec, atime) to the mount `fd` is the
/// root of and to every mount below it, in one call. `Ok(false)` where the kernel has no
/// mount_setattr (before 5.12): the caller remounts each mount instead.
pub fn set_flags_recursive(fd: BorrowedFd<'_>, flags: MsFlags) -> io::Result<bool> {
    let (attr_set, attr_clr) = mount_attr_of(flags);
    if attr_set == 0 && attr_clr == 0 {
        return Ok(true);
    }
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on a live fd, an empty path with AT_EMPTY_PATH, and a
    // mount_attr of the kernel's layout passed with its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS) => Ok(false),
        _ => Err(e),
    }
}

/// Bind-mounts a path onto itself read-only (readonlyPaths, root.readonly).
pub fn make_readonly(root: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let fd = open_in_root(root, path, libc::O_PATH)?;
    let p = proc_fd_path(&fd);
    nix::mount::mount(
        Some(p.as_str()),
        p.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let mounted = open_in_root(root, path, libc::O_PATH)?;
    let mp = proc_fd_path(&mounted);
    let keep = locked_flags(&mp);
    nix::mount::mount(
        None::<&str>,
        mp.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )?;
    Ok(())
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
/// A path that does not exist is skipped, as the spec allows.
pub fn mask(root: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let fd = match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let p = proc_fd_path(&fd);
    let is_dir = nix::sys::stat::fstat(fd.as_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false);
    if is_dir {
        nix::mount::mount(
            Some("tmpfs"),
            p.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k,nr_inodes=1"),
        )?;
    } else {
        nix::mount::mount(
            Some("/dev/null"),
            p.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn proc_options_from_runc_spec() {
        let o = opts(&["nosuid", "noexec", "nodev"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert!(o.data.is_empty());
        assert!(!o.bind);
    }

    #[test]
    fn tmpfs_data_is_kept_in_order() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn rbind_ro_with_propagation() {
        let o = opts(&["rbind", "ro", "rslave"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
    }

    #[test]
    fn mount_attr_sets_flags_and_replaces_the_atime_field() {
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        assert_eq!(
            mount_attr_of(ro | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME),
            (0xf, MOUNT_ATTR_ATIME)
        );
        assert_eq!(mount_attr_of(ro), (0x7, 0));
        assert_eq!(
            mount_attr_of(MsFlags::MS_NOATIME),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME)
        );
        assert_eq!(mount_attr_of(MsFlags::MS_BIND | MsFlags::MS_REC), (0, 0));
    }

    #[test]
    fn later_option_wins() {
        let o = opts(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
