//! Releases the connection of tasks an earlier berth connected through the CNI plugins:
//! runs their network configuration list's DEL the way the CNI spec says a runtime does,
//! each plugin in reverse order executed with `CNI_COMMAND`, `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME` and `CNI_PATH`, its configuration on stdin.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Binding, IFNAME, NetError};

/// The CNI spec version berth speaks; Debian 12's plugins (1.1) support it.
pub const VERSION: &str = "1.0.0";

/// Plugins run iptables and ip; a supervisor may have been started with a thin PATH.
const PLUGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `runtimeConfig` handed to plugins that declare the matching capability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConfig {
    /// `portMappings`: hostPort, containerPort, protocol.
    pub port_mappings: Vec<Value>,
}

impl RuntimeConfig {
    /// The port mappings with their host ports chosen (`bindings`), or, for a DEL, as
    /// requested.
    pub fn for_ports(requests: &[super::PortRequest], bindings: &[Binding]) -> RuntimeConfig {
        let port_mappings = if bindings.is_empty() {
            requests
                .iter()
                .filter(|r| r.host_port != 0)
                .map(|r| mapping(r.host_port, r.container_port, &r.protocol))
                .collect()
        } else {
            bindings
                .iter()
                .map(|b| mapping(b.host_port, b.container_port, &b.protocol))
                .collect()
        };
        RuntimeConfig { port_mappings }
    }
}

fn mapping(host: u16, container: u16, protocol: &str) -> Value {
    json!({"hostPort": host, "containerPort": container, "protocol": protocol})
}

/// One plugin's stdin: its entry of the list with the list's name and version, the
/// runtime config it asks for, and the previous result.
pub fn plugin_config(
    conflist: &Value,
    plugin: &Value,
    runtime: &RuntimeConfig,
    prev: Option<&Value>,
) -> Value {
    let mut conf = plugin.clone();
    if let Some(o) = conf.as_object_mut() {
        o.insert("name".into(), conflist["name"].clone());
        o.insert("cniVersion".into(), conflist["cniVersion"].clone());
        if plugin["capabilities"]["portMappings"] == json!(true) {
            o.insert(
                "runtimeConfig".into(),
                json!({"portMappings": runtime.port_mappings}),
            );
        }
        if let Some(p) = prev {
            o.insert("prevResult".into(), p.clone());
        }
    }
    conf
}

/// DEL: releases what ADD made, plugins in reverse order. A namespace that is gone is
/// passed as none, which the plugins accept.
pub fn del(
    conflist: &Value,
    cni_path: &Path,
    container_id: &str,
    netns: Option<&Path>,
    runtime: &RuntimeConfig,
) -> Result<(), NetError> {
    let netns = netns.filter(|p| p.exists());
    let mut first_error = None;
    for plugin in plugins(conflist, runtime).iter().rev() {
        let conf = plugin_config(conflist, plugin, runtime, None);
        if let Err(e) = exec(cni_path, "DEL", container_id, netns, &conf) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The plugins to run. One that only serves port mappings has nothing to do for a task
/// without any (portmap passes ADD's result through and returns from DEL), so it is not
/// started at all: a process less per start and stop.
pub fn plugins<'a>(conflist: &'a Value, runtime: &RuntimeConfig) -> Vec<&'a Value> {
    conflist["plugins"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| {
                    !runtime.port_mappings.is_empty() || p["type"].as_str() != Some("portmap")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn exec(
    cni_path: &Path,
    command: &str,
    container_id: &str,
    netns: Option<&Path>,
    conf: &Value,
) -> Result<Value, NetError> {
    let kind = conf["type"].as_str().unwrap_or_default().to_string();
    let path = cni_path.join(&kind);
    let mut child = Command::new(&path)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env(
            "CNI_NETNS",
            netns.map(|p| p.as_os_str()).unwrap_or_default(),
        )
        .env("CNI_IFNAME", IFNAME)
        .env("CNI_PATH", cni_path)
        .env("PATH", PLUGIN_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetError::Spawn {
            path: path.clone(),
            source,
        })?;
    let input = serde_json::to_vec(conf).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&input);
    }
    let out = child
        .wait_with_output()
        .map_err(|source| NetError::Spawn { path, source })?;
    let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if !out.status.success() {
        let message = parsed.as_ref().and_then(error_message).unwrap_or_else(|| {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if err.is_empty() {
                format!("exited with {}", out.status)
            } else {
                err
            }
        });
        return Err(NetError::Plugin {
            plugin: kind,
            command: command.into(),
            message,
        });
    }
    Ok(parsed.unwrap_or(Value::Null))
}

/// A plugin's error document: `{"code": N, "msg": "...", "details": "..."}`.
pub fn error_message(doc: &Value) -> Option<String> {
    let msg = doc["msg"].as_str()?;
    Some(match doc["details"].as_str() {
        Some(d) if !d.is_empty() => format!("{msg}: {d}"),
        _ => msg.to_string(),
    })
}
