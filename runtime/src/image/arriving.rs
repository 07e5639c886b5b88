//! A blob that is still being copied into the store, readable while it arrives: a layer's
//! unpack starts on the first bytes of a download or an import instead of after the
//! whole copy. The reader gets the end of the stream only once the copy has verified the
//! blob's size and digest and renamed it into place; if the copy fails, the reader fails
//! too, and nothing built from the bytes it read is kept.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Bytes in the file so far.
    written: u64,
    /// How the copy ended: `Err` holds the reason it failed.
    verdict: Option<Result<(), String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }
}

/// The copying side. Dropping it before [`Feed::done`] fails the reader.
pub struct Feed {
    shared: Arc<Shared>,
}

/// The reading side, through its own descriptor of the file being written.
pub struct Arriving {
    file: File,
    shared: Arc<Shared>,
    pos: u64,
}

/// Pairs a feed with a reader of `file`, a second descriptor of the file it writes.
pub fn pair(file: File) -> (Feed, Arriving) {
    let shared = Arc::new(Shared::default());
    (
        Feed {
            shared: Arc::clone(&shared),
        },
        Arriving {
            file,
            shared,
            pos: 0,
        },
    )
}

impl Feed {
    /// `n` more bytes are in the file.
    pub fn advance(&self, n: u64) {
        self.shared.update(|state| state.written += n);
    }

    /// The blob is verified and in place.
    pub fn done(self) {
        self.shared.update(|state| state.verdict = Some(Ok(())));
    }

    /// The copy failed for `reason`.
    pub fn fail(self, reason: String) {
        self.shared.update(|state| {
            state.verdict.get_or_insert(Err(reason));
        });
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shared.update(|state| {
            state
                .verdict
                .get_or_insert_with(|| Err("the copy stopped".to_string()));
        });
    }
}

impl Read for Arriving {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.shared.lock();
        let available = loop {
            match &state.verdict {
                Some(Err(reason)) => return Err(io::Error::other(reason.clone())),
                _ if state.written > self.pos => break state.written - self.pos,
                Some(Ok(())) => return Ok(0),
                None => {
                    state = self
                        .shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner())
                }
            }
        };
        drop(state);
        let len = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..len], self.pos)?;
        if n == 0 {
            return Err(io::Error::other("the blob being copied got shorter"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn setup() -> (tempfile::TempDir, File, Feed, Arriving) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let file = File::create(&path).unwrap();
        let (feed, arriving) = pair(File::open(&path).unwrap());
        (dir, file, feed, arriving)
    }

    #[test]
    fn the_reader_follows_the_copy_and_ends_on_success() {
        let (_dir, mut file, feed, mut arriving) = setup();
        let writer = std::thread::spawn(move || {
            for i in 0..50u8 {
                file.write_all(&[i; 1000]).unwrap();
                feed.advance(1000);
                if i % 10 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            feed.done();
        });
        let mut out = Vec::new();
        arriving.read_to_end(&mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(out.len(), 50_000);
        assert!(
            out.chunks(1000)
                .enumerate()
                .all(|(i, c)| c == [i as u8; 1000])
        );
    }

    #[test]
    fn the_end_waits_for_the_verdict() {
        let (_dir, mut file, feed, mut arriving) = setup();
        file.write_all(b"all of it").unwrap();
        feed.advance(9);
        let mut buf = [0u8; 64];
        assert_eq!(arriving.read(&mut buf).unwrap(), 9);
        // Every byte is read, but the copy has not been verified: the reader waits, and
        // then fails with the copy's reason.
        let reader = std::thread::spawn(move || arriving.read(&mut buf));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!reader.is_finished());
        feed.fail("blob sha256:ab has digest sha256:cd".to_string());
        let error = reader.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("has digest"), "{error}");
    }

    #[test]
    fn a_failure_stops_the_reader_before_the_unread_bytes() {
        let (_dir, mut file, feed, mut arriving) = setup();
        file.write_all(b"0123456789").unwrap();
        feed.advance(10);
        drop(feed);
        let error = arriving.read(&mut [0u8; 4]).unwrap_err();
        assert!(error.to_string().contains("the copy stopped"), "{error}");
    }
}
