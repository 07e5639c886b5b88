//! The store's directory and its blobs. Under `<state dir>/images`:
//!
//! ```text
//! lock                  flock: shared while content is added or used, exclusive to delete
//! index.json            the image names (an OCI index; see records.rs)
//! oci-layout            so that the directory also reads as an OCI image layout
//! blobs/sha256/<hex>    manifests, configs and layers, verified, never changed
//! snapshots/<chain-id>/ each layer unpacked once, keyed by its chain ID
//! leases/<task>         images a task uses (see lease.rs)
//! locks/                one lock file per blob or snapshot being made
//! tmp/                  blobs and snapshots being made; renamed into place when complete
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::arriving::{self, Arriving, Feed};
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::lock::{self, Lock};
use super::manifest::Descriptor;
use super::progress::Progress;

/// The image store of one state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `<state_dir>/images`, created if missing. Only root may enter it:
    /// snapshots hold images' setuid binaries, which must not be reachable by other users.
    pub fn open(state_dir: &Path) -> Result<Store> {
        let store = Store {
            dir: state_dir.join("images"),
        };
        fs::create_dir_all(&store.dir).map_err(|e| ImageError::io("create", &store.dir, e))?;
        fs::set_permissions(&store.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| ImageError::io("chmod", &store.dir, e))?;
        for dir in [
            store.blobs_dir(),
            store.snapshots_dir(),
            store.tmp_dir(),
            store.locks_dir(),
            store.leases_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| ImageError::io("create", &dir, e))?;
        }
        let layout = store.dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    /// The directory holding the layer with this chain ID, unpacked.
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots_dir().join(chain_id.hex())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.dir.join("locks")
    }

    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.dir.join("leases")
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// Held while content is added or used: many at once.
    pub(crate) fn lock_shared(&self) -> Result<Lock> {
        lock::shared(&self.dir.join("lock"))
    }

    /// Held while content is deleted: alone.
    pub(crate) fn lock_exclusive(&self) -> Result<Lock> {
        lock::exclusive(&self.dir.join("lock"))
    }

    /// The lock that makes one process fetch a blob, or unpack a snapshot, at a time.
    pub(crate) fn lock_item(&self, kind: &str, digest: &Digest) -> Result<Lock> {
        lock::exclusive(&self.locks_dir().join(format!("{kind}-{}", digest.hex())))
    }

    /// A name in tmp/ that no other process or thread uses.
    pub(crate) fn unique_tmp(&self, label: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir()
            .join(format!("{label}-{}-{n}", std::process::id()))
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A small blob (manifest, config) read whole.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::MissingBlob {
                digest: digest.clone(),
                place: "the store".to_string(),
            },
            _ => ImageError::io("read", &path, e),
        })
    }

    /// Copies the blob `expected` describes into the store unless it is there already,
    /// verifying its size and digest while it streams. `open` is only called when the blob
    /// is missing. Returns whether this call stored it.
    pub(crate) fn ingest<'a>(
        &self,
        expected: &Descriptor,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'a>>,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<bool> {
        self.ingest_watched(expected, open, progress, cancel, &mut |_| {})
    }

    /// As [`Store::ingest`]; when this call copies the blob, `watch` gets a reader of the
    /// copy as it is made, before the copy starts.
    pub(crate) fn ingest_watched<'a>(
        &self,
        expected: &Descriptor,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'a>>,
        progress: &dyn Progress,
        cancel: &AtomicBool,
        watch: &mut dyn FnMut(Arriving),
    ) -> Result<bool> {
        let digest = &expected.digest;
        let path = self.blob_path(digest);
        if path.is_file() {
            progress.blob_done(digest);
            return Ok(false);
        }
        let _lock = self.lock_item("blob", digest)?;
        if path.is_file() {
            progress.blob_done(digest);
            return Ok(false);
        }
        // Only the holder of the blob's lock writes this file, so a name without a pid is
        // safe, and a copy cut short by a crash is simply started over.
        let tmp = self.tmp_dir().join(format!("blob-{}", digest.hex()));
        let mut feed = None;
        let result = (|| {
            let mut reader = open()?;
            // Shown before the unpack that reads along shows its own.
            progress.blob_started(digest, expected.size);
            let mut file = File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
            let again = File::open(&tmp).map_err(|e| ImageError::io("open", &tmp, e))?;
            let (copy, arriving) = arriving::pair(again);
            let copy = feed.insert(copy);
            watch(arriving);
            let (actual, size) = copy_hashed(
                &mut *reader,
                &mut file,
                &tmp,
                Some(expected),
                Some(copy),
                progress,
                cancel,
            )?;
            if size != expected.size {
                return Err(ImageError::SizeMismatch {
                    digest: digest.clone(),
                    expected: expected.size,
                    actual: size,
                });
            }
            if actual != *digest {
                return Err(ImageError::DigestMismatch {
                    digest: digest.clone(),
                    actual,
                });
            }
            publish(&tmp, &path)
        })();
        match (result, feed) {
            (Ok(()), feed) => {
                if let Some(feed) = feed {
                    feed.done();
                }
                progress.blob_done(digest);
                Ok(true)
            }
            (Err(error), feed) => {
                let _ = fs::remove_file(&tmp);
                if let Some(feed) = feed {
                    feed.fail(error.to_string());
                }
                Err(error)
            }
        }
    }

    /// Stores a stream whose digest is not known beforehand (a layer of a Docker archive
    /// or a rootfs tarball). Returns its descriptor and whether this call stored it.
    pub(crate) fn ingest_unknown(
        &self,
        reader: &mut dyn Read,
        media_type: &str,
        progress: &dyn Progress,
    ) -> Result<(Descriptor, bool)> {
        let tmp = self.unique_tmp("ingest");
        let never = AtomicBool::new(false);
        let result = (|| {
            let mut file = File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
            let (digest, size) =
                copy_hashed(reader, &mut file, &tmp, None, None, progress, &never)?;
            let path = self.blob_path(&digest);
            let _lock = self.lock_item("blob", &digest)?;
            let created = if path.is_file() {
                fs::remove_file(&tmp).map_err(|e| ImageError::io("remove", &tmp, e))?;
                false
            } else {
                publish(&tmp, &path)?;
                true
            };
            Ok((Descriptor::new(media_type, digest, size), created))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Stores a small document this process made or already holds in memory.
    pub(crate) fn put_bytes(&self, bytes: &[u8], media_type: &str) -> Result<(Descriptor, bool)> {
        let descriptor = Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64);
        let never = AtomicBool::new(false);
        let created = self.ingest(
            &descriptor,
            &mut || Ok(Box::new(bytes)),
            &super::progress::Quiet,
            &never,
        )?;
        Ok((descriptor, created))
    }
}

/// Streams `reader` into `file`, the new file at `tmp`, hashing it; stops as soon as it is
/// longer than `expected` says. `feed` hears of every write. The file is flushed to disk
/// before this returns.
fn copy_hashed(
    reader: &mut dyn Read,
    file: &mut File,
    tmp: &Path,
    expected: Option<&Descriptor>,
    feed: Option<&Feed>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; 1 << 20];
    let what = expected.map_or_else(|| "stream".to_string(), |d| format!("blob {}", d.digest));
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImageError::Cancelled(what));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(ImageError::Read { what, error }),
        };
        size += n as u64;
        if let Some(expected) = expected {
            if size > expected.size {
                return Err(ImageError::SizeMismatch {
                    digest: expected.digest.clone(),
                    expected: expected.size,
                    actual: size,
                });
            }
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| ImageError::io("write", tmp, e))?;
        if let Some(feed) = feed {
            feed.advance(n as u64);
        }
        if let Some(expected) = expected {
            progress.blob_advanced(&expected.digest, n as u64);
        }
    }
    file.sync_all()
        .map_err(|e| ImageError::io("sync", tmp, e))?;
    Ok((Digest::from_hasher(hasher), size))
}

/// Renames a complete file or directory into place and makes the rename durable.
pub(crate) fn publish(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(|e| ImageError::io("rename into place", path, e))?;
    sync_parent(path)
}

pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| ImageError::io("sync", parent, e))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new file, never a
/// part: a temp file beside it, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| ImageError::io("write", &tmp, e))?;
        publish(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
