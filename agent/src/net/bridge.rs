//! The host bridge and a task's place on it, made in-process over netlink: the bridge with
//! the subnet's gateway address, and per task an address lease ([`super::lease`]) and a
//! veth pair whose inside end is the task's `eth0` with the address and a default route.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use super::lease::{self, Subnet};
use super::netlink::Netlink;
use super::{Binding, IFNAME, NetError, NetworkConfig, NetworkStatus};

/// Makes sure the bridge of `cfg` exists, has the subnet's gateway address and is up.
pub fn ensure(cfg: &NetworkConfig) -> Result<(), NetError> {
    let subnet = Subnet::parse(&cfg.subnet)?;
    let err = |step: &str| {
        let what = format!("bridge {}: {step}", cfg.bridge);
        move |source| NetError::Netlink { what, source }
    };
    let mut nl = Netlink::open().map_err(err("open a netlink socket"))?;
    if nl.link(&cfg.bridge).map_err(err("look up"))?.is_none() {
        nl.add_bridge(&cfg.bridge).map_err(err("create"))?;
    }
    let bridge = nl.existing_link(&cfg.bridge).map_err(err("look up"))?;
    nl.add_address(
        bridge.index,
        subnet.gateway(),
        subnet.prefix_len,
        subnet.broadcast(),
    )
    .map_err(err(&format!("add address {}", subnet.gateway())))?;
    nl.set_up(bridge.index).map_err(err("set up"))
}

/// The host end of a task's veth pair: `veth` and the start of the task id, within the
/// 15 bytes a link name may have; task ids are random, so it is unique among tasks.
pub fn host_veth(task_id: &str) -> String {
    let id: String = task_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("veth{id}")
}

/// Puts the network namespace at `netns` on the bridge: leases an address, creates the
/// veth pair, addresses `eth0` and routes through the gateway. What it made is undone if
/// a step fails.
pub fn attach(
    task_id: &str,
    cfg: &NetworkConfig,
    mode: &str,
    netns: &Path,
    bindings: Vec<Binding>,
) -> Result<NetworkStatus, NetError> {
    let subnet = Subnet::parse(&cfg.subnet)?;
    let ip = lease::acquire(&lease::dir(&cfg.bridge), subnet, task_id)?;
    let veth = host_veth(task_id);
    match connect(cfg, subnet, ip, &veth, netns) {
        Ok(mac) => Ok(NetworkStatus {
            mode: mode.to_string(),
            ipv4: ip.to_string(),
            prefix_len: subnet.prefix_len,
            gateway: subnet.gateway().to_string(),
            mac,
            host_veth: veth,
            bindings,
        }),
        Err(e) => {
            let _ = detach(task_id, cfg);
            Err(e)
        }
    }
}

/// The veth pair and the namespace's side of it; the task's MAC address.
fn connect(
    cfg: &NetworkConfig,
    subnet: Subnet,
    ip: Ipv4Addr,
    veth: &str,
    netns: &Path,
) -> Result<String, NetError> {
    let err = |what: String| move |source| NetError::Netlink { what, source };
    let ns = File::open(netns).map_err(err(format!(
        "the task's network namespace {}",
        netns.display()
    )))?;
    let mut host = Netlink::open().map_err(err("open a netlink socket".into()))?;
    let bridge = host
        .existing_link(&cfg.bridge)
        .map_err(err(format!("bridge {}", cfg.bridge)))?;
    host.add_veth(veth, bridge.index, IFNAME, &ns)
        .map_err(err(format!("veth {veth}: create")))?;
    let port = host
        .existing_link(veth)
        .map_err(err(format!("veth {veth}: look up")))?;
    host.set_hairpin(port.index)
        .map_err(err(format!("veth {veth}: hairpin mode")))?;
    let mut inside = Netlink::open_in(&ns).map_err(err(format!(
        "a netlink socket in the task's network namespace {}",
        netns.display()
    )))?;
    let eth0 = inside
        .existing_link(IFNAME)
        .map_err(err(format!("veth {IFNAME} in the task's namespace")))?;
    inside.set_up(eth0.index).map_err(err(format!(
        "veth {IFNAME} in the task's namespace: set up"
    )))?;
    inside
        .add_address(eth0.index, ip, subnet.prefix_len, subnet.broadcast())
        .map_err(err(format!(
            "address {ip}/{} on {IFNAME}",
            subnet.prefix_len
        )))?;
    inside
        .add_default_route(eth0.index, subnet.gateway())
        .map_err(err(format!("default route via {}", subnet.gateway())))?;
    Ok(mac_string(&eth0.mac))
}

/// Takes a task off the bridge: deletes its host veth if still there (the namespace going
/// takes it along) and releases its address lease. Idempotent.
pub fn detach(task_id: &str, cfg: &NetworkConfig) -> Result<(), NetError> {
    let veth = host_veth(task_id);
    let deleted = Netlink::open()
        .and_then(|mut nl| nl.delete_link(&veth))
        .map(drop)
        .map_err(|source| NetError::Netlink {
            what: format!("veth {veth}: delete"),
            source,
        });
    let released = lease::release(&lease::dir(&cfg.bridge), task_id);
    deleted.and(released)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
