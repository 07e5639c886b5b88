//! `berth image unpack REF DIR`: a runtime bundle that runc can run, as `umoci unpack`
//! makes: `DIR/rootfs` is a copy of the image's merged view (owners, modes, times, xattrs
//! and hardlinks kept), `DIR/config.json` the spec from its config.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::time::TimeSpec;

use super::error::{ImageError, Result};
use super::gc::remove;
use super::records::Image;
use super::rootfs::{open_root, read_image_file};
use super::spec::{ImageFiles, Overrides, spec_from_config};
use super::store::{Store, write_atomic};
use super::unpack::{Meta, Node, Tree, xattr};
use super::whiteout::is_overlay_xattr;

impl Store {
    /// Writes `DIR/rootfs` and `DIR/config.json` for `image`. Nothing is left behind if
    /// it fails; an existing `DIR/rootfs` or `DIR/config.json` is refused.
    pub fn unpack(&self, image: &Image, dir: &Path) -> Result<()> {
        let rootfs = dir.join("rootfs");
        let config = dir.join("config.json");
        for path in [&rootfs, &config] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(ImageError::Source {
                    path: path.clone(),
                    reason: "already exists".to_string(),
                });
            }
        }
        if !dir.exists() {
            // As umoci does: the rootfs may hold setuid binaries other users must not reach.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| ImageError::io("create", dir, e))?;
        }
        fs::create_dir(&rootfs).map_err(|e| ImageError::io("create", &rootfs, e))?;
        let result = self.unpack_into(image, &rootfs, &config);
        if result.is_err() {
            let _ = remove(&rootfs);
            let _ = remove(&config);
        }
        result
    }

    fn unpack_into(&self, image: &Image, rootfs: &Path, config: &Path) -> Result<()> {
        let (passwd, group) = self.with_merged_view(image, |view| {
            copy_tree(view, rootfs)?;
            let root = open_root(rootfs)?;
            Ok((
                read_image_file(root.as_fd(), "etc/passwd")?,
                read_image_file(root.as_fd(), "etc/group")?,
            ))
        })?;
        let spec = spec_from_config(
            &image.config,
            ImageFiles {
                passwd: passwd.as_deref(),
                group: group.as_deref(),
            },
            &Overrides::default(),
        )?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| ImageError::Source {
            path: config.to_path_buf(),
            reason: e.to_string(),
        })?;
        write_atomic(config, &json)
    }
}

/// Copies the tree at `from` into the empty directory `to`, writing through [`Tree`].
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mut tree = Tree::new(open_root(to)?);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let fail = |rel: &Path, reason: String| ImageError::Source {
        path: to.join(rel),
        reason,
    };
    let root_meta = meta(from).map_err(|e| fail(Path::new(""), e))?;
    tree.put(Path::new(""), Node::Dir, &root_meta)
        .map_err(|e| fail(Path::new(""), e))?;
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let source_dir = from.join(&dir);
        let mut entries: Vec<_> = fs::read_dir(&source_dir)
            .map_err(|e| ImageError::io("read", &source_dir, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| ImageError::io("read", &source_dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let source = from.join(&rel);
            let st =
                fs::symlink_metadata(&source).map_err(|e| ImageError::io("stat", &source, e))?;
            let meta = meta(&source).map_err(|e| fail(&rel, e))?;
            let kind = st.file_type();
            let outcome = if kind.is_dir() {
                stack.push(rel.clone());
                tree.put(&rel, Node::Dir, &meta)
            } else if kind.is_symlink() {
                let target =
                    fs::read_link(&source).map_err(|e| ImageError::io("readlink", &source, e))?;
                tree.put(&rel, Node::Symlink(&target), &meta)
            } else if kind.is_file() && st.nlink() > 1 && links.contains_key(&(st.dev(), st.ino()))
            {
                let first = links[&(st.dev(), st.ino())].clone();
                tree.put(&rel, Node::Hardlink(&first), &meta)
            } else if kind.is_file() {
                if st.nlink() > 1 {
                    links.insert((st.dev(), st.ino()), rel.clone());
                }
                let mut file =
                    File::open(&source).map_err(|e| ImageError::io("open", &source, e))?;
                tree.put(&rel, Node::File(&mut file), &meta)
            } else if kind.is_char_device() {
                tree.put(&rel, Node::CharDevice(st.rdev()), &meta)
            } else if kind.is_block_device() {
                tree.put(&rel, Node::BlockDevice(st.rdev()), &meta)
            } else if kind.is_fifo() {
                tree.put(&rel, Node::Fifo, &meta)
            } else {
                // Sockets are not image content.
                Ok(())
            };
            outcome.map_err(|e| fail(&rel, e))?;
        }
    }
    tree.finish().map_err(|(rel, e)| fail(&rel, e))
}

fn meta(path: &Path) -> std::result::Result<Meta, String> {
    let st = fs::symlink_metadata(path).map_err(|e| format!("stat: {e}"))?;
    let mut xattrs = Vec::new();
    for name in xattr::list(path).map_err(|e| format!("list xattrs: {e}"))? {
        if is_overlay_xattr(OsStr::new(&name)) {
            continue;
        }
        let value = xattr::get(path, &name).map_err(|e| format!("read xattr: {e}"))?;
        xattrs.push((name, value));
    }
    Ok(Meta {
        mode: st.mode() & 0o7777,
        uid: st.uid(),
        gid: st.gid(),
        mtime: TimeSpec::new(st.mtime(), st.mtime_nsec()),
        xattrs,
    })
}
