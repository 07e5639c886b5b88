//! Port mappings in nftables: one table per bridge, `berth_<bridge>`, whose map `ports`
//! sends `protocol . host port` to `task address . container port`. The agent sets up the
//! table and its chains once; a task's mappings are elements of the map, added in one
//! `nft` run when the task connects and deleted when it goes.
//!
//! The CNI portmap plugin did this before, with a chain and a dozen iptables runs per
//! task: about 35 ms to add a task's mappings and 100 ms to remove them here, on the path
//! to RUNNING. One map element costs one `nft` run (about 3 ms), and the kernel looks the
//! port up in the map instead of walking a rule per mapping.
//!
//! What the chains do, as portmap did with `snat: true`:
//! - prerouting: traffic for any of the host's addresses (from other hosts, from tasks)
//!   to a mapped port goes to the task;
//! - output: the same for connections the host itself makes, 127.0.0.1 included;
//! - postrouting: such connections from the host's loopback (which needs `route_localnet`
//!   on the bridge) or from a task on the bridge (hairpin) leave with the bridge's address,
//!   so the replies come back through the translation.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Binding, NetError, NetworkConfig};

/// The nftables table of a bridge's port mappings.
pub fn table(bridge: &str) -> String {
    let name: String = bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("berth_{name}")
}

/// The table, map and chains for `cfg`, in one transaction. Rerunning it (every agent
/// start) puts the rules back as they should be and keeps the map's elements, which
/// belong to tasks that may still run.
pub fn setup_script(cfg: &NetworkConfig) -> String {
    let t = table(&cfg.bridge);
    let br = &cfg.bridge;
    let subnet = &cfg.subnet;
    format!(
        "add table ip {t}
add map ip {t} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}
add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}
add chain ip {t} output {{ type nat hook output priority -100 ; policy accept ; }}
add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}
flush chain ip {t} prerouting
flush chain ip {t} output
flush chain ip {t} postrouting
add rule ip {t} prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports
add rule ip {t} output fib daddr type local dnat ip to meta l4proto . th dport map @ports
add rule ip {t} postrouting oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade
add rule ip {t} postrouting oifname \"{br}\" ip saddr {subnet} ct status dnat masquerade
"
    )
}

/// The map elements of a task's mappings.
fn elements(ipv4: &str, bindings: &[Binding]) -> String {
    bindings
        .iter()
        .map(|b| {
            format!(
                "{} . {} : {ipv4} . {}",
                b.protocol, b.host_port, b.container_port
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a task's mappings; an empty string when it has none.
pub fn publish_script(bridge: &str, ipv4: &str, bindings: &[Binding]) -> String {
    if bindings.is_empty() {
        return String::new();
    }
    format!(
        "add element ip {} ports {{ {} }}\n",
        table(bridge),
        elements(ipv4, bindings)
    )
}

/// The elements of the map (`nft -j list map`) that are a task's: its host ports, and,
/// when its address is known, pointing at that address. A port some other task holds by
/// now is not touched.
pub fn owned_keys(listing: &Value, ipv4: Option<&str>, bindings: &[Binding]) -> Vec<String> {
    let Some(items) = listing["nftables"].as_array() else {
        return Vec::new();
    };
    let elems = items
        .iter()
        .filter_map(|i| i["map"]["elem"].as_array())
        .flatten();
    let mut keys = Vec::new();
    for e in elems {
        let (Some(key), Some(value)) = (e[0]["concat"].as_array(), e[1]["concat"].as_array())
        else {
            continue;
        };
        let (Some(proto), Some(port)) = (key.first().and_then(Value::as_str), key.get(1)) else {
            continue;
        };
        let port = port.as_u64();
        let ours = bindings
            .iter()
            .any(|b| b.protocol == proto && Some(u64::from(b.host_port)) == port);
        let same_task = ipv4.is_none_or(|ip| value.first().and_then(Value::as_str) == Some(ip));
        if ours && same_task {
            if let Some(port) = port {
                keys.push(format!("{proto} . {port}"));
            }
        }
    }
    keys
}

/// Deletes the elements `keys`; an empty string when there are none.
pub fn unpublish_script(bridge: &str, keys: &[String]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    format!(
        "delete element ip {} ports {{ {} }}\n",
        table(bridge),
        keys.join(", ")
    )
}

/// Sets up the bridge's table (see [`setup_script`]).
pub fn setup(cfg: &NetworkConfig) -> Result<(), NetError> {
    nft_script(&setup_script(cfg)).map_err(|message| NetError::Host {
        what: format!("set up the nftables table {}", table(&cfg.bridge)),
        message,
    })
}

/// Publishes a task's host ports. A port already in the map (another task's) fails.
pub fn publish(bridge: &str, ipv4: &str, bindings: &[Binding]) -> Result<(), NetError> {
    let script = publish_script(bridge, ipv4, bindings);
    if script.is_empty() {
        return Ok(());
    }
    nft_script(&script).map_err(|message| NetError::Host {
        what: format!(
            "publish host ports {} in nftables table {}",
            ports_list(bindings),
            table(bridge)
        ),
        message,
    })
}

/// Removes a task's host ports, those still pointing at it. Idempotent: a table, map
/// or element that is gone is fine.
pub fn unpublish(bridge: &str, ipv4: Option<&str>, bindings: &[Binding]) -> Result<(), NetError> {
    if bindings.is_empty() {
        return Ok(());
    }
    let t = table(bridge);
    let Ok(listing) = nft(&["-j", "list", "map", "ip", &t, "ports"], None) else {
        return Ok(()); // no table, so nothing published
    };
    let listing: Value = serde_json::from_str(&listing).unwrap_or(Value::Null);
    let script = unpublish_script(bridge, &owned_keys(&listing, ipv4, bindings));
    if script.is_empty() {
        return Ok(());
    }
    nft_script(&script).map_err(|message| NetError::Host {
        what: format!("remove host ports {} from {t}", ports_list(bindings)),
        message,
    })
}

/// Deletes the bridge's table (an operator retiring a bridge, or a test cleaning up).
pub fn remove(bridge: &str) {
    let _ = nft(&["delete", "table", "ip", &table(bridge)], None);
}

fn ports_list(bindings: &[Binding]) -> String {
    bindings
        .iter()
        .map(|b| format!("{}/{}", b.host_port, b.protocol))
        .collect::<Vec<_>>()
        .join(", ")
}

fn nft_script(script: &str) -> Result<(), String> {
    nft(&["-f", "-"], Some(script)).map(|_| ())
}

/// Runs `nft` with `args` and `input` on stdin; its stdout, or its first error line.
fn nft(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("nft")
        .args(args)
        .env("PATH", "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft (install nftables): {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("run nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("nft failed")
            .trim()
            .to_string())
    }
}
