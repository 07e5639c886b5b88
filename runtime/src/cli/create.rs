use std::path::{Path, PathBuf};

use crate::container::{Container, CreateOptions};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub id: String,
    /// Bundle directory (config.json and the rootfs)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid here
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass this many fds beyond stdio (3, 4, ...) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// chroot instead of pivot_root (for roots on a ramdisk)
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility
    #[arg(long)]
    pub no_new_keyring: bool,
}

impl CreateArgs {
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            start_now: false,
        }
    }
}

pub fn run(root: &Path, args: &CreateArgs) -> Result<i32> {
    Container::create(root, &args.options())?;
    Ok(0)
}
