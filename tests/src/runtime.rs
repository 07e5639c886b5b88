//! The runtime under test, driven through its runc-compatible CLI with a private `--root`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// What a finished command left: its exit code and its output as text.
#[derive(Debug)]
pub struct Output {
    /// The exit code, or 128 + N when the command itself died of signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn from_std(output: std::process::Output) -> Self {
        Output {
            code: exit_code(output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics, showing the output, unless the command exited 0.
    #[track_caller]
    pub fn ok(self, what: &str) -> Self {
        assert!(self.success(), "{what} failed: {self:#?}");
        self
    }

    /// Asserts berth's contract for refused input: a non-zero exit and a single-line error
    /// on stderr that names `subject` (the field, path, id or value at fault).
    #[track_caller]
    pub fn assert_error_naming(&self, subject: &str) {
        assert_ne!(
            self.code, 0,
            "expected a failure naming {subject:?}: {self:#?}"
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a single-line error on stderr, got {:?}",
            self.stderr
        );
        assert!(
            lines[0].contains(subject),
            "the error should name {subject:?}: {}",
            lines[0]
        );
    }
}

/// The shell's convention for an exit status: the code, or 128 + N for death by signal N.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => panic!("exit status {status:?} has neither a code nor a signal"),
    }
}

/// The runtime binary with a state root of its own; dropping it force-deletes every
/// container it was asked to make and removes the root.
#[derive(Debug)]
pub struct Runtime {
    bin: PathBuf,
    root: TempDir,
    /// Where created containers' stdout and stderr go, apart from the state root.
    io: TempDir,
    ids: Mutex<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-test-root-")
            .tempdir()
            .expect("create a state root for the runtime");
        let io = tempfile::Builder::new()
            .prefix("berth-test-io-")
            .tempdir()
            .expect("create a directory for containers' output");
        Runtime {
            bin: crate::runtime_bin(),
            root,
            io,
            ids: Mutex::new(Vec::new()),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` directory that holds this runtime's container state.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A fresh container id, remembered so that drop deletes the container.
    pub fn new_id(&self, label: &str) -> String {
        let id = crate::unique_name(label);
        self.track(&id);
        id
    }

    fn track(&self, id: &str) {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }

    /// `runtime --root ROOT ARGS...`, ready to run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.bin);
        command
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `runtime --root ROOT ARGS...` to completion and captures its output.
    pub fn cmd<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(args);
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        Output::from_std(output)
    }

    /// `run --bundle B ID`: the container's exit code and output.
    pub fn run(&self, id: &str, bundle: impl AsRef<Path>) -> Output {
        self.track(id);
        self.cmd([
            OsStr::new("run"),
            "--bundle".as_ref(),
            bundle.as_ref().as_os_str(),
            id.as_ref(),
        ])
    }

    /// `run --bundle B ID` in the background, its output piped.
    pub fn spawn_run(&self, id: &str, bundle: impl AsRef<Path>) -> Child {
        self.track(id);
        self.command([
            OsStr::new("run"),
            "--bundle".as_ref(),
            bundle.as_ref().as_os_str(),
            id.as_ref(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()))
    }

    /// `create --bundle B [EXTRA...] ID`.
    ///
    /// The container inherits the runtime's stdout and stderr, so both go to files
    /// ([`Runtime::stdout`], [`Runtime::stderr`]) rather than to pipes that would stay open
    /// as long as the container runs. The returned output holds what the files held when
    /// create returned: the runtime's own messages.
    pub fn create_with(&self, id: &str, bundle: impl AsRef<Path>, extra: &[&str]) -> Output {
        self.leaving_running("create", id, bundle.as_ref(), extra)
    }

    /// `run --detach --bundle B ID`, its output going to files as `create`'s does.
    pub fn run_detached(&self, id: &str, bundle: impl AsRef<Path>) -> Output {
        self.leaving_running("run", id, bundle.as_ref(), &["--detach"])
    }

    /// A command that returns while the container lives on: output to the id's files.
    fn leaving_running(&self, command: &str, id: &str, bundle: &Path, extra: &[&str]) -> Output {
        self.track(id);
        let stdout =
            File::create(self.stdout_path(id)).expect("create the container's stdout file");
        let stderr =
            File::create(self.stderr_path(id)).expect("create the container's stderr file");
        let status = self
            .command([OsStr::new(command), "--bundle".as_ref(), bundle.as_os_str()])
            .args(extra)
            .arg(id)
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        Output {
            code: exit_code(status),
            stdout: self.stdout(id),
            stderr: self.stderr(id),
        }
    }

    pub fn create(&self, id: &str, bundle: impl AsRef<Path>) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// `create` then `start`, panicking if either fails; returns the init's pid.
    #[track_caller]
    pub fn create_and_start(&self, id: &str, bundle: impl AsRef<Path>) -> i32 {
        self.create(id, bundle).ok(&format!("create {id}"));
        let pid = self.pid(id);
        self.start(id).ok(&format!("start {id}"));
        pid
    }

    fn stdout_path(&self, id: &str) -> PathBuf {
        self.io.path().join(format!("{id}.stdout"))
    }

    fn stderr_path(&self, id: &str) -> PathBuf {
        self.io.path().join(format!("{id}.stderr"))
    }

    /// What a created container (and its runtime) wrote to stdout so far.
    pub fn stdout(&self, id: &str) -> String {
        fs::read_to_string(self.stdout_path(id)).unwrap_or_default()
    }

    /// What a created container (and its runtime) wrote to stderr so far.
    pub fn stderr(&self, id: &str) -> String {
        fs::read_to_string(self.stderr_path(id)).unwrap_or_default()
    }

    pub fn start(&self, id: &str) -> Output {
        self.cmd(["start", id])
    }

    /// `state ID` parsed; panics if the runtime fails or prints something else than JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(["state", id]).ok(&format!("state {id}"));
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id}: not JSON ({e}): {}", out.stdout))
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        let state = self.state(id);
        state["status"]
            .as_str()
            .unwrap_or_else(|| panic!("state {id}: no status in {state}"))
            .to_string()
    }

    /// The `pid` field of `state ID`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let state = self.state(id);
        state["pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("state {id}: no pid in {state}"))
    }

    /// Polls `state ID` until its status is `status`, and returns that state. A container
    /// that does not exist yet (a `run` still starting) is waited for too.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        crate::wait_for(&format!("container {id} to be {status}"), timeout, || {
            let out = self.cmd(["state", id]);
            let state: Value = serde_json::from_str(&out.stdout).ok()?;
            (state["status"] == status).then_some(state)
        })
    }

    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.cmd(["kill", id, signal])
    }

    pub fn kill_all(&self, id: &str, signal: &str) -> Output {
        self.cmd(["kill", "--all", id, signal])
    }

    pub fn delete(&self, id: &str) -> Output {
        self.cmd(["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(["delete", "--force", id])
    }

    /// `exec ID ARGS...`: the exec'd process's exit code and output.
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        self.cmd(["exec", id].iter().chain(args))
    }

    /// `exec --process FILE ID`.
    pub fn exec_process(&self, id: &str, process_json: &Path) -> Output {
        self.cmd([
            OsStr::new("exec"),
            "--process".as_ref(),
            process_json.as_os_str(),
            id.as_ref(),
        ])
    }

    pub fn pause(&self, id: &str) -> Output {
        self.cmd(["pause", id])
    }

    pub fn resume(&self, id: &str) -> Output {
        self.cmd(["resume", id])
    }

    /// `list --format json` parsed into an array of states.
    #[track_caller]
    pub fn list_json(&self) -> Vec<Value> {
        let out = self
            .cmd(["list", "--format", "json"])
            .ok("list --format json");
        let list: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("list --format json: not JSON ({e}): {}", out.stdout));
        match list {
            Value::Array(states) => states,
            Value::Null => Vec::new(),
            other => panic!("list --format json: not an array: {other}"),
        }
    }

    /// `ps --format json ID`: the pids of the container's processes.
    #[track_caller]
    pub fn ps_pids(&self, id: &str) -> Vec<i32> {
        let out = self
            .cmd(["ps", "--format", "json", id])
            .ok(&format!("ps {id}"));
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ps --format json {id}: not a JSON list of pids ({e}): {}",
                out.stdout
            )
        })
    }

    /// Files and directories under the state root whose name mentions `id`.
    pub fn state_left_for(&self, id: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        find_named(self.root.path(), id, 4, &mut found);
        found
    }

    /// Asserts that neither the state root nor any cgroup hierarchy holds anything named
    /// after `id`: what a user checks after a failed create or a delete.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let state = self.state_left_for(id);
        assert!(
            state.is_empty(),
            "state of {id} left under --root: {state:?}"
        );
        let cgroups = crate::cgroup::dirs_named(id);
        assert!(
            cgroups.is_empty(),
            "cgroups of {id} left behind: {cgroups:?}"
        );
    }
}

/// Collects paths below `dir`, at most `depth` levels deep, whose file name contains `needle`.
pub(crate) fn find_named(dir: &Path, needle: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(needle) {
            found.push(path.clone());
        }
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if is_dir && depth > 1 {
            find_named(&path, needle, depth - 1, found);
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = std::mem::take(
            self.ids
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for id in ids {
            // Best effort: most ids are already deleted, and a panic here would hide the
            // test's own failure.
            let _ = self.cmd(["delete", "--force", id.as_str()]);
        }
    }
}
