//! `--debug`: one stderr line per step of create, start and delete, with the time since
//! the command began, so a slow start can be pinned to its step.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Turns the step lines on for this process (and the container init it clones).
pub fn enable() {
    let _ = START.set(Instant::now());
}

/// One line: the time since the command began, the pid, the page faults this process
/// took so far (a cloned init starts with its parent's count), and `what`.
pub fn step(what: &str) {
    if let Some(start) = START.get() {
        // SAFETY: getrusage fills the struct it is given.
        let faults = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage.ru_minflt + usage.ru_majflt
        };
        eprintln!(
            "berth-runtime: debug: {:>8.3} ms pid {} faults {faults:>4} {what}",
            start.elapsed().as_secs_f64() * 1000.0,
            std::process::id()
        );
    }
}
