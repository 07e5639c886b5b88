//! OCI image layouts made by the tests: layers written entry by entry with the tar crate's
//! headers (so that a test can also write what no honest tool would: `..`, absolute names,
//! links out of the image), then blobs, a config, a manifest and index.json.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A fixed mtime, so that layers are reproducible.
const MTIME: u64 = 1_600_000_000;

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A layer tar, built entry by entry.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Layer::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Any entry, with its name and link name written into the header as given.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        owner: (u64, u64),
        link: &str,
        data: &[u8],
        device: (u32, u32),
    ) -> Layer {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().expect("a GNU header");
            assert!(name.len() < gnu.name.len() && link.len() < gnu.linkname.len());
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        header.set_mtime(MTIME);
        header.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            header.set_device_major(device.0).expect("device major");
            header.set_device_minor(device.1).expect("device minor");
        }
        header.set_cksum();
        self.builder
            .append(&header, data)
            .expect("append a tar entry");
        self
    }

    pub fn dir(self, name: &str, mode: u32) -> Layer {
        self.raw(
            name,
            tar::EntryType::Directory,
            mode,
            (0, 0),
            "",
            b"",
            (0, 0),
        )
    }

    pub fn file(self, name: &str, mode: u32, data: &[u8]) -> Layer {
        self.raw(
            name,
            tar::EntryType::Regular,
            mode,
            (0, 0),
            "",
            data,
            (0, 0),
        )
    }

    pub fn owned_file(self, name: &str, mode: u32, owner: (u64, u64), data: &[u8]) -> Layer {
        self.raw(name, tar::EntryType::Regular, mode, owner, "", data, (0, 0))
    }

    pub fn symlink(self, name: &str, target: &str) -> Layer {
        self.raw(
            name,
            tar::EntryType::Symlink,
            0o777,
            (0, 0),
            target,
            b"",
            (0, 0),
        )
    }

    pub fn hardlink(self, name: &str, target: &str) -> Layer {
        self.raw(
            name,
            tar::EntryType::Link,
            0o644,
            (0, 0),
            target,
            b"",
            (0, 0),
        )
    }

    pub fn char_device(self, name: &str, major: u32, minor: u32) -> Layer {
        self.raw(
            name,
            tar::EntryType::Char,
            0o666,
            (0, 0),
            "",
            b"",
            (major, minor),
        )
    }

    pub fn fifo(self, name: &str) -> Layer {
        self.raw(name, tar::EntryType::Fifo, 0o644, (0, 0), "", b"", (0, 0))
    }

    /// A file with extended attributes, in a PAX header as GNU tar writes them.
    pub fn file_with_xattrs(
        mut self,
        name: &str,
        mode: u32,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> Layer {
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.builder
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("append a PAX header");
        self.file(name, mode, data)
    }

    /// `.wh.<name>` in `dir`: `name` of the layers below is deleted.
    pub fn whiteout(self, dir: &str, name: &str) -> Layer {
        let path = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&path, 0o644, b"")
    }

    /// `.wh..wh..opq` in `dir`: the layers below have nothing in it.
    pub fn opaque(self, dir: &str) -> Layer {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish the tar")
    }
}

/// A layer blob as it goes into a layout.
pub struct Blob {
    pub bytes: Vec<u8>,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl Blob {
    pub fn gzip(tar: &[u8]) -> Blob {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).expect("gzip");
        Blob {
            bytes: gz.finish().expect("gzip"),
            diff_id: sha256(tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }

    pub fn plain(tar: &[u8]) -> Blob {
        Blob {
            bytes: tar.to_vec(),
            diff_id: sha256(tar),
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// What `write_layout` made.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub manifest: String,
    pub manifest_size: u64,
    pub config: String,
    pub layers: Vec<String>,
    pub diff_ids: Vec<String>,
}

impl Layout {
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
}

/// Stores `bytes` as a blob of the layout; returns its digest and size.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    let path = blob_path(layout, &digest);
    fs::create_dir_all(path.parent().expect("blobs dir")).expect("create blobs dir");
    fs::write(&path, bytes).expect("write a blob");
    (digest, bytes.len() as u64)
}

/// An image config for `architecture` with `diff_ids` and the given `config` section.
pub fn image_config(architecture: &str, diff_ids: &[String], config: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("serialize a config")
}

/// Writes a manifest for a config and layers into the layout; returns (digest, size).
pub fn put_manifest(layout: &Path, config: &[u8], layers: &[(String, u64, &str)]) -> (String, u64) {
    let (config_digest, config_size) = put_blob(layout, config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layers.iter().map(|(digest, size, media_type)| json!({
            "mediaType": media_type, "digest": digest, "size": size,
        })).collect::<Vec<_>>(),
    });
    put_blob(
        layout,
        &serde_json::to_vec(&manifest).expect("serialize a manifest"),
    )
}

/// Writes `index.json` (and `oci-layout`) naming the given descriptors.
pub fn write_index(layout: &Path, manifests: Vec<Value>) {
    fs::create_dir_all(layout).expect("create the layout");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
}

/// A one-image layout, tag `latest`, of the given layer blobs over the host architecture.
pub fn write_layout(dir: &Path, blobs: &[Blob], config: Value) -> Layout {
    let mut layers = Vec::new();
    for blob in blobs {
        let (digest, size) = put_blob(dir, &blob.bytes);
        layers.push((digest, size, blob.media_type));
    }
    let diff_ids: Vec<String> = blobs.iter().map(|b| b.diff_id.clone()).collect();
    let config_bytes = image_config(host_architecture(), &diff_ids, config);
    let (manifest, manifest_size) = put_manifest(dir, &config_bytes, &layers);
    write_index(
        dir,
        vec![json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        })],
    );
    Layout {
        dir: dir.to_path_buf(),
        manifest,
        manifest_size,
        config: sha256(&config_bytes),
        layers: layers.into_iter().map(|(d, _, _)| d).collect(),
        diff_ids,
    }
}

/// The host architecture as image configs name it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
