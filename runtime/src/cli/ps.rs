use std::path::Path;

use crate::container::Container;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Accepted for compatibility with `runc ps ID -- ps-options`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let mut pids = Container::load(root, &args.id)?.pids()?;
    pids.sort_unstable();
    if args.format == "json" {
        println!(
            "{}",
            serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
        );
    } else {
        println!("PID   CMD");
        for pid in pids {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim_end()
                        .to_string()
                })
                .unwrap_or_default();
            println!("{pid:<5} {cmd}");
        }
    }
    Ok(0)
}
