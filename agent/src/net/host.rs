//! The host's side of the task network, set once by the agent: the bridge, IP
//! forwarding, outbound NAT and forwarding for the bridge's subnet, and the port-mapping
//! table ([`super::nat`]).

use std::process::Command;

use super::{NetError, NetworkConfig};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Makes sure the bridge is there and up with the gateway's address, turns on IPv4
/// forwarding, and adds the NAT and forwarding rules of the subnet unless they are there.
pub fn prepare(cfg: &NetworkConfig) -> Result<(), NetError> {
    super::bridge::ensure(cfg)?;
    let current = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
    if current.trim() != "1" {
        std::fs::write(IP_FORWARD, "1").map_err(|e| NetError::Host {
            what: format!("turn on IP forwarding ({IP_FORWARD})"),
            message: e.to_string(),
        })?;
    }
    for (table, chain, rule) in rules(cfg) {
        ensure_rule(table, chain, &rule)?;
    }
    super::nat::setup(cfg)
}

/// The rules for the subnet, each marked with a comment naming the bridge:
/// masquerade what leaves the host from the subnet, and accept forwarding to and from
/// the bridge even where the FORWARD policy drops (as it does with Docker installed).
pub fn rules(cfg: &NetworkConfig) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let comment = format!("berth {}", cfg.bridge);
    let with = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["-m", "comment", "--comment", &comment, "-j"].map(String::from));
        v
    };
    let mut masq = with(&["-s", &cfg.subnet, "!", "-o", &cfg.bridge]);
    masq.push("MASQUERADE".into());
    let mut inbound = with(&["-o", &cfg.bridge]);
    inbound.push("ACCEPT".into());
    let mut outbound = with(&["-i", &cfg.bridge]);
    outbound.push("ACCEPT".into());
    vec![
        ("nat", "POSTROUTING", masq),
        ("filter", "FORWARD", inbound),
        ("filter", "FORWARD", outbound),
    ]
}

/// Removes the subnet's rules and its port-mapping table (an operator retiring a
/// bridge, or a test cleaning up).
pub fn remove_rules(cfg: &NetworkConfig) {
    for (table, chain, rule) in rules(cfg) {
        while iptables(table, "-D", chain, &rule).is_ok() {}
    }
    super::nat::remove(&cfg.bridge);
}

fn ensure_rule(table: &str, chain: &str, rule: &[String]) -> Result<(), NetError> {
    if iptables(table, "-C", chain, rule).is_ok() {
        return Ok(());
    }
    let op = if table == "filter" { "-I" } else { "-A" };
    iptables(table, op, chain, rule).map_err(|message| NetError::Host {
        what: format!("iptables -t {table} {op} {chain} {}", rule.join(" ")),
        message,
    })
}

fn iptables(table: &str, op: &str, chain: &str, rule: &[String]) -> Result<(), String> {
    let out = Command::new("iptables")
        .args(["-w", "-t", table, op, chain])
        .args(rule)
        .env("PATH", "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin")
        .output()
        .map_err(|e| format!("run iptables (install iptables): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
