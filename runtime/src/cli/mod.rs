//! The runc-compatible command line: argument definitions here, one file per command that
//! parses nothing further and calls the library.

mod create;
mod delete;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Result;

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"),
    about = "A small OCI container runtime with runc's command line"
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended)
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Also write errors and warnings to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; cgroups are managed directly, never through systemd
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container, leaving its process waiting for `start`
    Create(create::CreateArgs),
    /// Start the process of a created container
    Start(IdArg),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal to a container's init (or all its processes)
    Kill(kill::Args),
    /// Delete a container and everything it holds
    Delete(delete::Args),
    /// Create and start a container, wait for it, and delete it
    Run(run::Args),
    /// Run a new process in a running container
    Exec(exec::Args),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// List containers
    List(list::Args),
    /// List the processes of a container
    Ps(ps::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Change the resource limits of a container while it runs
    Update(update::Args),
    /// Print the runtime's features as JSON
    Features,
}

#[derive(Debug, clap::Args)]
pub struct IdArg {
    pub id: String,
}

/// Runs the command; the value is the process exit status.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let root = &cli.root;
    match &cli.command {
        Command::Create(a) => create::run(root, a),
        Command::Start(a) => start::run(root, &a.id),
        Command::State(a) => state::run(root, &a.id),
        Command::Kill(a) => kill::run(root, a),
        Command::Delete(a) => delete::run(root, a),
        Command::Run(a) => run::run(root, a),
        Command::Exec(a) => exec::run(root, a),
        Command::Pause(a) => pause::pause(root, &a.id),
        Command::Resume(a) => pause::resume(root, &a.id),
        Command::List(a) => list::run(root, a),
        Command::Ps(a) => ps::run(root, a),
        Command::Spec(a) => spec::run(a),
        Command::Update(a) => update::run(root, a),
        Command::Features => features::run(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
