//! Garbage collection: blobs and snapshots that no named image and no lease reaches are
//! deleted, with the store locked exclusively so that nothing is in use meanwhile. A failed
//! pull or import uses the same rule to take back only what it made itself.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::digest::{Digest, chain_ids};
use super::error::{ImageError, Result};
use super::manifest::{Document, parse_document};
use super::records::FROM_INDEX;
use super::store::Store;

#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    /// Bytes of the removed blobs.
    pub bytes_freed: u64,
}

/// Blobs and snapshots a store still needs.
#[derive(Default)]
struct Reachable {
    blobs: HashSet<Digest>,
    snapshots: HashSet<Digest>,
}

/// What one pull or import added to the store.
#[derive(Default, Debug)]
pub(crate) struct Created {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<Digest>,
}

impl Store {
    /// Deletes every blob and snapshot no image and no lease needs, and the leftovers of
    /// interrupted work in tmp/.
    pub fn prune(&self) -> Result<PruneReport> {
        let _lock = self.lock_exclusive()?;
        self.collect_garbage()
    }

    /// The body of `prune`, for callers that hold the exclusive lock already.
    pub(crate) fn collect_garbage(&self) -> Result<PruneReport> {
        let reachable = self.reachable()?;
        let mut report = PruneReport::default();
        for (digest, path) in digests_in(&self.blobs_dir())? {
            if !reachable.blobs.contains(&digest) {
                report.bytes_freed += fs::symlink_metadata(&path).map_or(0, |m| m.len());
                remove(&path)?;
                report.blobs_removed += 1;
            }
        }
        for (digest, path) in digests_in(&self.snapshots_dir())? {
            if !reachable.snapshots.contains(&digest) {
                remove(&path)?;
                report.snapshots_removed += 1;
            }
        }
        // With the exclusive lock held nobody is writing there.
        for dir in [self.tmp_dir(), self.locks_dir()] {
            for entry in fs::read_dir(&dir).map_err(|e| ImageError::io("read", &dir, e))? {
                let entry = entry.map_err(|e| ImageError::io("read", &dir, e))?;
                remove(&entry.path())?;
            }
        }
        Ok(report)
    }

    /// Takes back what a failed pull or import stored, unless an image or lease has come
    /// to need it meanwhile (another pull of a shared layer, say).
    pub(crate) fn discard(&self, created: &Created) -> Result<()> {
        if created.blobs.is_empty() && created.snapshots.is_empty() {
            return Ok(());
        }
        let _lock = self.lock_exclusive()?;
        let reachable = self.reachable()?;
        for digest in &created.snapshots {
            if !reachable.snapshots.contains(digest) {
                remove(&self.snapshot_path(digest))?;
            }
        }
        for digest in &created.blobs {
            if !reachable.blobs.contains(digest) {
                remove(&self.blob_path(digest))?;
            }
        }
        Ok(())
    }

    /// Marks from the roots: named images, images under a lease, and the indexes pulled
    /// images were chosen from.
    fn reachable(&self) -> Result<Reachable> {
        let mut roots: Vec<Digest> = Vec::new();
        for entry in self.records()?.manifests {
            roots.push(entry.digest.clone());
            if let Some(index) = entry.annotations.get(FROM_INDEX) {
                if let Ok(index) = Digest::parse(index) {
                    roots.push(index);
                }
            }
        }
        for lease in self.leases()? {
            roots.extend(lease.images);
        }
        let mut reachable = Reachable::default();
        for root in roots {
            self.mark(&root, &mut reachable);
        }
        Ok(reachable)
    }

    /// Marks a manifest and all it points at. Content that is missing or does not parse
    /// marks nothing below it: it could not be used anyway.
    fn mark(&self, digest: &Digest, reachable: &mut Reachable) {
        if !reachable.blobs.insert(digest.clone()) {
            return;
        }
        let Ok(bytes) = self.read_blob(digest) else {
            return;
        };
        match parse_document(&bytes, "manifest", None) {
            Ok(Document::Manifest(manifest)) => {
                reachable.blobs.insert(manifest.config.digest.clone());
                for layer in &manifest.layers {
                    reachable.blobs.insert(layer.digest.clone());
                }
                if let Ok(image) = self.load_image(digest) {
                    reachable.snapshots.extend(chain_ids(&image.diff_ids));
                }
            }
            // An index is kept for the record; its other platforms were never fetched.
            Ok(Document::Index(_)) | Err(_) => {}
        }
    }
}

/// The entries of a directory whose names are digests' hex digits.
fn digests_in(dir: &Path) -> Result<Vec<(Digest, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ImageError::io("read", dir, e))? {
        let entry = entry.map_err(|e| ImageError::io("read", dir, e))?;
        if let Some(digest) = Digest::from_hex(&entry.file_name().to_string_lossy()) {
            out.push((digest, entry.path()));
        }
    }
    Ok(out)
}

/// Removes a file or a whole directory tree; gone already is fine.
pub(crate) fn remove(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("remove", path, e)),
    }
}
