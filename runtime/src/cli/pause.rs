use std::path::Path;

use crate::container::Container;
use crate::error::Result;

pub fn pause(root: &Path, id: &str) -> Result<i32> {
    Container::load(root, id)?.pause()?;
    Ok(0)
}

pub fn resume(root: &Path, id: &str) -> Result<i32> {
    Container::load(root, id)?.resume()?;
    Ok(0)
}
