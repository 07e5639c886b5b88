//! kill: a signal to the init, or with `all` to every process in the container's cgroup.

use std::str::FromStr;

use nix::sys::signal::Signal;

use super::{Container, Status};
use crate::error::{Error, Result};

/// A signal by name (TERM, SIGTERM, sigkill) or number (9, or 34..=64 for real-time).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::UnknownSignal(s.to_string()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| Error::UnknownSignal(s.to_string()))
}

impl Container {
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped && !all {
            return Err(Error::WrongStatus {
                id: self.saved.id.clone(),
                status: status.to_string(),
                op: "kill",
            });
        }
        if all {
            if let Some(cg) = &self.saved.cgroup {
                return Ok(cg.kill_all(signal)?);
            }
        }
        // SAFETY: kill(2) with a pid checked against its start time just above.
        if unsafe { libc::kill(self.saved.pid, signal) } < 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io("signal init of", self.saved.id.clone(), e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("40").unwrap(), 40);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }
}
