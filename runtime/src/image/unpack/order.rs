//! Which entries of a layer may be written by a writer thread while the reader goes on,
//! and when the reader must first wait for the writers: the order of entries matters only
//! between entries whose paths overlap, and paths can be compared by name only where
//! every directory on the way was made by this layer (so none of them is a symlink).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// What the reader knows about the tree while writers run.
#[derive(Default)]
pub struct Order {
    /// Directories this layer made, each under another one (or the root): real
    /// directories, reached from the root without a symlink.
    made: BTreeSet<PathBuf>,
    /// Paths handed to writers since they were last drained.
    pending: BTreeSet<PathBuf>,
    /// Counts the times a directory this layer made was replaced, removed or put again: a
    /// writer's descriptor of a directory opened before may name one that is gone, or
    /// what it knew of its owner may be old.
    epoch: u64,
}

impl Order {
    fn made(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || self.made.contains(dir)
    }

    /// Whether a new file or symlink at `path` may be written by a writer thread: its
    /// directory was made by this layer, no writer has the same path, and no directory
    /// this layer made is in the way (replacing one removes what the writers put in it).
    pub fn may_hand_off(&self, path: &Path) -> bool {
        path.parent().is_some_and(|parent| self.made(parent))
            && !self.pending.contains(path)
            && !any_at_or_below(&self.made, path)
    }

    pub fn handed_off(&mut self, path: &Path) {
        self.pending.insert(path.to_path_buf());
    }

    /// Whether the reader must wait for the writers before it changes `path` itself:
    /// when a writer has that path or one below it, and when the path is not known to be
    /// free of symlinks (then it may lead anywhere in the tree).
    pub fn must_wait(&self, path: &Path) -> bool {
        match path.parent() {
            Some(parent) if self.made(parent) => any_at_or_below(&self.pending, path),
            _ => !self.pending.is_empty(),
        }
    }

    /// Changes whenever a directory writers may have opened is replaced, removed or put
    /// again.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The writers have finished everything handed to them.
    pub fn drained(&mut self) {
        self.pending.clear();
    }

    /// The reader made a directory at `path` (`dir`), or put something else there or
    /// removed it.
    pub fn applied(&mut self, path: &Path, dir: bool) {
        let parent_made = path.parent().is_some_and(|parent| self.made(parent));
        if dir {
            // A directory put again may have a new group or setgid bit, which new entries
            // in it take: writers must look at it again.
            let again = if parent_made {
                !self.made.insert(path.to_path_buf())
            } else {
                path.as_os_str().is_empty()
            };
            if again {
                self.epoch += 1;
            }
        } else if parent_made {
            let below: Vec<PathBuf> = at_or_below(&self.made, path).cloned().collect();
            if !below.is_empty() {
                self.epoch += 1;
            }
            for dir in below {
                self.made.remove(&dir);
            }
        } else {
            // Through a symlink, this may have replaced any directory.
            self.made.clear();
            self.epoch += 1;
        }
    }
}

/// The paths in `set` equal to `path` or inside it: paths order by component, so they
/// follow `path` as one run.
fn at_or_below<'a>(
    set: &'a BTreeSet<PathBuf>,
    path: &'a Path,
) -> impl Iterator<Item = &'a PathBuf> {
    set.range::<Path, _>((Bound::Included(path), Bound::Unbounded))
        .take_while(move |p| p.starts_with(path))
}

fn any_at_or_below(set: &BTreeSet<PathBuf>, path: &Path) -> bool {
    at_or_below(set, path).next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn files_in_directories_of_the_layer_go_to_writers() {
        let mut order = Order::default();
        assert!(order.may_hand_off(p("bin")));
        assert!(!order.may_hand_off(p("usr/bin/ls")));
        assert!(!order.must_wait(p("usr")));
        order.applied(p("usr"), true);
        order.applied(p("usr/bin"), true);
        assert!(order.may_hand_off(p("usr/bin/ls")));
        // A directory's second entry (new owner or mode) and the root's change the epoch;
        // a new directory does not.
        let epoch = order.epoch();
        order.applied(p("usr/lib"), true);
        assert_eq!(order.epoch(), epoch);
        order.applied(p("usr/bin"), true);
        assert_ne!(order.epoch(), epoch);
        let epoch = order.epoch();
        order.applied(p(""), true);
        assert_ne!(order.epoch(), epoch);
        order.handed_off(p("usr/bin/ls"));
        // The same path twice keeps its order.
        assert!(!order.may_hand_off(p("usr/bin/ls")));
        assert!(order.must_wait(p("usr/bin/ls")));
        // Other paths do not wait, siblings with a common prefix included.
        assert!(!order.must_wait(p("usr/bin/lsblk")));
        assert!(!order.must_wait(p("usr/bin-x")));
        // Replacing a directory with a writer's file in it waits.
        assert!(order.must_wait(p("usr/bin")));
        assert!(order.must_wait(p("usr")));
        order.drained();
        assert!(!order.must_wait(p("usr")));
    }

    #[test]
    fn a_directory_of_the_layer_is_never_replaced_by_a_writer() {
        let mut order = Order::default();
        order.applied(p("etc"), true);
        order.applied(p("etc/ssl"), true);
        assert!(!order.may_hand_off(p("etc")));
        assert!(!order.may_hand_off(p("etc/ssl")));
        // A symlink put there by the reader ends what was made below it, and writers
        // must open their directories again.
        let epoch = order.epoch();
        order.applied(p("etc/hosts"), false);
        assert_eq!(order.epoch(), epoch, "no directory was replaced");
        order.applied(p("etc"), false);
        assert_ne!(order.epoch(), epoch);
        assert!(!order.may_hand_off(p("etc/ssl/cert.pem")));
        assert!(!order.may_hand_off(p("etc/hosts")));
    }

    #[test]
    fn paths_through_unknown_directories_wait_for_everything() {
        let mut order = Order::default();
        order.applied(p("usr"), true);
        order.applied(p("usr/lib"), true);
        order.handed_off(p("usr/lib/libc.so"));
        // `lib` may be a symlink to usr/lib, from this layer or a lower one.
        assert!(order.must_wait(p("lib/libc.so")));
        assert!(order.must_wait(p("")));
        // A directory made through it is not known to be free of symlinks.
        order.drained();
        order.applied(p("lib/x"), true);
        assert!(!order.may_hand_off(p("lib/x/y")));
        // Anything else put through it may have replaced any directory.
        let epoch = order.epoch();
        order.applied(p("lib/libc.so"), false);
        assert_ne!(order.epoch(), epoch);
        assert!(!order.may_hand_off(p("usr/lib/libm.so")));
    }
}
