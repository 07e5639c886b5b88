//! Embedding the agent: start it in-process, register a task definition, run a task and
//! wait for it, without the daemon or its socket.
//!
//!     cargo run -p berth-agent --example embed -- /var/lib/berth busybox:latest
//!
//! (run as root; the image must be in the store, e.g. `berth image import ...`).

use std::time::Duration;

use berth_agent::api::Actions;
use berth_agent::images::StoreImages;
use berth_agent::{Agent, Config};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let state_dir = args.next().unwrap_or_else(|| "/var/lib/berth".into());
    let image = args.next().unwrap_or_else(|| "busybox:latest".into());
    let state_dir = std::path::PathBuf::from(state_dir);
    let run_dir = std::env::temp_dir().join(format!("berth-embed-{}", std::process::id()));

    // Config::new finds berth-supervisor next to the program or one level up.
    let config = Config::new(&state_dir, &run_dir);
    let images = StoreImages::open(&state_dir, Vec::new())?;
    let agent = Agent::open(config, Box::new(images))?;
    agent.watch()?;

    agent.call(
        "RegisterTaskDefinition",
        json!({
            "family": "embedded",
            "networkMode": "none",
            "containerDefinitions": [{
                "name": "hello", "image": image, "memory": 32,
                "command": ["sh", "-c", "echo hello from an embedded agent"]
            }]
        }),
    )?;
    let run = agent.call("RunTask", json!({"taskDefinition": "embedded"}))?;
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("started {arn}");
    loop {
        let task = agent.task(&arn).ok_or("the task vanished")?;
        if task.last_status == "STOPPED" {
            let exit = task.containers[0].exit_code;
            println!("stopped: {:?}, exit code {exit:?}", task.stopped_reason);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
