//! start: open the exec fifo, which lets the waiting init exec the user's process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::hooks::run_stage;
use super::{Container, Status};
use crate::error::{Error, Result};

impl Container {
    pub fn start(&self) -> Result<()> {
        self.require(&[Status::Created], "start")?;
        let fifo = self.dir().join("exec.fifo");
        // Non-blocking, so a dead init cannot leave us waiting forever for a writer.
        let fd: OwnedFd = nix::fcntl::open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::io("open exec fifo", &fifo, e.into()))?;
        loop {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let n = match poll(&mut fds, PollTimeout::from(10u16)) {
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll exec fifo", e)),
            };
            if n > 0 {
                let mut b = [0u8; 1];
                // SAFETY: reading one byte into a one-byte buffer from an open fd.
                let r = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
                if r == 1 {
                    break;
                }
                if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                    continue;
                }
            }
            if self.status() == Status::Stopped {
                let _ = std::fs::remove_file(&fifo);
                return Err(Error::Init(format!(
                    "container {:?} exited before it could start",
                    self.saved.id
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        std::fs::remove_file(&fifo).map_err(|e| Error::io("remove", &fifo, e))?;
        if let Some(h) = self
            .saved
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
        {
            let state =
                serde_json::to_string(&self.saved.oci_state(Status::Running)).unwrap_or_default();
            // The process already runs: a failing poststart hook is reported, not fatal.
            if let Err(e) = run_stage("poststart", h, &state) {
                eprintln!("berth-runtime: warning: {e}");
            }
        }
        Ok(())
    }
}
