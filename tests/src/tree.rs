//! File trees compared the way a user would compare two unpacked images: names, types,
//! modes, owners, link targets, device numbers, contents and xattrs (not times).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub link: Option<PathBuf>,
    pub content: Option<String>,
    pub rdev: Option<u64>,
    pub nlink: Option<u64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every entry under `root` (the root itself as ``), by relative path.
pub fn walk(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        if ft.is_dir() {
            for entry in
                fs::read_dir(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            {
                let entry = entry.expect("read a directory entry");
                stack.push(rel.join(entry.file_name()));
            }
        }
        let content = ft.is_file().then(|| {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        let mut xattrs = BTreeMap::new();
        if let Ok(names) = xattr::list(&path) {
            for name in names {
                let name = name.to_string_lossy().into_owned();
                if name.starts_with("trusted.overlay.") {
                    continue;
                }
                let value = xattr::get(&path, &name).ok().flatten().unwrap_or_default();
                xattrs.insert(name, value);
            }
        }
        out.insert(
            rel,
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                link: ft
                    .is_symlink()
                    .then(|| fs::read_link(&path).expect("readlink")),
                content,
                rdev: (ft.is_char_device() || ft.is_block_device()).then(|| meta.rdev()),
                nlink: ft.is_file().then(|| meta.nlink()),
                xattrs,
            },
        );
    }
    out
}

/// Panics listing the differences (at most 20) between two trees.
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let want = walk(expected);
    let got = walk(actual);
    let mut problems = Vec::new();
    for (path, node) in &want {
        match got.get(path) {
            None => problems.push(format!("missing: /{}", path.display())),
            Some(other) if other != node => problems.push(format!(
                "differs: /{}\n    expected {node:?}\n    got      {other:?}",
                path.display()
            )),
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("unexpected: /{}", path.display()));
    }
    assert!(
        problems.is_empty(),
        "{} differs from {} in {} places:\n{}",
        actual.display(),
        expected.display(),
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
