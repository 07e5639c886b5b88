//! A layer's decompressed stream, made on a thread of its own. Inflating is the largest
//! single cost of unpacking a layer; on its own thread it runs beside the parsing,
//! hashing and writing. It always fills large buffers (the tar reader asks for 512-byte
//! headers, and gzip decoders are much slower on small outputs), and the buffers are
//! passed back for reuse.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::Scope;

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks made ahead of the reader, at most.
const AHEAD: usize = 4;

enum Message {
    Chunk(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

/// The reading end: the stream the inflating thread makes, in order.
pub struct Inflated {
    chunks: Receiver<Message>,
    spare: Sender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    /// Set once the stream has ended or failed; reads go on reporting it.
    ended: Option<Result<(), (io::ErrorKind, String)>>,
}

/// Starts a thread in `scope` that reads `stream` to its end.
pub fn start<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    mut stream: Box<dyn Read + Send + 'env>,
) -> io::Result<Inflated> {
    let (send, chunks) = sync_channel(AHEAD);
    let (spare, spares) = channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name("layer-inflate".into())
        .spawn_scoped(scope, move || fill(&mut *stream, &send, &spares))?;
    Ok(Inflated {
        chunks,
        spare,
        current: Vec::new(),
        len: 0,
        pos: 0,
        ended: None,
    })
}

/// The thread: full chunks until the stream ends, or until the reader is gone.
fn fill(stream: &mut dyn Read, send: &SyncSender<Message>, spares: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = spares.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let mut len = 0;
        while len < CHUNK {
            match stream.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = send.send(Message::Failed(e));
                    return;
                }
            }
        }
        let end = len < CHUNK;
        if len > 0 && send.send(Message::Chunk(buf, len)).is_err() {
            return;
        }
        if end {
            let _ = send.send(Message::End);
            return;
        }
    }
}

impl Inflated {
    /// Moves on to the next chunk; false at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if let Some(ended) = &self.ended {
            return match ended {
                Ok(()) => Ok(false),
                Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            };
        }
        let message = self
            .chunks
            .recv()
            .unwrap_or_else(|_| Message::Failed(io::Error::other("the inflating thread stopped")));
        match message {
            Message::Chunk(buf, len) => {
                let used = std::mem::replace(&mut self.current, buf);
                if !used.is_empty() {
                    // The thread may be gone already; then the buffer is simply freed.
                    let _ = self.spare.send(used);
                }
                self.len = len;
                self.pos = 0;
                Ok(true)
            }
            Message::End => {
                self.ended = Some(Ok(()));
                Ok(false)
            }
            Message::Failed(e) => {
                self.ended = Some(Err((e.kind(), e.to_string())));
                Err(e)
            }
        }
    }
}

impl Read for Inflated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.len {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, then fails if told to.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                if self.fail_at_end {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"));
                }
                return Ok(0);
            }
            let n = buf.len().min(7).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn the_stream_arrives_whole_and_in_order() {
        // Several chunks, an exact multiple of a chunk, and nothing at all.
        for len in [3 * CHUNK + 12345, 2 * CHUNK, 0] {
            let data = data(len);
            let out = std::thread::scope(|scope| {
                let stream = Box::new(io::Cursor::new(data.clone()));
                let mut inflated = start(scope, stream).unwrap();
                let mut out = Vec::new();
                let mut small = [0u8; 512];
                // Small reads first, as the tar reader makes them, then the rest at once.
                for _ in 0..10 {
                    let n = inflated.read(&mut small).unwrap();
                    out.extend_from_slice(&small[..n]);
                }
                inflated.read_to_end(&mut out).unwrap();
                assert_eq!(inflated.read(&mut small).unwrap(), 0);
                out
            });
            assert_eq!(out.len(), data.len());
            assert!(out == data, "stream of {len} bytes changed on the way");
        }
    }

    #[test]
    fn short_reads_of_the_source_still_fill_chunks() {
        let data = data(CHUNK + 100);
        let out = std::thread::scope(|scope| {
            let stream = Box::new(Trickle {
                data: data.clone(),
                pos: 0,
                fail_at_end: false,
            });
            let mut inflated = start(scope, stream).unwrap();
            let mut out = Vec::new();
            inflated.read_to_end(&mut out).unwrap();
            // The first chunk came in full.
            assert_eq!(inflated.current.len(), CHUNK);
            out
        });
        assert!(out == data);
    }

    #[test]
    fn a_failure_is_reported_after_the_good_bytes_and_stays() {
        std::thread::scope(|scope| {
            let stream = Box::new(Trickle {
                data: data(100),
                pos: 0,
                fail_at_end: true,
            });
            let mut inflated = start(scope, stream).unwrap();
            let mut out = Vec::new();
            let error = inflated.read_to_end(&mut out).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(error.to_string().contains("corrupt"));
            // Later reads fail too: the stream never looks complete.
            let again = inflated.read(&mut [0u8; 16]).unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn a_reader_that_gives_up_stops_the_thread() {
        std::thread::scope(|scope| {
            let stream = Box::new(io::repeat(1));
            let mut inflated = start(scope, stream).unwrap();
            let mut buf = [0u8; 100];
            inflated.read_exact(&mut buf).unwrap();
            drop(inflated);
            // The scope ends only once the endless stream's thread has stopped.
        });
    }
}
