//! berth-runtime: parses the command line and hands it to the library.

use std::io::Write;

use berth_runtime::cli::{Cli, LogFormat, dispatch};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    if cli.debug {
        berth_runtime::trace::enable();
    }
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            eprintln!("berth-runtime: {msg}");
            log_error(&cli, &msg);
            1
        }
    };
    std::process::exit(code);
}

/// With --log, errors also go to that file, as JSON lines when --log-format json (what
/// containerd's shim reads back).
fn log_error(cli: &Cli, msg: &str) {
    let Some(path) = &cli.log else { return };
    let time = berth_runtime::container::state::now_rfc3339();
    let line = match cli.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time=\"{time}\" level=error msg=\"{msg}\""),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
