//! The runtime's error type: each variant names the step that failed and what it was about.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.' and '+' only")]
    InvalidId(String),
    #[error("container {id:?} is {status}: cannot {op}")]
    WrongStatus {
        id: String,
        status: String,
        op: &'static str,
    },
    #[error("{0}")]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("{0}")]
    Security(#[from] crate::security::SecurityError),
    #[error("container init: {0}")]
    Init(String),
    /// A process joined to a running container (exec) failed before its command ran.
    #[error("exec: {0}")]
    Exec(String),
    #[error("hook {stage}[{index}] {path}: {msg}")]
    Hook {
        stage: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
}

impl Error {
    pub fn io(step: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            step,
            path: path.into(),
            source,
        }
    }

    pub fn sys(step: &'static str, source: nix::Error) -> Self {
        Error::Sys { step, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
