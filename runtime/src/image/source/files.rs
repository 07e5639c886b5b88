//! The files of an import source, whether it is a directory or a tar archive: an
//! uncompressed archive is indexed once (names, offsets, sizes) and its members are read
//! in place with pread, never extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::image::error::{ImageError, Result};
use crate::image::unpack::entry_path;

pub(crate) trait Files: Sync {
    /// The source, for messages.
    fn describe(&self) -> String;
    /// Opens a member by its relative name (`blobs/sha256/...`, `manifest.json`).
    /// `Ok(None)` when there is no such member.
    fn open(&self, name: &str) -> Result<Option<Box<dyn Read + '_>>>;

    fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(reader) = self.open(name)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|error| ImageError::Read {
                what: format!("{} {name}", self.describe()),
                error,
            })?;
        Ok(Some(bytes))
    }
}

/// A member name from a document of the source, checked like a layer entry's: no
/// absolute names, no `..`.
fn member(source: &str, name: &str) -> Result<PathBuf> {
    entry_path(name.as_bytes()).map_err(|reason| ImageError::Source {
        path: PathBuf::from(source),
        reason: format!("{name}: {reason}"),
    })
}

/// A source that is a directory.
pub(crate) struct DirFiles {
    pub root: PathBuf,
}

impl Files for DirFiles {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn open(&self, name: &str) -> Result<Option<Box<dyn Read + '_>>> {
        let path = self.root.join(member(&self.describe(), name)?);
        match File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("open", &path, e)),
        }
    }
}

/// A source that is an uncompressed tar archive.
pub(crate) struct TarFiles {
    path: PathBuf,
    file: File,
    /// Member name -> (offset of its data, size), or a symlink's resolved target name.
    members: HashMap<PathBuf, Member>,
}

enum Member {
    Data { offset: u64, size: u64 },
    Link(PathBuf),
}

impl TarFiles {
    pub fn index(path: &Path) -> Result<TarFiles> {
        let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        let bad = |reason: String| ImageError::Source {
            path: path.to_path_buf(),
            reason,
        };
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive
            .entries_with_seek()
            .map_err(|e| bad(format!("read tar: {e}")))?
        {
            let entry = entry.map_err(|e| bad(format!("read tar: {e}")))?;
            let Ok(name) = entry_path(&entry.path_bytes()) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                members.insert(
                    name,
                    Member::Data {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else {
                    continue;
                };
                let target = if kind.is_symlink() {
                    // Relative to the link's directory, as docker save writes them.
                    let mut joined = name
                        .parent()
                        .unwrap_or(Path::new(""))
                        .as_os_str()
                        .as_bytes()
                        .to_vec();
                    joined.push(b'/');
                    joined.extend_from_slice(&target);
                    normalize(&joined)
                } else {
                    entry_path(&target).ok()
                };
                if let Some(target) = target {
                    members.insert(name, Member::Link(target));
                }
            }
        }
        Ok(TarFiles {
            path: path.to_path_buf(),
            file,
            members,
        })
    }

    /// Member names, for telling what kind of archive this is.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(Path::new(name))
    }
}

/// `a/b/../c` as `a/c`; `None` if it climbs out of the archive.
fn normalize(path: &[u8]) -> Option<PathBuf> {
    let mut out: Vec<&[u8]> = Vec::new();
    for component in path.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.iter().map(|c| std::ffi::OsStr::from_bytes(c)).collect())
}

impl Files for TarFiles {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self, name: &str) -> Result<Option<Box<dyn Read + '_>>> {
        let mut name = member(&self.describe(), name)?;
        for _ in 0..8 {
            match self.members.get(&name) {
                None => return Ok(None),
                Some(Member::Link(target)) => name = target.clone(),
                Some(Member::Data { offset, size }) => {
                    return Ok(Some(Box::new(Section {
                        file: &self.file,
                        offset: *offset,
                        left: *size,
                    })));
                }
            }
        }
        Err(ImageError::Source {
            path: self.path.clone(),
            reason: format!("{}: too many levels of links", name.display()),
        })
    }
}

/// A byte range of a file, read with pread so that several can be read at once.
struct Section<'a> {
    file: &'a File,
    offset: u64,
    left: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member",
            ));
        }
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_normalized_inside_the_archive() {
        assert_eq!(normalize(b"a/../b/c").unwrap(), PathBuf::from("b/c"));
        assert_eq!(
            normalize(b"abc/../def/layer.tar").unwrap(),
            PathBuf::from("def/layer.tar")
        );
        assert!(normalize(b"a/../../etc/passwd").is_none());
    }

    #[test]
    fn members_are_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "dir/file", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_cksum();
        builder
            .append_link(&mut link, "other/link", "../dir/file")
            .unwrap();
        builder.into_inner().unwrap();

        let files = TarFiles::index(&path).unwrap();
        assert!(files.has("dir/file"));
        assert_eq!(files.read("dir/file", 100).unwrap().unwrap(), b"hello");
        assert_eq!(files.read("./other/link", 100).unwrap().unwrap(), b"hello");
        assert!(files.read("missing", 100).unwrap().is_none());
        assert!(files.open("../x").is_err());
    }
}
