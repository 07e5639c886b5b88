use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::{Cgroup, CgroupError, keyed_value, read, write_field};

/// How long to wait for every task of a cgroup to stop or resume.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl Cgroup {
    /// Stops every process of the cgroup and waits until the kernel reports them stopped.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let result = self.set_frozen(true);
        if result.is_err() {
            // Do not leave a half-frozen container behind.
            let _ = self.set_frozen(false);
        }
        result
    }

    /// Resumes every process of the cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        if let Some(dir) = self.v2_dir() {
            let events = read(&dir.join("cgroup.events"))?;
            return Ok(keyed_value(&events, "frozen") == Some(1));
        }
        let dir = self.freezer_dir("is_frozen")?;
        Ok(read(&dir.join("freezer.state"))?.trim() == "FROZEN")
    }

    /// Sends `signal` to every process of the cgroup and of the cgroups below it. SIGKILL on
    /// a kernel with cgroup.kill is one write; otherwise the cgroup is frozen while its
    /// processes are listed and signalled, so none can fork a new one in between.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        if let Some(dir) = self.v2_dir() {
            let kill = dir.join("cgroup.kill");
            if signal == libc::SIGKILL && kill.exists() {
                return write_field("kill", &kill, "1");
            }
        }
        let can_freeze = self.v2_dir().is_some() || self.v1_dir("freezer").is_some();
        let frozen = if can_freeze { self.freeze() } else { Ok(()) };
        let signalled = self.pids().and_then(|pids| {
            pids.into_iter()
                .try_for_each(|pid| send_signal(pid, signal))
        });
        let thawed = if can_freeze { self.thaw() } else { Ok(()) };
        frozen.and(signalled).and(thawed)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let what = if frozen { "freeze" } else { "thaw" };
        if let Some(dir) = self.v2_dir() {
            write_field(
                what,
                &dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )?;
            let events = dir.join("cgroup.events");
            return wait_for(what, &events, || {
                Ok(keyed_value(&read(&events)?, "frozen") == Some(u64::from(frozen)))
            });
        }
        let state = self.freezer_dir(what)?.join("freezer.state");
        let wanted = if frozen { "FROZEN" } else { "THAWED" };
        // A task in uninterruptible sleep can stall freezing (FREEZING); writing the state
        // again makes the kernel try again.
        wait_for(what, &state, || {
            write_field(what, &state, wanted)?;
            Ok(read(&state)?.trim() == wanted)
        })
    }

    fn freezer_dir(&self, field: &str) -> Result<&Path, CgroupError> {
        self.v1_dir("freezer")
            .ok_or_else(|| CgroupError::NoController {
                field: field.to_string(),
                controller: "freezer",
            })
    }
}

/// Calls `done` until it says yes, backing off up to FREEZE_TIMEOUT.
fn wait_for(
    what: &'static str,
    path: &Path,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    while !done()? {
        if started.elapsed() > FREEZE_TIMEOUT {
            return Err(CgroupError::Timeout {
                what,
                path: path.to_path_buf(),
                after: FREEZE_TIMEOUT,
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

fn send_signal(pid: i32, signal: i32) -> Result<(), CgroupError> {
    // kill(2) with pid 0 or -1 would reach our own process group or every process.
    if pid <= 0 {
        return Ok(());
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let source = std::io::Error::last_os_error();
    if source.raw_os_error() == Some(libc::ESRCH) {
        return Ok(()); // exited since it was listed
    }
    Err(CgroupError::Signal {
        pid,
        signal,
        source,
    })
}
