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

/// The agent's images: berth's own image store under the state directory.
pub struct StoreImages {
    store: berth_runtime::image::Store,
    pull: berth_runtime::image::PullOptions,
}

impl StoreImages {
    pub fn open(
        state_dir: &std::path::Path,
        insecure_registries: Vec<String>,
    ) -> Result<StoreImages, String> {
        let store = berth_runtime::image::Store::open(state_dir).map_err(|e| e.to_string())?;
        Ok(StoreImages {
            store,
            pull: berth_runtime::image::PullOptions {
                insecure_registries,
                platform: None,
            },
        })
    }

    fn pull(&self, reference: &str) -> Result<berth_runtime::image::Image, String> {
        self.store
            .pull(reference, &self.pull, &berth_runtime::image::Quiet)
            .map_err(|e| e.to_string())
    }
}

impl Images for StoreImages {
    fn resolve(&self, reference: &str, behavior: PullBehavior) -> Result<ResolvedImage, String> {
        let image = match behavior {
            PullBehavior::Always => self.pull(reference)?,
            PullBehavior::Default | PullBehavior::Once => match self.store.resolve(reference) {
                Ok(image) => image,
                Err(_) => self.pull(reference)?,
            },
        };
        let layers: Vec<PathBuf> = image
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.store.snapshot_path(c))
            .collect();
        let users = crate::plan::ImageUsers {
            passwd: read_top_down(&layers, "etc/passwd"),
            group: read_top_down(&layers, "etc/group"),
        };
        let cfg = image.config.config().clone().unwrap_or_default();
        let config = ImageConfig {
            entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
            cmd: cfg.cmd().clone().unwrap_or_default(),
            env: cfg.env().clone().unwrap_or_default(),
            working_dir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
            user: cfg.user().clone().filter(|u| !u.is_empty()),
            labels: cfg
                .labels()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        Ok(ResolvedImage {
            digest: image.digest.as_str().to_string(),
            layers,
            config,
            users,
        })
    }

    fn lease(&self, task: &str, digests: &[String]) -> Result<(), String> {
        let digests = digests
            .iter()
            .map(|d| berth_runtime::image::Digest::parse(d).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.lease(task, &digests).map_err(|e| e.to_string())
    }

    fn release(&self, task: &str) {
        let _ = self.store.release(task);
    }
}

/// A file of the merged image: the topmost layer that has it. (A whiteout of it in a
/// higher layer is not looked for: passwd and group are replaced, not deleted.)
fn read_top_down(layers: &[PathBuf], rel: &str) -> String {
    layers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join(rel)).ok())
        .unwrap_or_default()
}
