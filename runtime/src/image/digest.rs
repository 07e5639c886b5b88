//! Content digests (`sha256:<hex>`) and the chain IDs that name layer snapshots.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::error::{ImageError, Result};

const SHA256: &str = "sha256:";

/// A validated `sha256:` digest with 64 lower-case hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(value: &str) -> Result<Digest> {
        let bad = |reason: &str| ImageError::Digest {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let Some((algorithm, hex)) = value.split_once(':') else {
            return Err(bad("expected algorithm:hex"));
        };
        if algorithm != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64 {
            return Err(bad("a sha256 digest has 64 hex digits"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected lower-case hex digits"));
        }
        Ok(Digest(value.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    pub fn from_hasher(hasher: Sha256) -> Digest {
        let sum = hasher.finalize();
        let mut out = String::with_capacity(SHA256.len() + 64);
        out.push_str(SHA256);
        for byte in sum.iter() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        Digest(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits: the name of the blob or snapshot on disk.
    pub fn hex(&self) -> &str {
        &self.0[SHA256.len()..]
    }

    /// The first 12 hex digits, as `docker images` shows an ID.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// A digest from the 64 hex digits of a file name in the store.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        Digest::parse(&format!("{SHA256}{hex}")).ok()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Digest, D::Error> {
        let value = String::deserialize(deserializer)?;
        Digest::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns its digest and length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Chain IDs of a layer stack: the first is the first diff ID, each next one is the
/// digest of `"<previous chain ID> <diff ID>"`, so a chain ID names a layer together with
/// everything below it.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(Digest::of(b"").short(), "e3b0c44298fc");
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!(Digest::parse(EMPTY).is_ok());
        for bad in [
            "e3b0c44298fc",
            "sha512:e3b0",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../etc/passwd000000000000000000000000000000000000000",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let (digest, len) = Hashing::new(&b"hello"[..]).finish().unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert_eq!(len, 5);
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        // The first chain ID is the first diff ID; the next hashes "<parent> <diff>".
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = Digest::of(b"c");
        let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(chain[0], a);
        let ab = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(chain[1], ab);
        assert_eq!(chain[2], Digest::of(format!("{ab} {c}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn chain_id_matches_sha256sum() {
        // Computed independently: printf 'sha256:5f70... sha256:6dfc...' | sha256sum
        let diff_ids = [
            Digest::parse(
                "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
            )
            .unwrap(),
            Digest::parse(
                "sha256:6dfc9bd5b3a8d6fe1a3e8d5e6ab5e95ae6cfc8fd3d1bfe2a7ba6c66f4d36ff5b",
            )
            .unwrap(),
        ];
        assert_eq!(
            chain_ids(&diff_ids)[1].as_str(),
            "sha256:72d888a02e443d7bd46d025d7297217d887f70ee8d934fffda2a33b8ad9cceb3"
        );
    }
}
