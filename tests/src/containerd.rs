//! A private containerd (Debian's), to drive the runtime as containerd's shim does: its
//! own socket, root and state directories and namespace, no CRI, stopped and removed on
//! drop.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::Output;

#[derive(Debug)]
pub struct Containerd {
    dir: TempDir,
    socket: PathBuf,
    /// The containerd namespace of the tests' images and containers; containerd also
    /// names the parent cgroup of its containers after it.
    namespace: String,
    daemon: Child,
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` reaches it.
    #[track_caller]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir_in("/tmp")
            .expect("create a directory for containerd");
        let path = dir.path();
        let socket = path.join("containerd.sock");
        let config = path.join("config.toml");
        fs::write(
            &config,
            format!(
                "version = 2\n\
                 root = \"{root}\"\n\
                 state = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{socket}\"\n\
                 [ttrpc]\n  address = \"{socket}.ttrpc\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
                root = path.join("root").display(),
                state = path.join("state").display(),
                socket = socket.display(),
                opt = path.join("opt").display(),
            ),
        )
        .expect("write containerd's config.toml");
        let log = fs::File::create(path.join("containerd.log")).expect("create containerd's log");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn containerd (install Debian's containerd): {e}"));
        let namespace = crate::unique_name("berth-test");
        let mut containerd = Containerd {
            dir,
            socket,
            namespace,
            daemon,
        };
        crate::wait_for(
            "containerd to answer on its socket",
            Duration::from_secs(30),
            || {
                if let Ok(Some(status)) = containerd.daemon.try_wait() {
                    panic!("containerd exited ({status}): {}", containerd.log());
                }
                containerd.ctr(["version"]).success().then_some(())
            },
        );
        containerd
    }

    /// A directory inside containerd's private tree, e.g. for `--runc-root`.
    pub fn private_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What containerd has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr --address SOCKET --namespace NAMESPACE ARGS...`.
    pub fn ctr<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("spawn ctr: {e}"));
        Output::from_std(output)
    }
}

impl Containerd {
    fn stop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.daemon.id()).unwrap_or(i32::MAX));
        let _ = kill(pid, Signal::SIGTERM);
        for _ in 0..100 {
            if matches!(self.daemon.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
        // The namespace's parent cgroups outlive their containers; removing them only
        // succeeds once they are empty, so a container left running keeps its cgroup.
        let mut cgroups = crate::cgroup::dirs_named(&self.namespace);
        cgroups.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        for dir in cgroups {
            let _ = fs::remove_dir(dir);
        }
    }
}
