use std::path::Path;

use crate::container::Container;
use crate::error::Result;

pub fn run(root: &Path, id: &str) -> Result<i32> {
    Container::load(root, id)?.start()?;
    Ok(0)
}
