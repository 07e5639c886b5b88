//! Paths inside a container's rootfs, resolved by the kernel inside it (openat2 with
//! RESOLVE_IN_ROOT): a symlink in an image can never lead a mount or a write outside.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// struct open_how of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` as if `root` were `/`. `flags` are open(2) flags; O_CLOEXEC is always added.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let c = cstring(&rel)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `how` a fully initialised open_how
    // whose size is passed along; the returned fd is owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that this process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Opens (O_PATH) the directory `path` inside `root`, creating missing components with
/// mode 0755 on the way, each one created relative to its resolved parent.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    // Most mount points exist: one lookup instead of one per component.
    match open_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => mkdir_all_depth(root, path, 0),
        found => found,
    }
}

fn mkdir_all_depth(root: BorrowedFd<'_>, path: &Path, depth: u32) -> io::Result<OwnedFd> {
    // As many symlinks as the kernel follows in one lookup before it gives up.
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let mut done = PathBuf::from("/");
    let mut dir = open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY)?;
    for comp in relative(path).components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        done.push(name);
        match open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => dir = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c = cstring(Path::new(name))?;
                // SAFETY: `dir` is a live directory fd and `c` a valid C string.
                let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
                if rc < 0 {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(err);
                    }
                    // A dangling symlink: create what it points to, inside the root.
                    let target = nix::fcntl::readlinkat(&dir, name)?;
                    let parent = done.parent().unwrap_or(Path::new("/"));
                    mkdir_all_depth(root, &parent.join(target), depth + 1)?;
                }
                dir = open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Opens (O_PATH) the file `path` inside `root`, creating it and its parents when missing:
/// the mount point of a file bind mount.
pub fn touch(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let rel = relative(path);
    let parent = mkdir_all(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let c = cstring(Path::new(name))?;
    // SAFETY: `parent` is a live directory fd and `c` a valid C string; O_NOFOLLOW keeps a
    // symlink planted at the last component from being followed.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            c.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by this process.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    open_in_root(root, path, libc::O_PATH)
}

/// The path through which a mount syscall reaches exactly the object behind `fd`.
pub fn proc_fd_path(fd: &impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// `path` without its root and `..` stripped lexically; openat2 resolves the rest in root.
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

pub fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(dir: &Path) -> OwnedFd {
        OwnedFd::from(std::fs::File::open(dir).unwrap())
    }

    #[test]
    fn relative_strips_root() {
        assert_eq!(
            relative(Path::new("/etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }

    #[test]
    fn symlink_to_host_path_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), tmp.path().join("escape")).unwrap();
        let root = root_fd(tmp.path());
        mkdir_all(root.as_fd(), Path::new("/escape/sub")).unwrap();
        assert!(!outside.path().join("sub").exists());
        assert!(
            tmp.path()
                .join(outside.path().strip_prefix("/").unwrap())
                .join("sub")
                .is_dir()
        );
    }

    #[test]
    fn dotdot_cannot_leave_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_fd(tmp.path().join("").as_path());
        std::fs::create_dir(tmp.path().join("r")).unwrap();
        let inner = root_fd(&tmp.path().join("r"));
        touch(inner.as_fd(), Path::new("../../../x")).unwrap();
        assert!(tmp.path().join("r/x").exists());
        assert!(!tmp.path().join("x").exists());
        drop(root);
    }
}
