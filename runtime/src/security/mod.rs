//! Process security settings the container init applies just before execve:
//! rlimits, user and groups, capabilities, no_new_privs, OOM score, the AppArmor profile
//! and seccomp.

mod apparmor;
mod capabilities;
mod rlimits;
mod seccomp;
mod sysctl;
mod user;

use std::fmt;

pub use apparmor::{Transition, apparmor_enabled, apply_apparmor};
pub use capabilities::{
    apply_capabilities, capability_from_name, capability_names, set_no_new_privileges,
};
pub use rlimits::{set_oom_score_adj, set_rlimits};
pub use seccomp::{
    SeccompFilter, build_seccomp, seccomp_actions, seccomp_archs, seccomp_flags, seccomp_operators,
};
pub use sysctl::{check_sysctls, sysctl_namespace};
pub use user::{set_umask, switch_user};

/// Why a security setting could not be applied. Every message starts with
/// the OCI field path it came from, so a user knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The config asks for something invalid or that berth does not support.
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },

    /// A system call failed while applying a field.
    #[error("{field}: {op}: {errno}")]
    Sys {
        field: String,
        op: String,
        errno: nix::errno::Errno,
    },

    /// Raising a hard rlimit needs CAP_SYS_RESOURCE, which the runtime lacks.
    #[error(
        "process.rlimits[{resource}]: cannot raise the hard limit from {current} to {asked} without CAP_SYS_RESOURCE"
    )]
    HardLimitRaise {
        resource: String,
        current: RlimitValue,
        asked: RlimitValue,
    },

    /// The capability library refused a change.
    #[error("{field}: {op}: {cause}")]
    Capabilities {
        field: String,
        op: String,
        cause: caps::errors::CapsError,
    },

    /// libseccomp refused to build or load the filter.
    #[error("{field}: {op}: {cause}")]
    Seccomp {
        field: String,
        op: String,
        cause: libseccomp::error::SeccompError,
    },
}

impl SecurityError {
    fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn sys(field: impl Into<String>, op: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Self::Sys {
            field: field.into(),
            op: op.into(),
            errno,
        }
    }
}

/// An rlimit value as a user reads it: a number, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimitValue(pub u64);

impl fmt::Display for RlimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == libc::RLIM_INFINITY {
            f.write_str("unlimited")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Helpers for the tests that change process state: they do it in a forked
/// child so the test process itself stays untouched.
#[cfg(test)]
pub(crate) mod test_support {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    /// Runs `check` in a forked child and returns its exit code. The child
    /// returns 0 for success or the code from [`fail`]; a panic in the child
    /// becomes exit code 101.
    pub(crate) fn in_child(check: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `check` and then `_exit`s; the test
        // harness may have other threads, so the closure must not rely on
        // locks those threads could hold (the checks here only make system
        // calls and small allocations).
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or(101);
                // SAFETY: leaving the child without running the parent's
                // atexit handlers or flushing its copied stdio buffers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child did not exit normally: {other:?}"),
            },
        }
    }

    /// Reports why a child check failed straight to fd 2 (the harness's
    /// output capture does not reach a forked child) and returns `code`.
    pub(crate) fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
        let line = format!("child check {code} failed: {msg}\n");
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
        code
    }
}
