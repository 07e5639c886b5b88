//! `berth image import`: sources told apart by what they are. A directory is an OCI image
//! layout (`PATH:REF` picks a ref name in it, as umoci's `--image` does) or an unpacked
//! Docker archive; a file is an OCI archive (a tar of a layout), a Docker archive
//! (`docker save`), or else a root filesystem tarball that becomes a one-layer image.
//! Archives may be gzip- or zstd-compressed.

mod docker;
mod files;
mod layout;
mod rootfs;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::files::{DirFiles, Files, TarFiles};
use self::layout::Layout;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::fetch::{fetch_image, transaction};
use super::platform::Platform;
use super::progress::Progress;
use super::reference::Reference;
use super::store::Store;
use super::unpack::{decompress, entry_path};

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `NAME:TAG` for the imported image, instead of the name the source gives it.
    pub tag: Option<String>,
    /// The platform to choose from a multi-platform layout; the host's by default.
    pub platform: Option<Platform>,
}

/// An image an import stored, with the names it now has.
#[derive(Clone, Debug, Serialize)]
pub struct Imported {
    pub names: Vec<String>,
    pub digest: Digest,
}

impl Store {
    /// Imports every image of `source` (a path, or `PATH:REF` for an image layout).
    pub fn import(
        &self,
        source: &str,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Vec<Imported>> {
        let tag = options
            .tag
            .as_deref()
            .map(|t| Reference::parse(t).map(|r| r.to_string()))
            .transpose()?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let (path, reference) = split_source(source)?;
        let refused_ref = |kind: &str| ImageError::Source {
            path: path.clone(),
            reason: format!("PATH:REF picks an image of an OCI layout, and this is {kind}"),
        };

        transaction(self, |created| {
            let mut out = Vec::new();
            let mut archive_copy = None;
            let files: Box<dyn Files> = if path.is_dir() {
                Box::new(DirFiles { root: path.clone() })
            } else {
                match shape(&path)? {
                    Shape::Tar(files) => Box::new(files),
                    Shape::CompressedArchive => {
                        let copy = TempFile(self.unique_tmp("archive"));
                        decompress_to(&path, &copy.0)?;
                        let files = TarFiles::index(&copy.0)?;
                        archive_copy = Some(copy);
                        Box::new(files)
                    }
                    Shape::Rootfs => {
                        if reference.is_some() {
                            return Err(refused_ref("a root filesystem tarball"));
                        }
                        let (image, descriptor) = rootfs::import(self, &path, progress, created)?;
                        self.name_image(&descriptor, tag.as_deref(), None)?;
                        out.push(Imported {
                            names: tag.iter().cloned().collect(),
                            digest: image.digest,
                        });
                        return Ok(out);
                    }
                }
            };

            if files.read("index.json", 1)?.is_some() {
                let layout = Layout { files: &*files };
                let (chosen, name) = layout.choose(reference.as_deref(), &platform)?;
                let image = fetch_image(self, &layout, &chosen, progress, created)?;
                let name = tag.clone().or(name);
                self.name_image(
                    &chosen.descriptor,
                    name.as_deref(),
                    chosen.from_index.as_ref(),
                )?;
                out.push(Imported {
                    names: name.into_iter().collect(),
                    digest: image.digest,
                });
            } else if files.read("manifest.json", 1)?.is_some() {
                if reference.is_some() {
                    return Err(refused_ref("a Docker archive"));
                }
                let loaded = docker::import(self, &*files, progress, created)?;
                if tag.is_some() && loaded.len() != 1 {
                    return Err(ImageError::Source {
                        path: path.clone(),
                        reason: format!(
                            "--tag names one image and the archive has {}",
                            loaded.len()
                        ),
                    });
                }
                for image in loaded {
                    let names = match &tag {
                        Some(tag) => vec![tag.clone()],
                        None => image.names,
                    };
                    if names.is_empty() {
                        self.name_image(&image.descriptor, None, None)?;
                    }
                    for name in &names {
                        self.name_image(&image.descriptor, Some(name), None)?;
                    }
                    out.push(Imported {
                        names,
                        digest: image.image.digest,
                    });
                }
            } else {
                return Err(ImageError::Source {
                    path: path.clone(),
                    reason: "not an OCI image layout (no index.json) or a Docker archive (no \
                             manifest.json)"
                        .to_string(),
                });
            }
            drop(archive_copy);
            Ok(out)
        })
    }
}

/// `PATH` if it exists, else `PATH:REF` if `PATH` does.
fn split_source(source: &str) -> Result<(PathBuf, Option<String>)> {
    let whole = PathBuf::from(source);
    if whole.exists() {
        return Ok((whole, None));
    }
    if let Some((path, reference)) = source.rsplit_once(':') {
        if !reference.is_empty() && Path::new(path).is_dir() {
            return Ok((PathBuf::from(path), Some(reference.to_string())));
        }
    }
    Err(ImageError::Source {
        path: whole,
        reason: "no such file or directory".to_string(),
    })
}

enum Shape {
    /// An uncompressed OCI or Docker archive, indexed in place.
    Tar(TarFiles),
    /// A compressed OCI or Docker archive.
    CompressedArchive,
    /// A root filesystem tarball.
    Rootfs,
}

/// Tells a file's shape from its first bytes and, for a compressed one, from its member
/// names: the first name that cannot belong to an image archive makes it a rootfs.
fn shape(path: &Path) -> Result<Shape> {
    let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let head = input
        .fill_buf()
        .map_err(|e| ImageError::io("read", path, e))?;
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if !compressed {
        let files = TarFiles::index(path)?;
        if files.has("index.json") || files.has("manifest.json") {
            return Ok(Shape::Tar(files));
        }
        return Ok(Shape::Rootfs);
    }
    let bad = |e: io::Error| ImageError::Source {
        path: path.to_path_buf(),
        reason: format!("read: {e}"),
    };
    let stream = decompress(input).map_err(bad)?;
    let mut archive = tar::Archive::new(stream);
    let mut marker = false;
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let Ok(name) = entry_path(&entry.path_bytes()) else {
            return Ok(Shape::Rootfs);
        };
        if !archive_member(&name) {
            return Ok(Shape::Rootfs);
        }
        marker |= name == Path::new("index.json") || name == Path::new("manifest.json");
    }
    Ok(if marker {
        Shape::CompressedArchive
    } else {
        Shape::Rootfs
    })
}

/// Names an OCI or Docker archive can hold.
fn archive_member(name: &Path) -> bool {
    let text = name.to_string_lossy();
    let first = text.split('/').next().unwrap_or("");
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    text.is_empty()
        || matches!(
            first,
            "oci-layout" | "index.json" | "manifest.json" | "repositories" | "blobs"
        )
        || hex64(first)
        || [".json", ".tar"]
            .iter()
            .any(|ext| first.strip_suffix(ext).is_some_and(hex64))
}

fn decompress_to(path: &Path, to: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let mut stream = decompress(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| ImageError::io("read", path, e))?;
    let mut out = File::create(to).map_err(|e| ImageError::io("create", to, e))?;
    io::copy(&mut stream as &mut dyn Read, &mut out).map_err(|e| ImageError::Source {
        path: path.to_path_buf(),
        reason: format!("decompress: {e}"),
    })?;
    Ok(())
}

/// A file in tmp/ removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_member_names() {
        let hex = "a".repeat(64);
        for name in [
            "",
            "oci-layout",
            "index.json",
            "blobs/sha256/abc",
            "manifest.json",
            &format!("{hex}/layer.tar"),
            &format!("{hex}.json"),
            &format!("{hex}.tar"),
        ] {
            assert!(archive_member(Path::new(name)), "{name}");
        }
        for name in ["bin", "etc/passwd", "usr/lib/x.so"] {
            assert!(!archive_member(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn sources_with_refs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        let (path, reference) = split_source(&format!("{}:v1", layout.display())).unwrap();
        assert_eq!(path, layout);
        assert_eq!(reference.as_deref(), Some("v1"));
        let (_, reference) = split_source(layout.to_str().unwrap()).unwrap();
        assert_eq!(reference, None);
        let err = split_source("/nonexistent/x:latest")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }
}
