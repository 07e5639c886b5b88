//! Messages between the runtime and a container's init during create, one per packet on a
//! SOCK_SEQPACKET socket pair.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Runtime to init: id maps are written; `in_cgroup` when the clone put the init in its
    /// cgroup already or it only has to write `move_self`. Otherwise the runtime makes the
    /// cgroup or moves the init while it mounts (on v1 a move of another process may wait
    /// for an RCU grace period, which this overlaps) and says `InCgroup` when done.
    Go {
        in_cgroup: bool,
        /// v1 `tasks` files the init writes "0" to, moving itself into its cgroup: at
        /// once with `in_cgroup`, else after `InCgroup`.
        #[serde(default)]
        move_self: Vec<std::path::PathBuf>,
    },
    /// Runtime to init: the cgroup is made, and the init sits in it unless it has
    /// `move_self` files to write.
    InCgroup,
    /// Intermediate process to runtime: the pid of the real init, forked into a joined
    /// pid namespace.
    Pid(i32),
    /// Init to runtime: the mounts are done; run prestart and createRuntime hooks.
    HooksNeeded,
    /// Runtime to init: hooks ran; here is the state for createContainer hooks.
    HooksDone(String),
    /// Init to runtime: set up and waiting on the exec fifo (or for `Start`).
    Ready,
    /// Runtime to init, where it has no exec fifo (`run`): the state is saved, start the
    /// process.
    Start,
    /// Either side: a step failed.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new and owned here.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Msg) -> std::io::Result<()> {
        let buf = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        // SAFETY: `buf` is valid for its length and the fd is open.
        retry(|| unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        })?;
        Ok(())
    }

    /// The next message, or None when the other side closed (exited, or exec'd: the
    /// socket is close-on-exec).
    pub fn recv(&self) -> std::io::Result<Option<Msg>> {
        // The packet's length first (MSG_TRUNC reports all of it), so a message of any
        // size arrives whole: the state that createContainer hooks get carries the spec's
        // annotations, and a fixed buffer cut it short.
        // SAFETY: a zero-length receive writes nothing; the fd is open.
        let len = retry(|| unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        })?;
        if len == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is writable for its length and the fd is open.
        let n = retry(|| unsafe {
            libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
        })?;
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(std::io::Error::other)
    }
}

/// Repeats a send or receive that a signal interrupted; its length, or the error.
fn retry(mut call: impl FnMut() -> libc::ssize_t) -> std::io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_larger_than_any_fixed_buffer_arrives_whole() {
        let (a, b) = Channel::pair().unwrap();
        // The state JSON of createContainer hooks carries the spec's annotations.
        let state = "x".repeat(150 * 1024);
        a.send(&Msg::HooksDone(state.clone())).unwrap();
        a.send(&Msg::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::HooksDone(state)));
        assert_eq!(b.recv().unwrap(), Some(Msg::Ready));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
