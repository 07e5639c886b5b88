//! Writer threads that create a layer's small files and symlinks while the reader goes
//! on inflating, hashing and parsing the stream. Creating inodes is most of an import's
//! time; each writer takes whole directories, so two writers rarely wait on one
//! directory's lock. What is handed over is bounded in bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{Scope, ScopedJoinHandle};

use super::tree::{Meta, Node, Tree};

/// Files larger than this are written by the reader, streaming.
pub const MAX_FILE: u64 = 4 << 20;
/// Bytes of file content handed over and not yet written, at most.
const MAX_BYTES: u64 = 32 << 20;
/// Entries handed over and not yet written, at most.
const MAX_JOBS: usize = 4096;

/// An entry for a writer, its content read from the layer.
pub struct Job {
    pub path: PathBuf,
    /// The name as the layer spells it, for errors.
    pub name: String,
    pub content: Content,
    pub meta: Meta,
    /// The reader's [`super::order::Order::epoch`] when it handed the job over.
    pub epoch: u64,
}

pub enum Content {
    File(Vec<u8>),
    Symlink(PathBuf),
}

impl Job {
    fn bytes(&self) -> u64 {
        match &self.content {
            Content::File(data) => data.len() as u64,
            Content::Symlink(_) => 0,
        }
    }
}

/// A writer's failure: the entry's name in the layer and the reason.
pub type Failure = (String, String);

/// What the reader and the writers share.
#[derive(Default)]
pub struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    bytes: u64,
    jobs: usize,
    per_writer: Vec<usize>,
    failed: Option<Failure>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer threads of one layer.
pub struct Writers<'scope> {
    shared: &'scope Shared,
    senders: Vec<mpsc::Sender<Job>>,
    handles: Vec<ScopedJoinHandle<'scope, ()>>,
    /// Which writer has a directory's entries.
    by_dir: HashMap<PathBuf, usize>,
}

impl<'scope> Writers<'scope> {
    /// Starts `count` writers into `tree` (each through its own descriptor of the root).
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        tree: &Tree,
        count: usize,
        shared: &'scope Shared,
    ) -> Result<Self, String> {
        shared.lock().per_writer = vec![0; count];
        let mut senders = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let mut tree = tree.writer().map_err(|e| format!("open the root: {e}"))?;
            let (sender, jobs) = mpsc::channel::<Job>();
            let handle = std::thread::Builder::new()
                .name("layer-writer".into())
                .spawn_scoped(scope, move || {
                    for job in jobs {
                        write(&mut tree, shared, index, job);
                    }
                })
                .map_err(|e| format!("start a writer thread: {e}"))?;
            senders.push(sender);
            handles.push(handle);
        }
        Ok(Writers {
            shared,
            senders,
            handles,
            by_dir: HashMap::new(),
        })
    }

    /// Hands `job` to the writer that has its directory (or the least busy one), once
    /// there is room for it.
    pub fn hand_off(&mut self, job: Job) -> Result<(), Failure> {
        let bytes = job.bytes();
        let mut state = self.shared.lock();
        while state.jobs > 0
            && state.failed.is_none()
            && (state.bytes + bytes > MAX_BYTES || state.jobs >= MAX_JOBS)
        {
            state = self.shared.wait(state);
        }
        if let Some(failed) = &state.failed {
            return Err(failed.clone());
        }
        let dir = job.path.parent().unwrap_or(Path::new(""));
        let writer = match self.by_dir.get(dir) {
            Some(&writer) => writer,
            None => {
                let writer = (0..state.per_writer.len())
                    .min_by_key(|&w| state.per_writer[w])
                    .unwrap_or(0);
                self.by_dir.insert(dir.to_path_buf(), writer);
                writer
            }
        };
        state.bytes += bytes;
        state.jobs += 1;
        state.per_writer[writer] += 1;
        drop(state);
        self.senders[writer]
            .send(job)
            .map_err(|_| (String::new(), "a writer thread ended".to_string()))
    }

    /// Waits until the writers have written everything handed to them.
    pub fn drain(&self) -> Result<(), Failure> {
        let mut state = self.shared.lock();
        while state.jobs > 0 && state.failed.is_none() {
            state = self.shared.wait(state);
        }
        match &state.failed {
            Some(failed) => Err(failed.clone()),
            None => Ok(()),
        }
    }

    /// Waits for everything handed over, then stops the writers.
    pub fn finish(mut self) -> Result<(), Failure> {
        let result = self.drain();
        self.senders.clear();
        for handle in self.handles.drain(..) {
            if handle.join().is_err() {
                return Err((String::new(), "a writer thread panicked".to_string()));
            }
        }
        result
    }
}

impl Drop for Writers<'_> {
    /// A reader that gives up (an error in the layer) stops the writers from writing
    /// what is still queued.
    fn drop(&mut self) {
        if !self.senders.is_empty() {
            self.shared
                .lock()
                .failed
                .get_or_insert_with(|| (String::new(), "abandoned".to_string()));
        }
    }
}

fn write(tree: &mut Tree, shared: &Shared, index: usize, job: Job) {
    let bytes = job.bytes();
    // After a failure the rest is only counted off: the layer is abandoned.
    let failed = shared.lock().failed.is_some();
    let outcome = if failed {
        Ok(())
    } else {
        tree.at_epoch(job.epoch);
        match &job.content {
            Content::File(data) => tree.put(&job.path, Node::File(&mut &data[..]), &job.meta),
            Content::Symlink(target) => tree.put(&job.path, Node::Symlink(target), &job.meta),
        }
    };
    let mut state = shared.lock();
    state.bytes -= bytes;
    state.jobs -= 1;
    state.per_writer[index] -= 1;
    if let Err(reason) = outcome {
        state.failed.get_or_insert((job.name, reason));
    }
    drop(state);
    shared.changed.notify_all();
}
