//! `berth image`: works on the image store directly, under its locks, so it is safe beside
//! a running agent and beside other `berth image` commands.

use std::path::PathBuf;

use anyhow::Context as _;
use berth_runtime::image::{ImportOptions, Platform, PullOptions, Store};
use clap::Subcommand;
use serde::Serialize;

use super::output::{self, OutputFormat};
use super::{Context, progress};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry (`alpine`, `HOST:PORT/NAME:TAG`, `NAME@sha256:...`)
    Pull {
        reference: String,
        /// A registry (HOST:PORT) to reach over plain HTTP; loopback registries always are
        #[arg(
            long = "insecure-registry",
            value_name = "HOST:PORT",
            env = "BERTH_INSECURE_REGISTRIES",
            value_delimiter = ','
        )]
        insecure_registries: Vec<String>,
        /// The platform to pick from a multi-platform image, e.g. linux/arm64
        #[arg(long)]
        platform: Option<String>,
    },
    /// Import an OCI layout (PATH or PATH:REF), an OCI or Docker archive, or a rootfs tarball
    Import {
        source: String,
        /// Name the imported image NAME:TAG
        #[arg(long, value_name = "NAME:TAG")]
        tag: Option<String>,
        /// The platform to pick from a multi-platform layout
        #[arg(long)]
        platform: Option<String>,
    },
    /// List the stored images
    #[command(alias = "list")]
    Ls,
    /// Remove image names; an image's content goes once nothing uses it
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
        /// Remove the name even while a task uses the image (its content stays until the
        /// task is gone)
        #[arg(long, short)]
        force: bool,
    },
    /// Delete blobs and snapshots that no image and no task needs
    Prune,
    /// Write DIR/rootfs and DIR/config.json: a bundle that an OCI runtime can run
    Unpack { reference: String, dir: PathBuf },
}

pub fn run(context: &Context, command: ImageCommand) -> anyhow::Result<()> {
    let store = Store::open(&context.state_dir)?;
    match command {
        ImageCommand::Pull {
            reference,
            insecure_registries,
            platform,
        } => {
            let options = PullOptions {
                insecure_registries,
                platform: platform.as_deref().map(Platform::parse).transpose()?,
            };
            let progress = progress::for_stdout(context.output);
            let image = store.pull(&reference, &options, &*progress)?;
            drop(progress);
            #[derive(Serialize)]
            struct Pulled {
                names: Vec<String>,
                digest: String,
            }
            let pulled = Pulled {
                names: image.names.clone(),
                digest: image.digest.to_string(),
            };
            match context.output {
                OutputFormat::Json => output::json(&pulled),
                OutputFormat::Table => {
                    println!("pulled {} {}", image.names.join(" "), image.digest);
                    Ok(())
                }
            }
        }
        ImageCommand::Import {
            source,
            tag,
            platform,
        } => {
            let options = ImportOptions {
                tag,
                platform: platform.as_deref().map(Platform::parse).transpose()?,
            };
            let progress = progress::for_stdout(context.output);
            let imported = store.import(&source, &options, &*progress)?;
            drop(progress);
            match context.output {
                OutputFormat::Json => output::json(&imported),
                OutputFormat::Table => {
                    for image in &imported {
                        let names = if image.names.is_empty() {
                            "<none>".to_string()
                        } else {
                            image.names.join(" ")
                        };
                        println!("imported {names} {}", image.digest);
                    }
                    Ok(())
                }
            }
        }
        ImageCommand::Ls => {
            let images = store.list()?;
            match context.output {
                OutputFormat::Json => output::json(&images),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = images
                        .iter()
                        .map(|i| {
                            vec![
                                i.repository.clone(),
                                i.tag.clone(),
                                i.digest.short().to_string(),
                                output::size(i.size),
                                i.created.clone().unwrap_or_else(|| "-".to_string()),
                            ]
                        })
                        .collect();
                    output::table(&["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"], &rows)
                }
            }
        }
        ImageCommand::Rm { references, force } => {
            let mut removals = Vec::new();
            for reference in &references {
                let removal = store
                    .remove(reference, force)
                    .with_context(|| format!("rm {reference}"))?;
                if context.output == OutputFormat::Table {
                    for name in &removal.untagged {
                        println!("untagged {name}");
                    }
                    for digest in &removal.deleted {
                        println!("deleted {digest}");
                    }
                }
                removals.push(removal);
            }
            match context.output {
                OutputFormat::Json => output::json(&removals),
                OutputFormat::Table => Ok(()),
            }
        }
        ImageCommand::Prune => {
            let report = store.prune()?;
            match context.output {
                OutputFormat::Json => output::json(&report),
                OutputFormat::Table => {
                    println!(
                        "removed {} blobs and {} snapshots, freed {}",
                        report.blobs_removed,
                        report.snapshots_removed,
                        output::size(report.bytes_freed)
                    );
                    Ok(())
                }
            }
        }
        ImageCommand::Unpack { reference, dir } => {
            let image = store.resolve(&reference)?;
            store.unpack(&image, &dir)?;
            #[derive(Serialize)]
            struct Unpacked {
                bundle: PathBuf,
                digest: String,
            }
            match context.output {
                OutputFormat::Json => output::json(&Unpacked {
                    bundle: dir,
                    digest: image.digest.to_string(),
                }),
                OutputFormat::Table => {
                    println!("unpacked {} into {}", image.digest, dir.display());
                    Ok(())
                }
            }
        }
    }
}
