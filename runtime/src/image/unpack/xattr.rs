//! Extended attributes by file descriptor or by a path that does not follow its last
//! symlink: the few syscalls nix does not wrap.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// fsetxattr(2) on an open (not O_PATH) descriptor.
pub fn set_fd(fd: BorrowedFd<'_>, name: &OsStr, value: &[u8]) -> io::Result<()> {
    let name = cstring(name.as_bytes())?;
    // SAFETY: `fd` is a live descriptor, `name` a NUL-terminated string and `value` a
    // readable buffer of the given length; the kernel only reads from them.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// lsetxattr(2) on `name` inside the directory `dir`, through `/proc/self/fd`: the
/// directory is the one the descriptor holds and the last component is not followed.
pub fn set_at(dir: BorrowedFd<'_>, name: &OsStr, attr: &OsStr, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = cstring(&path)?;
    let attr = cstring(attr.as_bytes())?;
    // SAFETY: both strings are NUL-terminated and `value` is a readable buffer of the
    // given length; lsetxattr does not follow a symlink in the last component.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The names of `path`'s extended attributes, without following a symlink.
pub fn list(path: &Path) -> io::Result<Vec<OsString>> {
    let c = cstring(path.as_os_str().as_bytes())?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `c` is NUL-terminated and `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect())
}

/// The value of `path`'s extended attribute `name`, without following a symlink.
pub fn get(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
    let c = cstring(path.as_os_str().as_bytes())?;
    let attr = cstring(name.as_bytes())?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the strings are NUL-terminated and `buf` is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                attr.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return Err(err);
    }
}
