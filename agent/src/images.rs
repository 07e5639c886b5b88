//! What the agent needs from an image store: an image resolved (pulled when needed) to its
//! layers on disk, its config and its users, plus leases that keep it from removal while
//! tasks use it.

use std::path::PathBuf;

use crate::plan::{ImageConfig, ImageUsers};

/// ECS_IMAGE_PULL_BEHAVIOR: when the agent pulls an image it has already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullBehavior {
    /// Pull when absent.
    #[default]
    Default,
    /// Pull at every task start.
    Always,
    /// Pull only the first time; later tasks use what is stored.
    Once,
}

impl std::str::FromStr for PullBehavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "default" => Ok(PullBehavior::Default),
            "always" => Ok(PullBehavior::Always),
            "once" | "prefer-cached" | "prefer_cached" => Ok(PullBehavior::Once),
            other => Err(format!(
                "image pull behavior {other:?}: use default, always or once"
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ResolvedImage {
    pub digest: String,
    /// Snapshot directories, top layer first, for an overlay rootfs.
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
    pub users: ImageUsers,
}

pub trait Images: Send + Sync {
    /// The image `reference` names, pulled first if `behavior` says so.
    fn resolve(&self, reference: &str, behavior: PullBehavior) -> Result<ResolvedImage, String>;
    /// Marks the images as used by `task` until `release`.
    fn lease(&self, task: &str, digests: &[String]) -> Result<(), String>;
    fn release(&self, task: &str);
}
