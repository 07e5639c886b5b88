//! A container's stdout and stderr as Docker's json-file lines (`{"log":"...","stream":
//! "stdout","time":"..."}`), rotated by size: `NAME.log`, `NAME.log.1`, ... `.log.N-1`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// A line that has not ended yet, per stream (0 stdout, 1 stderr).
    partial: [Vec<u8>; 2],
}

impl LogFile {
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Appends what a stream produced; complete lines are written, a trailing partial
    /// line waits for the rest (or for `flush_partial` when the stream closes).
    pub fn write(&mut self, stream: usize, data: &[u8], now: &str) -> std::io::Result<()> {
        self.partial[stream].extend_from_slice(data);
        while let Some(pos) = self.partial[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=pos).collect();
            self.emit(stream, &line, now)?;
        }
        // A process that never ends its line still gets logged in bounded pieces.
        if self.partial[stream].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &line, now)?;
        }
        Ok(())
    }

    pub fn flush_partial(&mut self, stream: usize, now: &str) -> std::io::Result<()> {
        if !self.partial[stream].is_empty() {
            let line = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &line, now)?;
        }
        Ok(())
    }

    fn emit(&mut self, stream: usize, line: &[u8], now: &str) -> std::io::Result<()> {
        let text = format_line(stream, line, now);
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + text.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.max_files - 1).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

pub fn format_line(stream: usize, line: &[u8], now: &str) -> String {
    let entry = serde_json::json!({
        "log": String::from_utf8_lossy(line),
        "stream": if stream == 0 { "stdout" } else { "stderr" },
        "time": now,
    });
    format!("{entry}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partials_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = LogFile::open(&p, None, 1).unwrap();
        log.write(0, b"hello\nwor", "T").unwrap();
        log.write(0, b"ld\n", "T").unwrap();
        log.write(1, b"oops", "T").unwrap();
        log.flush_partial(1, "T").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["log"], "hello\n");
        assert_eq!(lines[1]["log"], "world\n");
        assert_eq!(lines[2]["stream"], "stderr");
        assert_eq!(lines[2]["log"], "oops");
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = LogFile::open(&p, Some(100), 3).unwrap();
        for i in 0..20 {
            log.write(0, format!("line {i}\n").as_bytes(), "2026-01-01T00:00:00Z")
                .unwrap();
        }
        assert!(p.exists());
        assert!(rotated(&p, 1).exists());
        assert!(rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
        let newest = std::fs::read_to_string(&p).unwrap();
        assert!(newest.contains("line 19"));
    }
}
