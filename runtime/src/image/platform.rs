//! Platforms (`linux/amd64`, `linux/arm64/v8`) and the choice of one manifest from an
//! image index or a Docker manifest list.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{ImageError, Result};
use super::manifest::Descriptor;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, named as Go (and so every registry) names it.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
        }
    }

    /// `os/arch` or `os/arch/variant`, as `--platform` takes it.
    pub fn parse(value: &str) -> Result<Platform> {
        let parts: Vec<&str> = value.split('/').collect();
        let bad = || ImageError::Platform {
            value: value.to_string(),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad()),
        }
    }

    fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: normalize_arch(architecture).to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
        }
    }

    /// Whether an image built for `self` runs where `wanted` is asked for.
    fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os
            || normalize_arch(&self.architecture) != normalize_arch(&wanted.architecture)
        {
            return false;
        }
        match (&wanted.variant, &self.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images rarely say v8; it is the only variant there is.
            (Some(want), None) => wanted.architecture == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The manifest in an index that serves `wanted`: among the entries that satisfy it, one
/// whose variant matches exactly wins, else the first. Entries without a platform (such
/// as attestations) are never chosen.
pub fn select<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(wanted)))
        .collect();
    candidates
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == wanted.variant)
        })
        .or_else(|| candidates.first())
        .copied()
}

/// The platforms an index offers, for an error message.
pub fn available(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
        .collect();
    if names.is_empty() {
        "no platforms".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;

    fn entry(platform: &str, n: u8) -> Descriptor {
        let mut d = Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            Digest::of(&[n]),
            100,
        );
        d.platform = Some(Platform::parse(platform).unwrap());
        d
    }

    fn index() -> Vec<Descriptor> {
        let mut attestation = Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            Digest::of(b"att"),
            1,
        );
        attestation.platform = Some(Platform {
            architecture: "unknown".into(),
            os: "unknown".into(),
            variant: None,
            os_version: None,
        });
        vec![
            entry("linux/arm/v6", 1),
            entry("linux/arm/v7", 2),
            entry("linux/arm64/v8", 3),
            entry("linux/amd64", 4),
            entry("windows/amd64", 5),
            attestation,
        ]
    }

    #[test]
    fn picks_the_host_architecture() {
        let idx = index();
        let amd64 = select(&idx, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(amd64.digest, Digest::of(&[4]));
        let arm64 = select(&idx, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm64.digest, Digest::of(&[3]));
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        if host.architecture == "amd64" {
            assert_eq!(select(&idx, &host).unwrap().digest, Digest::of(&[4]));
        }
    }

    #[test]
    fn variants_choose_among_arm_builds() {
        let idx = index();
        let v7 = select(&idx, &Platform::parse("linux/arm/v7").unwrap()).unwrap();
        assert_eq!(v7.digest, Digest::of(&[2]));
        let v6 = select(&idx, &Platform::parse("linux/arm/v6").unwrap()).unwrap();
        assert_eq!(v6.digest, Digest::of(&[1]));
        assert!(select(&idx, &Platform::parse("linux/arm/v5").unwrap()).is_none());
    }

    #[test]
    fn arm64_v8_matches_an_entry_without_variant() {
        let idx = vec![entry("linux/arm64", 9)];
        let got = select(&idx, &Platform::parse("linux/arm64/v8").unwrap()).unwrap();
        assert_eq!(got.digest, Digest::of(&[9]));
    }

    #[test]
    fn no_match_lists_what_there_is() {
        let idx = index();
        assert!(select(&idx, &Platform::parse("linux/s390x").unwrap()).is_none());
        let listed = available(&idx);
        assert!(listed.contains("linux/arm/v7"), "{listed}");
        assert!(listed.contains("windows/amd64"), "{listed}");
    }

    #[test]
    fn parse_platforms() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
