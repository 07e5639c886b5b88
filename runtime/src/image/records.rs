//! Image names: `index.json`, an OCI index whose entries point at image manifests and carry
//! the full reference (`docker.io/library/busybox:latest`) as
//! `org.opencontainers.image.ref.name`. An image stored without a name has an entry
//! without one, and is found by its digest.

use std::collections::BTreeSet;

use oci_spec::image::ImageConfiguration;
use serde::Serialize;

use super::digest::{Digest, chain_ids};
use super::error::{ImageError, Result};
use super::lock;
use super::manifest::{Descriptor, Document, Index, Manifest, parse_document, parse_json, to_json};
use super::reference::Reference;
use super::store::{Store, write_atomic};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// On an entry of a pulled image: the index (manifest list) it was chosen from.
pub const FROM_INDEX: &str = "io.berth.image.index";

/// An image in the store, with everything needed to run it.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest digest: what `ls` shows and what a lease names.
    pub digest: Digest,
    pub names: Vec<String>,
    pub manifest: Manifest,
    pub config: ImageConfiguration,
    pub diff_ids: Vec<Digest>,
    /// The snapshot of each layer, bottom first.
    pub chain_ids: Vec<Digest>,
}

impl Image {
    /// Bytes of the config and layer blobs, as a registry counts an image's size.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// One line of `berth image ls`.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
    pub created: Option<String>,
}

/// What `rm` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Removal {
    pub untagged: Vec<String>,
    pub deleted: Vec<Digest>,
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    pub bytes_freed: u64,
}

impl Store {
    /// The name index; empty when nothing was stored yet.
    pub fn records(&self) -> Result<Index> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => parse_json(&bytes, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::new()),
            Err(e) => Err(ImageError::io("read", &path, e)),
        }
    }

    /// Read-modify-write of the name index under its own lock; readers see the old or the
    /// new file, never a mix.
    fn update_records<T>(&self, change: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = lock::exclusive(&self.locks_dir().join("index"))?;
        let mut index = self.records()?;
        let out = change(&mut index)?;
        write_atomic(&self.index_path(), &to_json(&index))?;
        Ok(out)
    }

    /// Gives the image `manifest` describes the name `name` (taking it from any image
    /// that had it), or records it unnamed if it has no entry yet.
    pub(crate) fn name_image(
        &self,
        manifest: &Descriptor,
        name: Option<&str>,
        from_index: Option<&Digest>,
    ) -> Result<()> {
        self.update_records(|index| {
            let mut entry =
                Descriptor::new(&manifest.media_type, manifest.digest.clone(), manifest.size);
            if let Some(from) = from_index {
                entry
                    .annotations
                    .insert(FROM_INDEX.to_string(), from.to_string());
            }
            match name {
                Some(name) => {
                    index.manifests.retain(|d| {
                        let same_name =
                            d.annotations.get(REF_NAME).map(String::as_str) == Some(name);
                        let unnamed_same_image =
                            d.digest == manifest.digest && !d.annotations.contains_key(REF_NAME);
                        !same_name && !unnamed_same_image
                    });
                    entry
                        .annotations
                        .insert(REF_NAME.to_string(), name.to_string());
                    index.manifests.push(entry);
                }
                None => {
                    if !index.manifests.iter().any(|d| d.digest == manifest.digest) {
                        index.manifests.push(entry);
                    }
                }
            }
            Ok(())
        })
    }

    /// Reads the manifest and config of a stored image.
    pub fn load_image(&self, digest: &Digest) -> Result<Image> {
        let what = format!("manifest {digest}");
        let manifest = match parse_document(&self.read_blob(digest)?, &what, None)? {
            Document::Manifest(m) => m,
            Document::Index(_) => {
                return Err(ImageError::document(
                    what,
                    "(document)",
                    "an index, not an image manifest",
                ));
            }
        };
        let config_what = format!("config {}", manifest.config.digest);
        let config: ImageConfiguration =
            parse_json(&self.read_blob(&manifest.config.digest)?, &config_what)?;
        let diff_ids = diff_ids(&config, &config_what)?;
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
        let names = self
            .records()?
            .manifests
            .iter()
            .filter(|d| d.digest == *digest)
            .filter_map(|d| d.annotations.get(REF_NAME).cloned())
            .collect();
        Ok(Image {
            digest: digest.clone(),
            names,
            chain_ids: chain_ids(&diff_ids),
            diff_ids,
            manifest,
            config,
        })
    }

    /// The stored image a user means by `reference`: a name (`busybox`,
    /// `127.0.0.1:5000/app:1`, `name@sha256:...`), a digest, or a prefix of a digest's hex
    /// digits of at least 4.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let digest = self.resolve_digest(reference)?.0;
        self.load_image(&digest)
    }

    /// The digest `reference` resolves to, and the name it matched, if it matched a name.
    fn resolve_digest(&self, reference: &str) -> Result<(Digest, Option<String>)> {
        let index = self.records()?;
        if let Ok(parsed) = Reference::parse(reference) {
            let name = parsed.to_string();
            if let Some(d) = index
                .manifests
                .iter()
                .find(|d| d.annotations.get(REF_NAME) == Some(&name))
            {
                return Ok((d.digest.clone(), Some(name)));
            }
            if let Some(pinned) = &parsed.digest {
                if let Some(d) = index.manifests.iter().find(|d| {
                    d.digest == *pinned
                        || d.annotations.get(FROM_INDEX).map(String::as_str)
                            == Some(pinned.as_str())
                }) {
                    return Ok((d.digest.clone(), None));
                }
            }
        }
        if let Ok(digest) = Digest::parse(reference) {
            if index.manifests.iter().any(|d| d.digest == digest) {
                return Ok((digest, None));
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: BTreeSet<&Digest> = index
                .manifests
                .iter()
                .map(|d| &d.digest)
                .filter(|d| d.hex().starts_with(&hex.to_ascii_lowercase()))
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(((*matches.iter().next().expect("one match")).clone(), None)),
                _ => {
                    return Err(ImageError::Ambiguous {
                        reference: reference.to_string(),
                        matches: matches
                            .iter()
                            .map(|d| d.short())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(ImageError::NotFound(reference.to_string()))
    }

    /// Every name (and every unnamed image) in the store, sorted.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let index = self.records()?;
        let mut out = Vec::new();
        for entry in &index.manifests {
            let image = self.load_image(&entry.digest)?;
            let (repository, tag) = match entry.annotations.get(REF_NAME) {
                Some(name) => split_name(name),
                None => ("<none>".to_string(), "<none>".to_string()),
            };
            out.push(ImageSummary {
                repository,
                tag,
                digest: entry.digest.clone(),
                size: image.size(),
                created: image.config.created().clone(),
            });
        }
        out.sort_by(|a, b| {
            (&a.repository, &a.tag, &a.digest).cmp(&(&b.repository, &b.tag, &b.digest))
        });
        Ok(out)
    }

    /// Removes a name, or every name of an image given by digest; then deletes what no
    /// image and no lease needs any more. An image a task holds a lease on is refused
    /// unless `force`, and even then its content stays until the lease is released.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Removal> {
        let _lock = self.lock_exclusive()?;
        let (digest, name) = self.resolve_digest(reference)?;
        if !force {
            if let Some(task) = self
                .leases()?
                .into_iter()
                .find(|lease| lease.images.contains(&digest))
                .map(|lease| lease.task)
            {
                return Err(ImageError::InUse {
                    reference: reference.to_string(),
                    task,
                });
            }
        }
        let mut removal = Removal::default();
        self.update_records(|index| {
            index.manifests.retain(|d| {
                let drop = d.digest == digest
                    && match &name {
                        Some(name) => d.annotations.get(REF_NAME) == Some(name),
                        None => true,
                    };
                if drop {
                    if let Some(n) = d.annotations.get(REF_NAME) {
                        removal.untagged.push(n.clone());
                    }
                }
                !drop
            });
            if !index.manifests.iter().any(|d| d.digest == digest) {
                removal.deleted.push(digest.clone());
            }
            Ok(())
        })?;
        let report = self.collect_garbage()?;
        removal.blobs_removed = report.blobs_removed;
        removal.snapshots_removed = report.snapshots_removed;
        removal.bytes_freed = report.bytes_freed;
        Ok(removal)
    }
}

fn diff_ids(config: &ImageConfiguration, what: &str) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Digest::parse(d)
                .map_err(|e| ImageError::document(what, format!("rootfs.diff_ids[{i}]"), e))
        })
        .collect()
}

/// `registry/repo:tag@digest` as the repository and tag columns of `ls`.
fn split_name(name: &str) -> (String, String) {
    let without_digest = name.split('@').next().unwrap_or(name);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            without_digest[..last_slash + i].to_string(),
            without_digest[last_slash + i + 1..].to_string(),
        ),
        None => (without_digest.to_string(), "<none>".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_repository_and_tag() {
        assert_eq!(
            split_name("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_name("127.0.0.1:5000/app:1.2"),
            ("127.0.0.1:5000/app".into(), "1.2".into())
        );
        assert_eq!(
            split_name("127.0.0.1:5000/app@sha256:abcd"),
            ("127.0.0.1:5000/app".into(), "<none>".into())
        );
    }
}
