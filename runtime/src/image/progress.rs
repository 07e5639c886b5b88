//! How long work reports how far it is. The library never draws anything; the CLI turns
//! these calls into progress bars when stdout is a terminal.

use super::digest::Digest;

pub trait Progress: Sync {
    /// A blob starts to be copied into the store; `size` is what its descriptor says.
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    /// `bytes` more bytes of the blob have been stored.
    fn blob_advanced(&self, _digest: &Digest, _bytes: u64) {}
    /// The blob is verified and in the store, or was there already.
    fn blob_done(&self, _digest: &Digest) {}
    /// A layer starts to be unpacked into its snapshot.
    fn layer_started(&self, _layer: &Digest) {}
    /// The layer's snapshot is in place, made now or earlier.
    fn layer_done(&self, _layer: &Digest) {}
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {}
