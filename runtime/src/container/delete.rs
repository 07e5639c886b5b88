//! delete: the container's processes, cgroup and state go; poststop hooks run.

use std::time::{Duration, Instant};

use super::hooks::run_stage;
use super::{Container, Status};
use crate::error::{Error, Result};

impl Container {
    pub fn delete(&self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            // A created container never ran the user's process: runc deletes it as well.
            Status::Created | Status::Creating => self.kill_everything()?,
            Status::Running | Status::Paused if force => self.kill_everything()?,
            _ => {
                return Err(Error::WrongStatus {
                    id: self.saved.id.clone(),
                    status: status.to_string(),
                    op: "delete without --force",
                });
            }
        }
        if let Some(cg) = &self.saved.cgroup {
            cg.remove()?;
        }
        if let Some(h) = self
            .saved
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref())
        {
            let state =
                serde_json::to_string(&self.saved.oci_state(Status::Stopped)).unwrap_or_default();
            if let Err(e) = run_stage("poststop", h, &state) {
                eprintln!("berth-runtime: warning: {e}");
            }
        }
        let dir = self.dir();
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", dir, e))
    }

    /// SIGKILL to every process, thawing a frozen cgroup so the kill can land, then a wait
    /// until the cgroup is empty.
    fn kill_everything(&self) -> Result<()> {
        match &self.saved.cgroup {
            Some(cg) => {
                cg.kill_all(libc::SIGKILL)?;
                let _ = cg.thaw();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !cg.pids()?.is_empty() {
                    if Instant::now() > deadline {
                        return Err(Error::Init(format!(
                            "container {:?}: processes still alive 10s after SIGKILL",
                            self.saved.id
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            None => {
                // SAFETY: kill(2) on the init's pid, verified alive by status().
                unsafe { libc::kill(self.saved.pid, libc::SIGKILL) };
            }
        }
        Ok(())
    }
}
