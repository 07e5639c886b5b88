//! pause and resume: the container's cgroup frozen and thawed.

use super::{Container, Status};
use crate::error::Result;

impl Container {
    pub fn pause(&self) -> Result<()> {
        self.require(&[Status::Running], "pause")?;
        self.cgroup_or_err()?.freeze()?;
        Ok(())
    }

    pub fn resume(&self) -> Result<()> {
        self.require(&[Status::Paused], "resume")?;
        self.cgroup_or_err()?.thaw()?;
        Ok(())
    }
}
