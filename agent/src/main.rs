//! `berth`: parses the command line and hands it to the libraries.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("berth: {msg}");
            std::process::exit(1);
        }
    }
}
