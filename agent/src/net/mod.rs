//! Task networking: the bridge network tasks in bridge and awsvpc mode join (netlink,
//! [`bridge`]), their host port mappings (nftables, [`nat`]), and what DescribeTasks
//! shows of them.
//!
//! Who does what: the agent prepares the host once ([`host::prepare`]: the bridge, IP
//! forwarding, NAT and forwarding rules for the subnet, the port-mapping table) and puts
//! a [`TaskNetwork`] in the task's spec. The supervisor reserves the host ports, puts its
//! sandbox's network namespace on the bridge, publishes its ports and reports a
//! [`NetworkStatus`]; it undoes both when the task ends. When a supervisor dies without
//! doing so, the agent runs [`release`] instead.

pub mod bridge;
pub mod cni;
pub mod host;
pub mod lease;
pub mod nat;
pub mod netlink;
pub mod ports;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::taskdef::{NetworkMode, Protocol, TaskDefinition};

/// The interface name of a task inside its network namespace.
pub const IFNAME: &str = "eth0";

/// The host's bridge network for tasks, from the agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// The bridge's name; also the network's name in `/var/lib/cni/networks/<bridge>/`,
    /// where the address leases are kept as CNI's host-local plugin keeps them.
    pub bridge: String,
    /// An IPv4 subnet in CIDR notation; the bridge takes its first address.
    pub subnet: String,
    /// Where the CNI plugins are: for releasing tasks started when berth connected them
    /// through the plugins.
    pub cni_path: PathBuf,
    /// Ephemeral host ports come from this range, inclusive.
    pub host_ports: (u16, u16),
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            subnet: "10.77.0.0/16".into(),
            cni_path: PathBuf::from("/usr/lib/cni"),
            host_ports: (49153, 65535),
        }
    }
}

/// What the supervisor needs to connect a task: in the task's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    /// "bridge" or "awsvpc".
    pub mode: String,
    pub config: NetworkConfig,
    /// Tasks started when berth connected them through the CNI plugins: the network
    /// configuration list their connection was made with, and is released with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflist: Option<Value>,
    /// Host ports to publish (bridge mode only).
    pub ports: Vec<PortRequest>,
}

/// One port mapping to publish on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub container: String,
    pub container_port: u16,
    /// 0 picks a free one from the ephemeral range.
    pub host_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
}

/// The task's place on the network, as the supervisor reports it in status.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub mode: String,
    /// The task's IPv4 address, without its prefix length.
    pub ipv4: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
    /// The host's end of the task's veth pair.
    pub host_veth: String,
    pub bindings: Vec<Binding>,
}

/// A published port, as ECS's networkBindings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub container: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: String,
}

/// Why a task's network could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A host port is taken by another program or task.
    #[error("host port {port}/{protocol} is already in use")]
    PortInUse { port: u16, protocol: String },
    /// Every port of the ephemeral range is taken.
    #[error("no free {protocol} host port in {from}-{to}")]
    NoFreePort {
        protocol: String,
        from: u16,
        to: u16,
    },
    /// A plugin could not be run.
    #[error("CNI plugin {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A plugin said no.
    #[error("CNI plugin {plugin} {command}: {message}")]
    Plugin {
        plugin: String,
        command: String,
        message: String,
    },
    /// A link, address or route could not be made or removed.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    /// The address leases could not be read or written.
    #[error("address lease dir {}: {source}", dir.display())]
    Lease {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Every address of the subnet is leased.
    #[error("address: no free address in {subnet}")]
    NoFreeAddress { subnet: String },
    /// The configured subnet is not one berth can use.
    #[error("bridge subnet {subnet}: {message}")]
    Subnet { subnet: String, message: String },
    /// A host setting or rule the network needs could not be made.
    #[error("{what}: {message}")]
    Host { what: String, message: String },
}

/// Whether tasks of this definition get a network namespace on the bridge.
pub fn uses_bridge(def: &TaskDefinition) -> bool {
    matches!(
        def.network_mode(),
        NetworkMode::Bridge | NetworkMode::Awsvpc
    )
}

/// The port mappings a task publishes on the host: bridge mode's. awsvpc tasks are
/// reached on their own address; host mode tasks bind the host's ports themselves.
pub fn port_requests(def: &TaskDefinition) -> Vec<PortRequest> {
    if def.network_mode() != NetworkMode::Bridge {
        return Vec::new();
    }
    def.container_definitions
        .iter()
        .flat_map(|c| {
            c.port_mappings.iter().filter_map(|pm| {
                Some(PortRequest {
                    container: c.name.clone(),
                    container_port: u16::try_from(pm.container_port?).ok()?,
                    host_port: pm
                        .host_port
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                    protocol: protocol_name(pm.protocol.as_ref()).to_string(),
                })
            })
        })
        .collect()
}

pub fn protocol_name(p: Option<&Protocol>) -> &'static str {
    match p {
        Some(Protocol::Udp) => "udp",
        _ => "tcp",
    }
}

/// The ECS networkBindings of one container.
pub fn network_bindings(status: &NetworkStatus, container: &str) -> Vec<Value> {
    status
        .bindings
        .iter()
        .filter(|b| b.container == container)
        .map(|b| {
            json!({
                "bindIP": "0.0.0.0",
                "containerPort": b.container_port,
                "hostPort": b.host_port,
                "protocol": b.protocol,
            })
        })
        .collect()
}

/// The id of a task's network attachment, stable for the task.
pub fn attachment_id(task_id: &str) -> String {
    // ECS attachment ids are UUIDs; the task id is 32 hex digits, so it makes one.
    if task_id.len() == 32 && task_id.chars().all(|c| c.is_ascii_hexdigit()) {
        format!(
            "{}-{}-{}-{}-{}",
            &task_id[..8],
            &task_id[8..12],
            &task_id[12..16],
            &task_id[16..20],
            &task_id[20..]
        )
    } else {
        task_id.to_string()
    }
}

/// An awsvpc task's ElasticNetworkInterface attachment, with the details ECS gives.
pub fn eni_attachment(task_id: &str, status: &NetworkStatus, stopped: bool) -> Value {
    let dns = format!("ip-{}", status.ipv4.replace('.', "-"));
    let eni: String = task_id.chars().take(17).collect();
    json!({
        "id": attachment_id(task_id),
        "type": "ElasticNetworkInterface",
        "status": if stopped { "DELETED" } else { "ATTACHED" },
        "details": [
            {"name": "subnetId", "value": format!("subnet-{}", status.gateway.replace('.', ""))},
            {"name": "networkInterfaceId", "value": format!("eni-{eni}")},
            {"name": "macAddress", "value": status.mac},
            {"name": "privateDnsName", "value": dns},
            {"name": "privateIPv4Address", "value": status.ipv4},
        ],
    })
}

/// A container's networkInterfaces entry in awsvpc mode.
pub fn network_interface(task_id: &str, status: &NetworkStatus) -> Value {
    json!({
        "attachmentId": attachment_id(task_id),
        "privateIpv4Address": status.ipv4,
    })
}

/// Takes down what a task's connection made: its host ports (those still pointing at
/// `ipv4`, when known), then its veth (unless it went with the namespace) and its address
/// lease. Tasks connected through the CNI plugins by an earlier berth are released the
/// same way, through CNI DEL with the conflist they were connected with. Idempotent.
pub fn release(
    task_id: &str,
    net: &TaskNetwork,
    bindings: &[Binding],
    ipv4: Option<&str>,
    netns: Option<&Path>,
) -> Result<(), NetError> {
    let unpublished = nat::unpublish(&net.config.bridge, ipv4, bindings);
    let detached = match &net.conflist {
        Some(conflist) => {
            let runtime = cni::RuntimeConfig::for_ports(&net.ports, bindings);
            cni::del(conflist, &net.config.cni_path, task_id, netns, &runtime)
        }
        None => bridge::detach(task_id, &net.config),
    };
    unpublished.and(detached)
}

/// Puts what the supervisor reported into the task as DescribeTasks shows it: awsvpc
/// tasks get their ElasticNetworkInterface attachment and each container its network
/// interface; bridge tasks each container's networkBindings.
pub fn describe(task: &mut crate::ecs::Task, status: &NetworkStatus) {
    if status.ipv4.is_empty() {
        return;
    }
    let stopped = task.last_status == "STOPPED";
    let id = task.id().to_string();
    if status.mode == "awsvpc" {
        task.attachments = vec![eni_attachment(&id, status, stopped)];
    }
    for c in &mut task.containers {
        if status.mode == "awsvpc" {
            c.network_interfaces = vec![network_interface(&id, status)];
        } else {
            c.network_bindings = network_bindings(status, &c.name);
        }
    }
}

/// The networkBindings of a host-mode task: its port mappings, as the containers bind
/// them on the host.
pub fn host_bindings(def: &TaskDefinition, task: &mut crate::ecs::Task) {
    if def.network_mode() != NetworkMode::Host {
        return;
    }
    for c in &mut task.containers {
        let Some((_, cd)) = def.container(&c.name) else {
            continue;
        };
        c.network_bindings = cd
            .port_mappings
            .iter()
            .filter_map(|pm| {
                let port = pm.container_port?;
                Some(json!({
                    "bindIP": "0.0.0.0",
                    "containerPort": port,
                    "hostPort": pm.host_port.unwrap_or(port),
                    "protocol": protocol_name(pm.protocol.as_ref()),
                }))
            })
            .collect();
    }
}

#[cfg(test)]
mod tests;

/// The task's /etc/hosts once it has an address: the line the plan wrote for its hostname
/// (`127.0.0.1<TAB>name`) names the task's address instead, as docker and podman do, so
/// that a server that resolves its own hostname binds or advertises a reachable address.
/// Only the first such line is the plan's; the rest (extraHosts) stay as they are.
pub fn hosts_with_address(hosts: &str, hostname: &str, ipv4: &str) -> String {
    let mut done = false;
    hosts
        .lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let own = !done
                && fields.next() == Some("127.0.0.1")
                && fields.next() == Some(hostname)
                && fields.next().is_none();
            if own {
                done = true;
                format!("{ipv4}\t{hostname}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Rewrites the /etc/hosts file at `path` (a container's, in its task directory) with
/// [`hosts_with_address`]; a container without one is left alone.
pub fn point_hostname(path: &Path, hostname: &str, ipv4: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let new = hosts_with_address(&text, hostname, ipv4);
    if new != text {
        std::fs::write(path, new)?;
    }
    Ok(())
}
