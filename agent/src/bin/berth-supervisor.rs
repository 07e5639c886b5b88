//! berth-supervisor TASK_DIR: supervises one task (see `berth_agent::supervisor`).

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-supervisor TASK_DIR");
        std::process::exit(2);
    };
    std::process::exit(berth_agent::supervisor::run(std::path::Path::new(&dir)));
}
