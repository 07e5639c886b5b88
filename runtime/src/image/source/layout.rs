//! OCI image layouts (a directory, or a tar of one: an OCI archive): `index.json` picks
//! the image, by its `org.opencontainers.image.ref.name` when one is asked for, and
//! `blobs/<algorithm>/<hex>` holds the rest.

use std::io::Read;

use super::files::Files;
use crate::image::error::{ImageError, Result};
use crate::image::fetch::{Chosen, Source, choose_manifest, read_small};
use crate::image::manifest::{Descriptor, Index, parse_json};
use crate::image::platform::Platform;
use crate::image::records::REF_NAME;
use crate::image::reference::Reference;

/// The annotation containerd and docker put on an archive's entry: the image's full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

pub(crate) struct Layout<'a> {
    pub files: &'a dyn Files,
}

impl Source for Layout<'_> {
    fn place(&self) -> String {
        format!("layout {}", self.files.describe())
    }

    fn open_blob(&self, blob: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let name = format!("blobs/sha256/{}", blob.digest.hex());
        self.files
            .open(&name)?
            .ok_or_else(|| ImageError::MissingBlob {
                digest: blob.digest.clone(),
                place: self.place(),
            })
    }
}

impl Layout<'_> {
    /// The image `reference` names (or the only image), chosen for `platform`, and the
    /// name the layout gives it, if any.
    pub fn choose(
        &self,
        reference: Option<&str>,
        platform: &Platform,
    ) -> Result<(Chosen, Option<String>)> {
        let what = format!("{} index.json", self.files.describe());
        let bytes = self
            .files
            .read("index.json", 4 << 20)?
            .ok_or_else(|| ImageError::Source {
                path: self.files.describe().into(),
                reason: "not an OCI image layout: no index.json".to_string(),
            })?;
        let index: Index = parse_json(&bytes, &what)?;
        let refs: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        let entry = match reference {
            Some(wanted) => index
                .manifests
                .iter()
                .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(wanted))
                .ok_or_else(|| ImageError::Source {
                    path: self.files.describe().into(),
                    reason: format!("no image named {wanted:?}; the layout has {}", list(&refs)),
                })?,
            None => match index.manifests.as_slice() {
                [only] => only,
                [] => {
                    return Err(ImageError::document(
                        what,
                        "manifests",
                        "the layout has no images",
                    ));
                }
                _ => {
                    return Err(ImageError::Source {
                        path: self.files.describe().into(),
                        reason: format!(
                            "the layout has {} images ({}); name one as PATH:REF",
                            index.manifests.len(),
                            list(&refs)
                        ),
                    });
                }
            },
        };
        let name = image_name(entry);
        let bytes = read_small(self, entry)?;
        let chosen = choose_manifest(entry.clone(), bytes, None, platform, &|d| {
            read_small(self, d)
        })?;
        Ok((chosen, name))
    }
}

fn list(refs: &[&str]) -> String {
    if refs.is_empty() {
        "no ref names".to_string()
    } else {
        refs.join(", ")
    }
}

/// The full image name a layout entry carries: containerd's annotation, or a ref name
/// that is a whole reference (skopeo writes those); a bare tag like `latest` names no
/// repository.
fn image_name(entry: &Descriptor) -> Option<String> {
    let candidate = entry.annotations.get(CONTAINERD_NAME).or_else(|| {
        entry
            .annotations
            .get(REF_NAME)
            .filter(|name| name.contains('/'))
    })?;
    Reference::parse(candidate).ok().map(|r| r.to_string())
}
