//! Docker archives, as `docker save` writes them: `manifest.json` lists each image's
//! config file, its tags and its layer tars. The config and layers are stored as they are,
//! an OCI manifest is made for them, and the image then goes the way of any other.

use std::io::{BufRead, BufReader, Read};
use std::sync::Mutex;

use serde::Deserialize;

use super::files::Files;
use crate::image::error::{ImageError, Result};
use crate::image::fetch::{Chosen, Source, fetch_image};
use crate::image::gc::Created;
use crate::image::manifest::{Descriptor, Manifest, media, parse_json, to_json};
use crate::image::progress::Progress;
use crate::image::records::Image;
use crate::image::reference::Reference;
use crate::image::store::Store;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image of the archive and the names it is to get.
pub(crate) struct Loaded {
    pub image: Image,
    pub descriptor: Descriptor,
    pub names: Vec<String>,
}

pub(crate) fn import(
    store: &Store,
    files: &dyn Files,
    progress: &dyn Progress,
    created: &Mutex<Created>,
) -> Result<Vec<Loaded>> {
    let what = format!("{} manifest.json", files.describe());
    let bytes = files
        .read("manifest.json", 16 << 20)?
        .ok_or_else(|| ImageError::Source {
            path: files.describe().into(),
            reason: "not a Docker archive: no manifest.json".to_string(),
        })?;
    let entries: Vec<Entry> = parse_json(&bytes, &what)?;
    if entries.is_empty() {
        return Err(ImageError::document(what, "(document)", "no images"));
    }
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let missing = |field: String, name: &str| {
            ImageError::document(&what, field, format!("{name} is not in the archive"))
        };
        let config = files
            .read(&entry.config, 16 << 20)?
            .ok_or_else(|| missing(format!("[{i}].Config"), &entry.config))?;
        let (config, made) = store.put_bytes(&config, media::OCI_CONFIG)?;
        note(created, &config, made);

        let mut layers = Vec::new();
        for (j, name) in entry.layers.iter().enumerate() {
            let reader = files
                .open(name)?
                .ok_or_else(|| missing(format!("[{i}].Layers[{j}]"), name))?;
            let mut reader = BufReader::with_capacity(1 << 20, reader);
            let media_type = layer_media_type(&mut reader).map_err(|error| ImageError::Read {
                what: format!("{} {name}", files.describe()),
                error,
            })?;
            let (layer, made) = store.ingest_unknown(&mut reader, media_type, progress)?;
            note(created, &layer, made);
            layers.push(layer);
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config,
            layers,
            annotations: Default::default(),
        };
        let bytes = to_json(&manifest);
        let descriptor = Descriptor::new(
            media::OCI_MANIFEST,
            crate::image::digest::Digest::of(&bytes),
            bytes.len() as u64,
        );
        let chosen = Chosen {
            descriptor: descriptor.clone(),
            bytes,
            manifest,
            from_index: None,
        };
        let image = fetch_image(store, &StoreBlobs(store), &chosen, progress, created)?;
        let names = entry
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| {
                Reference::parse(tag)
                    .map(|r| r.to_string())
                    .map_err(|e| ImageError::document(&what, format!("[{i}].RepoTags"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Loaded {
            image,
            descriptor,
            names,
        });
    }
    Ok(out)
}

fn note(created: &Mutex<Created>, blob: &Descriptor, made: bool) {
    if made {
        crate::image::fetch::lock(created)
            .blobs
            .push(blob.digest.clone());
    }
}

/// The OCI media type of a layer stream, told from its first bytes.
pub(crate) fn layer_media_type(reader: &mut impl BufRead) -> std::io::Result<&'static str> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        media::OCI_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media::OCI_LAYER_ZSTD
    } else {
        media::OCI_LAYER
    })
}

/// Blobs that are in the store already.
pub(crate) struct StoreBlobs<'a>(pub &'a Store);

impl Source for StoreBlobs<'_> {
    fn place(&self) -> String {
        "the store".to_string()
    }

    fn open_blob(&self, blob: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let path = self.0.blob_path(&blob.digest);
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ImageError::MissingBlob {
                digest: blob.digest.clone(),
                place: self.place(),
            },
            _ => ImageError::io("open", &path, e),
        })?;
        Ok(Box::new(file))
    }
}
