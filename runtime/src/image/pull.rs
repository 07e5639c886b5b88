//! `berth image pull`: an image from a registry, chosen for this platform, verified blob by
//! blob, unpacked once per layer, and named by the reference it was pulled as.

use std::io::Read;

use super::digest::Digest;
use super::error::Result;
use super::fetch::{Source, choose_manifest, fetch_image, transaction, verify};
use super::manifest::Descriptor;
use super::platform::Platform;
use super::progress::Progress;
use super::records::Image;
use super::reference::Reference;
use super::registry::Repository;
use super::store::Store;

#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Registries (`HOST:PORT` or `HOST`) that may be spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// The platform to choose from an index; the host's by default.
    pub platform: Option<Platform>,
}

impl Source for Repository {
    fn place(&self) -> String {
        "the registry".to_string()
    }

    fn open_blob(&self, blob: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.blob(&blob.digest)?))
    }
}

impl Store {
    /// Pulls `reference` (`alpine`, `127.0.0.1:5000/app:1`, `name@sha256:...`) and names
    /// the image by it.
    pub fn pull(
        &self,
        reference: &str,
        options: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<Image> {
        let reference = Reference::parse(reference)?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let repository = Repository::connect(&reference, &options.insecure_registries)?;
        transaction(self, |created| {
            let (bytes, content_type) = repository.manifest(&reference.manifest_object())?;
            let digest = match &reference.digest {
                Some(pinned) => {
                    verify(&bytes, pinned, None)?;
                    pinned.clone()
                }
                None => Digest::of(&bytes),
            };
            let top = Descriptor::new(
                content_type.as_deref().unwrap_or(""),
                digest,
                bytes.len() as u64,
            );
            let fetch = |d: &Descriptor| -> Result<Vec<u8>> {
                let (bytes, _) = repository.manifest(d.digest.as_str())?;
                verify(&bytes, &d.digest, Some(d.size))?;
                Ok(bytes)
            };
            let chosen = choose_manifest(
                top.clone(),
                bytes.clone(),
                content_type.as_deref(),
                &platform,
                &fetch,
            )?;
            fetch_image(self, &repository, &chosen, progress, created)?;
            if chosen.from_index.is_some() {
                // The index is kept so that the name it was pulled by stays meaningful.
                let (_, made) = self.put_bytes(&bytes, &top.media_type)?;
                if made {
                    super::fetch::lock(created).blobs.push(top.digest.clone());
                }
            }
            self.name_image(
                &chosen.descriptor,
                Some(&reference.to_string()),
                chosen.from_index.as_ref(),
            )?;
            self.load_image(&chosen.descriptor.digest)
        })
    }
}
