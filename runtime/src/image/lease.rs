//! Leases: `leases/<task>` names the images (manifest digests) a task uses. The agent
//! writes one before it mounts a task's rootfs and releases it when the task is gone;
//! `rm` refuses an image under a lease and garbage collection keeps all it names.

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::manifest::{parse_json, to_json};
use super::store::{Store, write_atomic};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    #[serde(skip)]
    pub task: String,
    pub images: Vec<Digest>,
}

impl Store {
    /// Records that `task` uses `images`, replacing the task's earlier lease. Every image
    /// must be in the store: a lease taken on something already collected would protect
    /// nothing.
    pub fn lease(&self, task: &str, images: &[Digest]) -> Result<()> {
        check_task(task)?;
        let _lock = self.lock_shared()?;
        for image in images {
            if !self.has_blob(image) {
                return Err(ImageError::NotFound(image.to_string()));
            }
        }
        let lease = Lease {
            task: task.to_string(),
            images: images.to_vec(),
        };
        write_atomic(&self.leases_dir().join(task), &to_json(&lease))
    }

    /// Drops `task`'s lease; nothing happens if it has none.
    pub fn release(&self, task: &str) -> Result<()> {
        check_task(task)?;
        let path = self.leases_dir().join(task);
        match std::fs::remove_file(&path) {
            Ok(()) => super::store::sync_parent(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("remove", &path, e)),
        }
    }

    /// All leases, sorted by task. A lease file that cannot be read is an error, so that
    /// nothing is deleted on a guess.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        let dir = self.leases_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io("read", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io("read", &dir, e))?;
            let task = entry.file_name().to_string_lossy().into_owned();
            if task.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let bytes = std::fs::read(&path).map_err(|e| ImageError::io("read", &path, e))?;
            let mut lease: Lease = parse_json(&bytes, &path.display().to_string())?;
            lease.task = task;
            out.push(lease);
        }
        out.sort_by(|a, b| a.task.cmp(&b.task));
        Ok(out)
    }
}

/// Task names become file names: letters, digits, `_`, `-`, `.`, not starting with `.`.
fn check_task(task: &str) -> Result<()> {
    let ok = !task.is_empty()
        && task.len() <= 255
        && !task.starts_with('.')
        && task
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::LeaseName(task.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names() {
        assert!(check_task("task-1.a_b").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b"] {
            assert!(check_task(bad).is_err(), "{bad:?}");
        }
    }
}
