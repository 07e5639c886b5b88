//! What pull and import share: from a chosen manifest, copy the config and layer blobs
//! into the store (verified while they stream), unpack each layer into its snapshot, and
//! store the manifest last. Layers are copied in on one thread while another unpacks
//! them, each as its blob arrives.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use oci_spec::image::ImageConfiguration;

use super::arriving::Arriving;
use super::digest::{Digest, chain_ids};
use super::error::{ImageError, Result};
use super::gc::Created;
use super::manifest::{Descriptor, Document, Manifest, parse_document, parse_json};
use super::platform::{self, Platform};
use super::progress::Progress;
use super::records::Image;
use super::snapshot;
use super::store::Store;

/// Where blobs come from: a registry, an image layout, an archive.
pub(crate) trait Source: Sync {
    /// Names the source in messages: `layout /srv/img`, `registry quay.io`.
    fn place(&self) -> String;
    fn open_blob(&self, blob: &Descriptor) -> Result<Box<dyn Read + '_>>;
}

/// Reads a small blob (manifest, index) whole from a source and checks it against its
/// descriptor.
pub(crate) fn read_small(source: &dyn Source, blob: &Descriptor) -> Result<Vec<u8>> {
    if blob.size > 4 << 20 {
        return Err(ImageError::document(
            format!("{} {}", source.place(), blob.digest),
            "size",
            format!("{} bytes is too large for a manifest", blob.size),
        ));
    }
    let mut bytes = Vec::new();
    source
        .open_blob(blob)?
        .take(blob.size + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ImageError::Read {
            what: format!("blob {}", blob.digest),
            error,
        })?;
    verify(&bytes, &blob.digest, Some(blob.size))?;
    Ok(bytes)
}

/// Checks bytes against the digest (and size) that named them.
pub(crate) fn verify(bytes: &[u8], digest: &Digest, size: Option<u64>) -> Result<()> {
    if let Some(size) = size {
        if bytes.len() as u64 != size {
            return Err(ImageError::SizeMismatch {
                digest: digest.clone(),
                expected: size,
                actual: bytes.len() as u64,
            });
        }
    }
    let actual = Digest::of(bytes);
    if actual != *digest {
        return Err(ImageError::DigestMismatch {
            digest: digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// A manifest chosen for this platform, with the index it was chosen from, if any.
pub(crate) struct Chosen {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
    pub from_index: Option<Digest>,
}

/// Follows indexes (image indexes, Docker manifest lists) down to the manifest for
/// `platform`. `fetch` gets the bytes of a descriptor, verified.
pub(crate) fn choose_manifest(
    descriptor: Descriptor,
    bytes: Vec<u8>,
    content_type: Option<&str>,
    platform: &Platform,
    fetch: &dyn Fn(&Descriptor) -> Result<Vec<u8>>,
) -> Result<Chosen> {
    let mut descriptor = descriptor;
    let mut bytes = bytes;
    let mut content_type = content_type.map(str::to_string);
    let mut from_index = None;
    // An index may point at another index; two levels are plenty for real images.
    for _ in 0..3 {
        let what = format!("manifest {}", descriptor.digest);
        match parse_document(&bytes, &what, content_type.as_deref())? {
            Document::Manifest(manifest) => {
                if descriptor.media_type.is_empty() {
                    descriptor.media_type = manifest
                        .media_type
                        .clone()
                        .unwrap_or_else(|| super::manifest::media::OCI_MANIFEST.to_string());
                }
                return Ok(Chosen {
                    descriptor,
                    bytes,
                    manifest,
                    from_index,
                });
            }
            Document::Index(index) => {
                let Some(chosen) = platform::select(&index.manifests, platform) else {
                    return Err(ImageError::NoPlatform {
                        wanted: platform.to_string(),
                        what: format!("index {}", descriptor.digest),
                        available: platform::available(&index.manifests),
                    });
                };
                from_index.get_or_insert(descriptor.digest.clone());
                descriptor = chosen.clone();
                bytes = fetch(&descriptor)?;
                content_type = Some(descriptor.media_type.clone());
            }
        }
    }
    Err(ImageError::document(
        format!("index {}", descriptor.digest),
        "manifests",
        "indexes nested too deep",
    ))
}

/// Brings the image `chosen` describes into the store from `source`. What this call
/// stored is added to `created`, so that a failure can take it back.
pub(crate) fn fetch_image(
    store: &Store,
    source: &dyn Source,
    chosen: &Chosen,
    progress: &dyn Progress,
    created: &Mutex<Created>,
) -> Result<Image> {
    let manifest = &chosen.manifest;
    let never = AtomicBool::new(false);
    let note_blob = |digest: &Digest, made: bool| {
        if made {
            lock(created).blobs.push(digest.clone());
        }
    };

    let config_blob = &manifest.config;
    let made = store.ingest(
        config_blob,
        &mut || source.open_blob(config_blob),
        progress,
        &never,
    )?;
    note_blob(&config_blob.digest, made);
    let config_what = format!("config {}", config_blob.digest);
    let config: ImageConfiguration =
        parse_json(&store.read_blob(&config_blob.digest)?, &config_what)?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Digest::parse(d)
                .map_err(|e| ImageError::document(&config_what, format!("rootfs.diff_ids[{i}]"), e))
        })
        .collect::<Result<_>>()?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::document(
            config_what,
            "rootfs.diff_ids",
            format!(
                "{} diff IDs for the manifest's {} layers",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }
    let chain = chain_ids(&diff_ids);

    // One thread copies the layer blobs in, in order; this one unpacks each layer while
    // its blob arrives, reading the copy as it is written.
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<()> {
        let (ready, arrived) = mpsc::channel::<Option<Arriving>>();
        let cancel = &cancel;
        let copier = scope.spawn(move || -> Result<()> {
            for layer in &manifest.layers {
                let mut watched = false;
                let made = store.ingest_watched(
                    layer,
                    &mut || source.open_blob(layer),
                    progress,
                    cancel,
                    &mut |arriving| {
                        watched = true;
                        let _ = ready.send(Some(arriving));
                    },
                )?;
                note_blob(&layer.digest, made);
                // Already stored: the unpack reads it from the store.
                if !watched && ready.send(None).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let unpack = || -> Result<()> {
            for (i, layer) in manifest.layers.iter().enumerate() {
                let arriving = arrived
                    .recv()
                    .map_err(|_| ImageError::Cancelled(format!("layer {}", layer.digest)))?;
                let made = snapshot::ensure(
                    store,
                    &chain[..i],
                    &chain[i],
                    layer,
                    &diff_ids[i],
                    arriving,
                    progress,
                )?;
                if made {
                    lock(created).snapshots.push(chain[i].clone());
                }
            }
            Ok(())
        };
        let unpacked = unpack();
        if unpacked.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        let copied = copier
            .join()
            .unwrap_or_else(|_| Err(ImageError::Cancelled("a copying thread panicked".into())));
        // A failed copy also fails the unpack reading it; the copy's error says why.
        match (copied, unpacked) {
            (Err(error), _) if !matches!(error, ImageError::Cancelled(_)) => Err(error),
            (_, Err(error)) | (Err(error), Ok(())) => Err(error),
            (Ok(()), Ok(())) => Ok(()),
        }
    })?;

    let made = store.ingest(
        &chosen.descriptor,
        &mut || Ok(Box::new(&chosen.bytes[..])),
        progress,
        &never,
    )?;
    note_blob(&chosen.descriptor.digest, made);
    store.load_image(&chosen.descriptor.digest)
}

pub(crate) fn lock(created: &Mutex<Created>) -> std::sync::MutexGuard<'_, Created> {
    created
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a pull or an import under the store's shared lock; if it fails, takes back what
/// it stored (under the exclusive lock, once the shared one is released).
pub(crate) fn transaction<T>(
    store: &Store,
    work: impl FnOnce(&Mutex<Created>) -> Result<T>,
) -> Result<T> {
    let created = Mutex::new(Created::default());
    let result = {
        let _lock = store.lock_shared()?;
        work(&created)
    };
    if result.is_err() {
        let created = created.into_inner().unwrap_or_else(|p| p.into_inner());
        // The original error is what the user needs to see; a failed clean-up is left to
        // the next prune.
        let _ = store.discard(&created);
    }
    result
}
