//! The image store's error type: each variant says what failed, on which path, digest,
//! reference or field, in one line.

use std::io;
use std::path::PathBuf;

use super::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{step} {path}: {error}")]
    Io {
        step: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("{step}: {error}")]
    Sys {
        step: &'static str,
        error: nix::Error,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("invalid digest {value:?}: {reason}")]
    Digest { value: String, reason: String },
    #[error("invalid platform {value:?}: expected os/arch or os/arch/variant")]
    Platform { value: String },
    /// A document (manifest, index, config, layout file) that does not parse or says
    /// something impossible; `what` names the document, `field` the offending member.
    #[error("{what}: {field}: {reason}")]
    Document {
        what: String,
        field: String,
        reason: String,
    },
    #[error("blob {digest}: content has digest {actual}")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest}: not found in {place}")]
    MissingBlob { digest: Digest, place: String },
    /// A layer entry refused or failed while it was written into a snapshot.
    #[error("layer {layer}: {path}: {reason}")]
    Entry {
        layer: Digest,
        path: String,
        reason: String,
    },
    /// A layer whose stream is unreadable: bad compression, broken tar, wrong diff ID.
    #[error("layer {layer}: {reason}")]
    Layer { layer: Digest, reason: String },
    #[error("{path}: {reason}")]
    Source { path: PathBuf, reason: String },
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("no image for platform {wanted} in {what}; it has {available}")]
    NoPlatform {
        wanted: String,
        what: String,
        available: String,
    },
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("{reference:?} matches several images: {matches}")]
    Ambiguous { reference: String, matches: String },
    #[error("image {reference} is in use by task {task}; use --force to remove its name anyway")]
    InUse { reference: String, task: String },
    #[error("invalid task name {0:?} for a lease: use letters, digits, '_', '-' and '.'")]
    LeaseName(String),
    /// The image configuration cannot become a runtime spec; `field` is the config member.
    #[error("image config: {field}: {reason}")]
    Config { field: String, reason: String },
    #[error("{what}: read: {error}")]
    Read { what: String, error: io::Error },
    #[error("{0}: stopped because another step failed")]
    Cancelled(String),
    #[error("{0}")]
    Unsupported(String),
}

impl ImageError {
    pub fn io(step: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        ImageError::Io {
            step,
            path: path.into(),
            error,
        }
    }

    pub fn sys(step: &'static str, error: nix::Error) -> Self {
        ImageError::Sys { step, error }
    }

    pub fn document(
        what: impl Into<String>,
        field: impl Into<String>,
        reason: impl ToString,
    ) -> Self {
        ImageError::Document {
            what: what.into(),
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub fn registry(registry: &str, reason: impl Into<String>) -> Self {
        ImageError::Registry {
            registry: registry.to_string(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;
