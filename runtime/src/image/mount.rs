//! Overlay mounts of snapshots. Lower directories are named relative to the snapshots
//! directory (from a thread with its own working directory), which keeps the mount
//! options short: 65 bytes per layer. Mounts that only the store itself needs (unpacking
//! a layer, reading an image) live in a private mount namespace of one thread, so they
//! vanish with the thread even if the process is killed.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use super::digest::Digest;
use super::error::{ImageError, Result};

/// The kernel takes mount options up to a page.
const MAX_OPTIONS: usize = 4095;

/// Runs `work` on a thread of its own, in a new mount namespace where mounts do not
/// propagate back to the host.
pub(crate) fn in_private_namespace<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| ImageError::sys("unshare a mount namespace", e))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| ImageError::sys("make mounts private", e))?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(ImageError::Unsupported("a mount thread panicked".into())))
    })
}

/// Runs `work` on a thread with its own working directory (and the process's mounts).
fn with_own_cwd<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_FS)
                    .map_err(|e| ImageError::sys("unshare the working directory", e))?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(ImageError::Unsupported("a mount thread panicked".into())))
    })
}

/// What an overlay mount stacks.
pub(crate) struct Overlay<'a> {
    pub snapshots_dir: &'a Path,
    /// Chain IDs, bottom layer first.
    pub layers: &'a [Digest],
    /// Upper and work directories; without them the mount is read-only.
    pub upper: Option<(&'a Path, &'a Path)>,
    /// Options that keep an upper directory self-contained (for unpacking layers).
    pub plain_upper: bool,
}

impl Overlay<'_> {
    fn options(&self) -> Result<String> {
        let lowers: Vec<&str> = self.layers.iter().rev().map(Digest::hex).collect();
        let mut options = format!("lowerdir={}", lowers.join(":"));
        if let Some((upper, work)) = self.upper {
            for path in [upper, work] {
                let text = path.to_str().filter(|p| !p.contains([',', ':', '\\']));
                let Some(text) = text else {
                    return Err(ImageError::Source {
                        path: path.to_path_buf(),
                        reason: "an overlay directory path cannot contain ',', ':' or '\\'"
                            .to_string(),
                    });
                };
                let key = if path == upper { "upperdir" } else { "workdir" };
                options.push_str(&format!(",{key}={text}"));
            }
        }
        if self.plain_upper {
            // No metadata-only copy-ups or redirects: the upper directory must hold whole
            // files, as it becomes a snapshot other stacks reuse.
            options.push_str(",index=off,metacopy=off,redirect_dir=off");
        }
        if options.len() > MAX_OPTIONS {
            return Err(ImageError::Unsupported(format!(
                "{} layers do not fit in one overlay mount",
                self.layers.len()
            )));
        }
        Ok(options)
    }

    /// Mounts the overlay on `target`, from the calling thread, which must have a working
    /// directory of its own.
    fn mount_here(&self, target: &Path) -> Result<()> {
        let options = self.options()?;
        std::env::set_current_dir(self.snapshots_dir)
            .map_err(|e| ImageError::io("enter", self.snapshots_dir, e))?;
        let flags = if self.upper.is_some() {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(options.as_str()),
        )
        .map_err(|e| ImageError::io("mount overlay on", target, e.into()))
    }
}

/// Mounts in the process's own mount namespace (a container's rootfs).
pub(crate) fn mount_overlay(overlay: &Overlay<'_>, target: &Path) -> Result<()> {
    with_own_cwd(|| overlay.mount_here(target))
}

/// Mounts inside a private namespace; the caller must be running in one.
pub(crate) fn mount_overlay_private(overlay: &Overlay<'_>, target: &Path) -> Result<()> {
    overlay.mount_here(target)
}

/// Unmounts a rootfs mounted by `mount_rootfs`; lazily if something still uses it.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                .map_err(|e| ImageError::io("unmount", target, e.into()))
        }
        Err(e) => Err(ImageError::io("unmount", target, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_are_listed_top_first() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let layers = [a.clone(), b.clone()];
        let overlay = Overlay {
            snapshots_dir: Path::new("/s"),
            layers: &layers,
            upper: Some((Path::new("/u"), Path::new("/w"))),
            plain_upper: false,
        };
        assert_eq!(
            overlay.options().unwrap(),
            format!("lowerdir={}:{},upperdir=/u,workdir=/w", b.hex(), a.hex())
        );
    }

    #[test]
    fn paths_that_would_break_the_options_are_refused() {
        let layers = [Digest::of(b"a")];
        let overlay = Overlay {
            snapshots_dir: Path::new("/s"),
            layers: &layers,
            upper: Some((Path::new("/u,lowerdir=/etc"), Path::new("/w"))),
            plain_upper: false,
        };
        assert!(overlay.options().is_err());
    }

    #[test]
    fn too_many_layers() {
        let layers: Vec<Digest> = (0..70u8).map(|i| Digest::of(&[i])).collect();
        let overlay = Overlay {
            snapshots_dir: Path::new("/s"),
            layers: &layers,
            upper: None,
            plain_upper: false,
        };
        let err = overlay.options().unwrap_err().to_string();
        assert!(err.contains("70 layers"), "{err}");
    }
}
