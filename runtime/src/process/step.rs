//! Errors inside a container's init are reported to the runtime as one line of text that
//! names the step; this trait builds that line at each call site.

use std::fmt::Display;
use std::path::Path;

pub type StepResult<T> = Result<T, String>;

pub trait Step<T> {
    fn step(self, what: &str) -> StepResult<T>;
    fn step_path(self, what: &str, path: &Path) -> StepResult<T>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> StepResult<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }

    fn step_path(self, what: &str, path: &Path) -> StepResult<T> {
        self.map_err(|e| format!("{what} {}: {e}", path.display()))
    }
}
