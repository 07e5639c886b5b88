use std::path::{Path, PathBuf};

use crate::container::{Container, ExecOptions};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process JSON (the runtime spec's `process`) instead of a command line
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pty (needs --console-socket)
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// The AppArmor profile to run the command under (default: the container's)
    #[arg(long)]
    pub apparmor: Option<String>,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let c = Container::load(root, &args.id)?;
    c.exec(&ExecOptions {
        process_file: args.process.clone(),
        args: args.command.clone(),
        tty: args.tty,
        cwd: args.cwd.clone(),
        env: args.env.clone(),
        user: args.user.clone(),
        additional_gids: args.additional_gids.clone(),
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        console_size: None,
        apparmor: args.apparmor.clone(),
    })
}
