//! An image's root filesystem as a container uses it: an overlay of its snapshots with a
//! fresh upper and work directory per container, so that nothing is copied; and the
//! runtime spec for it, with user names resolved through the image's own files.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use oci_spec::runtime::Spec;

use super::error::{ImageError, Result};
use super::mount::{self, Overlay};
use super::records::Image;
use super::snapshot::copy_root_attributes;
use super::spec::{ImageFiles, Overrides, spec_from_config};
use super::store::Store;
use super::unpack::open_in_root;

impl Store {
    /// Mounts `image`'s root filesystem on `target` (an existing directory): the image's
    /// snapshots as read-only lower layers, `upper` and `work` (created if missing; `upper`
    /// must be empty, both on one filesystem) for the container's own changes.
    ///
    /// Take a lease on the image first: it is what keeps `prune` away from the snapshots
    /// while the container runs.
    pub fn mount_rootfs(
        &self,
        image: &Image,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<()> {
        let _lock = self.lock_shared()?;
        self.check_snapshots(image)?;
        for dir in [upper, work] {
            fs::create_dir_all(dir).map_err(|e| ImageError::io("create", dir, e))?;
        }
        let not_empty = fs::read_dir(upper)
            .map_err(|e| ImageError::io("read", upper, e))?
            .next()
            .is_some();
        if not_empty {
            return Err(ImageError::Source {
                path: upper.to_path_buf(),
                reason: "the upper directory of a new rootfs must be empty".to_string(),
            });
        }
        let top = image.chain_ids.last().ok_or_else(|| {
            ImageError::Unsupported(format!("image {} has no layers", image.digest))
        })?;
        copy_root_attributes(&self.snapshot_path(top), upper)?;
        let snapshots_dir = self.snapshots_dir();
        mount::mount_overlay(
            &Overlay {
                snapshots_dir: &snapshots_dir,
                layers: &image.chain_ids,
                upper: Some((upper, work)),
                plain_upper: false,
            },
            target,
        )
    }

    /// The runtime spec for a container of `image`: see [`spec_from_config`].
    pub fn spec(&self, image: &Image, overrides: &Overrides) -> Result<Spec> {
        let (passwd, group) = self.with_merged_view(image, |root| {
            let root = open_root(root)?;
            Ok((
                read_image_file(root.as_fd(), "etc/passwd")?,
                read_image_file(root.as_fd(), "etc/group")?,
            ))
        })?;
        spec_from_config(
            &image.config,
            ImageFiles {
                passwd: passwd.as_deref(),
                group: group.as_deref(),
            },
            overrides,
        )
    }

    /// Runs `work` with the path of a read-only merged view of `image`: the snapshot
    /// itself for one layer, else an overlay in a private mount namespace.
    pub(crate) fn with_merged_view<T: Send>(
        &self,
        image: &Image,
        work: impl FnOnce(&Path) -> Result<T> + Send,
    ) -> Result<T> {
        let _lock = self.lock_shared()?;
        self.check_snapshots(image)?;
        if let [only] = image.chain_ids.as_slice() {
            return work(&self.snapshot_path(only));
        }
        let target = self.unique_tmp("view");
        fs::create_dir(&target).map_err(|e| ImageError::io("create", &target, e))?;
        let snapshots_dir = self.snapshots_dir();
        let result = mount::in_private_namespace(|| {
            mount::mount_overlay_private(
                &Overlay {
                    snapshots_dir: &snapshots_dir,
                    layers: &image.chain_ids,
                    upper: None,
                    plain_upper: false,
                },
                &target,
            )?;
            let result = work(&target);
            mount::unmount(&target)?;
            result
        });
        let _ = fs::remove_dir(&target);
        result
    }

    fn check_snapshots(&self, image: &Image) -> Result<()> {
        for chain_id in &image.chain_ids {
            if !self.snapshot_path(chain_id).is_dir() {
                return Err(ImageError::Unsupported(format!(
                    "image {}: snapshot {chain_id} is missing; pull or import the image again",
                    image.digest
                )));
            }
        }
        Ok(())
    }
}

pub(crate) fn open_root(path: &Path) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| ImageError::io("open", path, e))
}

/// A small text file of the image, resolved inside it; `None` if it has none.
pub(crate) fn read_image_file(
    root: std::os::fd::BorrowedFd<'_>,
    path: &str,
) -> Result<Option<String>> {
    let fd = match open_in_root(root, Path::new(path), OFlag::O_RDONLY) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(ImageError::io("open image file", path, e.into())),
    };
    let mut text = String::new();
    File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)
        .map_err(|e| ImageError::io("read image file", path, e))?;
    Ok(Some(text))
}
