use serde_json::json;

use super::cni::{RuntimeConfig, parse_result, plugin_config};
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

#[test]
fn conflist_is_a_bridge_with_host_local_addresses() {
    let cfg = NetworkConfig {
        bridge: "bt0".into(),
        subnet: "10.9.0.0/16".into(),
        ..Default::default()
    };
    let list = conflist(&cfg);
    assert_eq!(list["name"], "bt0");
    assert_eq!(list["plugins"][0]["type"], "bridge");
    assert_eq!(list["plugins"][0]["bridge"], "bt0");
    assert_eq!(
        list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.9.0.0/16"
    );
    assert_eq!(list["plugins"].as_array().map(Vec::len), Some(1));
}

/// The conflist of tasks started before port mappings moved to nftables: their DEL
/// still runs portmap.
fn list_with_portmap() -> serde_json::Value {
    let mut list = conflist(&NetworkConfig::default());
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
fn add_result_gives_the_address_mac_and_veth() {
    let result = json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "berth0", "mac": "aa:aa:aa:aa:aa:aa"},
            {"name": "veth1234", "mac": "bb:bb:bb:bb:bb:bb"},
            {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/proc/9/ns/net"}
        ],
        "ips": [{"interface": 2, "address": "10.77.0.5/16", "gateway": "10.77.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}]
    });
    let s = parse_result(&result, "awsvpc", Vec::new()).unwrap();
    assert_eq!(s.ipv4, "10.77.0.5");
    assert_eq!(s.prefix_len, 16);
    assert_eq!(s.gateway, "10.77.0.1");
    assert_eq!(s.mac, "cc:cc:cc:cc:cc:cc");
    assert_eq!(s.host_veth, "veth1234");
    assert!(parse_result(&json!({"interfaces": []}), "bridge", Vec::new()).is_none());
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
