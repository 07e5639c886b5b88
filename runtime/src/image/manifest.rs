//! The documents that describe an image: descriptors, manifests and indexes, in their OCI
//! and Docker schema 2 spellings, parsed with errors that name the offending field.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::platform::Platform;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// What a client accepts when it asks a registry for a manifest.
    pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.docker.distribution.manifest.v2+json";

    /// Layer media types this store unpacks: tar, optionally gzip- or zstd-compressed,
    /// including the non-distributable and foreign variants (their content is the same).
    pub fn is_layer(media_type: &str) -> bool {
        matches!(
            media_type,
            OCI_LAYER
                | OCI_LAYER_GZIP
                | OCI_LAYER_ZSTD
                | DOCKER_LAYER
                | DOCKER_LAYER_GZIP
                | "application/vnd.oci.image.layer.nondistributable.v1.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        )
    }

    pub fn is_config(media_type: &str) -> bool {
        matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
    }
}

/// A pointer to a blob: its media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn new() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

/// A manifest or an index, whichever the bytes turn out to be.
#[derive(Clone, Debug)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// Parses a manifest or an index. `content_type` is what a registry said; the document's
/// own `mediaType`, then its shape, decide when there is none.
pub fn parse_document(bytes: &[u8], what: &str, content_type: Option<&str>) -> Result<Document> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe = parse_json(bytes, what)?;
    let declared = probe
        .media_type
        .as_deref()
        .or(content_type.filter(|t| !t.is_empty() && !t.starts_with("application/json")));
    if probe.schema_version == Some(1)
        || matches!(
            declared,
            Some(media::DOCKER_SCHEMA1) | Some(media::DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(ImageError::Unsupported(format!(
            "{what}: docker schema 1 manifests are not supported; push the image again with a \
             current client"
        )));
    }
    if probe.schema_version != Some(2) {
        return Err(ImageError::document(what, "schemaVersion", "expected 2"));
    }
    let is_index = match declared {
        Some(media::OCI_INDEX) | Some(media::DOCKER_LIST) => true,
        Some(media::OCI_MANIFEST) | Some(media::DOCKER_MANIFEST) => false,
        Some(other) if probe.manifests.is_none() && probe.config.is_none() => {
            return Err(ImageError::Unsupported(format!(
                "{what}: unsupported media type {other}"
            )));
        }
        _ => probe.manifests.is_some() && probe.config.is_none(),
    };
    if is_index {
        Ok(Document::Index(parse_json(bytes, what)?))
    } else {
        let manifest: Manifest = parse_json(bytes, what)?;
        check_manifest(&manifest, what)?;
        Ok(Document::Manifest(manifest))
    }
}

/// A manifest this store can run: its config is an image config and every layer a tar.
pub fn check_manifest(manifest: &Manifest, what: &str) -> Result<()> {
    if !media::is_config(&manifest.config.media_type) {
        return Err(ImageError::Unsupported(format!(
            "{what}: not a container image (config media type {:?})",
            manifest.config.media_type
        )));
    }
    if manifest.layers.is_empty() {
        return Err(ImageError::document(
            what,
            "layers",
            "the image has no layers",
        ));
    }
    for (i, layer) in manifest.layers.iter().enumerate() {
        if !media::is_layer(&layer.media_type) {
            return Err(ImageError::document(
                what,
                format!("layers[{i}].mediaType"),
                format!("unsupported layer media type {:?}", layer.media_type),
            ));
        }
    }
    Ok(())
}

/// Deserializes JSON, naming the field that is wrong (`layers[2].digest`) on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "(document)".to_string()
        } else {
            path
        };
        ImageError::document(what, field, e.into_inner())
    })
}

/// Serializes a document the way this store writes it: compact, fields in a fixed order,
/// so the same document always has the same digest.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn manifest_json(config_type: &str, layer_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"{config_type}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"{layer_type}","digest":"{D}","size":3}}]}}"#
        )
    }

    #[test]
    fn docker_schema2_manifest() {
        let json = manifest_json(media::DOCKER_CONFIG, media::DOCKER_LAYER_GZIP);
        let Document::Manifest(m) = parse_document(json.as_bytes(), "m", None).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, 3);
    }

    #[test]
    fn index_by_shape_or_type() {
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D}","size":1,
            "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media::OCI_MANIFEST
        );
        let doc = parse_document(json.as_bytes(), "i", None).unwrap();
        assert!(matches!(doc, Document::Index(ref i) if i.manifests.len() == 1));
        let doc = parse_document(json.as_bytes(), "i", Some(media::DOCKER_LIST)).unwrap();
        assert!(matches!(doc, Document::Index(_)));
    }

    #[test]
    fn errors_name_the_field() {
        let json = manifest_json(media::OCI_CONFIG, media::OCI_LAYER)
            .replace(r#""size":3"#, r#""size":-3"#);
        let err = parse_document(json.as_bytes(), "manifest x", None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("manifest x: layers[0].size:"), "{err}");

        let json = manifest_json(media::OCI_CONFIG, "application/vnd.example.blob");
        let err = parse_document(json.as_bytes(), "m", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("layers[0].mediaType"), "{err}");

        let json = manifest_json("application/vnd.cncf.helm.config.v1+json", media::OCI_LAYER);
        let err = parse_document(json.as_bytes(), "m", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a container image"), "{err}");

        let err = parse_document(br#"{"schemaVersion":1,"fsLayers":[]}"#, "m", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema 1"), "{err}");

        let err = parse_document(b"{", "m", None).unwrap_err().to_string();
        assert!(err.starts_with("m: (document):"), "{err}");
    }
}
