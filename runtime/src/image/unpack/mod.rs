//! A layer blob written into a tree: decompressed (tar, gzip or zstd, told apart by their
//! magic bytes), read with the tar crate, and every entry written by [`tree::Tree`], which
//! keeps it inside the tree. The tar crate only reads; it never writes a file.

mod inflate;
mod order;
mod resolve;
pub mod tree;
mod writers;
pub mod xattr;

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::fstat;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown};
use tar::EntryType;

use order::Order;
pub use resolve::{entry_path, open_in_root};
pub use tree::{Meta, Node, Tree};
use writers::{Content, Failure, Job, MAX_FILE, Shared, Writers};

use super::digest::{Digest, Hashing};
use super::error::{ImageError, Result};
use super::whiteout::{self, Whiteout};

/// What applying a layer found out.
pub struct Applied {
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Directories made opaque, as paths inside the tree; on an overlay they still need
    /// their xattr set on the upper directory once the overlay is unmounted.
    pub opaque_dirs: Vec<PathBuf>,
}

/// How whiteouts are written.
#[derive(Clone, Copy)]
pub enum Whiteouts<'a> {
    /// The tree is the merged view of an overlay mounted at this path: a whiteout is a
    /// deletion that the overlay records itself, an opaque directory is noted for later.
    Overlay(&'a Path),
    /// The tree has nothing below it (a base layer, a bundle): a whiteout deletes what an
    /// earlier entry of the same layer may have made, and opaque markers have nothing to
    /// hide.
    Plain,
}

/// Writes the layer `blob` (its compressed stream) into `tree` and returns its diff ID.
/// One thread inflates; this thread hashes and reads the stream and writes directories,
/// large files and whatever must keep its place in the order; writer threads create the
/// small files and symlinks meanwhile.
pub fn apply_layer(
    mut tree: Tree,
    blob: Box<dyn Read + Send + '_>,
    layer: &Digest,
    whiteouts: Whiteouts<'_>,
) -> Result<Applied> {
    let layer_error = |reason: String| ImageError::Layer {
        layer: layer.clone(),
        reason,
    };
    let input = BufReader::with_capacity(1 << 20, blob);
    let stream = decompress(input).map_err(|e| layer_error(format!("read: {e}")))?;
    // The snapshot is synced as a whole once complete; start on its data meanwhile.
    tree.write_back_early();
    std::thread::scope(|scope| {
        let inflated = inflate::start(scope, stream)
            .map_err(|e| layer_error(format!("start a thread: {e}")))?;
        let mut hashing = Hashing::new(inflated);
        let opaque_dirs = write_entries(&mut tree, &mut hashing, layer, whiteouts)?;
        tree.finish().map_err(|(path, reason)| ImageError::Entry {
            layer: layer.clone(),
            path: path.display().to_string(),
            reason,
        })?;
        let (diff_id, _) = hashing
            .finish()
            .map_err(|e| layer_error(format!("read: {e}")))?;
        Ok(Applied {
            diff_id,
            opaque_dirs,
        })
    })
}

/// Writes every entry of the tar `stream` into `tree`; returns the directories made opaque.
fn write_entries(
    tree: &mut Tree,
    stream: &mut dyn Read,
    layer: &Digest,
    whiteouts: Whiteouts<'_>,
) -> Result<Vec<PathBuf>> {
    let layer_error = |reason: String| ImageError::Layer {
        layer: layer.clone(),
        reason,
    };
    let failure = |(path, reason): Failure| ImageError::Entry {
        layer: layer.clone(),
        path,
        reason,
    };
    let mut opaque_dirs = Vec::new();
    let shared = Shared::default();
    std::thread::scope(|scope| -> Result<()> {
        let mut writers =
            Writers::start(scope, tree, writer_count(), &shared).map_err(layer_error)?;
        let mut order = Order::default();
        // Waits for the writers when the reader is about to change `path` itself.
        let settle = |writers: &Writers<'_>, order: &mut Order, path: &Path, all: bool| {
            if all || order.must_wait(path) {
                writers.drain().map_err(failure)?;
                order.drained();
            }
            Ok::<(), ImageError>(())
        };
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(|e| layer_error(format!("read: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| layer_error(format!("read: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let name = || String::from_utf8_lossy(&raw).into_owned();
            let entry_error = |reason: String| ImageError::Entry {
                layer: layer.clone(),
                path: name(),
                reason,
            };
            let path = entry_path(&raw).map_err(entry_error)?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                EntryType::XGlobalHeader
                    | EntryType::XHeader
                    | EntryType::GNULongName
                    | EntryType::GNULongLink
            ) {
                continue;
            }
            if let Some(file_name) = path.file_name() {
                let parent = path.parent().unwrap_or(Path::new(""));
                match whiteout::classify(file_name) {
                    Whiteout::None => {}
                    Whiteout::AufsMetadata => continue,
                    Whiteout::Remove(target) => {
                        if !resolve::plain_name(target) {
                            return Err(entry_error("bad whiteout name".to_string()));
                        }
                        let target = parent.join(target);
                        settle(&writers, &mut order, &target, false)?;
                        tree.remove(&target).map_err(entry_error)?;
                        order.applied(&target, false);
                        continue;
                    }
                    Whiteout::Opaque => {
                        if let Whiteouts::Overlay(mount) = whiteouts {
                            settle(&writers, &mut order, parent, false)?;
                            let dir = opaque_dir(tree, parent, mount).map_err(entry_error)?;
                            opaque_dirs.push(dir);
                        }
                        continue;
                    }
                }
            }
            let meta = entry_meta(&mut entry).map_err(entry_error)?;
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let content = match (kind, &link) {
                (EntryType::Regular | EntryType::Continuous, _)
                    if entry.size() <= MAX_FILE && order.may_hand_off(&path) =>
                {
                    let size = entry.size();
                    let mut data = Vec::with_capacity(size as usize);
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| entry_error(format!("read the layer: {e}")))?;
                    if data.len() as u64 != size {
                        return Err(entry_error("the layer ends inside the file".into()));
                    }
                    Some(Content::File(data))
                }
                (EntryType::Symlink, Some(target)) if order.may_hand_off(&path) => Some(
                    Content::Symlink(PathBuf::from(std::ffi::OsStr::from_bytes(target))),
                ),
                _ => None,
            };
            if let Some(content) = content {
                order.handed_off(&path);
                writers
                    .hand_off(Job {
                        path,
                        name: name(),
                        content,
                        meta,
                        epoch: order.epoch(),
                    })
                    .map_err(failure)?;
                continue;
            }
            // A hardlink's target may be anywhere, a writer's file included.
            settle(&writers, &mut order, &path, kind == EntryType::Link)?;
            match kind {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    tree.put(&path, Node::File(&mut entry), &meta)
                }
                EntryType::Directory => tree.put(&path, Node::Dir, &meta),
                EntryType::Symlink => {
                    let target =
                        link.ok_or_else(|| entry_error("symlink without a target".into()))?;
                    tree.put(
                        &path,
                        Node::Symlink(Path::new(std::ffi::OsStr::from_bytes(&target))),
                        &meta,
                    )
                }
                EntryType::Link => {
                    let target =
                        link.ok_or_else(|| entry_error("hardlink without a target".into()))?;
                    let target = entry_path(&target)
                        .map_err(|reason| entry_error(format!("hardlink target: {reason}")))?;
                    tree.put(&path, Node::Hardlink(&target), &meta)
                }
                EntryType::Char | EntryType::Block => {
                    let dev = device(&entry).map_err(entry_error)?;
                    let node = if kind == EntryType::Char {
                        Node::CharDevice(dev)
                    } else {
                        Node::BlockDevice(dev)
                    };
                    tree.put(&path, node, &meta)
                }
                EntryType::Fifo => tree.put(&path, Node::Fifo, &meta),
                other => Err(format!(
                    "unsupported tar entry type {:?}",
                    other.as_byte() as char
                )),
            }
            .map_err(entry_error)?;
            order.applied(&path, kind == EntryType::Directory);
        }
        writers.finish().map_err(failure)
    })?;
    Ok(opaque_dirs)
}

/// Writer threads beside the reader: creating inodes is the bulk of the work, and the
/// kernel does it in parallel for different directories.
fn writer_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
}

/// The stream inside a layer blob: gzip (all members) and zstd are recognised by their
/// magic numbers, anything else is read as a plain tar.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let head = input.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(input)?))
    } else {
        Ok(Box::new(input))
    }
}

/// Copies up the directory of an opaque marker through the overlay and returns where it
/// lives in the upper directory: the overlay's merged path, minus the mount point.
fn opaque_dir(tree: &mut Tree, dir: &Path, mount: &Path) -> std::result::Result<PathBuf, String> {
    let fd = tree.open_dir(dir)?;
    // A change of owner (to the same owner) makes the overlay copy the directory up.
    let st = fstat(fd.as_fd()).map_err(|e| format!("stat: {e}"))?;
    fchown(
        fd.as_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| format!("copy up: {e}"))?;
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let real = std::fs::read_link(&link).map_err(|e| format!("locate: {e}"))?;
    real.strip_prefix(mount)
        .map(Path::to_path_buf)
        .map_err(|_| format!("{} is outside the overlay", real.display()))
}

fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::result::Result<Meta, String> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| format!("mode: {e}"))? & 0o7777;
    let uid = header.uid().map_err(|e| format!("uid: {e}"))?;
    let gid = header.gid().map_err(|e| format!("gid: {e}"))?;
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?;
    let mut mtime = TimeSpec::new(
        header
            .mtime()
            .map_err(|e| format!("mtime: {e}"))?
            .try_into()
            .unwrap_or(i64::MAX),
        0,
    );
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry
        .pax_extensions()
        .map_err(|e| format!("pax header: {e}"))?
    {
        for extension in extensions {
            let extension = extension.map_err(|e| format!("pax header: {e}"))?;
            let key = extension.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                let name = OsString::from(std::ffi::OsStr::from_bytes(name));
                if !whiteout::is_overlay_xattr(&name) {
                    xattrs.push((name, extension.value_bytes().to_vec()));
                }
            } else if key == b"mtime" {
                if let Some(t) = extension.value().ok().and_then(parse_pax_time) {
                    mtime = t;
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A PAX time: decimal seconds with an optional fraction, `1700000000.123456789`.
fn parse_pax_time(value: &str) -> Option<TimeSpec> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(TimeSpec::new(secs, nanos))
}

fn device<R: Read>(entry: &tar::Entry<'_, R>) -> std::result::Result<libc::dev_t, String> {
    let header = entry.header();
    let major = header
        .device_major()
        .map_err(|e| format!("device major: {e}"))?
        .unwrap_or(0);
    let minor = header
        .device_minor()
        .map_err(|e| format!("device minor: {e}"))?
        .unwrap_or(0);
    Ok(libc::makedev(major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (1_700_000_000, 500_000_000));
        let t = parse_pax_time("12").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (12, 0));
        assert!(parse_pax_time("x").is_none());
    }

    /// A tar of `entries`: (name, type, mode, gid, content).
    fn layer(entries: &[(&str, EntryType, u32, u64, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, mode, gid, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_uid(0);
            header.set_gid(*gid);
            header.set_mtime(1_700_000_000);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn apply(tar: Vec<u8>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = OwnedFd::from(std::fs::File::open(dir.path()).unwrap());
        let digest = Digest::of(&tar);
        let applied = apply_layer(
            Tree::new(root),
            Box::new(io::Cursor::new(tar)),
            &digest,
            Whiteouts::Plain,
        )
        .unwrap();
        assert_eq!(applied.diff_id, digest);
        dir
    }

    #[test]
    fn a_directory_removed_and_made_again_gets_the_files_after_it() {
        // Writers keep the directory of their last file open; after the whiteout, `d` is
        // a new directory, and `d/b` must land in it, not in the removed one.
        let mut entries: Vec<(String, EntryType, u32, u64, Vec<u8>)> =
            vec![("d/".into(), EntryType::Directory, 0o755, 0, vec![])];
        for i in 0..50 {
            entries.push((
                format!("d/a{i}"),
                EntryType::Regular,
                0o644,
                0,
                b"a".to_vec(),
            ));
        }
        entries.push((".wh.d".into(), EntryType::Regular, 0o644, 0, vec![]));
        entries.push(("d/".into(), EntryType::Directory, 0o755, 0, vec![]));
        entries.push(("d/b".into(), EntryType::Regular, 0o644, 0, b"b".to_vec()));
        let entries: Vec<_> = entries
            .iter()
            .map(|(n, k, m, g, d)| (n.as_str(), *k, *m, *g, &d[..]))
            .collect();
        let dir = apply(layer(&entries));
        assert_eq!(std::fs::read(dir.path().join("d/b")).unwrap(), b"b");
        assert!(!dir.path().join("d/a0").exists());
    }

    #[test]
    fn files_keep_their_group_in_a_directory_made_setgid_later() {
        use std::os::unix::fs::MetadataExt;
        // `d` becomes setgid with group 50 after its first files: a root-owned file put
        // after that must still be chowned to group 0.
        let dir = apply(layer(&[
            ("d/", EntryType::Directory, 0o755, 0, b""),
            ("d/first", EntryType::Regular, 0o644, 0, b"1"),
            ("d/", EntryType::Directory, 0o2775, 50, b""),
            ("d/second", EntryType::Regular, 0o644, 0, b"2"),
            ("d/third", EntryType::Regular, 0o644, 50, b"3"),
        ]));
        let gid = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().gid();
        assert_eq!(gid("d"), 50);
        assert_eq!(gid("d/first"), 0);
        assert_eq!(gid("d/second"), 0);
        assert_eq!(gid("d/third"), 50);
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&b"hello"[..], 1).unwrap();
        for input in [gz, zst, b"hello".to_vec()] {
            let mut out = String::new();
            decompress(&input[..])
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "hello");
        }
    }
}
