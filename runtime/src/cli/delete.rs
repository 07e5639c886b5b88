use std::path::Path;

use crate::container::Container;
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    match Container::load(root, &args.id) {
        Ok(c) => c.delete(args.force)?,
        // As with runc, --force on a container that is already gone is not an error.
        Err(Error::NotFound(_)) if args.force => {}
        Err(e) => return Err(e),
    }
    Ok(0)
}
