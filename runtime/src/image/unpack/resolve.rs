//! Paths of layer entries, checked lexically and then resolved by the kernel inside the
//! tree being written (openat2 with RESOLVE_IN_ROOT): no name, `..`, symlink or hardlink
//! in a layer can reach a file outside it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, mkdirat};

/// An entry name from a layer as a relative path of plain components. `./` prefixes and
/// trailing slashes are tolerated; absolute names and `..` are refused, because the only
/// way such a name can mean something inside the image is by accident.
pub fn entry_path(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path in a layer".to_string());
    }
    if raw.contains(&0) {
        return Err("NUL byte in a path".to_string());
    }
    let mut out = PathBuf::new();
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("path goes up with \"..\"".to_string()),
            name => out.push(OsStr::from_bytes(name)),
        }
    }
    Ok(out)
}

/// A single file name: not empty, no `/`, not `.` or `..`.
pub fn plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Opens `path` (relative, plain components) as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let path: &Path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    openat2(root, path, how(flags))
}

/// Opens (O_PATH) the directory `dir` inside `root`, creating missing directories with
/// mode 0755, each relative to its already resolved parent. A component that exists but is
/// not a directory, or a symlink whose target is missing, is an error.
pub fn open_or_create_dir(root: BorrowedFd<'_>, dir: &Path) -> Result<OwnedFd, String> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, dir, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(Errno::ENOTDIR) => return Err(not_a_dir(root, dir)),
        Err(e) => return Err(format!("open parent {}: {e}", dir.display())),
    }
    let mut done = PathBuf::new();
    let mut current =
        open_in_root(root, &done, flags).map_err(|e| format!("open the root: {e}"))?;
    for component in dir.iter() {
        done.push(component);
        match open_in_root(root, &done, flags) {
            Ok(fd) => current = fd,
            Err(Errno::ENOENT) => {
                match mkdirat(current.as_fd(), component, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        return Err(format!(
                            "parent {} is a symlink to a directory that does not exist in the \
                             image",
                            done.display()
                        ));
                    }
                    Err(e) => return Err(format!("create parent {}: {e}", done.display())),
                }
                current = open_in_root(root, &done, flags)
                    .map_err(|e| format!("open parent {}: {e}", done.display()))?;
            }
            Err(Errno::ENOTDIR) => return Err(not_a_dir(root, &done)),
            Err(e) => return Err(format!("open parent {}: {e}", done.display())),
        }
    }
    Ok(current)
}

/// Opens (O_PATH) the directory `dir` inside `root` if it exists.
pub fn open_existing_dir(root: BorrowedFd<'_>, dir: &Path) -> Result<Option<OwnedFd>, String> {
    match open_in_root(root, dir, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(format!("open {}: {e}", dir.display())),
    }
}

fn not_a_dir(root: BorrowedFd<'_>, dir: &Path) -> String {
    // Find the first prefix that is not a directory, to name it.
    let mut prefix = PathBuf::new();
    for component in dir.iter() {
        prefix.push(component);
        if open_in_root(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY).is_err() {
            break;
        }
    }
    format!("parent {} is not a directory", prefix.display())
}

/// Splits a relative entry path into its parent and last component.
pub fn split(path: &Path) -> Option<(&Path, OsString)> {
    let name = path.file_name()?.to_os_string();
    Some((path.parent().unwrap_or(Path::new("")), name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(dir: &Path) -> OwnedFd {
        OwnedFd::from(std::fs::File::open(dir).unwrap())
    }

    #[test]
    fn entry_names() {
        assert_eq!(
            entry_path(b"./etc/passwd").unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(entry_path(b"usr/bin/").unwrap(), PathBuf::from("usr/bin"));
        assert_eq!(entry_path(b"./").unwrap(), PathBuf::new());
        assert_eq!(entry_path(b"a//b/./c").unwrap(), PathBuf::from("a/b/c"));
        assert!(entry_path(b"/etc/passwd").unwrap_err().contains("absolute"));
        assert!(entry_path(b"../../escape").unwrap_err().contains(".."));
        assert!(entry_path(b"a/../../b").unwrap_err().contains(".."));
    }

    #[test]
    fn plain_names() {
        assert!(plain_name(OsStr::new("passwd")));
        assert!(plain_name(OsStr::new("..x")));
        assert!(!plain_name(OsStr::new("..")));
        assert!(!plain_name(OsStr::new("")));
        assert!(!plain_name(OsStr::new("a/b")));
    }

    #[test]
    fn parents_through_absolute_symlinks_stay_inside() {
        let tree = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("usr/lib")).unwrap();
        symlink("/usr/lib", tree.path().join("lib")).unwrap();
        symlink(outside.path(), tree.path().join("escape")).unwrap();
        let root = root_fd(tree.path());

        open_or_create_dir(root.as_fd(), Path::new("lib/sub")).unwrap();
        assert!(tree.path().join("usr/lib/sub").is_dir());

        // The symlink points at a host directory that the tree does not have.
        let err = open_or_create_dir(root.as_fd(), Path::new("escape/x")).unwrap_err();
        assert!(err.contains("does not exist in the image"), "{err}");
        assert!(!outside.path().join("x").exists());
    }

    #[test]
    fn file_in_the_way_of_a_parent() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("file"), b"").unwrap();
        let root = root_fd(tree.path());
        let err = open_or_create_dir(root.as_fd(), Path::new("file/x/y")).unwrap_err();
        assert_eq!(err, "parent file is not a directory");
    }
}
