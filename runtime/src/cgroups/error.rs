use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a cgroup operation failed. Each message names the OCI field (or the operation when
/// no field applies), the file, and the kernel's answer.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },

    #[error("mountinfo line {line}: {reason}")]
    Mountinfo { line: usize, reason: String },

    #[error("no cgroup file system is mounted")]
    NotMounted,

    #[error("/proc/self/cgroup: no entry for the {hierarchy} hierarchy")]
    NoOwnCgroup { hierarchy: String },

    #[error("linux.cgroupsPath: {}: {reason}", path.display())]
    Path { path: PathBuf, reason: String },

    #[error("create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },

    /// `field` is the OCI field being applied, or the operation (freeze, kill) otherwise.
    #[error("{field}: write {value} to {}: {source}", path.display())]
    Write {
        field: String,
        value: String,
        path: PathBuf,
        source: io::Error,
    },

    #[error("{field}: the {controller} controller is not mounted")]
    NoController {
        field: String,
        controller: &'static str,
    },

    /// A value the kernel would reject, or a field this host or berth cannot apply.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },

    /// The kernel refused the eBPF program that enforces linux.resources.devices on v2;
    /// `detail` holds the verifier's log, when it gave one.
    #[error("linux.resources.devices: eBPF device filter of {}: {step}: {source}{detail}", path.display())]
    DeviceFilter {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
        detail: String,
    },

    #[error("add process {pid} to {}: {source}", path.display())]
    AddProcess {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    #[error("{what} {}: gave up after {} ms", path.display(), after.as_millis())]
    Timeout {
        what: &'static str,
        path: PathBuf,
        after: Duration,
    },

    #[error("send signal {signal} to process {pid}: {source}")]
    Signal {
        pid: i32,
        signal: i32,
        source: io::Error,
    },

    #[error("remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
}

impl CgroupError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
        CgroupError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
