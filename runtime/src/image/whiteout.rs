//! Whiteouts as layers spell them (`.wh.<name>` and `.wh..wh..opq`) and as overlayfs
//! stores them (a 0:0 character device, the `trusted.overlay.opaque` xattr).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

const PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Names beginning `.wh..wh.` are aufs bookkeeping, not image content.
const AUFS_META: &[u8] = b".wh..wh.";

/// The overlayfs xattr that hides everything below a directory.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What a layer entry's file name means.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary file name.
    None,
    /// `.wh.<name>`: `name` from the layers below is deleted.
    Remove(&'a OsStr),
    /// `.wh..wh..opq`: the directory hides whatever the layers below have in it.
    Opaque,
    /// Other `.wh..wh.` names: aufs metadata, skipped.
    AufsMetadata,
}

pub fn classify(name: &OsStr) -> Whiteout<'_> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        Whiteout::Opaque
    } else if bytes.starts_with(AUFS_META) {
        Whiteout::AufsMetadata
    } else if let Some(target) = bytes.strip_prefix(PREFIX) {
        Whiteout::Remove(OsStr::from_bytes(target))
    } else {
        Whiteout::None
    }
}

/// Whether xattr `name` is overlayfs' own. Such xattrs describe the overlay a layer was
/// once captured from, never image content, and could redirect lookups if written into a
/// snapshot; they are dropped.
pub fn is_overlay_xattr(name: &OsStr) -> bool {
    name.as_bytes().starts_with(b"trusted.overlay.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Whiteout<'_> {
        classify(OsStr::new(name))
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(c("passwd"), Whiteout::None);
        assert_eq!(c(".whatever"), Whiteout::None);
        assert_eq!(c(".wh.passwd"), Whiteout::Remove(OsStr::new("passwd")));
        assert_eq!(c(".wh..hidden"), Whiteout::Remove(OsStr::new(".hidden")));
        assert_eq!(c(".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(c(".wh..wh.plnk"), Whiteout::AufsMetadata);
        assert_eq!(c(".wh..wh.aufs"), Whiteout::AufsMetadata);
        // The target of a whiteout is checked like any path component by the writer.
        assert_eq!(c(".wh..."), Whiteout::Remove(OsStr::new("..")));
        assert_eq!(c(".wh."), Whiteout::Remove(OsStr::new("")));
    }

    #[test]
    fn overlay_xattrs() {
        assert!(is_overlay_xattr(OsStr::new("trusted.overlay.opaque")));
        assert!(is_overlay_xattr(OsStr::new("trusted.overlay.redirect")));
        assert!(!is_overlay_xattr(OsStr::new("security.capability")));
        assert!(!is_overlay_xattr(OsStr::new("trusted.other")));
    }
}
