//! AppArmor: the profile the process runs under (`process.apparmorProfile`), set just
//! before execve as runc sets it: the kernel moves the process into the profile when it
//! execs. On a host without AppArmor the field is skipped with a warning.

use std::io::Write;
use std::path::Path;

use super::SecurityError;

const FIELD: &str = "process.apparmorProfile";

/// Whether the kernel runs AppArmor: its module parameter says so, and securityfs (which
/// holds the loaded profiles) is how policy gets in.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim_start().starts_with('Y'))
}

/// When the profile takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// At the next execve (the process itself).
    OnExec,
    /// At once: the small init, which never execs, confined like the process it forks.
    Now,
}

/// What to write to the task's attribute file for `profile`.
pub fn apparmor_command(profile: &str, when: Transition) -> Result<String, SecurityError> {
    if profile.is_empty() || profile.contains(['\n', '\0']) {
        return Err(SecurityError::Config {
            field: FIELD.into(),
            reason: format!("{profile:?} is not a profile name"),
        });
    }
    Ok(match when {
        Transition::OnExec => format!("exec {profile}"),
        Transition::Now => format!("changeprofile {profile}"),
    })
}

/// Puts the calling thread under `profile`. The kernel refuses a profile it has not
/// loaded with ENOENT, which the error says in words.
pub fn apply_apparmor(profile: &str, when: Transition) -> Result<(), SecurityError> {
    let command = apparmor_command(profile, when)?;
    let file = match when {
        Transition::OnExec => "exec",
        Transition::Now => "current",
    };
    // The AppArmor-only interface (5.8 and later), then the shared one.
    let candidates = [
        format!("/proc/thread-self/attr/apparmor/{file}"),
        format!("/proc/thread-self/attr/{file}"),
    ];
    let path = candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| SecurityError::Config {
            field: FIELD.into(),
            reason: "/proc/thread-self/attr is missing: the container needs /proc mounted".into(),
        })?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(command.as_bytes()));
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(SecurityError::Config {
            field: FIELD.into(),
            reason: format!("{profile:?}: no such profile is loaded"),
        }),
        Err(e) => Err(SecurityError::Sys {
            field: FIELD.into(),
            op: format!("write {path}"),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_profile_and_the_transition() {
        assert_eq!(
            apparmor_command("docker-default", Transition::OnExec).unwrap(),
            "exec docker-default"
        );
        assert_eq!(
            apparmor_command("berth-test", Transition::Now).unwrap(),
            "changeprofile berth-test"
        );
        for bad in ["", "two\nlines", "nul\0"] {
            let err = apparmor_command(bad, Transition::OnExec).unwrap_err();
            assert!(
                err.to_string().starts_with("process.apparmorProfile: "),
                "{err}"
            );
        }
    }
}
