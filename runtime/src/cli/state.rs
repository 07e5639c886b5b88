use std::path::Path;

use crate::container::Container;
use crate::error::Result;

pub fn run(root: &Path, id: &str) -> Result<i32> {
    println!("{}", Container::load(root, id)?.state_json());
    Ok(0)
}
