//! The `berth` command line: global flags here, one file per command group that parses
//! its arguments and calls the library. Errors become one line on stderr and exit code 1.

mod image;
mod output;
mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Run ECS-style tasks on this host, without Docker"
)]
pub struct Cli {
    /// Where berth keeps its state: images, tasks, the database
    #[arg(
        long,
        global = true,
        env = "BERTH_STATE_DIR",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// How results are printed: tables for people, JSON for scripts
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull, import, list, remove and unpack images
    #[command(subcommand)]
    Image(image::ImageCommand),
}

/// What every command gets besides its own arguments.
pub struct Context {
    pub state_dir: PathBuf,
    pub output: OutputFormat,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let context = Context {
        state_dir: cli.state_dir,
        output: cli.output,
    };
    match cli.command {
        Command::Image(command) => image::run(&context, command),
    }
}
