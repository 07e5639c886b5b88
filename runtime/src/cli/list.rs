use std::path::Path;

use crate::container::Container;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Ids only
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let all = Container::list(root)?;
    if args.quiet {
        for c in &all {
            println!("{}", c.saved.id);
        }
    } else if args.format == "json" {
        let states: Vec<_> = all.iter().map(|c| c.saved.oci_state(c.status())).collect();
        println!(
            "{}",
            serde_json::to_string(&states).unwrap_or_else(|_| "[]".into())
        );
    } else {
        println!(
            "{:<24} {:<8} {:<10} {:<40} CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for c in &all {
            let st = c.saved.oci_state(c.status());
            println!(
                "{:<24} {:<8} {:<10} {:<40} {}",
                st.id,
                st.pid,
                st.status,
                st.bundle.display(),
                st.created
            );
        }
    }
    Ok(0)
}
