//! Writes files into a directory tree the way a layer describes them, every one through a
//! directory descriptor resolved inside the tree and created with *at syscalls that do not
//! follow a symlink in the last component. Owners, modes (setuid included), mtimes,
//! xattrs, symlinks, hardlinks, device nodes and fifos are kept.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, fstatat, futimens,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use super::resolve::{open_existing_dir, open_in_root, open_or_create_dir, plain_name, split};
use super::xattr;

/// What an entry is.
pub enum Node<'a> {
    Dir,
    File(&'a mut dyn Read),
    Symlink(&'a Path),
    /// A second name for the file at this path (relative to the tree's root).
    Hardlink(&'a Path),
    CharDevice(libc::dev_t),
    BlockDevice(libc::dev_t),
    Fifo,
}

/// Owner, mode and times of an entry, as the image has them.
#[derive(Clone, Debug)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// A tree being written: its root and the directory mtimes to set once all entries are in
/// (adding an entry to a directory changes its mtime).
pub struct Tree {
    root: OwnedFd,
    dir_times: Vec<(PathBuf, TimeSpec)>,
    buf: Vec<u8>,
    /// Start writing each file's data to disk as soon as it is written, for a tree that
    /// is synced once complete.
    early_writeback: bool,
    /// A writer's tree keeps the directory of its last entry open: entries come grouped
    /// by directory. See [`Tree::at_epoch`].
    keep_parent: bool,
    parent: Option<Parent>,
    epoch: u64,
    /// This process creates files as root:root, so a new file needs no chown to be
    /// root-owned unless its directory hands down another group.
    creates_as_root: bool,
}

/// An entry's directory, opened.
struct Parent {
    path: PathBuf,
    fd: OwnedFd,
    /// Its group, when known: new entries get it where the directory is setgid (or the
    /// filesystem is mounted with grpid).
    gid: Option<u32>,
}

type Outcome = Result<(), String>;

impl Tree {
    /// `root` must be a directory opened for reading (not O_PATH), so that the root's own
    /// metadata can be set through it.
    pub fn new(root: OwnedFd) -> Tree {
        Tree {
            root,
            dir_times: Vec::new(),
            buf: vec![0u8; 256 << 10],
            early_writeback: false,
            keep_parent: false,
            parent: None,
            epoch: 0,
            creates_as_root: Uid::effective().is_root() && Gid::effective().as_raw() == 0,
        }
    }

    /// Files written from now on are handed to the disk at once, so that the sync of the
    /// complete tree finds little left to do.
    pub fn write_back_early(&mut self) {
        self.early_writeback = true;
    }

    /// A second tree over the same root, for a writer thread: it puts files and symlinks
    /// (which record no directory times).
    pub fn writer(&self) -> io::Result<Tree> {
        let mut tree = Tree::new(self.root.try_clone()?);
        tree.early_writeback = self.early_writeback;
        tree.keep_parent = true;
        Ok(tree)
    }

    /// A writer's directory descriptor stays valid while the reader's
    /// [`super::order::Order::epoch`] stays the same; a job from another epoch opens its
    /// directory again.
    pub fn at_epoch(&mut self, epoch: u64) {
        if epoch != self.epoch {
            self.parent = None;
            self.epoch = epoch;
        }
    }

    /// The directory `path`, created if missing: the one kept open if it is that one.
    fn open_parent(&mut self, path: &Path) -> Result<Parent, String> {
        if let Some(parent) = self.parent.take() {
            if parent.path == path {
                return Ok(parent);
            }
        }
        let fd = open_or_create_dir(self.root.as_fd(), path)?;
        let gid = if self.keep_parent {
            Some(
                fstat(fd.as_fd())
                    .map_err(|e| format!("stat parent: {e}"))?
                    .st_gid,
            )
        } else {
            None
        };
        Ok(Parent {
            path: path.to_path_buf(),
            fd,
            gid,
        })
    }

    /// Whether an entry just created in `parent` already has the owner `meta` asks for.
    fn owned_as_asked(&self, parent: &Parent, meta: &Meta) -> bool {
        self.creates_as_root && meta.uid == 0 && meta.gid == 0 && parent.gid == Some(0)
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Creates (or, for an existing directory, updates) the entry at `path`.
    pub fn put(&mut self, path: &Path, node: Node<'_>, meta: &Meta) -> Outcome {
        let Some((parent_path, name)) = split(path) else {
            return self.put_root(node, meta);
        };
        if !plain_name(&name) {
            return Err("bad file name".to_string());
        }
        let opened = self.open_parent(parent_path)?;
        let owned = self.owned_as_asked(&opened, meta);
        let parent = opened.fd.as_fd();
        match node {
            Node::Dir => {
                let dir = make_dir(parent, &name)?;
                apply_owner_mode(dir.as_fd(), meta)?;
                set_xattrs_fd(dir.as_fd(), meta)?;
                self.dir_times.push((path.to_path_buf(), meta.mtime));
            }
            Node::File(content) => {
                let create = || {
                    openat(
                        parent,
                        name.as_os_str(),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                };
                let fd =
                    create_replacing(parent, &name, create).map_err(|e| format!("create: {e}"))?;
                let mut file = File::from(fd);
                copy(content, &mut file, &mut self.buf)?;
                if !owned {
                    set_owner(file.as_fd(), meta)?;
                }
                fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| format!("set mode: {e}"))?;
                set_xattrs_fd(file.as_fd(), meta)?;
                futimens(file.as_fd(), &meta.mtime, &meta.mtime)
                    .map_err(|e| format!("set mtime: {e}"))?;
                if self.early_writeback {
                    start_writeback(file.as_fd());
                }
            }
            Node::Symlink(target) => {
                create_replacing(parent, &name, || {
                    symlinkat(target, parent, name.as_os_str())
                })
                .map_err(|e| format!("create symlink: {e}"))?;
                self.finish_at(parent, &name, meta, false, owned)?;
            }
            Node::Hardlink(target) => {
                let source =
                    open_in_root(self.root.as_fd(), target, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                        .map_err(|e| match e {
                            Errno::ENOENT => format!(
                                "hardlink target {} does not exist in the image",
                                target.display()
                            ),
                            e => format!("open hardlink target {}: {e}", target.display()),
                        })?;
                let st = fstat(source.as_fd()).map_err(|e| format!("stat hardlink target: {e}"))?;
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    return Err(format!(
                        "hardlink target {} is a directory",
                        target.display()
                    ));
                }
                if let Ok(existing) =
                    fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                {
                    if existing.st_dev == st.st_dev && existing.st_ino == st.st_ino {
                        return Ok(());
                    }
                }
                replace(parent, &name)?;
                linkat(
                    source.as_fd(),
                    "",
                    parent,
                    name.as_os_str(),
                    AtFlags::AT_EMPTY_PATH,
                )
                .map_err(|e| format!("create hardlink to {}: {e}", target.display()))?;
            }
            Node::CharDevice(dev) | Node::BlockDevice(dev) => {
                let kind = if matches!(node, Node::CharDevice(_)) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                replace(parent, &name)?;
                mknodat(parent, name.as_os_str(), kind, Mode::empty(), dev)
                    .map_err(|e| format!("create device node: {e}"))?;
                self.finish_at(parent, &name, meta, true, false)?;
            }
            Node::Fifo => {
                replace(parent, &name)?;
                mknodat(parent, name.as_os_str(), SFlag::S_IFIFO, Mode::empty(), 0)
                    .map_err(|e| format!("create fifo: {e}"))?;
                self.finish_at(parent, &name, meta, true, false)?;
            }
        }
        if self.keep_parent {
            self.parent = Some(opened);
        }
        Ok(())
    }

    /// Metadata for the root directory itself (a layer's `./` entry).
    fn put_root(&mut self, node: Node<'_>, meta: &Meta) -> Outcome {
        if !matches!(node, Node::Dir) {
            return Err("the root of an image can only be a directory".to_string());
        }
        apply_owner_mode(self.root.as_fd(), meta)?;
        set_xattrs_fd(self.root.as_fd(), meta)?;
        self.dir_times.push((PathBuf::new(), meta.mtime));
        Ok(())
    }

    /// Owner (unless `owned` already), mode, xattrs and mtime of an entry that cannot be
    /// opened (a symlink, a device node, a fifo), set by name in its parent without
    /// following it.
    fn finish_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        chmod: bool,
        owned: bool,
    ) -> Outcome {
        if !owned {
            fchownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| format!("set owner: {e}"))?;
        }
        if chmod {
            // The entry was just created by this process and is not a symlink.
            fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| format!("set mode: {e}"))?;
        }
        for (attr, value) in &meta.xattrs {
            xattr::set_at(parent, name, attr, value)
                .map_err(|e| format!("set xattr {}: {e}", attr.to_string_lossy()))?;
        }
        utimensat(
            parent,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| format!("set mtime: {e}"))
    }

    /// Deletes `path` and everything under it, if it exists: a whiteout. A missing parent
    /// means there is nothing to delete.
    pub fn remove(&mut self, path: &Path) -> Outcome {
        let Some((parent_path, name)) = split(path) else {
            return Err("a whiteout cannot remove the root".to_string());
        };
        if !plain_name(&name) {
            return Err("bad whiteout name".to_string());
        }
        let Some(parent) = open_existing_dir(self.root.as_fd(), parent_path)? else {
            return Ok(());
        };
        replace(parent.as_fd(), &name)
    }

    /// Opens the directory `path` (creating it if missing) for reading, so that a caller
    /// can touch or name it; used for opaque directories.
    pub fn open_dir(&mut self, path: &Path) -> Result<OwnedFd, String> {
        if path.as_os_str().is_empty() {
            return open_in_root(
                self.root.as_fd(),
                path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            )
            .map_err(|e| format!("open: {e}"));
        }
        open_or_create_dir(self.root.as_fd(), path)?;
        open_in_root(
            self.root.as_fd(),
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
        .map_err(|e| format!("open: {e}"))
    }

    /// Sets the directory mtimes, deepest first. Returns the path that failed, if any.
    pub fn finish(mut self) -> Result<(), (PathBuf, String)> {
        while let Some((path, mtime)) = self.dir_times.pop() {
            let fd = match open_in_root(
                self.root.as_fd(),
                &path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ) {
                Ok(fd) => fd,
                // A later entry of the layer replaced or removed the directory.
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
                Err(e) => return Err((path, format!("open: {e}"))),
            };
            futimens(fd.as_fd(), &mtime, &mtime).map_err(|e| (path, format!("set mtime: {e}")))?;
        }
        Ok(())
    }
}

/// Creates directory `name` in `parent` or reuses the one there; anything else in the way
/// is replaced. Returns it opened for reading.
fn make_dir(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, String> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| format!("stat: {e}"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                replace(parent, name)?;
                mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| format!("create directory: {e}"))?;
            }
        }
        Err(e) => return Err(format!("create directory: {e}")),
    }
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open directory: {e}"))
}

/// Removes whatever is at `name` in `parent` (a whole directory tree included), so that a
/// new entry can take its place. Nothing there is fine.
fn replace(parent: BorrowedFd<'_>, name: &OsStr) -> Outcome {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("stat: {e}")),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        remove_dir_all_at(parent, name).map_err(|e| format!("remove directory: {e}"))
    } else {
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| format!("remove: {e}"))
    }
}

/// `rm -r` of `name` in `parent`, by descriptors only: no path is followed.
fn remove_dir_all_at(parent: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let dup = fd.try_clone().map_err(|_| Errno::EMFILE)?;
    let mut dir = nix::dir::Dir::from_fd(dup)?;
    let mut children: Vec<(OsString, bool)> = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if child == "." || child == ".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(nix::dir::Type::Directory) => true,
            Some(_) => false,
            None => fstatat(fd.as_fd(), child.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)?,
        };
        children.push((child, is_dir));
    }
    for (child, is_dir) in children {
        if is_dir {
            remove_dir_all_at(fd.as_fd(), &child)?;
        } else {
            unlinkat(fd.as_fd(), child.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

/// Owner first, then mode: chown clears setuid and setgid bits.
fn apply_owner_mode(fd: BorrowedFd<'_>, meta: &Meta) -> Outcome {
    set_owner(fd, meta)?;
    fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| format!("set mode: {e}"))
}

fn set_owner(fd: BorrowedFd<'_>, meta: &Meta) -> Outcome {
    fchown(
        fd,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )
    .map_err(|e| format!("set owner: {e}"))
}

/// Runs `create`; if the name is taken, removes what is there (see [`replace`]) and runs
/// it again. Most names are new, so this saves a stat of each.
fn create_replacing<T>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    create: impl Fn() -> nix::Result<T>,
) -> Result<T, String> {
    match create() {
        Err(Errno::EEXIST) => {
            replace(parent, name)?;
            create().map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// Xattrs go last: chown drops security.capability.
fn set_xattrs_fd(fd: BorrowedFd<'_>, meta: &Meta) -> Outcome {
    for (attr, value) in &meta.xattrs {
        xattr::set_fd(fd, attr, value)
            .map_err(|e| format!("set xattr {}: {e}", attr.to_string_lossy()))?;
    }
    Ok(())
}

/// Starts writing a file's data to disk without waiting for it. Only a head start for
/// the sync that follows, so a failure here changes nothing.
fn start_writeback(fd: BorrowedFd<'_>) {
    // SAFETY: sync_file_range only reads its integer arguments; `fd` is a live descriptor.
    let _ = unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0,
            0,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

/// Copies file content, telling a failure to read the layer from a failure to write.
fn copy(from: &mut dyn Read, to: &mut File, buf: &mut [u8]) -> Outcome {
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read the layer: {e}")),
        };
        to.write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
    }
}
