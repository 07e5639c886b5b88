//! `berth`: parses the command line and hands it to the libraries.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("berth: {msg}");
        std::process::exit(1);
    }
}
