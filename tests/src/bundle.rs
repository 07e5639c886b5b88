//! OCI bundles: a copy of the busybox rootfs and a config.json written by `runc spec`,
//! edited as JSON the way a user edits it by hand.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tempfile::TempDir;

/// A bundle in a temporary directory, removed on drop. Every edit rewrites config.json.
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    config: Value,
}

impl Bundle {
    /// A bundle whose config.json is the reference runtime's `spec`, with the process made
    /// non-interactive (`terminal: false`, args `true`) so tests only set what they check.
    pub fn new(label: &str) -> Self {
        let mut bundle = Self::with_spec_from(label, &crate::reference_runtime_bin());
        bundle.terminal(false).args(&["true"]);
        bundle
    }

    /// A bundle whose config.json is written by `SPEC_BIN spec`, left as it wrote it.
    pub fn with_spec_from(label: &str, spec_bin: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-{label}-"))
            .tempdir()
            .expect("create a bundle directory");
        let rootfs = &crate::busybox().rootfs;
        let copy = Command::new("cp")
            .arg("-a")
            .arg(rootfs)
            .arg(dir.path().join("rootfs"))
            .output()
            .expect("spawn cp");
        assert!(
            copy.status.success(),
            "cp -a {}: {}",
            rootfs.display(),
            String::from_utf8_lossy(&copy.stderr)
        );

        let spec = Command::new(spec_bin)
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", spec_bin.display()));
        assert!(
            spec.status.success(),
            "{} spec failed: {}",
            spec_bin.display(),
            String::from_utf8_lossy(&spec.stderr)
        );
        let config_path = dir.path().join("config.json");
        let text = fs::read_to_string(&config_path)
            .unwrap_or_else(|e| panic!("{} spec wrote no config.json: {e}", spec_bin.display()));
        let config = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{} spec wrote invalid JSON ({e}): {text}",
                spec_bin.display()
            )
        });
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Changes config.json through `change` and writes it out.
    pub fn edit(&mut self, change: impl FnOnce(&mut Value)) -> &mut Self {
        change(&mut self.config);
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config.json");
        fs::write(self.config_path(), text).expect("write config.json");
        self
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.edit(|c| c["process"]["args"] = json!(args))
    }

    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.edit(|c| c["process"]["terminal"] = json!(on))
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.edit(|c| c["hostname"] = json!(name))
    }

    pub fn readonly_root(&mut self, on: bool) -> &mut Self {
        self.edit(|c| c["root"]["readonly"] = json!(on))
    }

    /// Appends a bind mount of host `source` at `destination`.
    pub fn bind_mount(&mut self, source: &Path, destination: &str) -> &mut Self {
        let mount = json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", "rw"],
        });
        self.edit(|c| push(&mut c["mounts"], mount))
    }

    /// Merges `resources` into `linux.resources`, e.g. `{"pids": {"limit": 20}}`.
    pub fn resources(&mut self, resources: Value) -> &mut Self {
        self.edit(|c| {
            let slot = &mut c["linux"]["resources"];
            if !slot.is_object() {
                *slot = json!({});
            }
            if let (Some(slot), Value::Object(new)) = (slot.as_object_mut(), resources) {
                slot.extend(new);
            }
        })
    }

    /// Adds a namespace of `kind`, or replaces the one there, joining `path` if given.
    pub fn namespace(&mut self, kind: &str, path: Option<&Path>) -> &mut Self {
        let mut namespace = json!({ "type": kind });
        if let Some(path) = path {
            namespace["path"] = json!(path);
        }
        self.edit(|c| {
            let namespaces = &mut c["linux"]["namespaces"];
            if let Some(list) = namespaces.as_array_mut() {
                list.retain(|ns| ns["type"] != kind);
            }
            push(namespaces, namespace);
        })
    }

    /// Adds `cap` to every capability set of the process.
    pub fn add_capability(&mut self, cap: &str) -> &mut Self {
        self.edit(|c| {
            if let Some(sets) = c["process"]["capabilities"].as_object_mut() {
                for set in sets.values_mut() {
                    if let Some(caps) = set.as_array_mut() {
                        if !caps.iter().any(|known| known == cap) {
                            caps.push(json!(cap));
                        }
                    }
                }
            }
        })
    }

    /// Removes `cap` from every capability set of the process.
    pub fn drop_capability(&mut self, cap: &str) -> &mut Self {
        self.edit(|c| {
            if let Some(sets) = c["process"]["capabilities"].as_object_mut() {
                for set in sets.values_mut() {
                    if let Some(caps) = set.as_array_mut() {
                        caps.retain(|known| known != cap);
                    }
                }
            }
        })
    }

    pub fn seccomp(&mut self, seccomp: Value) -> &mut Self {
        self.edit(|c| c["linux"]["seccomp"] = seccomp)
    }

    /// Appends a hook to `hooks.<kind>`, e.g. `createRuntime`.
    pub fn hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        self.edit(|c| push(&mut c["hooks"][kind], hook))
    }

    pub fn rlimits(&mut self, rlimits: Value) -> &mut Self {
        self.edit(|c| c["process"]["rlimits"] = rlimits)
    }

    /// Writes the config's `process` with `args` in place of its own to a file in the
    /// bundle, for `exec --process`.
    pub fn process_file(&self, args: &[&str]) -> PathBuf {
        let mut process = self.config["process"].clone();
        process["args"] = json!(args);
        process["terminal"] = json!(false);
        let path = self.dir.path().join("process.json");
        fs::write(&path, process.to_string()).expect("write process.json");
        path
    }
}

impl AsRef<Path> for Bundle {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// Appends to a JSON array, turning a missing value into one.
fn push(slot: &mut Value, item: Value) {
    if !slot.is_array() {
        *slot = json!([]);
    }
    if let Some(list) = slot.as_array_mut() {
        list.push(item);
    }
}
