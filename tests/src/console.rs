//! The receiving end of `--console-socket`: a unix socket on which the runtime sends the
//! master of the container's pseudoterminal, as containerd's shim receives it.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tempfile::TempDir;

/// A listening console socket in a private directory.
#[derive(Debug)]
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::bind()
    }
}

impl ConsoleSocket {
    pub fn bind() -> Self {
        // Socket paths are limited to 108 bytes, so keep the directory short.
        let dir = tempfile::Builder::new()
            .prefix("berth-console-")
            .tempdir_in("/tmp")
            .expect("create a directory for the console socket");
        let path = dir.path().join("sock");
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("make the console socket non-blocking");
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and returns the pseudoterminal master it sent.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> OwnedFd {
        assert!(
            wait_readable(self.listener.as_fd(), timeout),
            "no connection on console socket {} within {timeout:?}",
            self.path.display()
        );
        let (stream, _) = self
            .listener
            .accept()
            .expect("accept on the console socket");
        stream
            .set_nonblocking(false)
            .expect("make the console connection blocking");
        assert!(
            wait_readable(stream.as_fd(), timeout),
            "no message on the console socket within {timeout:?}"
        );

        // runc sends the terminal's name as the data and the fd as SCM_RIGHTS.
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on the console socket");
        let mut fds = Vec::new();
        for cmsg in message
            .cmsgs()
            .expect("read control messages of the console socket")
        {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                fds.extend(received);
            }
        }
        assert_eq!(
            fds.len(),
            1,
            "the console socket should carry exactly one fd, got {fds:?}"
        );
        // SAFETY: the kernel installed this descriptor in our table for this message alone;
        // nothing else refers to it, so it is ours to own and close.
        unsafe { OwnedFd::from_raw_fd(fds[0]) }
    }
}

/// Reads a pseudoterminal master until every slave is closed (EIO), e.g. until the
/// container exits, and returns what it read with `\r\n` turned into `\n`.
#[track_caller]
pub fn read_until_hangup(master: &OwnedFd, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut output = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            wait_readable(master.as_fd(), left),
            "terminal still open after {timeout:?}; read so far: {:?}",
            String::from_utf8_lossy(&output)
        );
        match nix::unistd::read(master, &mut buffer) {
            Ok(0) | Err(Errno::EIO) => break,
            Ok(n) => output.extend_from_slice(&buffer[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(e) => panic!("read the terminal: {e}"),
        }
    }
    String::from_utf8_lossy(&output).replace("\r\n", "\n")
}

/// Waits until `fd` is readable or hung up; false on timeout.
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// The window size of [`run_on_terminal`]'s terminal: (rows, columns).
pub const TERMINAL_SIZE: (u16, u16) = (37, 101);

/// Runs `command` with a new pseudoterminal (of [`TERMINAL_SIZE`]) as its stdin, stdout,
/// stderr and controlling terminal, as in an interactive shell: writes `input` to the terminal, reads what the
/// command prints until it exits, and returns its exit code and output (`\r\n` as `\n`).
#[track_caller]
pub fn run_on_terminal(
    mut command: std::process::Command,
    input: &[u8],
    timeout: Duration,
) -> (i32, String) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let size = nix::pty::Winsize {
        ws_row: TERMINAL_SIZE.0,
        ws_col: TERMINAL_SIZE.1,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("open a pseudoterminal");
    let stdio = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().expect("dup the pty"));
    command
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave));
    // SAFETY: setsid and ioctl are async-signal-safe; the child only makes it the session
    // leader of the terminal now on its stdin.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("spawn a command on a terminal");
    // Only the command may hold the terminal, so that it hangs up when the command exits.
    drop(command);
    drop(pty.slave);
    if !input.is_empty() {
        nix::unistd::write(&pty.master, input).expect("type on the terminal");
    }
    let output = read_until_hangup(&pty.master, timeout);
    let status = child.wait().expect("wait for the command on the terminal");
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    (code, output)
}
