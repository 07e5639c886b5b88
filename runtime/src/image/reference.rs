//! Image references as docker and podman read them: `alpine` is
//! `docker.io/library/alpine:latest`, a first component with a `.` or a `:` (or
//! `localhost`) is a registry host, `:tag` and `@sha256:...` pick the image.

use std::fmt;

use super::digest::Digest;
use super::error::{ImageError, Result};

pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";

/// A fully qualified image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`, ...
    pub registry: String,
    /// `library/alpine`, `team/app`, ...
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference> {
        let bad = |reason: &str| ImageError::Reference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| bad(&e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(&bad)?;
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, path)
            }
            _ => (DOCKER_HUB, name),
        };
        validate_registry(registry).map_err(&bad)?;
        let registry = match registry {
            "index.docker.io" | DOCKER_HUB_ENDPOINT => DOCKER_HUB,
            other => other,
        };
        validate_path(path).map_err(&bad)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host (and port) that serves the registry API.
    pub fn endpoint(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_ENDPOINT
        } else {
            &self.registry
        }
    }

    /// What goes after `/manifests/` in the registry API: the digest when there is one.
    pub fn manifest_object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The reference with `digest` instead of any tag: where a pulled image can be found
    /// again exactly.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn validate_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok || tag.len() > 128 {
        return Err("a tag is 1 to 128 characters and starts with a letter, digit or '_'");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("a tag has only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_registry(host: &str) -> std::result::Result<(), &'static str> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, port)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => ("ipv6", port),
            _ => return Err("bad IPv6 registry address"),
        }
    } else {
        match host.find(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    if let Some(port) = port.strip_prefix(':') {
        if port.parse::<u16>().is_err() {
            return Err("the registry port is not a number from 0 to 65535");
        }
    } else if !port.is_empty() {
        return Err("bad registry address");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !name.split('.').all(label_ok) {
        return Err("bad registry host name");
    }
    Ok(())
}

/// Repository path components: lower-case letters and digits, joined by `.`, `_`, `__`
/// or runs of `-`.
fn validate_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.is_empty() {
        return Err("no repository name");
    }
    if path.len() > 255 {
        return Err("the repository name is longer than 255 characters");
    }
    for component in path.split('/') {
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err("repository names must be lower-case");
        }
        if !component_ok(component) {
            return Err(
                "a repository path component is lower-case letters and digits \
                 separated by '.', '_', '__' or '-'",
            );
        }
    }
    Ok(())
}

fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn short_names_are_docker_hub_library_images() {
        let r = parse("alpine");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.endpoint(), "registry-1.docker.io");
        assert_eq!(parse("alpine:3.20").tag.as_deref(), Some("3.20"));
        assert_eq!(parse("team/app").repository, "team/app");
        assert_eq!(
            parse("docker.io/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            parse("index.docker.io/library/alpine").registry,
            "docker.io"
        );
    }

    #[test]
    fn registry_hosts_with_ports() {
        let r = parse("127.0.0.1:5000/busybox:1.36");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "busybox");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(r.endpoint(), "127.0.0.1:5000");
        assert_eq!(parse("localhost/app").registry, "localhost");
        assert_eq!(parse("localhost:5000/a/b/c").repository, "a/b/c");
        assert_eq!(parse("quay.io/org/app").registry, "quay.io");
        assert_eq!(parse("[::1]:5000/app").registry, "[::1]:5000");
        // Without a slash, a colon starts the tag, not a port.
        let r = parse("busybox:5000");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.tag.as_deref(), Some("5000"));
    }

    #[test]
    fn digests_pin_the_image() {
        let r = parse(&format!("127.0.0.1:5000/busybox@{DIGEST}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().map(Digest::as_str), Some(DIGEST));
        assert_eq!(r.manifest_object(), DIGEST);
        let both = parse(&format!("busybox:1@{DIGEST}"));
        assert_eq!(both.tag.as_deref(), Some("1"));
        assert_eq!(both.manifest_object(), DIGEST);
        assert_eq!(
            both.to_string(),
            format!("docker.io/library/busybox:1@{DIGEST}")
        );
        assert_eq!(
            parse("busybox")
                .with_digest(&Digest::parse(DIGEST).unwrap())
                .to_string(),
            format!("docker.io/library/busybox@{DIGEST}")
        );
    }

    #[test]
    fn bad_references_say_why() {
        for (input, why) in [
            ("", "empty"),
            ("Busybox", "lower-case"),
            ("busybox@sha256:abc", "64 hex"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            ("host:99999/app", "port"),
            ("a//b", "component"),
            ("a/-b", "component"),
            ("host.example:5000/", "repository"),
            ("bad_host.example:5000/app", "host"),
        ] {
            let err = Reference::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn separators_inside_components() {
        assert!(component_ok("a.b"));
        assert!(component_ok("a__b"));
        assert!(component_ok("a---b"));
        assert!(!component_ok("a..b"));
        assert!(!component_ok("a___b"));
        assert!(!component_ok("a."));
    }
}
