//! Snapshots: each layer unpacked once, into `snapshots/<chain-id>/`, and used read-only
//! from then on as an overlay lower directory.
//!
//! A base layer is written straight into a new directory. A layer with parents is written
//! into the merged view of an overlay whose lower directories are the parent snapshots and
//! whose upper directory is the new snapshot: an entry under a symlink of a lower layer
//! (`lib/x.so` over `lib -> usr/lib`) lands where the merged view puts it, and a whiteout
//! is a plain deletion that overlayfs records itself as a 0:0 device. Opaque directories
//! are marked on the upper directory once the overlay is gone. All of it happens in tmp/;
//! the snapshot appears under its name only when complete and synced.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fchmod, futimens};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, syncfs};

use super::arriving::Arriving;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::gc::remove;
use super::manifest::Descriptor;
use super::mount::{self, Overlay};
use super::progress::Progress;
use super::store::{Store, publish};
use super::unpack::{self, Tree, Whiteouts};
use super::whiteout::OVERLAY_OPAQUE_XATTR;

/// Makes sure the snapshot `chain_id` exists: unpacks `layer` over the snapshots of
/// `parents` (bottom first) if it does not, reading the blob from `arriving` while it is
/// copied into the store, or else from the store. The layer's diff ID must be `diff_id`.
/// Returns whether this call made the snapshot.
pub(crate) fn ensure(
    store: &Store,
    parents: &[Digest],
    chain_id: &Digest,
    layer: &Descriptor,
    diff_id: &Digest,
    arriving: Option<Arriving>,
    progress: &dyn Progress,
) -> Result<bool> {
    let path = store.snapshot_path(chain_id);
    if path.is_dir() {
        progress.layer_done(&layer.digest);
        return Ok(false);
    }
    let _lock = store.lock_item("snapshot", chain_id)?;
    if path.is_dir() {
        progress.layer_done(&layer.digest);
        return Ok(false);
    }
    progress.layer_started(&layer.digest);
    let tmp = store.tmp_dir().join(format!("snapshot-{}", chain_id.hex()));
    let result = (|| {
        // Left over by a process that died while holding this lock.
        remove(&tmp)?;
        let actual = build(store, parents, &tmp, layer, arriving)?;
        if actual != *diff_id {
            return Err(ImageError::Layer {
                layer: layer.digest.clone(),
                reason: format!(
                    "uncompressed content has digest {actual}, the image config says {diff_id}"
                ),
            });
        }
        seal(&tmp, &path)
    })();
    if result.is_err() {
        let _ = remove(&tmp);
    }
    result?;
    progress.layer_done(&layer.digest);
    Ok(true)
}

/// Unpacks a single-layer image whose diff ID is not known beforehand (a rootfs tarball);
/// returns the diff ID, which is also the snapshot's chain ID, and whether this call made
/// the snapshot.
pub(crate) fn create_base(
    store: &Store,
    layer: &Descriptor,
    progress: &dyn Progress,
) -> Result<(Digest, bool)> {
    progress.layer_started(&layer.digest);
    let tmp = store.unique_tmp("snapshot");
    let result = (|| {
        let diff_id = build(store, &[], &tmp, layer, None)?;
        let path = store.snapshot_path(&diff_id);
        let _lock = store.lock_item("snapshot", &diff_id)?;
        if path.is_dir() {
            remove(&tmp)?;
            return Ok((diff_id, false));
        }
        seal(&tmp, &path)?;
        Ok((diff_id, true))
    })();
    if result.is_err() {
        let _ = remove(&tmp);
    }
    progress.layer_done(&layer.digest);
    result
}

/// Flushes the finished tree to disk, then renames it into place.
fn seal(tmp: &Path, path: &Path) -> Result<()> {
    let dir = File::open(tmp).map_err(|e| ImageError::io("open", tmp, e))?;
    syncfs(dir.as_fd()).map_err(|e| ImageError::io("sync", tmp, e.into()))?;
    publish(tmp, path)
}

/// Writes `layer` into the new directory `upper`, over `parents`; returns its diff ID.
fn build(
    store: &Store,
    parents: &[Digest],
    upper: &Path,
    layer: &Descriptor,
    arriving: Option<Arriving>,
) -> Result<Digest> {
    fs::create_dir(upper).map_err(|e| ImageError::io("create", upper, e))?;
    fs::set_permissions(upper, fs::Permissions::from_mode(0o755))
        .map_err(|e| ImageError::io("chmod", upper, e))?;
    let blob: Box<dyn Read + Send> = match arriving {
        Some(arriving) => Box::new(arriving),
        None => {
            let path = store.blob_path(&layer.digest);
            Box::new(File::open(&path).map_err(|e| ImageError::io("open", &path, e))?)
        }
    };
    let Some(top) = parents.last() else {
        let tree = Tree::new(open_dir(upper)?);
        return Ok(unpack::apply_layer(tree, blob, &layer.digest, Whiteouts::Plain)?.diff_id);
    };
    // The merged root takes its owner, mode and times from the upper directory.
    copy_root_attributes(&store.snapshot_path(top), upper)?;

    let work = store.unique_tmp("work");
    let target = store.unique_tmp("mnt");
    let snapshots_dir = store.snapshots_dir();
    let result = (|| {
        for dir in [&work, &target] {
            fs::create_dir(dir).map_err(|e| ImageError::io("create", dir, e))?;
        }
        let applied = mount::in_private_namespace(|| {
            let overlay = Overlay {
                snapshots_dir: &snapshots_dir,
                layers: parents,
                upper: Some((upper, &work)),
                plain_upper: true,
            };
            mount::mount_overlay_private(&overlay, &target)?;
            let tree = Tree::new(open_dir(&target)?);
            let applied =
                unpack::apply_layer(tree, blob, &layer.digest, Whiteouts::Overlay(&target));
            mount::unmount(&target)?;
            applied
        })?;
        for dir in &applied.opaque_dirs {
            mark_opaque(upper, dir, &layer.digest)?;
        }
        Ok(applied.diff_id)
    })();
    let _ = remove(&work);
    let _ = fs::remove_dir(&target);
    result
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| ImageError::io("open", path, e))
}

/// Sets the overlay's opaque xattr on a directory of the finished upper tree, found
/// inside it as a layer entry would be.
fn mark_opaque(upper: &Path, dir: &Path, layer: &Digest) -> Result<()> {
    let root = open_dir(upper)?;
    let fd = unpack::open_in_root(root.as_fd(), dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|e| ImageError::Entry {
            layer: layer.clone(),
            path: dir.display().to_string(),
            reason: format!("open opaque directory: {e}"),
        })?;
    unpack::xattr::set_fd(fd.as_fd(), std::ffi::OsStr::new(OVERLAY_OPAQUE_XATTR), b"y").map_err(
        |e| ImageError::Entry {
            layer: layer.clone(),
            path: dir.display().to_string(),
            reason: format!("mark opaque: {e}"),
        },
    )
}

/// Gives `to` the owner, mode and times of `from` (two root directories).
pub(crate) fn copy_root_attributes(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::metadata(from).map_err(|e| ImageError::io("stat", from, e))?;
    let dir = open_dir(to)?;
    fchown(
        dir.as_fd(),
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
    )
    .map_err(|e| ImageError::io("chown", to, e.into()))?;
    fchmod(dir.as_fd(), Mode::from_bits_truncate(meta.mode() & 0o7777))
        .map_err(|e| ImageError::io("chmod", to, e.into()))?;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    futimens(dir.as_fd(), &atime, &mtime).map_err(|e| ImageError::io("set times", to, e.into()))
}
