//! A container's record on disk (`<root>/<id>/state.json`) and its status, derived from the
//! live process, the exec fifo and the freezer rather than stored.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::process::InitConfig;

pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers of a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// The init's start time in clock ticks since boot (/proc/PID/stat field 22): a pid
    /// reused by another process does not pass for the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    /// The cgroup as resolved at create, so later commands find it wherever they run.
    pub cgroup: Option<crate::cgroups::Cgroup>,
    pub spec: Spec,
}

/// The OCI state document as `state` prints it (runc's fields included).
#[derive(Debug, Clone, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: String,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a HashMap<String, String>>,
}

impl Saved {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status: status.to_string(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: self.spec.annotations().as_ref(),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_pending(dir)?;
        Saved::commit_pending(dir)
    }

    /// The first half of [`Saved::save`]: the state written beside state.json, not yet in
    /// its place. Creating a file costs a journal transaction where /run is no tmpfs;
    /// `create` pays it while the init sets up.
    pub fn save_pending(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec(self).map_err(|e| Error::Config(e.to_string()))?;
        let tmp = dir.join("state.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io("write", tmp, e))
    }

    /// The second half of [`Saved::save`]: the pending state replaces state.json.
    pub fn commit_pending(dir: &Path) -> Result<()> {
        let path = dir.join("state.json");
        std::fs::rename(dir.join("state.tmp"), &path).map_err(|e| Error::io("rename", path, e))
    }

    pub fn load(dir: &Path, id: &str) -> Result<Saved> {
        let path = dir.join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        serde_json::from_slice(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

/// The state handed to hooks that run inside the init (startContainer).
pub fn running_state_json(cfg: &InitConfig, pid: i32) -> String {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": cfg.id,
        "status": "running",
        "pid": pid,
        "bundle": cfg.rootfs.parent().unwrap_or(Path::new("/")),
        "annotations": cfg.spec.annotations(),
    })
    .to_string()
}

/// write-temp + fsync + rename: readers see the old file or the new one, never half, and
/// the new one survives a crash of the host.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, true)
}

/// write-temp + rename, without the fsync: for files that describe live processes (a
/// container's state, pid files, a running task's status), which a crash of the host ends
/// anyway. Readers still see the old file or the new one, never half; the fsync would
/// only cost a journal commit per write where /run is not a tmpfs.
pub fn write_volatile(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, false)
}

fn write_replacing(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
    if durable {
        f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
}

/// /proc/PID/stat: the start time (field 22) and whether the process is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z" || *state == "X"))
}

/// Now as RFC 3339 in UTC with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn own_process_is_alive_and_not_a_zombie() {
        let (start, zombie) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(!zombie);
    }
}
