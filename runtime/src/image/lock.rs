//! flock(2) locks on files in the store: shared for work that adds content (pull, import,
//! mount), exclusive for work that deletes it (rm, prune), and one exclusive lock per blob
//! or snapshot so that two pulls fetch and unpack each one once.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::error::{ImageError, Result};

/// A held lock; dropping it unlocks.
pub struct Lock {
    _flock: Flock<File>,
}

pub fn shared(path: &Path) -> Result<Lock> {
    lock(path, FlockArg::LockShared)
}

pub fn exclusive(path: &Path) -> Result<Lock> {
    lock(path, FlockArg::LockExclusive)
}

fn lock(path: &Path, arg: FlockArg) -> Result<Lock> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ImageError::io("open lock", path, e))?;
    loop {
        match Flock::lock(file, arg) {
            Ok(flock) => return Ok(Lock { _flock: flock }),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(ImageError::io("lock", path, e.into())),
        }
    }
}
