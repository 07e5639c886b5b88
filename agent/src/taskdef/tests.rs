use serde_json::{Value, json};

use super::*;

/// A web server with a log-shipping sidecar and a one-shot init container, written the
/// way the ECS documentation's examples are.
const WEB_WITH_SIDECAR: &str = r#"{
  "family": "web-app",
  "networkMode": "none",
  "cpu": "1 vCPU",
  "memory": "2GB",
  "volumes": [
    {"name": "shared-logs"},
    {"name": "static", "host": {"sourcePath": "/srv/static"}}
  ],
  "containerDefinitions": [
    {
      "name": "web",
      "image": "public.ecr.aws/nginx/nginx:1.25",
      "cpu": 512,
      "memory": 512,
      "memoryReservation": 256,
      "essential": true,
      "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
      "mountPoints": [
        {"sourceVolume": "shared-logs", "containerPath": "/var/log/nginx"},
        {"sourceVolume": "static", "containerPath": "/usr/share/nginx/html", "readOnly": true}
      ],
      "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
      "healthCheck": {
        "command": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "interval": 10,
        "retries": 3
      },
      "environment": [{"name": "MODE", "value": "production"}],
      "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
      "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
    },
    {
      "name": "log-shipper",
      "image": "busybox:1.36",
      "essential": false,
      "memory": 64,
      "command": ["sh", "-c", "tail -F /logs/access.log"],
      "mountPoints": [{"sourceVolume": "shared-logs", "containerPath": "/logs", "readOnly": true}],
      "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}]
    },
    {
      "name": "init",
      "image": "busybox:1.36",
      "essential": false,
      "memory": 32,
      "command": ["sh", "-c", "echo ready"]
    }
  ],
  "requiresCompatibilities": ["EC2"],
  "tags": [{"key": "team", "value": "web"}]
}"#;

/// `aws ecs describe-task-definition --task-definition hello` output.
const DESCRIBED: &str = r#"{
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/hello:3",
        "containerDefinitions": [
            {
                "name": "hello",
                "image": "busybox",
                "cpu": 0,
                "memory": 128,
                "portMappings": [],
                "essential": true,
                "command": ["echo", "hello"],
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "systemControls": []
            }
        ],
        "family": "hello",
        "networkMode": "host",
        "revision": 3,
        "volumes": [],
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
        "placementConstraints": [],
        "compatibilities": ["EXTERNAL", "EC2"],
        "requiresCompatibilities": ["EC2"],
        "cpu": "256",
        "memory": "512",
        "registeredAt": "2024-05-01T12:00:00.000000+00:00",
        "registeredBy": "arn:aws:iam::123456789012:root"
    },
    "tags": []
}"#;

fn parse(text: &str) -> TaskDefinition {
    TaskDefinition::from_json(text).unwrap_or_else(|e| panic!("{e}"))
}

/// One valid container, no task-level sizes, host network.
fn minimal() -> Value {
    json!({
        "family": "app",
        "networkMode": "host",
        "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 128}
        ]
    })
}

fn errors_of(doc: &Value) -> Vec<String> {
    match parse(&doc.to_string()).validate() {
        Ok(_) => Vec::new(),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

fn warnings_of(doc: &Value) -> Vec<String> {
    match parse(&doc.to_string()).validate() {
        Ok(w) => w.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `change` on a copy of `minimal()` and returns the errors.
fn errors_with(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut doc = minimal();
    change(&mut doc);
    errors_of(&doc)
}

fn container(doc: &mut Value, i: usize) -> &mut Value {
    &mut doc["containerDefinitions"][i]
}

#[test]
fn web_with_sidecar_parses_and_is_valid() {
    let def = parse(WEB_WITH_SIDECAR);
    assert_eq!(def.family, "web-app");
    assert_eq!(def.network_mode(), NetworkMode::None);
    assert_eq!(def.cpu.as_deref(), Some("1 vCPU"));
    assert_eq!(def.memory.as_deref(), Some("2GB"));
    assert_eq!(def.volumes[1].source_path(), Some("/srv/static"));
    assert_eq!(def.volumes[0].source_path(), None);

    let web = &def.container_definitions[0];
    assert_eq!(web.memory, Some(512));
    assert_eq!(web.memory_reservation, Some(256));
    assert_eq!(web.port_mappings[0].protocol, Some(Protocol::Tcp));
    assert_eq!(web.mount_points[1].read_only, Some(true));
    assert_eq!(web.depends_on[0].condition, Condition::Success);
    assert_eq!(
        web.log_configuration.as_ref().unwrap().options["max-file"],
        "3"
    );
    let shipper = &def.container_definitions[1];
    assert!(!shipper.is_essential());
    assert_eq!(shipper.depends_on[0].condition, Condition::Healthy);

    let warnings: Vec<String> = def
        .validate()
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "containerDefinitions[0].portMappings: the task has no network in networkMode none; \
          the ports are recorded only"
        ]
    );
}

#[test]
fn describe_output_is_read_through_its_wrapper() {
    let def = parse(DESCRIBED);
    assert_eq!(def.family, "hello");
    assert_eq!(def.network_mode(), NetworkMode::Host);
    assert_eq!(def.cpu.as_deref(), Some("256"));
    assert_eq!(def.container_definitions[0].command, ["echo", "hello"]);
    // Its empty "systemControls": [] asks for nothing, so there is nothing to warn about.
    assert_eq!(def.validate(), Ok(vec![]));
}

#[test]
fn numbers_and_strings_for_task_sizes() {
    let def = parse(r#"{"family": "a", "cpu": 512, "memory": 1024, "containerDefinitions": []}"#);
    assert_eq!(def.cpu.as_deref(), Some("512"));
    assert_eq!(def.memory.as_deref(), Some("1024"));
    // Written back the way ECS returns them: strings.
    let back = serde_json::to_value(&def).unwrap();
    assert_eq!(back["cpu"], "512");
    assert_eq!(back["memory"], "1024");
}

#[test]
fn serializes_back_to_ecs_shapes() {
    let def = parse(WEB_WITH_SIDECAR);
    let back = serde_json::to_value(&def).unwrap();
    assert_eq!(back["containerDefinitions"][0]["memoryReservation"], 256);
    assert_eq!(
        back["containerDefinitions"][0]["dependsOn"][0],
        json!({"containerName": "init", "condition": "SUCCESS"})
    );
    assert_eq!(back["volumes"][1]["host"]["sourcePath"], "/srv/static");
    let again: TaskDefinition = serde_json::from_value(back).unwrap();
    assert_eq!(again, def);
}

#[test]
fn malformed_json_names_line_and_column() {
    let err = TaskDefinition::from_json("{\n  \"family\": \"a\",\n  \"cpu\": \n}").unwrap_err();
    assert_eq!(err.line, 4);
    assert_eq!(
        err.to_string(),
        "task definition JSON line 4 column 1: cpu: expected value"
    );
}

#[test]
fn wrong_type_names_the_field_path() {
    let text = "{\"family\": \"a\",\n \"containerDefinitions\": [\n  {\"name\": \"x\", \"memory\": \"lots\"}\n ]\n}";
    let err = TaskDefinition::from_json(text).unwrap_err();
    assert_eq!(err.path, "containerDefinitions[0].memory");
    assert_eq!(err.line, 3);
    let message = err.to_string();
    assert!(
        message.starts_with("task definition JSON line 3 column 32: containerDefinitions[0].memory: invalid type: string \"lots\""),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn wrapper_errors_carry_the_wrapper_path() {
    let err = TaskDefinition::from_json(
        r#"{"taskDefinition": {"family": 7, "containerDefinitions": []}}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "taskDefinition.family");
}

#[test]
fn unknown_fields_are_ignored() {
    let def = parse(
        r#"{"family": "a", "someFutureField": {"x": 1},
            "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "credentialSpecs": []}]}"#,
    );
    assert_eq!(def.container_definitions[0].name, "c");
}

#[test]
fn minimal_is_valid() {
    assert_eq!(errors_of(&minimal()), Vec::<String>::new());
}

#[test]
fn all_errors_are_collected_on_one_line() {
    let doc = json!({
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "a", "image": "busybox", "memory": 4},
            {"name": "a", "image": ""}
        ]
    });
    let err = parse(&doc.to_string()).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "family: is required; \
         containerDefinitions[1].name: \"a\" is already the name of containerDefinitions[0]; \
         containerDefinitions[0].memory: must be at least 6 MiB; \
         containerDefinitions[1].image: is required; \
         containerDefinitions[1].memory: give memory or memoryReservation, as the task has no \
         task-level memory"
    );
}

#[test]
fn family_must_match_ecs_pattern() {
    let errors = errors_with(|d| d["family"] = json!("my app!"));
    assert_eq!(
        errors,
        ["family: \"my app!\" must be up to 255 letters, digits, hyphens and underscores"]
    );
    assert!(errors_with(|d| d["family"] = json!("a".repeat(256))).len() == 1);
    assert!(errors_with(|d| d["family"] = json!("My_App-2")).is_empty());
}

#[test]
fn network_modes() {
    for mode in ["awsvpc", "bridge", "host", "none"] {
        assert!(
            errors_with(|d| d["networkMode"] = json!(mode)).is_empty(),
            "{mode}"
        );
    }
    assert_eq!(
        errors_with(|d| d["networkMode"] = json!("overlay")),
        ["networkMode: \"overlay\" is not a network mode (none, host, bridge or awsvpc)"]
    );
    let mut doc = minimal();
    doc.as_object_mut().unwrap().remove("networkMode");
    assert!(warnings_of(&doc).is_empty());
    assert_eq!(parse(&doc.to_string()).network_mode(), NetworkMode::Bridge);
}

#[test]
fn port_mappings_per_network_mode() {
    let with_ports = |mode: &str, ports: serde_json::Value| {
        errors_with(|d| {
            d["networkMode"] = json!(mode);
            d["containerDefinitions"][0]["portMappings"] = ports.clone();
        })
    };
    assert!(with_ports("bridge", json!([{"containerPort": 80, "hostPort": 8080}])).is_empty());
    assert!(
        with_ports(
            "bridge",
            json!([{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}])
        )
        .is_empty()
    );
    assert_eq!(
        with_ports("awsvpc", json!([{"containerPort": 80, "hostPort": 8080}])),
        [
            "containerDefinitions[0].portMappings[0].hostPort: 8080 must equal containerPort (80) in awsvpc network mode"
        ]
    );
    assert_eq!(
        with_ports("bridge", json!([{"containerPort": 80, "hostPort": 22}])),
        [
            "containerDefinitions[0].portMappings[0].hostPort: host port 22 is reserved (ECS keeps 22, 2375, 2376, 51678, 51679 for the host)"
        ]
    );
    assert_eq!(
        with_ports("host", json!([{"containerPort": 51678}])),
        [
            "containerDefinitions[0].portMappings[0].containerPort: host port 51678 is reserved (ECS keeps 22, 2375, 2376, 51678, 51679 for the host)"
        ]
    );
    // awsvpc: the task's own address, so port 22 of it is the task's business.
    assert!(with_ports("awsvpc", json!([{"containerPort": 22}])).is_empty());
    assert_eq!(
        with_ports(
            "bridge",
            json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}])
        ),
        ["containerDefinitions[0].portMappings[1]: host port 8080/tcp is mapped twice in the task"]
    );
    assert!(with_ports("bridge", json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8080, "protocol": "udp"}])).is_empty());
}

#[test]
fn pid_and_ipc_modes() {
    assert!(
        errors_with(|d| {
            d["pidMode"] = json!("task");
            d["ipcMode"] = json!("none");
        })
        .is_empty()
    );
    assert_eq!(
        errors_with(|d| {
            d["pidMode"] = json!("shared");
            d["ipcMode"] = json!("private");
        }),
        [
            "pidMode: \"shared\" is not a PID mode (host or task)",
            "ipcMode: \"private\" is not an IPC mode (host, task or none)"
        ]
    );
}

#[test]
fn at_least_one_container_and_one_essential() {
    assert_eq!(
        errors_with(|d| d["containerDefinitions"] = json!([])),
        ["containerDefinitions: must have at least one container"]
    );
    assert_eq!(
        errors_with(|d| container(d, 0)["essential"] = json!(false)),
        ["containerDefinitions: must have at least one essential container"]
    );
}

#[test]
fn container_names_and_images() {
    assert_eq!(
        errors_with(|d| container(d, 0)["name"] = json!("")),
        ["containerDefinitions[0].name: is required"]
    );
    assert_eq!(
        errors_with(|d| container(d, 0)["name"] = json!("web/1")),
        [
            "containerDefinitions[0].name: \"web/1\" must be up to 255 letters, digits, hyphens and underscores"
        ]
    );
    assert_eq!(
        errors_with(|d| {
            container(d, 0).as_object_mut().unwrap().remove("image");
        }),
        ["containerDefinitions[0].image: is required"]
    );
}

#[test]
fn container_memory_rules() {
    assert_eq!(
        errors_with(|d| container(d, 0)["memory"] = json!(5)),
        ["containerDefinitions[0].memory: must be at least 6 MiB"]
    );
    assert_eq!(
        errors_with(|d| container(d, 0)["memoryReservation"] = json!(2)),
        ["containerDefinitions[0].memoryReservation: must be at least 6 MiB"]
    );
    assert_eq!(
        errors_with(|d| container(d, 0)["memoryReservation"] = json!(128)),
        [
            "containerDefinitions[0].memory: 128 MiB must be greater than memoryReservation (128 MiB)"
        ]
    );
    assert!(
        errors_with(|d| {
            container(d, 0).as_object_mut().unwrap().remove("memory");
            container(d, 0)["memoryReservation"] = json!(64);
        })
        .is_empty()
    );
    assert_eq!(
        errors_with(|d| {
            container(d, 0).as_object_mut().unwrap().remove("memory");
        }),
        [
            "containerDefinitions[0].memory: give memory or memoryReservation, as the task has no task-level memory"
        ]
    );
    // With task-level memory, a container may leave both out.
    assert!(
        errors_with(|d| {
            d["memory"] = json!("1GB");
            container(d, 0).as_object_mut().unwrap().remove("memory");
        })
        .is_empty()
    );
}

#[test]
fn task_sizes() {
    assert_eq!(
        errors_with(|d| d["cpu"] = json!("lots")),
        [
            "cpu: \"lots\" is not a CPU amount (give CPU units such as 512, or vCPUs such as \"1 vCPU\")"
        ]
    );
    assert_eq!(
        errors_with(|d| d["cpu"] = json!(64)),
        ["cpu: 64 units is outside ECS's range of 128 to 196608 (0.125 to 192 vCPU)"]
    );
    assert_eq!(
        errors_with(|d| d["memory"] = json!("a lot")),
        ["memory: \"a lot\" is not a memory size (give MiB such as 2048, or GB such as \"2GB\")"]
    );
    assert!(
        errors_with(|d| {
            d["cpu"] = json!(".25 vcpu");
            d["memory"] = json!("1.5GB");
        })
        .is_empty()
    );
}

#[test]
fn container_sizes_must_fit_the_task() {
    let errors = errors_with(|d| {
        d["cpu"] = json!("256");
        d["memory"] = json!("512");
        d["containerDefinitions"] = json!([
            {"name": "a", "image": "i", "cpu": 200, "memory": 1024},
            {"name": "b", "image": "i", "cpu": 100, "memoryReservation": 100}
        ]);
    });
    assert_eq!(
        errors,
        [
            "cpu: the containers' cpu adds up to 300 units, more than the task's 256",
            "containerDefinitions[0].memory: 1024 MiB is more than the task's memory (512 MiB)",
            "memory: the containers reserve 1124 MiB, more than the task's 512 MiB"
        ]
    );
}

#[test]
fn depends_on_rules() {
    let errors = errors_with(|d| {
        d["containerDefinitions"] = json!([
            {"name": "app", "image": "i", "memory": 64, "dependsOn": [
                {"containerName": "ghost", "condition": "START"},
                {"containerName": "app", "condition": "START"},
                {"containerName": "db", "condition": "COMPLETE"},
                {"containerName": "db", "condition": "SUCCESS"},
                {"containerName": "db", "condition": "HEALTHY"},
                {"containerName": "db", "condition": "READY"}
            ]},
            {"name": "db", "image": "i", "memory": 64}
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].dependsOn[0].containerName: \"ghost\" is not a container of the task",
            "containerDefinitions[0].dependsOn[1].containerName: a container cannot depend on itself",
            "containerDefinitions[0].dependsOn[2].condition: COMPLETE cannot be used on essential container \"db\": the task would stop when it exits",
            "containerDefinitions[0].dependsOn[3].condition: SUCCESS cannot be used on essential container \"db\": the task would stop when it exits",
            "containerDefinitions[0].dependsOn[4].condition: HEALTHY needs a healthCheck on container \"db\"",
            "containerDefinitions[0].dependsOn[5].condition: \"READY\" is not a condition (START, COMPLETE, SUCCESS or HEALTHY)",
        ]
    );
}

#[test]
fn links_are_checked_as_ecs_checks_them() {
    let three = |d: &mut Value, mode: &str| {
        d["networkMode"] = json!(mode);
        d["containerDefinitions"] = json!([
            {"name": "app", "image": "i", "memory": 64},
            {"name": "db", "image": "i", "memory": 64},
            {"name": "off", "image": "i", "memory": 64, "disableNetworking": true}
        ]);
    };
    let errors = errors_with(|d| {
        three(d, "bridge");
        d["containerDefinitions"][0]["links"] =
            json!(["db", "db:database", "web", "app", "db:my.db", "", "off"]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].links[2]: \"web\" is not a container of the task",
            "containerDefinitions[0].links[3]: a container cannot link to itself",
            "containerDefinitions[0].links[4]: \"db:my.db\": \"my.db\" must be 1 to 255 letters, digits, hyphens and underscores",
            "containerDefinitions[0].links[5]: \"\": \"\" must be 1 to 255 letters, digits, hyphens and underscores",
            "containerDefinitions[0].links[6]: container \"off\" has networking disabled and cannot be reached",
        ]
    );
    for mode in ["awsvpc", "host", "none"] {
        let errors = errors_with(|d| {
            three(d, mode);
            d["containerDefinitions"]
                .as_array_mut()
                .unwrap()
                .truncate(2);
            d["containerDefinitions"][0]["links"] = json!(["db"]);
        });
        assert_eq!(
            errors,
            [format!(
                "containerDefinitions[0].links: only supported in networkMode bridge, not {mode}"
            )]
        );
    }
    let errors = errors_with(|d| {
        three(d, "bridge");
        d["containerDefinitions"][2]["links"] = json!(["db"]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[2].links: a container without networking cannot reach linked containers"
        ]
    );
    // Without networkMode the task is in bridge mode, where links are supported.
    let mut doc = minimal();
    doc.as_object_mut().unwrap().remove("networkMode");
    doc["containerDefinitions"] = json!([
        {"name": "app", "image": "i", "memory": 64, "links": ["db:database"]},
        {"name": "db", "image": "i", "memory": 64}
    ]);
    assert!(warnings_of(&doc).is_empty(), "{:?}", warnings_of(&doc));
}

#[test]
fn a_cycle_through_links_names_the_links() {
    let errors = errors_with(|d| {
        d["networkMode"] = json!("bridge");
        d["containerDefinitions"] = json!([
            {"name": "a", "image": "i", "memory": 64, "links": ["b:bee"]},
            {"name": "b", "image": "i", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}
        ]);
    });
    assert_eq!(
        errors,
        ["containerDefinitions[0].links: dependency cycle a -> b -> a"]
    );
}

#[test]
fn dependency_cycles_are_named() {
    let errors = errors_with(|d| {
        d["containerDefinitions"] = json!([
            {"name": "lone", "image": "i", "memory": 64},
            {"name": "a", "image": "i", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "START"}]},
            {"name": "b", "image": "i", "memory": 64, "dependsOn": [{"containerName": "c", "condition": "START"}]},
            {"name": "c", "image": "i", "memory": 64, "dependsOn": [
                {"containerName": "lone", "condition": "START"},
                {"containerName": "a", "condition": "START"}
            ]}
        ]);
    });
    assert_eq!(
        errors,
        ["containerDefinitions[1].dependsOn: dependency cycle a -> b -> c -> a"]
    );
    let errors = errors_with(|d| {
        d["containerDefinitions"] = json!([
            {"name": "x", "image": "i", "memory": 64, "dependsOn": [{"containerName": "y", "condition": "START"}]},
            {"name": "y", "image": "i", "memory": 64, "dependsOn": [{"containerName": "x", "condition": "START"}]}
        ]);
    });
    assert_eq!(
        errors,
        ["containerDefinitions[0].dependsOn: dependency cycle x -> y -> x"]
    );
}

#[test]
fn timeouts() {
    assert_eq!(
        errors_with(|d| container(d, 0)["stopTimeout"] = json!(121)),
        ["containerDefinitions[0].stopTimeout: 121 must be between 0 and 120 seconds"]
    );
    assert!(errors_with(|d| container(d, 0)["stopTimeout"] = json!(120)).is_empty());
    assert_eq!(
        errors_with(|d| container(d, 0)["startTimeout"] = json!(-1)),
        ["containerDefinitions[0].startTimeout: -1 is negative"]
    );
}

#[test]
fn volumes_and_mount_points() {
    let errors = errors_with(|d| {
        d["volumes"] = json!([
            {"name": "data"},
            {"name": "data"},
            {"name": "rel", "host": {"sourcePath": "srv"}},
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "driver": "rexray"}}
        ]);
        container(d, 0)["mountPoints"] = json!([
            {"sourceVolume": "data", "containerPath": "/data"},
            {"sourceVolume": "nope", "containerPath": "/nope"},
            {"sourceVolume": "data", "containerPath": "relative"},
            {"sourceVolume": "data", "containerPath": "/data/"}
        ]);
    });
    assert_eq!(
        errors,
        [
            "volumes[1].name: \"data\" is the name of an earlier volume",
            "volumes[2].host.sourcePath: \"srv\" must be an absolute path",
            "volumes[3].efsVolumeConfiguration: EFS volumes are not supported; mount the file system on the host and use host.sourcePath",
            "volumes[4].dockerVolumeConfiguration.scope: \"shared\" is not supported; berth has task-scoped volumes, and host directories through host.sourcePath",
            "volumes[4].dockerVolumeConfiguration.driver: \"rexray\" is not supported; only the local driver is",
            "containerDefinitions[0].mountPoints[1].sourceVolume: \"nope\" is not a volume of the task",
            "containerDefinitions[0].mountPoints[2].containerPath: \"relative\" must be an absolute path",
            "containerDefinitions[0].mountPoints[3].containerPath: \"/data/\" is already a mount point of this container",
        ]
    );
}

#[test]
fn volumes_from_must_name_another_container() {
    let errors = errors_with(|d| {
        container(d, 0)["volumesFrom"] = json!([
            {"sourceContainer": "ghost"},
            {"sourceContainer": "app"}
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].volumesFrom[0].sourceContainer: \"ghost\" is not a container of the task",
            "containerDefinitions[0].volumesFrom[1].sourceContainer: a container cannot take volumes from itself",
        ]
    );
}

#[test]
fn health_check_ranges() {
    let errors = errors_with(|d| {
        container(d, 0)["healthCheck"] = json!({
            "command": ["CMD"], "interval": 4, "timeout": 61, "retries": 0, "startPeriod": 301
        });
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].healthCheck.command: CMD needs a program to run",
            "containerDefinitions[0].healthCheck.interval: 4 must be between 5 and 300",
            "containerDefinitions[0].healthCheck.timeout: 61 must be between 2 and 60",
            "containerDefinitions[0].healthCheck.retries: 0 must be between 1 and 10",
            "containerDefinitions[0].healthCheck.startPeriod: 301 must be between 0 and 300",
        ]
    );
    assert_eq!(
        errors_with(
            |d| container(d, 0)["healthCheck"] = json!({"command": ["curl", "-f", "localhost"]})
        ),
        [
            "containerDefinitions[0].healthCheck.command: must start with CMD, CMD-SHELL or NONE, not \"curl\""
        ]
    );
    assert!(errors_with(|d| {
        container(d, 0)["healthCheck"] = json!({"command": ["CMD", "/bin/check"], "interval": 5, "timeout": 2, "retries": 10, "startPeriod": 0});
    })
    .is_empty());
}

#[test]
fn restart_policy_limits() {
    let errors = errors_with(|d| {
        container(d, 0)["restartPolicy"] = json!({
            "ignoredExitCodes": (0..51).collect::<Vec<i64>>(),
            "restartAttemptPeriod": 59
        });
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].restartPolicy.enabled: is required",
            "containerDefinitions[0].restartPolicy.ignoredExitCodes: has 51 exit codes; at most 50 are allowed",
            "containerDefinitions[0].restartPolicy.restartAttemptPeriod: 59 must be between 60 and 1800",
        ]
    );
    assert_eq!(
        errors_with(|d| {
            container(d, 0)["restartPolicy"] = json!({
                "enabled": true, "ignoredExitCodes": [0, 4294967296_i64], "restartAttemptPeriod": 1801
            });
        }),
        [
            "containerDefinitions[0].restartPolicy.ignoredExitCodes[1]: 4294967296 is not an exit code",
            "containerDefinitions[0].restartPolicy.restartAttemptPeriod: 1801 must be between 60 and 1800",
        ]
    );
    let mut doc = minimal();
    container(&mut doc, 0)["restartPolicy"] = json!({"enabled": "yes"});
    let err = TaskDefinition::from_json(&doc.to_string()).unwrap_err();
    assert_eq!(err.path, "containerDefinitions[0].restartPolicy.enabled");
    // Supported now: no warning, at either bound.
    for period in [60, 1800] {
        let mut doc = minimal();
        container(&mut doc, 0)["restartPolicy"] = json!({
            "enabled": true, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": period
        });
        assert!(errors_of(&doc).is_empty(), "{:?}", errors_of(&doc));
        assert!(warnings_of(&doc).is_empty(), "{:?}", warnings_of(&doc));
    }
}

#[test]
fn docker_security_options() {
    use super::SecurityOption as O;
    assert_eq!(O::parse("no-new-privileges"), Ok(O::NoNewPrivileges(true)));
    assert_eq!(
        O::parse("no-new-privileges=true"),
        Ok(O::NoNewPrivileges(true))
    );
    assert_eq!(
        O::parse("no-new-privileges:false"),
        Ok(O::NoNewPrivileges(false))
    );
    assert_eq!(
        O::parse("apparmor:docker-default"),
        Ok(O::AppArmor("docker-default".into()))
    );
    assert_eq!(
        O::parse("apparmor=unconfined"),
        Ok(O::AppArmor("unconfined".into()))
    );
    assert_eq!(
        O::parse("label:type:svirt_apache_t"),
        Ok(O::Label("type:svirt_apache_t".into()))
    );

    let errors = errors_with(|d| {
        container(d, 0)["dockerSecurityOptions"] = json!([
            "no-new-privileges:maybe",
            "apparmor:",
            "seccomp=unconfined",
            "no-new-privileges"
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].dockerSecurityOptions[0]: no-new-privileges takes true or false, not \"maybe\"",
            "containerDefinitions[0].dockerSecurityOptions[1]: apparmor needs a profile name: apparmor:PROFILE",
            "containerDefinitions[0].dockerSecurityOptions[2]: \"seccomp=unconfined\" is not one of no-new-privileges, apparmor:PROFILE, label:VALUE, credentialspec:PATH",
        ]
    );
    let mut doc = minimal();
    container(&mut doc, 0)["dockerSecurityOptions"] = json!([
        "no-new-privileges",
        "apparmor:web",
        "label:disable",
        "credentialspec:file://gmsa.json"
    ]);
    assert_eq!(
        warnings_of(&doc),
        [
            "containerDefinitions[0].dockerSecurityOptions[2]: SELinux labels are not applied by berth; ignored",
            "containerDefinitions[0].dockerSecurityOptions[3]: credential specs are for Windows containers; ignored",
        ]
    );
    let def = parse(&doc.to_string());
    assert!(def.container_definitions[0].no_new_privileges());
    assert_eq!(
        def.container_definitions[0].apparmor_profile().as_deref(),
        Some("web")
    );

    // The last option of a kind counts; unconfined is no profile.
    container(&mut doc, 0)["dockerSecurityOptions"] = json!([
        "no-new-privileges",
        "apparmor:web",
        "no-new-privileges=false",
        "apparmor:unconfined"
    ]);
    let def = parse(&doc.to_string());
    assert!(!def.container_definitions[0].no_new_privileges());
    assert_eq!(def.container_definitions[0].apparmor_profile(), None);
}

#[test]
fn ulimits() {
    let errors = errors_with(|d| {
        container(d, 0)["ulimits"] = json!([
            {"name": "nofile", "softLimit": 2048, "hardLimit": 1024},
            {"name": "openfiles", "softLimit": 1, "hardLimit": 1},
            {"name": "core", "softLimit": -1, "hardLimit": 0},
            {"name": "stack", "softLimit": -2, "hardLimit": -1},
            {"name": "nofile", "softLimit": 1, "hardLimit": 1}
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].ulimits[0].softLimit: 2048 is greater than hardLimit (1024)",
            "containerDefinitions[0].ulimits[1].name: \"openfiles\" is not a ulimit (core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
            "containerDefinitions[0].ulimits[2].softLimit: -1 is greater than hardLimit (0)",
            "containerDefinitions[0].ulimits[3].softLimit: -2 is not a limit (-1 means unlimited)",
            "containerDefinitions[0].ulimits[4].name: \"nofile\" is set twice",
        ]
    );
}

#[test]
fn linux_parameters() {
    let errors = errors_with(|d| {
        container(d, 0)["linuxParameters"] = json!({
            "capabilities": {"add": ["NET_ADMIN", "CAP_SYS_TIME", "ALL", "FLY"], "drop": ["all", "CAP_WIZARD"]},
            "devices": [
                {"hostPath": "/dev/fuse", "permissions": ["read", "write", "delete"]},
                {"hostPath": "dev/null", "containerPath": "null"}
            ],
            "sharedMemorySize": 0,
            "tmpfs": [
                {"containerPath": "/run", "size": 64, "mountOptions": ["noexec", "mode=1777", "rbind"]},
                {"containerPath": "/tmp", "size": 0}
            ],
            "maxSwap": 100,
            "swappiness": 101
        });
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].linuxParameters.capabilities.add[3]: \"FLY\" is not a capability",
            "containerDefinitions[0].linuxParameters.capabilities.drop[1]: \"CAP_WIZARD\" is not a capability",
            "containerDefinitions[0].linuxParameters.devices[0].permissions[2]: \"delete\" is not a permission (read, write or mknod)",
            "containerDefinitions[0].linuxParameters.devices[1].hostPath: \"dev/null\" must be an absolute path",
            "containerDefinitions[0].linuxParameters.devices[1].containerPath: \"null\" must be an absolute path",
            "containerDefinitions[0].linuxParameters.sharedMemorySize: 0 MiB must be at least 1",
            "containerDefinitions[0].linuxParameters.tmpfs[0].mountOptions[2]: \"rbind\" is not a tmpfs mount option ECS accepts",
            "containerDefinitions[0].linuxParameters.tmpfs[1].size: 0 MiB must be at least 1",
            "containerDefinitions[0].linuxParameters.swappiness: 101 must be between 0 and 100",
        ]
    );
    assert_eq!(
        errors_with(|d| {
            container(d, 0).as_object_mut().unwrap().remove("memory");
            container(d, 0)["memoryReservation"] = json!(64);
            container(d, 0)["linuxParameters"] = json!({"maxSwap": 10});
        }),
        [
            "containerDefinitions[0].linuxParameters.maxSwap: needs memory on the container: swap is counted on top of it"
        ]
    );
}

#[test]
fn tmpfs_and_mount_points_share_destinations() {
    let errors = errors_with(|d| {
        d["volumes"] = json!([{"name": "v"}]);
        container(d, 0)["mountPoints"] = json!([{"sourceVolume": "v", "containerPath": "/run"}]);
        container(d, 0)["linuxParameters"] =
            json!({"tmpfs": [{"containerPath": "/run", "size": 8}]});
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].linuxParameters.tmpfs[0].containerPath: \"/run\" is already a mount point of this container"
        ]
    );
}

#[test]
fn port_mappings_in_host_mode() {
    let errors = errors_with(|d| {
        container(d, 0)["portMappings"] = json!([
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 0},
            {"hostPort": 70000},
            {"containerPort": 53, "protocol": "sctp"},
            {"containerPort": 443},
            {"containerPort": 443, "hostPort": 443, "protocol": "tcp"},
            {"containerPort": 443, "protocol": "udp"}
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].portMappings[0].hostPort: 8080 must equal containerPort (80) in host network mode",
            "containerDefinitions[0].portMappings[1].containerPort: 0 is not a port (1 to 65535)",
            "containerDefinitions[0].portMappings[2].containerPort: is required",
            "containerDefinitions[0].portMappings[2].hostPort: 70000 is not a port (0 to 65535)",
            "containerDefinitions[0].portMappings[3].protocol: \"sctp\" is not a protocol (tcp or udp)",
            "containerDefinitions[0].portMappings[5]: host port 443/tcp is mapped twice in the task",
        ]
    );
}

#[test]
fn two_containers_cannot_share_a_host_port() {
    let errors = errors_with(|d| {
        d["containerDefinitions"] = json!([
            {"name": "a", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80}]},
            {"name": "b", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 80}]}
        ]);
    });
    assert_eq!(
        errors,
        ["containerDefinitions[1].portMappings[0]: host port 80/tcp is mapped twice in the task"]
    );
}

#[test]
fn environment_entries_and_files() {
    let errors = errors_with(|d| {
        container(d, 0)["environment"] = json!([{"value": "x"}, {"name": "A=B", "value": "x"}]);
        container(d, 0)["environmentFiles"] = json!([
            {"value": "arn:aws:s3:::bucket/app.env", "type": "s3"},
            {"value": "/etc/app.env", "type": "ftp"},
            {"value": "app.env"}
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].environment[0].name: is required",
            "containerDefinitions[0].environment[1].name: \"A=B\" must not contain '=' or NUL",
            "containerDefinitions[0].environmentFiles[0].value: \"arn:aws:s3:::bucket/app.env\": S3 is not reachable from berth; give an absolute path or a file:// URL on this host",
            "containerDefinitions[0].environmentFiles[1].type: \"ftp\" is not a file type (ECS's only type is s3)",
            "containerDefinitions[0].environmentFiles[2].value: \"app.env\" must be an absolute path",
        ]
    );
}

#[test]
fn user_working_directory_hostname_and_dns() {
    let errors = errors_with(|d| {
        d["networkMode"] = json!("none");
        let c = container(d, 0);
        c["user"] = json!("app:");
        c["workingDirectory"] = json!("srv");
        c["hostname"] = json!("-bad");
        c["extraHosts"] = json!([{"hostname": "db", "ipAddress": "10.0.0.300"}]);
        c["dnsServers"] = json!(["8.8.8.8", "dns.google"]);
        c["dnsSearchDomains"] = json!(["corp example"]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].workingDirectory: \"srv\" must be an absolute path",
            "containerDefinitions[0].user: \"app:\" has an empty group",
            "containerDefinitions[0].hostname: \"-bad\" must be 1 to 64 letters, digits, hyphens and dots, not starting with a hyphen or dot",
            "containerDefinitions[0].extraHosts[0].ipAddress: \"10.0.0.300\" is not an IP address",
            "containerDefinitions[0].dnsServers[1]: \"dns.google\" is not an IP address",
            "containerDefinitions[0].dnsSearchDomains[0]: \"corp example\" is not a domain",
        ]
    );
}

#[test]
fn log_configuration() {
    let errors = errors_with(|d| {
        container(d, 0)["logConfiguration"] =
            json!({"logDriver": "json-file", "options": {"max-size": "ten", "max-file": "0"}});
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].logConfiguration.options.max-size: \"ten\" is not a size (such as 100k, 10m or 1g)",
            "containerDefinitions[0].logConfiguration.options.max-file: \"0\" must be a whole number of files, at least 1",
        ]
    );
    assert_eq!(
        errors_with(|d| {
            container(d, 0)["logConfiguration"] =
                json!({"logDriver": "json-file", "options": {"max-file": "3"}});
        }),
        [
            "containerDefinitions[0].logConfiguration.options.max-file: needs max-size: files rotate when they reach it"
        ]
    );
    let mut doc = minimal();
    container(&mut doc, 0)["logConfiguration"] = json!({
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/app"}
    });
    assert_eq!(
        warnings_of(&doc),
        [
            "containerDefinitions[0].logConfiguration.logDriver: awslogs is not supported; the \
          container's output is written to log files as with json-file"
        ]
    );
}

#[test]
fn unsupported_fields_are_warnings() {
    let mut doc = minimal();
    container(&mut doc, 0)["secrets"] =
        json!([{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:..."}]);
    container(&mut doc, 0)["dockerLabels"] =
        json!({"com.amazonaws.ecs.cluster": "prod", "team": "web"});
    container(&mut doc, 0)["hostname"] = json!("web");
    assert_eq!(
        warnings_of(&doc),
        [
            "containerDefinitions[0].hostname: has no effect in host network mode: the container has the host's hostname",
            "containerDefinitions[0].dockerLabels: \"com.amazonaws.ecs.cluster\" is set by berth; the value given is replaced",
            "containerDefinitions[0].secrets: not supported by berth; ignored",
        ]
    );
}

#[test]
fn overrides_change_a_copy_and_revalidate() {
    let def = parse(WEB_WITH_SIDECAR);
    let overrides = TaskOverride::from_json(
        r#"{
            "containerOverrides": [
                {"name": "web", "command": ["nginx", "-g", "daemon off;"],
                 "environment": [{"name": "MODE", "value": "debug"}, {"name": "EXTRA", "value": "1"}],
                 "memory": 1024},
                {"name": "init", "cpu": 64}
            ],
            "cpu": "2 vCPU",
            "memory": 4096
        }"#,
    )
    .unwrap();
    let out = apply_overrides(&def, &overrides).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.cpu.as_deref(), Some("2 vCPU"));
    assert_eq!(out.memory.as_deref(), Some("4096"));
    let web = &out.container_definitions[0];
    assert_eq!(web.command, ["nginx", "-g", "daemon off;"]);
    assert_eq!(
        web.environment,
        [
            KeyValuePair::new("MODE", "debug"),
            KeyValuePair::new("EXTRA", "1")
        ]
    );
    assert_eq!(web.memory, Some(1024));
    assert_eq!(out.container_definitions[2].cpu, Some(64));
    // The original is untouched.
    assert_eq!(def.container_definitions[0].memory, Some(512));
}

#[test]
fn overrides_name_unknown_containers_and_new_problems() {
    let def = parse(WEB_WITH_SIDECAR);
    let overrides = TaskOverride::from_json(
        r#"{"containerOverrides": [{"name": "db", "memory": 64}, {"name": "web", "memory": 100}]}"#,
    )
    .unwrap();
    let err = apply_overrides(&def, &overrides).unwrap_err();
    assert_eq!(
        err.to_string(),
        "overrides.containerOverrides[0].name: \"db\" is not a container of the task definition; \
         containerDefinitions[0].memory: 100 MiB must be greater than memoryReservation (256 MiB)"
    );
}

#[test]
fn system_controls() {
    let ok = errors_with(|d| {
        d["networkMode"] = json!("awsvpc");
        container(d, 0)["systemControls"] = json!([
            {"namespace": "net.core.somaxconn", "value": "1024"},
            {"namespace": "kernel.shmmax", "value": "68719476736"},
            {"namespace": "fs.mqueue.msg_max", "value": "20"},
        ]);
    });
    assert!(ok.is_empty(), "{ok:?}");
    // With networking disabled, a container on the host's network has a namespace of its own.
    let ok = errors_with(|d| {
        d["networkMode"] = json!("host");
        let c = container(d, 0);
        c["disableNetworking"] = json!(true);
        c["systemControls"] = json!([{"namespace": "net.core.somaxconn", "value": "1024"}]);
    });
    assert!(ok.is_empty(), "{ok:?}");

    let errors = errors_with(|d| {
        d["networkMode"] = json!("host");
        d["ipcMode"] = json!("host");
        container(d, 0)["systemControls"] = json!([
            {"namespace": "net.ipv4.tcp_keepalive_time", "value": "600"},
            {"namespace": "kernel.msgmax", "value": "65536"},
            {"namespace": "vm.swappiness", "value": "10"},
            {"namespace": "net.core.somaxconn"},
            {"value": "1"},
            {"namespace": "vm.swappiness", "value": "11"},
        ]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].systemControls[0].namespace: \"net.ipv4.tcp_keepalive_time\": a network parameter is not supported with networkMode host",
            "containerDefinitions[0].systemControls[1].namespace: \"kernel.msgmax\": an IPC parameter is not supported with ipcMode host",
            "containerDefinitions[0].systemControls[2].namespace: \"vm.swappiness\": not namespaced: setting it would change the host's kernel",
            "containerDefinitions[0].systemControls[3].value: missing",
            "containerDefinitions[0].systemControls[3].namespace: \"net.core.somaxconn\": a network parameter is not supported with networkMode host",
            "containerDefinitions[0].systemControls[4].namespace: missing",
            "containerDefinitions[0].systemControls[5].namespace: \"vm.swappiness\" is set twice",
        ]
    );
}

#[test]
fn disable_networking() {
    let ok = errors_with(|d| {
        d["networkMode"] = json!("bridge");
        container(d, 0)["disableNetworking"] = json!(true);
    });
    assert!(ok.is_empty(), "{ok:?}");
    let errors = errors_with(|d| {
        d["networkMode"] = json!("awsvpc");
        let c = container(d, 0);
        c["disableNetworking"] = json!(true);
        c["portMappings"] = json!([{"containerPort": 80}]);
    });
    assert_eq!(
        errors,
        [
            "containerDefinitions[0].disableNetworking: not supported with networkMode awsvpc",
            "containerDefinitions[0].disableNetworking: a container without networking cannot have portMappings",
        ]
    );
}
