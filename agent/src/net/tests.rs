use std::collections::HashSet;

use serde_json::json;

use super::cni::{RuntimeConfig, plugin_config};
use super::ports::ephemeral_candidates;
use super::*;

fn def(doc: serde_json::Value) -> TaskDefinition {
    TaskDefinition::from_json(&doc.to_string()).unwrap()
}

#[test]
fn bridge_mode_publishes_its_port_mappings_others_do_not() {
    let containers = json!([
        {"name": "web", "image": "busybox", "portMappings": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "protocol": "udp"}
        ]},
        {"name": "side", "image": "busybox", "portMappings": [{"containerPort": 9000, "hostPort": 0}]}
    ]);
    let bridge =
        def(json!({"family": "f", "networkMode": "bridge", "containerDefinitions": containers}));
    let got = port_requests(&bridge);
    let shown: Vec<_> = got
        .iter()
        .map(|r| {
            format!(
                "{} {}->{}/{}",
                r.container, r.host_port, r.container_port, r.protocol
            )
        })
        .collect();
    assert_eq!(
        shown,
        ["web 8080->80/tcp", "web 0->53/udp", "side 0->9000/tcp"]
    );
    assert!(uses_bridge(&bridge));
    for mode in ["awsvpc", "host", "none"] {
        let d =
            def(json!({"family": "f", "networkMode": mode, "containerDefinitions": containers}));
        assert!(port_requests(&d).is_empty(), "{mode}");
        assert_eq!(uses_bridge(&d), mode == "awsvpc", "{mode}");
    }
    // ECS's default network mode on Linux is bridge.
    let d = def(json!({"family": "f", "containerDefinitions": containers}));
    assert!(uses_bridge(&d));
}

/// The conflist tasks started when berth connected them through the CNI plugins carry
/// in their spec.
fn old_conflist(cfg: &NetworkConfig) -> serde_json::Value {
    json!({
        "cniVersion": cni::VERSION,
        "name": cfg.bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": cfg.bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": cfg.subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            }
        ]
    })
}

#[test]
fn tasks_connected_through_cni_keep_their_conflist_new_ones_have_none() {
    let old = json!({
        "mode": "bridge",
        "config": NetworkConfig::default(),
        "conflist": old_conflist(&NetworkConfig::default()),
        "ports": [],
    });
    let net: TaskNetwork = serde_json::from_value(old).unwrap();
    assert_eq!(
        net.conflist.as_ref().unwrap()["plugins"][0]["type"],
        "bridge"
    );

    let new = TaskNetwork {
        mode: "awsvpc".into(),
        config: NetworkConfig::default(),
        conflist: None,
        ports: Vec::new(),
    };
    let doc = serde_json::to_value(&new).unwrap();
    assert!(doc.get("conflist").is_none());
    assert_eq!(serde_json::from_value::<TaskNetwork>(doc).unwrap(), new);
}

/// The conflist of tasks started before port mappings moved to nftables: their DEL
/// still runs portmap.
fn list_with_portmap() -> serde_json::Value {
    let mut list = old_conflist(&NetworkConfig::default());
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}));
    list
}

#[test]
fn plugins_get_name_version_runtime_config_and_previous_result() {
    let list = list_with_portmap();
    let runtime = RuntimeConfig::for_ports(
        &[],
        &[Binding {
            container: "web".into(),
            container_port: 80,
            host_port: 49200,
            protocol: "tcp".into(),
        }],
    );
    let prev = json!({"ips": []});
    let bridge = plugin_config(&list, &list["plugins"][0], &runtime, None);
    assert_eq!(bridge["name"], "berth0");
    assert_eq!(bridge["cniVersion"], cni::VERSION);
    assert!(bridge.get("runtimeConfig").is_none());
    assert!(bridge.get("prevResult").is_none());
    let portmap = plugin_config(&list, &list["plugins"][1], &runtime, Some(&prev));
    assert_eq!(
        portmap["runtimeConfig"]["portMappings"],
        json!([{"hostPort": 49200, "containerPort": 80, "protocol": "tcp"}])
    );
    assert_eq!(portmap["prevResult"], prev);
}

#[test]
fn portmap_runs_only_for_tasks_with_port_mappings() {
    let list = list_with_portmap();
    let types = |runtime: &RuntimeConfig| -> Vec<String> {
        cni::plugins(&list, runtime)
            .iter()
            .map(|p| p["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(types(&RuntimeConfig::default()), ["bridge"]);
    let with_port = RuntimeConfig {
        port_mappings: vec![json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})],
    };
    assert_eq!(types(&with_port), ["bridge", "portmap"]);
}

#[test]
fn ephemeral_ports_cover_the_range_once_from_a_seeded_start() {
    let all: Vec<u16> = ephemeral_candidates((100, 104), 7).collect();
    assert_eq!(all, [102, 103, 104, 100, 101]);
    assert_eq!(ephemeral_candidates((5, 5), 99).collect::<Vec<_>>(), [5]);
}

#[test]
fn describe_shapes_follow_ecs() {
    let status = NetworkStatus {
        mode: "awsvpc".into(),
        ipv4: "10.77.0.5".into(),
        prefix_len: 16,
        gateway: "10.77.0.1".into(),
        mac: "cc:cc:cc:cc:cc:cc".into(),
        host_veth: "veth1".into(),
        bindings: vec![Binding {
            container: "web".into(),
            container_port: 80,
            host_port: 49200,
            protocol: "tcp".into(),
        }],
    };
    let id = "0123456789abcdef0123456789abcdef";
    let eni = eni_attachment(id, &status, false);
    assert_eq!(eni["type"], "ElasticNetworkInterface");
    assert_eq!(eni["status"], "ATTACHED");
    assert_eq!(eni["id"], "01234567-89ab-cdef-0123-456789abcdef");
    assert!(
        eni["details"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "privateIPv4Address", "value": "10.77.0.5"}))
    );
    assert_eq!(
        network_interface(id, &status),
        json!({"attachmentId": "01234567-89ab-cdef-0123-456789abcdef", "privateIpv4Address": "10.77.0.5"})
    );
    assert_eq!(
        network_bindings(&status, "web"),
        [json!({"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 49200, "protocol": "tcp"})]
    );
    assert!(network_bindings(&status, "other").is_empty());
}

#[test]
fn the_hostname_names_the_task_address_once_it_has_one() {
    let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tweb\n10.0.0.9\tdb\n";
    assert_eq!(
        hosts_with_address(hosts, "web", "10.77.0.5"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.77.0.5\tweb\n10.0.0.9\tdb\n"
    );
    // A line with aliases, or a later extraHosts line for the same name, is the user's.
    let user = "127.0.0.1\tlocalhost\n127.0.0.1 web alias\n";
    assert_eq!(hosts_with_address(user, "web", "10.77.0.5"), user);
    assert_eq!(
        hosts_with_address("127.0.0.1\tweb\n127.0.0.1\tweb\n", "web", "10.77.0.5"),
        "10.77.0.5\tweb\n127.0.0.1\tweb\n"
    );
    assert_eq!(hosts_with_address(hosts, "other", "10.77.0.5"), hosts);
}

fn binding(protocol: &str, host_port: u16, container_port: u16) -> Binding {
    Binding {
        container: "web".into(),
        container_port,
        host_port,
        protocol: protocol.into(),
    }
}

#[test]
fn nat_table_is_set_up_with_its_rules_flushed_and_map_kept() {
    let cfg = NetworkConfig {
        bridge: "bt-1.x".into(),
        subnet: "10.9.0.0/16".into(),
        ..Default::default()
    };
    assert_eq!(nat::table(&cfg.bridge), "berth_bt_1_x");
    let script = nat::setup_script(&cfg);
    let lines: Vec<&str> = script.lines().collect();
    // Rules are flushed and re-added, so a rerun leaves one copy; the map is only added.
    for chain in ["prerouting", "output", "postrouting"] {
        let flush = lines
            .iter()
            .position(|l| *l == format!("flush chain ip berth_bt_1_x {chain}"))
            .unwrap();
        let first_rule = lines
            .iter()
            .position(|l| l.starts_with(&format!("add rule ip berth_bt_1_x {chain} ")))
            .unwrap();
        assert!(flush < first_rule, "{script}");
    }
    assert!(!script.contains("flush map") && !script.contains("flush table"));
    assert!(script.contains("oifname \"bt-1.x\" ip saddr 10.9.0.0/16 ct status dnat masquerade"));
    assert!(script.contains("oifname \"bt-1.x\" ip saddr 127.0.0.0/8 masquerade"));
}

#[test]
fn nat_publishes_a_tasks_ports_as_map_elements() {
    let b = [binding("tcp", 8080, 80), binding("udp", 5353, 53)];
    assert_eq!(
        nat::publish_script("berth0", "10.77.0.5", &b),
        "add element ip berth_berth0 ports { tcp . 8080 : 10.77.0.5 . 80, udp . 5353 : 10.77.0.5 . 53 }\n"
    );
    assert_eq!(nat::publish_script("berth0", "10.77.0.5", &[]), "");
}

#[test]
fn nat_removes_only_the_elements_still_pointing_at_the_task() {
    // `nft -j list map` as nftables 1.0.6 prints it.
    let listing = json!({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"map": {"family": "ip", "name": "ports", "table": "berth_berth0",
                 "type": ["inet_proto", "inet_service"], "map": "ipv4_addr . inet_service",
                 "elem": [
                     [{"concat": ["tcp", 8080]}, {"concat": ["10.77.0.5", 80]}],
                     [{"concat": ["udp", 5353]}, {"concat": ["10.77.0.5", 53]}],
                     [{"concat": ["tcp", 9090]}, {"concat": ["10.77.0.7", 80]}],
                     [{"concat": ["tcp", 7070]}, {"concat": ["10.77.0.5", 70]}]
                 ]}}
    ]});
    // 9090 is now another task's; 7070 is not among this task's bindings.
    let b = [
        binding("tcp", 8080, 80),
        binding("udp", 5353, 53),
        binding("tcp", 9090, 80),
    ];
    let keys = nat::owned_keys(&listing, Some("10.77.0.5"), &b);
    assert_eq!(keys, ["tcp . 8080", "udp . 5353"]);
    assert_eq!(
        nat::unpublish_script("berth0", &keys),
        "delete element ip berth_berth0 ports { tcp . 8080, udp . 5353 }\n"
    );
    // Without the address (a supervisor that died before recording it): by port only.
    assert_eq!(
        nat::owned_keys(&listing, None, &b),
        ["tcp . 8080", "udp . 5353", "tcp . 9090"]
    );
    assert!(nat::owned_keys(&json!({"nftables": []}), None, &b).is_empty());
    assert_eq!(nat::unpublish_script("berth0", &[]), "");
}

fn ip(s: &str) -> std::net::Ipv4Addr {
    s.parse().unwrap()
}

fn subnet(cidr: &str) -> lease::Subnet {
    lease::Subnet::parse(cidr).unwrap()
}

#[test]
fn a_subnet_has_its_gateway_first_and_its_broadcast_last() {
    let s = subnet("10.77.3.9/16");
    assert_eq!(s.network, ip("10.77.0.0"));
    assert_eq!(s.gateway(), ip("10.77.0.1"));
    assert_eq!(s.broadcast(), ip("10.77.255.255"));
    for bad in ["10.77.0.0", "10.77.0/16", "10.77.0.0/31", "10.77.0.0/x"] {
        let e = lease::Subnet::parse(bad).unwrap_err().to_string();
        assert!(e.starts_with(&format!("bridge subnet {bad}: ")), "{e}");
    }
}

#[test]
fn addresses_start_after_the_gateway_and_skip_network_and_broadcast() {
    let s = subnet("10.78.5.0/29");
    let all: Vec<_> = lease::candidates(s, None).collect();
    let want: Vec<_> = (2..=6).map(|n| ip(&format!("10.78.5.{n}"))).collect();
    assert_eq!(all, want);
}

#[test]
fn the_next_address_follows_the_last_reserved_and_wraps_around() {
    let s = subnet("10.78.5.0/29");
    let none = HashSet::new();
    assert_eq!(
        lease::next_free(s, Some(ip("10.78.5.3")), &none),
        Some(ip("10.78.5.4"))
    );
    // After the last one (.6), around to the first after the gateway.
    assert_eq!(
        lease::next_free(s, Some(ip("10.78.5.6")), &none),
        Some(ip("10.78.5.2"))
    );
    // A last reserved address outside the subnet (another configuration) is ignored.
    assert_eq!(
        lease::next_free(s, Some(ip("10.9.0.7")), &none),
        Some(ip("10.78.5.2"))
    );
    let taken: HashSet<_> = ["10.78.5.5", "10.78.5.6", "10.78.5.2"].map(ip).into();
    assert_eq!(
        lease::next_free(s, Some(ip("10.78.5.4")), &taken),
        Some(ip("10.78.5.3"))
    );
    // The last reserved one itself is tried last.
    let taken: HashSet<_> = ["10.78.5.2", "10.78.5.3", "10.78.5.5", "10.78.5.6"]
        .map(ip)
        .into();
    assert_eq!(
        lease::next_free(s, Some(ip("10.78.5.4")), &taken),
        Some(ip("10.78.5.4"))
    );
}

#[test]
fn a_full_subnet_has_no_next_address() {
    let s = subnet("10.78.5.0/30");
    let taken: HashSet<_> = [ip("10.78.5.2")].into();
    assert_eq!(lease::next_free(s, None, &taken), None);
}

#[test]
fn leases_are_files_as_host_local_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("bt0");
    let s = subnet("10.78.5.0/29");
    // One host-local made for a task of an earlier berth.
    std::fs::create_dir_all(&leases).unwrap();
    std::fs::write(leases.join("10.78.5.2"), "old\r\neth0").unwrap();
    let a = lease::acquire(&leases, s, "task-a").unwrap();
    assert_eq!(a, ip("10.78.5.3"));
    assert_eq!(
        std::fs::read_to_string(leases.join("10.78.5.3")).unwrap(),
        "task-a\r\neth0"
    );
    assert_eq!(
        std::fs::read_to_string(leases.join("last_reserved_ip.0")).unwrap(),
        "10.78.5.3"
    );
    assert!(leases.join("lock").exists());
    assert_eq!(
        lease::acquire(&leases, s, "task-b").unwrap(),
        ip("10.78.5.4")
    );
    lease::release(&leases, "task-a").unwrap();
    lease::release(&leases, "task-a").unwrap();
    assert!(!leases.join("10.78.5.3").exists());
    // The next one still follows the last reserved, as host-local's does.
    assert_eq!(
        lease::acquire(&leases, s, "task-c").unwrap(),
        ip("10.78.5.5")
    );
    assert_eq!(
        lease::acquire(&leases, s, "task-d").unwrap(),
        ip("10.78.5.6")
    );
    assert_eq!(
        lease::acquire(&leases, s, "task-e").unwrap(),
        ip("10.78.5.3")
    );
    let e = lease::acquire(&leases, s, "task-f")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "address: no free address in 10.78.5.0/29");
    // Leases of the old format (the id alone) are released too.
    lease::release(&leases, "old").unwrap();
    assert!(!leases.join("10.78.5.2").exists());
    lease::release(&dir.path().join("never-made"), "task-a").unwrap();
}

#[test]
fn a_host_veth_name_fits_a_link_name() {
    let name = bridge::host_veth("0123456789abcdef0123456789abcdef");
    assert_eq!(name, "veth0123456789a");
    assert!(name.len() <= 15);
    assert_eq!(
        bridge::mac_string(&[0x0a, 0x58, 0, 1, 0xff, 2]),
        "0a:58:00:01:ff:02"
    );
}
