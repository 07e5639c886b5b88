//! A plain root filesystem tarball (tar, tar.gz or tar.zst) imported as an image of one
//! layer, as `docker import` does. The image config says only the platform and the
//! layer, so the same tarball always becomes the same image.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;

use super::docker::layer_media_type;
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::fetch::lock;
use crate::image::gc::Created;
use crate::image::manifest::{Descriptor, Manifest, media, to_json};
use crate::image::platform::Platform;
use crate::image::progress::Progress;
use crate::image::records::Image;
use crate::image::snapshot;
use crate::image::store::Store;

pub(crate) fn import(
    store: &Store,
    path: &Path,
    progress: &dyn Progress,
    created: &Mutex<Created>,
) -> Result<(Image, Descriptor)> {
    let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let media_type = layer_media_type(&mut reader).map_err(|e| ImageError::io("read", path, e))?;
    let (layer, made) = store.ingest_unknown(&mut reader, media_type, progress)?;
    if made {
        lock(created).blobs.push(layer.digest.clone());
    }
    let (diff_id, made) = snapshot::create_base(store, &layer, progress)?;
    if made {
        lock(created).snapshots.push(diff_id.clone());
    }

    let host = Platform::host();
    let mut config = serde_json::json!({
        "architecture": host.architecture,
        "os": host.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created_by": "berth image import"}]
    });
    if let Some(variant) = host.variant {
        config["variant"] = serde_json::Value::String(variant);
    }
    let (config, made) = store.put_bytes(&to_json(&config), media::OCI_CONFIG)?;
    if made {
        lock(created).blobs.push(config.digest.clone());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config,
        layers: vec![layer],
        annotations: Default::default(),
    };
    let bytes = to_json(&manifest);
    let (descriptor, made) = store.put_bytes(&bytes, media::OCI_MANIFEST)?;
    if made {
        lock(created).blobs.push(descriptor.digest.clone());
    }
    debug_assert_eq!(descriptor.digest, Digest::of(&bytes));
    Ok((store.load_image(&descriptor.digest)?, descriptor))
}
