use std::path::Path;

use crate::container::{Container, parse_signal};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Name (TERM, SIGKILL) or number; TERM by default
    #[arg(default_value = "TERM")]
    pub signal: String,
    /// Signal every process in the container
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let signal = parse_signal(&args.signal)?;
    Container::load(root, &args.id)?.kill(signal, args.all)?;
    Ok(0)
}
