//! exec: a new process in a running container, from a process JSON or a command line.

use std::path::PathBuf;

use oci_spec::runtime::{BoxBuilder, Process, User};

use super::state::write_volatile;
use super::{Container, Status};
use crate::error::{Error, Result};
use crate::process::exec::{ExecConfig, spawn_exec};
use crate::process::wait_exit_code;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A process JSON (runtime spec `process`); replaces everything below but the
    /// pid file, console socket, detach and preserved fds.
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// "UID[:GID]"
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    /// With `tty`: the terminal's size (rows, columns), set before the command starts.
    pub console_size: Option<(u16, u16)>,
    /// The AppArmor profile; None keeps the container's.
    pub apparmor: Option<String>,
}

impl Container {
    /// Runs the process; returns its exit status (128+N if killed by signal N), or 0 right
    /// after it started with `detach`.
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        let pid = self.spawn_exec(opts)?;
        if opts.detach {
            return Ok(0);
        }
        wait_exit_code(pid)
    }

    /// Starts the process and returns its host pid once it has exec'd, without waiting
    /// for it. The caller is made a child subreaper and must reap the process itself.
    /// The process leads a session of its own, so its pid also names its process group.
    pub fn spawn_exec(&self, opts: &ExecOptions) -> Result<i32> {
        self.require(&[Status::Created, Status::Running], "exec")?;
        let mut process = self.exec_process(opts)?;
        // As with runc, a process that names no profile runs under the container's.
        if process.apparmor_profile().is_none() {
            let profile = self
                .saved
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.apparmor_profile().clone());
            process.set_apparmor_profile(profile);
        }
        super::create::skip_unsupported_labels(&mut process);
        if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
            return Err(Error::Config(
                "process.terminal: true needs --console-socket".into(),
            ));
        }
        let seccomp = self
            .saved
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(crate::security::build_seccomp)
            .transpose()?;
        let console_socket = super::connect_console(opts.console_socket.as_deref())?;
        let cfg = ExecConfig {
            init_pid: self.saved.pid,
            process,
            cgroup: self.saved.cgroup.clone(),
            seccomp,
            console_socket,
            preserve_fds: opts.preserve_fds,
        };
        let pid = spawn_exec(&cfg)?;
        if let Some(f) = &opts.pid_file {
            write_volatile(f, pid.to_string().as_bytes())?;
        }
        Ok(pid)
    }

    fn exec_process(&self, opts: &ExecOptions) -> Result<Process> {
        if let Some(file) = &opts.process_file {
            let text = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
            let de = &mut serde_json::Deserializer::from_slice(&text);
            return serde_path_to_error::deserialize(de).map_err(|e| {
                Error::Config(format!("{}: {}: {}", file.display(), e.path(), e.inner()))
            });
        }
        if opts.args.is_empty() {
            return Err(Error::Config("exec: no command given".into()));
        }
        let mut p = self.saved.spec.process().clone().unwrap_or_default();
        p.set_args(Some(opts.args.clone()));
        p.set_terminal(Some(opts.tty));
        if let Some((rows, columns)) = opts.console_size.filter(|_| opts.tty) {
            let size = BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(columns))
                .build()
                .map_err(|e| Error::Config(format!("console size: {e}")))?;
            p.set_console_size(Some(size));
        }
        if let Some(cwd) = &opts.cwd {
            p.set_cwd(cwd.clone());
        }
        if let Some(profile) = &opts.apparmor {
            p.set_apparmor_profile(Some(profile.clone()));
        }
        if !opts.env.is_empty() {
            let mut env = p.env().clone().unwrap_or_default();
            for kv in &opts.env {
                let key = kv.split('=').next().unwrap_or_default();
                env.retain(|e| e.split('=').next() != Some(key));
                env.push(kv.clone());
            }
            p.set_env(Some(env));
        }
        if let Some(u) = &opts.user {
            let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
            let uid = uid
                .parse()
                .map_err(|_| Error::Config(format!("--user: {u:?} is not UID[:GID]")))?;
            let gid = gid
                .parse()
                .map_err(|_| Error::Config(format!("--user: {u:?} is not UID[:GID]")))?;
            let mut user = User::default();
            user.set_uid(uid);
            user.set_gid(gid);
            if !opts.additional_gids.is_empty() {
                user.set_additional_gids(Some(opts.additional_gids.clone()));
            }
            p.set_user(user);
        }
        Ok(p)
    }
}
