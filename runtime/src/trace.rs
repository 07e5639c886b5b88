//! `--debug`: one stderr line per step of create, start and delete, with the time since
//! the command began, so a slow start can be pinned to its step.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Turns the step lines on for this process (and the container init it clones).
pub fn enable() {
    let _ = START.set(Instant::now());
}

pub fn step(what: &str) {
    if let Some(start) = START.get() {
        eprintln!(
            "berth-runtime: debug: {:>8.3} ms pid {} {what}",
            start.elapsed().as_secs_f64() * 1000.0,
            std::process::id()
        );
    }
}
