//! berth-supervisor [--detach] TASK_DIR: supervises one task (see
//! `berth_agent::supervisor`). With --detach it leaves its parent at once (a new session,
//! reparented away) so the agent that starts it never has to wait for it.

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let detach = args.first().is_some_and(|a| a == "--detach");
    if detach {
        args.remove(0);
    }
    let [dir] = args.as_slice() else {
        eprintln!("usage: berth-supervisor [--detach] TASK_DIR");
        std::process::exit(2);
    };
    if detach {
        // SAFETY: the process is single-threaded here; the parent only exits.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
            }
            Err(e) => {
                eprintln!("berth-supervisor: fork: {e}");
                std::process::exit(1);
            }
        }
    }
    std::process::exit(berth_agent::supervisor::run(std::path::Path::new(dir)));
}
