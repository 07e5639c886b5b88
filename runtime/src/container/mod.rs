//! Container lifecycle as the OCI runtime spec defines it: create, start, state, kill,
//! delete, plus exec, pause, resume and update. Each operation lives in its own file.

mod create;
mod delete;
mod exec;
pub mod hooks;
mod kill;
mod pause;
mod start;
pub mod state;
mod update;

use std::path::{Path, PathBuf};

pub use create::{CreateOptions, load_spec};
pub use exec::ExecOptions;
pub use kill::parse_signal;
pub use state::{Saved, Status};

use crate::error::{Error, Result};

/// A container known to the runtime under `root`.
pub struct Container {
    pub root: PathBuf,
    pub saved: Saved,
}

impl Container {
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.saved.id)
    }

    pub fn load(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let saved = Saved::load(&root.join(id), id)?;
        Ok(Container {
            root: root.to_path_buf(),
            saved,
        })
    }

    /// Every container under `root`, sorted by id; half-created ones are skipped.
    pub fn list(root: &Path) -> Result<Vec<Container>> {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", root, e)),
        };
        let mut out: Vec<Container> = entries
            .flatten()
            .filter_map(|e| Container::load(root, &e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
        Ok(out)
    }

    pub fn status(&self) -> Status {
        let alive = state::proc_start_time(self.saved.pid)
            .is_some_and(|(start, zombie)| start == self.saved.pid_start && !zombie);
        if !alive {
            return Status::Stopped;
        }
        if self.dir().join("exec.fifo").exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.saved.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// The `state` document as JSON text.
    pub fn state_json(&self) -> String {
        serde_json::to_string_pretty(&self.saved.oci_state(self.status())).unwrap_or_default()
    }

    /// Processes in the container, by host pid.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.saved.cgroup {
            Some(cg) => Ok(cg.pids()?),
            None => Ok(vec![self.saved.pid]),
        }
    }

    fn cgroup_or_err(&self) -> Result<&crate::cgroups::Cgroup> {
        self.saved
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Init(format!("container {:?} has no cgroup", self.saved.id)))
    }

    fn require(&self, ok: &[Status], op: &'static str) -> Result<Status> {
        let status = self.status();
        if ok.contains(&status) {
            Ok(status)
        } else {
            Err(Error::WrongStatus {
                id: self.saved.id.clone(),
                status: status.to_string(),
                op,
            })
        }
    }
}

/// The caller's console socket (--console-socket), connected before the init leaves the
/// host's filesystem behind.
pub(crate) fn connect_console(path: Option<&Path>) -> Result<Option<std::os::fd::OwnedFd>> {
    path.map(|p| {
        std::os::unix::net::UnixStream::connect(p)
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| Error::io("connect to console socket", p, e))
    })
    .transpose()
}

/// Ids become directory names: nothing that could climb out of the root.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a-b_c.1+2", "0123"] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }
}
