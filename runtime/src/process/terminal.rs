//! process.terminal: a pty from the container's devpts, its master sent to the caller's
//! console socket (SCM_RIGHTS), its slave the process's stdio and controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use oci_spec::runtime::Process;

use super::step::{Step, StepResult};

pub fn setup(console_socket: &OwnedFd, process: &Process) -> StepResult<()> {
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).step("open /dev/ptmx")?;
    grantpt(&master).step("grantpt")?;
    unlockpt(&master).step("unlockpt")?;
    let name = ptsname_r(&master).step("ptsname")?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .step("open pty slave")?;
    let user = process.user();
    let _ = nix::unistd::fchown(&slave, Some(user.uid().into()), None);
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        console_socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .step("send the pty master to the console socket")?;
    drop(master);
    // SAFETY: TIOCSCTTY on an open terminal fd, after setsid made this a session leader.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!(
            "set controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the stdio descriptors of this process.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(format!(
                "dup pty to fd {target}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The receiving end of a console socket: what `run` uses when the process wants a
/// terminal and the caller gave no --console-socket (so `spec` + `run` is interactive).
pub struct ConsoleListener {
    listener: std::os::unix::net::UnixListener,
    path: std::path::PathBuf,
}

impl ConsoleListener {
    pub fn bind(path: &std::path::Path) -> std::io::Result<ConsoleListener> {
        let _ = std::fs::remove_file(path);
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        Ok(ConsoleListener {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The pty master the init sent.
    pub fn receive(&self) -> std::io::Result<OwnedFd> {
        use nix::sys::socket::{ControlMessageOwned, recvmsg};
        use std::os::fd::FromRawFd;
        let (stream, _) = self.listener.accept()?;
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .map_err(std::io::Error::from)?;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: the descriptor just arrived over SCM_RIGHTS and is ours.
                    return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                }
            }
        }
        Err(std::io::Error::other(
            "no pty master received on the console socket",
        ))
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies stdin to the pty and the pty to stdout until the pty closes; stdin is put in
/// raw mode (and restored on return) when it is a terminal.
pub fn proxy(master: OwnedFd) {
    let _raw = RawTerminal::attach(&master);
    relay(master, true);
}

/// The caller's terminal in raw mode while it is attached to a container's pty, so that
/// keys (Ctrl-C included) reach the container; the old mode comes back on drop.
pub struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    /// Puts stdin in raw mode when it is a terminal, and gives `pty` its window size.
    pub fn attach(pty: &OwnedFd) -> RawTerminal {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        // SAFETY: fd 0 stays open for the life of the process.
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let saved = tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin, SetArg::TCSANOW, &raw);
            copy_window_size(pty.as_raw_fd());
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        if let Some(t) = &self.saved {
            // SAFETY: fd 0 stays open for the life of the process.
            let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
            let _ = tcsetattr(stdin, SetArg::TCSANOW, t);
        }
    }
}

/// Gives the pty the window size of the caller's terminal (stdin), if it has one. Only
/// ioctls: safe in a signal handler.
/// The size (rows, columns) of the terminal on stdin, if it is one and has a size.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer.
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

pub fn copy_window_size(pty: std::os::fd::RawFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize through valid pointers.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(pty, libc::TIOCSWINSZ, &ws);
        }
    }
}

static RESIZED_PTY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_window_change(_: libc::c_int) {
    let fd = RESIZED_PTY.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        copy_window_size(fd);
    }
}

/// Passes every later change of the caller's window size (SIGWINCH) on to `pty`, which
/// must stay open for the rest of the process.
pub fn follow_window_size(pty: &OwnedFd) {
    RESIZED_PTY.store(pty.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
    // SAFETY: installing a handler that only loads an atomic and makes ioctls.
    unsafe {
        libc::signal(
            libc::SIGWINCH,
            on_window_change as *const () as libc::sighandler_t,
        )
    };
}

/// Copies the pty to stdout until the pty closes (EIO once the last process holding its
/// slave exits) and, with `forward_stdin`, stdin to the pty on a thread of its own.
pub fn relay(master: OwnedFd, forward_stdin: bool) {
    use std::io::{Read, Write};

    if forward_stdin {
        match master.try_clone() {
            Ok(fd) => {
                let mut to_pty = std::fs::File::from(fd);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut input = std::io::stdin();
                    while let Ok(n) = input.read(&mut buf) {
                        if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => eprintln!("berth-runtime: warning: stdin not forwarded to the pty: {e}"),
        }
    }
    let mut from_pty = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from_pty.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}
