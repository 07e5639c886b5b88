use std::path::Path;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::process::terminal::{ConsoleListener, proxy};
use crate::process::{forward_signals, wait_exit_code};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::CreateArgs,
    /// Return once the process started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (no delete)
    #[arg(long)]
    pub keep: bool,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let mut opts = args.create.options();
    // A terminal with nobody to hand it to: `run` holds the pty and relays it to stdio.
    let bundle_spec = crate::container::load_spec(&opts.bundle)?;
    let wants_tty = bundle_spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = if wants_tty && opts.console_socket.is_none() && !args.detach {
        std::fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        let path = root.join(format!(".{}.console", opts.id));
        let l =
            ConsoleListener::bind(&path).map_err(|e| Error::io("bind console socket", &path, e))?;
        opts.console_socket = Some(path);
        Some(l)
    } else {
        None
    };
    if !args.detach {
        // The init of a container that joins a pid or user namespace is forked by an
        // intermediate process that exits at once: as a subreaper, `run` becomes its
        // parent and can wait for it, as runc does.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // Nothing comes between create and start here: the init starts the process once the
    // state is saved, without the exec fifo's round trip. Hooks of the start stage keep
    // the fifo, which orders them (startContainer, then poststart).
    opts.start_now = !has_start_hooks(&bundle_spec);
    let c = Container::create_with_spec(root, &opts, bundle_spec)?;
    // Signals a terminal or a supervisor sends to `run` are meant for the container.
    forward_signals(
        c.saved.pid,
        &[
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ],
    );
    if !opts.start_now {
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(e);
        }
    }
    if args.detach {
        return Ok(0);
    }
    if let Some(l) = &console {
        match l.receive() {
            Ok(master) => {
                std::thread::spawn(move || proxy(master));
            }
            Err(e) => eprintln!("berth-runtime: warning: console: {e}"),
        }
    }
    crate::trace::step("started");
    let code = match wait_exit_code(c.saved.pid) {
        Ok(code) => code,
        Err(e) => {
            let _ = c.delete(true);
            return Err(e);
        }
    };
    crate::trace::step("process exited");
    if !args.keep {
        c.delete(true)?;
        crate::trace::step("deleted");
    }
    Ok(code)
}

/// Whether the spec has startContainer or poststart hooks.
fn has_start_hooks(spec: &oci_spec::runtime::Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        h.start_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.poststart().as_ref().is_some_and(|v| !v.is_empty())
    })
}
