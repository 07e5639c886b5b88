//! A bridge network of its own for one test's agent (`berth agent --bridge NAME
//! --bridge-subnet CIDR`), removed with everything berth put on the host for it when
//! dropped; and what a user looks at to see what a bridge's tasks left on the host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A bridge name and subnet no other test (nor the default `berth0`) uses.
#[derive(Debug)]
pub struct TestBridge {
    pub name: String,
    pub subnet: String,
}

impl TestBridge {
    pub fn new() -> TestBridge {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let slot = (std::process::id() * 7 + n) % 200;
        TestBridge {
            name: format!("bt{}x{n}", std::process::id() % 100_000),
            subnet: format!("10.78.{slot}.0/24"),
        }
    }

    /// The `berth agent` arguments that select this bridge.
    pub fn agent_args(&self) -> Vec<&str> {
        vec!["--bridge", &self.name, "--bridge-subnet", &self.subnet]
    }

    /// The address leases of host-local for this network.
    pub fn ipam_dir(&self) -> PathBuf {
        PathBuf::from("/var/lib/cni/networks").join(&self.name)
    }

    /// The nftables table of this bridge's port mappings.
    pub fn nat_table(&self) -> String {
        let name: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("berth_{name}")
    }

    /// What belongs to this bridge's tasks on the host, sorted: links enslaved to the
    /// bridge (a task's veth, while its network namespace lives), address leases,
    /// iptables rules mentioning the subnet or, as portmap's comments do, the network,
    /// and the bridge's nftables table (its chains and its map of published ports).
    pub fn host_state(&self) -> HostState {
        let links = run("ip", &["-o", "link", "show", "master", &self.name])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_string())
            .collect();
        let mut leases: Vec<String> = std::fs::read_dir(self.ipam_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
            .collect();
        leases.sort();
        let net = self.subnet.split('/').next().unwrap_or_default();
        let prefix: String = net.rsplit_once('.').map_or(net, |x| x.0).to_string() + ".";
        let mut rules: Vec<String> = run("iptables-save", &[])
            .lines()
            .filter(|l| l.starts_with('-') || l.starts_with(':'))
            .filter(|l| l.contains(&prefix) || l.contains(&format!("\\\"{}\\\"", self.name)))
            .map(|l| {
                // Chain lines carry packet counters.
                l.split(" [").next().unwrap_or(l).to_string()
            })
            .collect();
        // `nft list table` prints the map's elements, one or more per line.
        rules.extend(
            run("nft", &["list", "table", "ip", &self.nat_table()])
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        rules.sort();
        HostState {
            links,
            leases,
            rules,
        }
    }
}

impl Default for TestBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        // Best effort: a panic in drop would hide the test's own failure.
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
        let comment = format!("berth {}", self.name);
        for line in run("iptables-save", &[]).lines() {
            if !line.contains(&comment) {
                continue;
            }
            // "-A CHAIN rule..." of the table printed above it; the agent's rules are in
            // nat POSTROUTING and filter FORWARD.
            let table = if line.contains("MASQUERADE") {
                "nat"
            } else {
                "filter"
            };
            let rule = line.replacen("-A ", "-D ", 1);
            let args = shell_words(&rule);
            let _ = Command::new("iptables")
                .args(["-w", "-t", table])
                .args(&args)
                .output();
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nat_table()])
            .output();
        let _ = std::fs::remove_dir_all(self.ipam_dir());
    }
}

/// Splits an iptables-save line into arguments (quotes around comments).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// What [`TestBridge::host_state`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub links: Vec<String>,
    pub leases: Vec<String>,
    pub rules: Vec<String>,
}

fn run(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// An HTTP GET of `/` from `addr`; the response, or why there was none.
pub fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(out)
}

/// Sends `msg` to `addr` over UDP and returns the first answer.
pub fn udp_ask(addr: SocketAddr, msg: &str) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    s.send_to(msg.as_bytes(), addr)
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = [0u8; 512];
    let (n, _) = s
        .recv_from(&mut buf)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The host's first global IPv4 address, as other hosts would reach it.
pub fn host_ipv4() -> Option<std::net::Ipv4Addr> {
    run("ip", &["-4", "-o", "addr", "show", "scope", "global"])
        .lines()
        .filter(|l| !l.contains(" bt") && !l.contains("berth"))
        .find_map(|l| {
            let addr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            addr.split('/').next()?.parse().ok()
        })
}

/// A TCP port nothing on the host listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}
