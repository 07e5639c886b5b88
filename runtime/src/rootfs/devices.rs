//! Device nodes and the standard /dev links inside the rootfs.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{cstring, mkdir_all, open_in_root, proc_fd_path, relative, touch};

/// A device node to create: the spec's linux.devices and the defaults every container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: libc::mode_t,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices the runtime spec requires in every container.
pub fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: PathBuf::from("/dev").join(name),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn node_from_spec(d: &LinuxDevice) -> Node {
    let kind = match d.typ() {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Creates a node with mknod; where that is not allowed (a user namespace), bind-mounts
/// the host's node of the same path instead.
pub fn create(root: BorrowedFd<'_>, node: &Node) -> io::Result<()> {
    let rel = relative(&node.path);
    let parent = mkdir_all(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let c = cstring(Path::new(name))?;
    // SAFETY: `parent` is a live directory fd and `c` a valid C string.
    let rc = unsafe {
        libc::mknodat(
            parent.as_raw_fd(),
            c.as_ptr(),
            node.kind | node.mode,
            libc::makedev(node.major as u32, node.minor as u32),
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EEXIST) => return Ok(()),
            Some(libc::EPERM) => return bind_host_node(root, node),
            _ => return Err(err),
        }
    }
    // mknod honours the umask; the spec's mode and owner are set explicitly.
    let fd = open_in_root(root, &node.path, libc::O_PATH)?;
    let p = proc_fd_path(&fd);
    nix::unistd::chown(p.as_str(), Some(node.uid.into()), Some(node.gid.into()))?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(node.mode))?;
    Ok(())
}

fn bind_host_node(root: BorrowedFd<'_>, node: &Node) -> io::Result<()> {
    let target = touch(root, &node.path)?;
    nix::mount::mount(
        Some(&node.path),
        proc_fd_path(&target).as_str(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx, as the runtime spec lists them.
pub fn create_links(root: BorrowedFd<'_>, has_devpts: bool) -> io::Result<()> {
    let dev = mkdir_all(root, Path::new("/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_devpts {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let t = cstring(Path::new(target))?;
        let n = cstring(Path::new(name))?;
        if name == "ptmx" {
            // A ptmx node from an image or a bind mount gives way to the devpts link.
            // SAFETY: `dev` is a live directory fd and `n` a valid C string.
            unsafe { libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0) };
        }
        // SAFETY: both strings are valid C strings and `dev` is a live directory fd.
        let rc = unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EEXIST) {
                return Err(err);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_set() {
        let names: Vec<_> = default_nodes()
            .iter()
            .map(|n| n.path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(
            default_nodes()
                .iter()
                .all(|n| n.kind == libc::S_IFCHR && n.mode == 0o666)
        );
    }
}
