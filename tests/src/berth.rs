//! The `berth` binary under test, with a state directory and a docker client config of
//! its own, so that no test sees another's images or the host's credentials.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use berth_runtime::image::Store;
use serde_json::Value;
use tempfile::TempDir;

use crate::runtime::Output;

pub struct Berth {
    state: TempDir,
    docker_config: TempDir,
}

impl Default for Berth {
    fn default() -> Self {
        Berth::new()
    }
}

impl Berth {
    pub fn new() -> Berth {
        Berth {
            state: tempfile::Builder::new()
                .prefix("berth-state-")
                .tempdir()
                .expect("create a state directory"),
            docker_config: tempfile::Builder::new()
                .prefix("berth-docker-config-")
                .tempdir()
                .expect("create a docker config directory"),
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The directory `DOCKER_CONFIG` points at for every command.
    pub fn docker_config_dir(&self) -> &Path {
        self.docker_config.path()
    }

    /// Stores credentials for `registry` as `docker login` would.
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({"auths": {registry: {"auth": auth}}});
        std::fs::write(
            self.docker_config_dir().join("config.json"),
            config.to_string(),
        )
        .expect("write config.json");
    }

    /// `berth --state-dir <own dir> ARGS...`, not yet run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(crate::berth_bin());
        command
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env_remove("BERTH_STATE_DIR")
            .env_remove("BERTH_INSECURE_REGISTRIES")
            .stdin(Stdio::null());
        command
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self.command(args).output().expect("run the berth binary");
        Output::from_std(output)
    }

    /// Starts `berth ARGS...` without waiting, its output captured.
    pub fn spawn<I, S>(&self, args: I) -> Child
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the berth binary")
    }

    /// `berth image ls --output json`.
    pub fn images(&self) -> Vec<Value> {
        let out = self.run(["image", "ls", "--output", "json"]).ok("image ls");
        match serde_json::from_str(&out.stdout) {
            Ok(Value::Array(images)) => images,
            other => panic!("image ls --output json printed {other:?}"),
        }
    }

    /// The store, opened through the library as the agent opens it.
    pub fn store(&self) -> Store {
        Store::open(self.state_dir()).expect("open the image store")
    }

    /// Names in `<state>/images/<dir>`, sorted.
    pub fn entries(&self, dir: &str) -> Vec<String> {
        let path: PathBuf = self.state_dir().join("images").join(dir);
        let mut names: Vec<String> = match std::fs::read_dir(&path) {
            Ok(entries) => entries
                .map(|e| {
                    e.expect("read a store directory")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }
}
