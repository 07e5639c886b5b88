//! Starting processes in a container: the init at create (cloned into new namespaces,
//! born in its cgroup) and processes joined to a running container by exec.

pub mod clone;
pub mod exec;
pub mod init;
pub mod namespaces;
pub mod reaper;
pub mod step;
pub mod sync;
pub mod terminal;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::Spec;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::security::SeccompFilter;
use clone::Forked;
use namespaces::Namespaces;
use sync::{Channel, Msg};

/// Everything the init needs, prepared by the runtime before the clone: the child works on
/// its own copy of this, so nothing is serialised.
pub struct InitConfig {
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub namespaces: Namespaces,
    pub cgroup: Option<Cgroup>,
    /// The fifo `start` opens; none where the runtime says `Start` on the socket itself
    /// (`run`, which creates and starts in one go).
    pub exec_fifo: Option<PathBuf>,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub seccomp: Option<SeccompFilter>,
}

/// Clones the container's init and walks it through setup. `make_cgroup`, when given,
/// makes the v1 cgroup directories and writes the limits once the init is cloned, while it
/// mounts; the init then moves itself in. `hooks` runs prestart and createRuntime hooks
/// between the mounts and pivot_root and returns the state JSON that createContainer hooks
/// get. `state` saves the container's state: first with [`Stage::Setup`] while the init
/// sets up (unless its pid will change), then with [`Stage::Ready`] once it is set up; an
/// init without an exec fifo is then told to start. Returns the init's pid; on failure the
/// init is gone.
pub fn spawn_init(
    cfg: &InitConfig,
    make_cgroup: Option<&dyn Fn() -> Result<()>>,
    hooks: &mut dyn FnMut(i32) -> Result<String>,
    state: &mut dyn FnMut(Stage, i32) -> Result<()>,
) -> Result<i32> {
    let (parent, child) = Channel::pair().map_err(|e| Error::io("create socket pair", "", e))?;
    let cgroup_dir = cfg
        .cgroup
        .as_ref()
        .and_then(|c| c.clone_into_path())
        .map(|p| std::fs::File::open(&p).map_err(|e| Error::io("open cgroup", p, e)))
        .transpose()?;
    let (forked, born_in_cgroup) = clone::clone(
        cfg.namespaces.clone_flags(),
        cgroup_dir.as_ref().map(|f| f.as_raw_fd()),
    )
    .map_err(|e| Error::io("clone container init", "", e))?;
    let pid = match forked {
        Forked::Child => {
            drop(parent);
            init::run(cfg, child)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    drop(cgroup_dir);
    let driven = drive_init(cfg, &parent, pid, born_in_cgroup, make_cgroup, hooks, state).and_then(
        |init_pid| {
            state(Stage::Ready, init_pid)?;
            if cfg.exec_fifo.is_none() {
                send(&parent, &Msg::Start)?;
            }
            Ok(init_pid)
        },
    );
    match driven {
        Ok(init_pid) => Ok(init_pid),
        Err(e) => {
            // SAFETY: plain syscalls on a pid this process created.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Err(e)
        }
    }
}

/// When [`spawn_init`] calls its `state` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The init is cloned, its pid final, and it is setting up.
    Setup,
    /// The init is set up and waits to start.
    Ready,
}

fn drive_init(
    cfg: &InitConfig,
    chan: &Channel,
    pid: i32,
    born_in_cgroup: bool,
    make_cgroup: Option<&dyn Fn() -> Result<()>>,
    hooks: &mut dyn FnMut(i32) -> Result<String>,
    state: &mut dyn FnMut(Stage, i32) -> Result<()>,
) -> Result<i32> {
    let io = |e| Error::io("talk to container init", "", e);
    cfg.namespaces.write_id_maps(pid, &cfg.spec)?;
    let cg = cfg.cgroup.as_ref();
    let v2_only = cg.is_some_and(|c| c.v1_self_move_files().is_empty());
    // Born in its cgroup (v2), or born in the cgroup2 twin and moving itself into the v1
    // hierarchies (hybrid, v1), at once or once `make_cgroup` made them; a process in a
    // new user namespace may not write the host's cgroup files, so the runtime moves that
    // one.
    let (in_cgroup, move_self) = match cg {
        None => (true, Vec::new()),
        Some(_) if born_in_cgroup && v2_only => (true, Vec::new()),
        Some(c)
            if !cfg.namespaces.writes_id_maps()
                && (born_in_cgroup || c.clone_into_path().is_none()) =>
        {
            (make_cgroup.is_none(), c.v1_self_move_files())
        }
        Some(_) => (false, Vec::new()),
    };
    let runtime_moves = move_self.is_empty();
    send(
        chan,
        &Msg::Go {
            in_cgroup,
            move_self,
        },
    )?;
    crate::trace::step("init cloned");
    if !in_cgroup {
        if let Some(make) = make_cgroup {
            make()?;
            crate::trace::step("cgroup created and limits applied");
        }
        if let (Some(cg), true) = (cg, runtime_moves) {
            cg.add_process(pid)?;
        }
        send(chan, &Msg::InCgroup)?;
        crate::trace::step("init told its cgroup is ready");
    }
    // While the init mounts. An init forked into a joined pid namespace has another pid.
    if !cfg.namespaces.needs_intermediate() {
        state(Stage::Setup, pid)?;
    }
    let mut init_pid = pid;
    loop {
        match chan.recv().map_err(io)? {
            Some(Msg::Pid(p)) => {
                init_pid = p;
                // The intermediate process exits once it has handed over the init.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            Some(Msg::HooksNeeded) => {
                let state = hooks(init_pid)?;
                send(chan, &Msg::HooksDone(state))?;
            }
            Some(Msg::Ready) => return Ok(init_pid),
            Some(Msg::Error(msg)) => {
                reap(pid);
                return Err(Error::Init(msg));
            }
            Some(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            None => {
                let status = reap(pid);
                return Err(Error::Init(format!("init exited during setup ({status})")));
            }
        }
    }
}

/// Sends `msg` to the init. An init that failed has closed its end: its own error, still
/// queued, says why, rather than the broken pipe.
fn send(chan: &Channel, msg: &Msg) -> Result<()> {
    let Err(e) = chan.send(msg) else {
        return Ok(());
    };
    while let Ok(Some(reply)) = chan.recv() {
        if let Msg::Error(why) = reply {
            return Err(Error::Init(why));
        }
    }
    Err(Error::io("talk to container init", "", e))
}

fn reap(pid: i32) -> String {
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => e.to_string(),
    }
}

/// The exit status a shell would report: the code, or 128+N when killed by signal N.
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// From now on, `signals` sent to this process (by a terminal or a supervisor) go to
/// `pid` instead: they are meant for the container's process this one waits for.
pub fn forward_signals(pid: i32, signals: &[libc::c_int]) {
    FORWARD_TO.store(pid, std::sync::atomic::Ordering::Relaxed);
    for sig in signals {
        // SAFETY: installing an async-signal-safe handler.
        unsafe { libc::signal(*sig, forward as *const () as libc::sighandler_t) };
    }
}

pub fn wait_exit_code(pid: i32) -> Result<i32> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for container process", e)),
        }
    }
}
