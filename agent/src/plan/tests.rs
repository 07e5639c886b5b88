use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Mount, Spec};
use serde_json::{Value, json};

use super::*;
use crate::taskdef::TaskDefinition;

const TASK_ID: &str = "5f3c0e2a9b7d4c1e8f6a0b2c4d6e8f01";

fn task() -> TaskContext {
    TaskContext {
        task_id: TASK_ID.to_string(),
        task_arn: Some(format!(
            "arn:aws:ecs:local:000000000000:task/default/{TASK_ID}"
        )),
        revision: Some(3),
        task_dir: PathBuf::from("/var/lib/berth/tasks").join(TASK_ID),
    }
}

fn host() -> Host {
    Host {
        cgroup_root: "/berth/tasks".to_string(),
        cpus: 4,
        memory_mib: 8192,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn nginx() -> ContainerInput {
    ContainerInput {
        image: ImageConfig {
            entrypoint: strings(&["/docker-entrypoint.sh"]),
            cmd: strings(&["nginx", "-g", "daemon off;"]),
            env: strings(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.25.4"]),
            working_dir: None,
            user: None,
            labels: BTreeMap::from([("maintainer".to_string(), "NGINX".to_string())]),
        },
        users: ImageUsers {
            passwd: "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n".into(),
            group: "root:x:0:root\nnginx:x:101:nginx\nwww-data:x:82:nginx\n".into(),
        },
        environment_files: vec![],
    }
}

fn busybox() -> ContainerInput {
    ContainerInput {
        image: ImageConfig {
            cmd: strings(&["sh"]),
            ..Default::default()
        },
        users: ImageUsers {
            passwd: "root:x:0:0:root:/root:/bin/sh\n".into(),
            group: "root:x:0:\n".into(),
        },
        environment_files: vec![],
    }
}

/// The web server with a log shipper and an init container, sharing a scratch volume.
fn web_def() -> Value {
    json!({
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
                "image": "nginx:1.25",
                "cpu": 512,
                "memory": 512,
                "memoryReservation": 256,
                "portMappings": [{"containerPort": 80}],
                "mountPoints": [
                    {"sourceVolume": "shared-logs", "containerPath": "/var/log/nginx"},
                    {"sourceVolume": "static", "containerPath": "/usr/share/nginx/html", "readOnly": true}
                ],
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                "healthCheck": {"command": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"], "interval": 10},
                "environment": [{"name": "MODE", "value": "production"}],
                "dockerLabels": {"team": "web"},
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
            },
            {
                "name": "log-shipper",
                "image": "busybox:1.36",
                "essential": false,
                "memory": 64,
                "command": ["sh", "-c", "tail -F /logs/access.log"],
                "volumesFrom": [{"sourceContainer": "web", "readOnly": true}],
                "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}],
                "stopTimeout": 5
            },
            {
                "name": "init",
                "image": "busybox:1.36",
                "essential": false,
                "memory": 32,
                "command": ["sh", "-c", "echo ready"]
            }
        ]
    })
}

fn inputs_for(def: &TaskDefinition) -> BTreeMap<String, ContainerInput> {
    def.container_definitions
        .iter()
        .map(|c| {
            let input = if c.image.starts_with("nginx") {
                nginx()
            } else {
                busybox()
            };
            (c.name.clone(), input)
        })
        .collect()
}

fn plan_of(doc: &Value) -> Result<TaskPlan, PlanError> {
    let def = TaskDefinition::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    plan_task(&def, &task(), &host(), &inputs_for(&def))
}

fn plan(doc: &Value) -> TaskPlan {
    plan_of(doc).unwrap_or_else(|e| panic!("{e}"))
}

/// `minimal` is one busybox container in host mode; `change` edits it.
fn plan_with(change: impl FnOnce(&mut Value)) -> TaskPlan {
    let mut doc = json!({
        "family": "app",
        "networkMode": "host",
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128}]
    });
    change(&mut doc);
    plan(&doc)
}

fn errors_with(change: impl FnOnce(&mut Value)) -> String {
    let mut doc = json!({
        "family": "app",
        "networkMode": "host",
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128}]
    });
    change(&mut doc);
    match plan_of(&doc) {
        Ok(_) => panic!("planned"),
        Err(e) => e.to_string(),
    }
}

fn spec<'a>(plan: &'a TaskPlan, name: &str) -> &'a Spec {
    &plan
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .spec
}

fn container<'a>(plan: &'a TaskPlan, name: &str) -> &'a ContainerPlan {
    plan.containers.iter().find(|c| c.name == name).unwrap()
}

fn mount_at<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(destination))
}

fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

fn caps(spec: &Spec) -> oci_spec::runtime::Capabilities {
    spec.process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
}

/// The paths of the container's network namespaces: None for a new one.
fn networks(plan: &TaskPlan, name: &str) -> Vec<Option<PathBuf>> {
    spec(plan, name)
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .filter(|ns| ns.typ() == LinuxNamespaceType::Network)
        .map(|ns| ns.path().clone())
        .collect()
}

#[test]
fn task_cgroup_and_limits() {
    let p = plan(&web_def());
    assert_eq!(p.task_cgroup, format!("/berth/tasks/{TASK_ID}"));
    let cpu = p.task_resources.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(100_000), Some(100_000)));
    assert_eq!(p.task_resources.memory().unwrap().limit(), Some(2 << 30));
    assert_eq!(p.volume_dirs, [task().task_dir.join("volumes/shared-logs")]);
    assert_eq!(
        p.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["web", "log-shipper", "init"]
    );
}

#[test]
fn container_cgroups_are_children_of_the_task() {
    let p = plan(&web_def());
    let linux = spec(&p, "web").linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(&format!("/berth/tasks/{TASK_ID}/web")))
    );
    let r = linux.resources().as_ref().unwrap();
    assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    assert_eq!(r.memory().unwrap().limit(), Some(512 << 20));
    assert_eq!(r.memory().unwrap().reservation(), Some(256 << 20));
    assert_eq!(r.pids().unwrap().limit(), -1);
    let rules: Vec<String> = r
        .devices()
        .iter()
        .flatten()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(rules[0], "a *:* rwm");
    assert!(rules.contains(&"c 136:* rwm".to_string()));
}

#[test]
fn run_order_and_supervision_settings() {
    let p = plan(&web_def());
    let web = container(&p, "web");
    assert!(web.essential);
    assert_eq!(web.depends_on, [("init".to_string(), Condition::Success)]);
    assert_eq!(web.stop_timeout, Duration::from_secs(30));
    assert_eq!(web.start_timeout, None);
    assert_eq!(web.log, DEFAULT_LOG);
    assert_eq!(
        web.health_check,
        Some(HealthCheck {
            command: strings(&["/bin/sh", "-c", "wget -q -O- http://localhost/ || exit 1"]),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        })
    );
    assert!(!web.init);
    assert_eq!(web.port_mappings[0].container_port, Some(80));
    let shipper = container(&p, "log-shipper");
    assert!(!shipper.essential);
    assert_eq!(shipper.stop_timeout, Duration::from_secs(5));
    assert_eq!(
        shipper.depends_on,
        [("web".to_string(), Condition::Healthy)]
    );
}

#[test]
fn none_mode_joins_the_sandbox_until_its_pid_is_known() {
    let mut p = plan(&web_def());
    assert_eq!(
        p.sandbox,
        Some(Sandbox {
            namespaces: vec![LinuxNamespaceType::Network]
        })
    );
    assert!(p.containers.iter().all(|c| c.shares_task_namespaces));
    assert_eq!(
        networks(&p, "web"),
        [Some(PathBuf::from("/proc/{sandbox}/ns/net"))]
    );
    p.join_sandbox(4242);
    assert_eq!(
        networks(&p, "web"),
        [Some(PathBuf::from("/proc/4242/ns/net"))]
    );
    // Own namespaces stay own.
    let own = spec(&p, "web")
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .filter(|ns| ns.path().is_none())
        .count();
    assert_eq!(own, 5);
}

#[test]
fn hostname_defaults_to_the_task_id_prefix() {
    let p = plan(&web_def());
    let web = spec(&p, "web");
    assert_eq!(web.hostname().as_deref(), Some("5f3c0e2a9b7d"));
    assert!(env(web).contains(&"HOSTNAME=5f3c0e2a9b7d".to_string()));
    let files = &container(&p, "web").files;
    assert_eq!(
        files[0],
        TaskFile {
            path: PathBuf::from("web/hostname"),
            content: FileContent::Text("5f3c0e2a9b7d\n".into()),
        }
    );
    assert_eq!(
        files[1].content,
        FileContent::Text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t5f3c0e2a9b7d\n"
                .into()
        )
    );
    assert_eq!(
        files[2].content,
        FileContent::HostCopy {
            host_path: "/etc/resolv.conf".into(),
            append: String::new()
        }
    );
    let hosts = mount_at(web, "/etc/hosts").unwrap();
    assert_eq!(
        hosts.source().as_deref(),
        Some(task().task_dir.join("web/hosts").as_path())
    );
}

#[test]
fn definition_hostname_extra_hosts_and_dns() {
    let p = plan_with(|d| {
        d["networkMode"] = json!("none");
        let c = &mut d["containerDefinitions"][0];
        c["hostname"] = json!("api");
        c["extraHosts"] = json!([{"hostname": "db.internal", "ipAddress": "10.0.0.5"}]);
        c["dnsServers"] = json!(["10.0.0.2", "1.1.1.1"]);
        c["dnsSearchDomains"] = json!(["corp.example"]);
    });
    let app = container(&p, "app");
    assert_eq!(app.spec.hostname().as_deref(), Some("api"));
    assert_eq!(
        app.files[1].content,
        FileContent::Text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tapi\n10.0.0.5\tdb.internal\n"
                .into()
        )
    );
    assert_eq!(
        app.files[2].content,
        FileContent::Text("search corp.example\nnameserver 10.0.0.2\nnameserver 1.1.1.1\n".into())
    );
}

#[test]
fn links_name_the_linked_containers_on_loopback_and_start_after_them() {
    let p = plan_with(|d| {
        d["networkMode"] = json!("bridge");
        d["containerDefinitions"] = json!([
            {"name": "app", "image": "busybox", "memory": 64,
             "links": ["db", "cache:redis"],
             "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
             "extraHosts": [{"hostname": "api.internal", "ipAddress": "10.0.0.9"}]},
            {"name": "db", "image": "busybox", "memory": 64,
             "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "cache", "image": "busybox", "memory": 64}
        ]);
    });
    let app = container(&p, "app");
    assert_eq!(
        app.files[1].content,
        FileContent::Text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t5f3c0e2a9b7d\n\
             10.0.0.9\tapi.internal\n127.0.0.1\tdb\n127.0.0.1\tredis cache\n"
                .into()
        )
    );
    // The explicit condition on db stays; the link to cache adds START.
    assert_eq!(
        app.depends_on,
        [
            ("db".to_string(), Condition::Healthy),
            ("cache".to_string(), Condition::Start)
        ]
    );
    assert!(container(&p, "db").depends_on.is_empty());
}

#[test]
fn host_mode_has_the_hosts_network_and_names() {
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["extraHosts"] =
            json!([{"hostname": "db", "ipAddress": "192.0.2.7"}]);
    });
    assert_eq!(p.sandbox, None);
    let app = container(&p, "app");
    assert!(!app.shares_task_namespaces);
    assert_eq!(app.spec.hostname(), &None);
    assert!(!env(&app.spec).iter().any(|e| e.starts_with("HOSTNAME=")));
    let types: Vec<LinuxNamespaceType> = app
        .spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .map(|ns| ns.typ())
        .collect();
    assert!(!types.contains(&LinuxNamespaceType::Network));
    assert!(!types.contains(&LinuxNamespaceType::Uts));
    assert_eq!(
        app.files[0].content,
        FileContent::HostCopy {
            host_path: "/etc/hostname".into(),
            append: String::new()
        }
    );
    assert_eq!(
        app.files[1].content,
        FileContent::HostCopy {
            host_path: "/etc/hosts".into(),
            append: "192.0.2.7\tdb\n".into()
        }
    );
}

#[test]
fn process_from_definition_and_image() {
    let p = plan(&web_def());
    let web = spec(&p, "web").process().as_ref().unwrap();
    assert_eq!(
        web.args().as_deref(),
        Some(&strings(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])[..])
    );
    assert_eq!(web.cwd(), Path::new("/"));
    assert_eq!(
        web.env().as_deref(),
        Some(
            &strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=5f3c0e2a9b7d",
                "NGINX_VERSION=1.25.4",
                "MODE=production",
                "HOME=/root",
            ])[..]
        )
    );
    assert_eq!(web.terminal(), Some(false));
    assert_eq!(web.no_new_privileges(), Some(false));
    assert_eq!(web.oom_score_adj(), None);
    let rlimits = web.rlimits().as_ref().unwrap();
    assert_eq!(rlimits.len(), 1);
    assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (65536, 65536));
    assert_eq!(
        spec(&p, "init")
            .process()
            .as_ref()
            .unwrap()
            .args()
            .as_deref(),
        Some(&strings(&["sh", "-c", "echo ready"])[..])
    );
    // No ulimits, no rlimits: the runtime's defaults are the host's.
    assert_eq!(
        spec(&p, "init").process().as_ref().unwrap().rlimits(),
        &None
    );
}

#[test]
fn environment_files_sit_between_image_and_definition() {
    let mut doc = web_def();
    doc["containerDefinitions"][0]["environment"] = json!([{"name": "B", "value": "definition"}]);
    let def = TaskDefinition::from_json(&doc.to_string()).unwrap();
    let mut inputs = inputs_for(&def);
    inputs.get_mut("web").unwrap().environment_files = vec![
        ("NGINX_VERSION".into(), "from-file".into()),
        ("A".into(), "file".into()),
        ("B".into(), "file".into()),
    ];
    let p = plan_task(&def, &task(), &host(), &inputs).unwrap();
    let e = env(spec(&p, "web"));
    assert!(e.contains(&"NGINX_VERSION=from-file".to_string()));
    assert!(e.contains(&"A=file".to_string()));
    assert!(e.contains(&"B=definition".to_string()));
}

#[test]
fn users_resolve_through_the_image() {
    let mut doc = web_def();
    doc["containerDefinitions"][0]["user"] = json!("nginx");
    let p = plan(&doc);
    let user = spec(&p, "web").process().as_ref().unwrap().user().clone();
    assert_eq!((user.uid(), user.gid()), (101, 101));
    assert_eq!(user.additional_gids().as_deref(), Some(&[82, 101][..]));
    assert!(env(spec(&p, "web")).contains(&"HOME=/var/cache/nginx".to_string()));

    doc["containerDefinitions"][0]["user"] = json!("1000:1000");
    let p = plan(&doc);
    let user = spec(&p, "web").process().as_ref().unwrap().user().clone();
    assert_eq!(
        (user.uid(), user.gid(), user.additional_gids().clone()),
        (1000, 1000, None)
    );
}

#[test]
fn image_user_is_used_when_the_definition_has_none() {
    let def = TaskDefinition::from_json(&web_def().to_string()).unwrap();
    let mut inputs = inputs_for(&def);
    inputs.get_mut("web").unwrap().image.user = Some("nginx:www-data".into());
    let p = plan_task(&def, &task(), &host(), &inputs).unwrap();
    let user = spec(&p, "web").process().as_ref().unwrap().user().clone();
    assert_eq!((user.uid(), user.gid()), (101, 82));

    inputs.get_mut("web").unwrap().image.user = Some("postgres".into());
    let err = plan_task(&def, &task(), &host(), &inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].image: the image's user: no user \"postgres\" in the image's /etc/passwd"
    );
}

#[test]
fn unknown_user_and_nothing_to_run_name_their_fields() {
    let mut doc = web_def();
    doc["containerDefinitions"][0]["user"] = json!("app");
    doc["containerDefinitions"][2]["command"] = json!([]);
    let def = TaskDefinition::from_json(&doc.to_string()).unwrap();
    let mut inputs = inputs_for(&def);
    inputs.get_mut("init").unwrap().image.cmd.clear();
    let err = plan_task(&def, &task(), &host(), &inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].user: no user \"app\" in the image's /etc/passwd; \
         containerDefinitions[2].command: nothing to run: neither the definition (entryPoint, \
         command) nor the image (Entrypoint, Cmd) gives a command"
    );
}

#[test]
fn invalid_definitions_are_not_planned() {
    let err = errors_with(|d| d["containerDefinitions"][0]["memory"] = json!(2));
    assert_eq!(
        err,
        "containerDefinitions[0].memory: must be at least 6 MiB"
    );
}

#[test]
fn missing_input_and_bad_task_ids() {
    let def = TaskDefinition::from_json(&web_def().to_string()).unwrap();
    let mut inputs = inputs_for(&def);
    inputs.remove("init");
    assert_eq!(
        plan_task(&def, &task(), &host(), &inputs)
            .unwrap_err()
            .to_string(),
        "containerDefinitions[2]: no image config was given for container \"init\""
    );
    let mut bad = task();
    bad.task_id = "../etc".into();
    assert_eq!(
        plan_task(&def, &bad, &host(), &inputs_for(&def))
            .unwrap_err()
            .to_string(),
        "task id \"../etc\": must be 1 to 64 letters, digits, hyphens and underscores"
    );
}

#[test]
fn tasks_too_big_for_the_host_are_refused() {
    let mut doc = web_def();
    doc["cpu"] = json!("8 vCPU");
    doc["memory"] = json!("16GB");
    assert_eq!(
        plan_of(&doc).unwrap_err().to_string(),
        "cpu: 8192 units is more than this host's 4 CPUs (4096 units); \
         memory: 16384 MiB is more than this host's 8192 MiB"
    );
    let err = errors_with(|d| {
        d["containerDefinitions"][0]["cpu"] = json!(5000);
        d["containerDefinitions"][0]["memory"] = json!(9000);
    });
    assert_eq!(
        err,
        "containerDefinitions: the containers' cpu adds up to 5000 units, more than this \
         host's 4 CPUs (4096 units); containerDefinitions: the containers reserve 9000 MiB, \
         more than this host's 8192 MiB"
    );
}

#[test]
fn default_mounts_like_docker() {
    let p = plan(&web_def());
    let web = spec(&p, "web");
    let destinations: Vec<String> = web
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(
        destinations,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/var/log/nginx",
            "/usr/share/nginx/html",
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf",
        ]
    );
    let shm = mount_at(web, "/dev/shm").unwrap();
    assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
    assert!(options(shm).contains(&"size=65536k".to_string()));
    assert!(options(mount_at(web, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(options(mount_at(web, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    let root = web.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("rootfs"));
    assert_eq!(root.readonly(), Some(false));
}

#[test]
fn volumes_are_binds_of_host_and_scratch_directories() {
    let p = plan(&web_def());
    let web = spec(&p, "web");
    let logs = mount_at(web, "/var/log/nginx").unwrap();
    assert_eq!(logs.typ().as_deref(), Some("bind"));
    assert_eq!(
        logs.source().as_deref(),
        Some(task().task_dir.join("volumes/shared-logs").as_path())
    );
    assert_eq!(options(logs), ["rbind", "rprivate"]);
    let html = mount_at(web, "/usr/share/nginx/html").unwrap();
    assert_eq!(html.source().as_deref(), Some(Path::new("/srv/static")));
    assert_eq!(options(html), ["rbind", "rprivate", "ro"]);
}

#[test]
fn volumes_from_takes_the_source_containers_mount_points() {
    let p = plan(&web_def());
    let shipper = spec(&p, "log-shipper");
    let logs = mount_at(shipper, "/var/log/nginx").unwrap();
    assert_eq!(
        logs.source().as_deref(),
        Some(task().task_dir.join("volumes/shared-logs").as_path())
    );
    // readOnly on volumesFrom makes every mount read-only.
    assert_eq!(options(logs), ["rbind", "rprivate", "ro"]);
    assert!(mount_at(shipper, "/usr/share/nginx/html").is_some());
    assert!(mount_at(spec(&p, "init"), "/var/log/nginx").is_none());
}

#[test]
fn tmpfs_shm_size_and_readonly_root() {
    let p = plan_with(|d| {
        let c = &mut d["containerDefinitions"][0];
        c["readonlyRootFilesystem"] = json!(true);
        c["linuxParameters"] = json!({
            "sharedMemorySize": 256,
            "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["exec", "mode=1777"]}]
        });
    });
    let app = spec(&p, "app");
    assert_eq!(app.root().as_ref().unwrap().readonly(), Some(true));
    assert!(options(mount_at(app, "/dev/shm").unwrap()).contains(&"size=262144k".to_string()));
    let run = mount_at(app, "/run").unwrap();
    assert_eq!(run.typ().as_deref(), Some("tmpfs"));
    assert_eq!(
        options(run),
        ["nosuid", "nodev", "noexec", "exec", "mode=1777", "size=16m"]
    );
    assert!(options(mount_at(app, "/etc/hosts").unwrap()).contains(&"ro".to_string()));
}

#[test]
fn a_mount_the_definition_asks_for_replaces_the_default() {
    let p = plan_with(|d| {
        d["volumes"] = json!([{"name": "hosts", "host": {"sourcePath": "/etc/hosts"}}]);
        let c = &mut d["containerDefinitions"][0];
        c["mountPoints"] = json!([{"sourceVolume": "hosts", "containerPath": "/etc/hosts"}]);
        c["linuxParameters"] = json!({"tmpfs": [{"containerPath": "/dev/shm", "size": 8}]});
    });
    let app = container(&p, "app");
    let at = |dest: &str| {
        app.spec
            .mounts()
            .iter()
            .flatten()
            .filter(|m| m.destination() == Path::new(dest))
            .count()
    };
    assert_eq!(at("/etc/hosts"), 1);
    assert_eq!(at("/dev/shm"), 1);
    assert_eq!(
        mount_at(&app.spec, "/etc/hosts")
            .unwrap()
            .source()
            .as_deref(),
        Some(Path::new("/etc/hosts"))
    );
    assert!(!app.files.iter().any(|f| f.path.ends_with("hosts")));
}

#[test]
fn ipc_modes() {
    let p = plan_with(|d| d["ipcMode"] = json!("none"));
    assert!(mount_at(spec(&p, "app"), "/dev/shm").is_none());

    let p = plan_with(|d| d["ipcMode"] = json!("host"));
    let shm = mount_at(spec(&p, "app"), "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));

    let p = plan_with(|d| {
        d["ipcMode"] = json!("task");
        d["containerDefinitions"][0]["linuxParameters"] = json!({"sharedMemorySize": 128});
    });
    assert_eq!(
        p.shared_shm,
        Some(SharedShm {
            path: task().task_dir.join("shm"),
            size_mib: 128
        })
    );
    let shm = mount_at(spec(&p, "app"), "/dev/shm").unwrap();
    assert_eq!(
        shm.source().as_deref(),
        Some(task().task_dir.join("shm").as_path())
    );
    assert_eq!(
        p.sandbox,
        Some(Sandbox {
            namespaces: vec![LinuxNamespaceType::Ipc]
        })
    );
}

#[test]
fn default_security_is_dockers() {
    let p = plan(&web_def());
    let web = spec(&p, "web");
    assert_eq!(caps(web), DEFAULT_CAPABILITIES.iter().copied().collect());
    let linux = web.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_some());
    let masked = linux.masked_paths().clone().unwrap();
    for path in [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(masked.contains(&path.to_string()), "{path}");
    }
    assert_eq!(
        linux.readonly_paths().clone().unwrap(),
        [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );
}

#[test]
fn added_capabilities_reach_caps_and_seccomp() {
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["linuxParameters"] =
            json!({"capabilities": {"add": ["SYS_ADMIN"], "drop": ["NET_RAW"]}});
    });
    let app = spec(&p, "app");
    let set = caps(app);
    assert!(set.contains(&Capability::SysAdmin));
    assert!(!set.contains(&Capability::NetRaw));
    let names: Vec<String> = app
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .as_ref()
        .unwrap()
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().clone())
        .collect();
    assert!(!names.contains(&"mount".to_string()));
    assert!(!names.contains(&"clone".to_string()));
    assert!(names.contains(&"reboot".to_string()));
}

#[test]
fn privileged_containers_are_unconfined() {
    let p = plan_with(|d| d["containerDefinitions"][0]["privileged"] = json!(true));
    let app = spec(&p, "app");
    assert_eq!(caps(app).len(), 41);
    let linux = app.linux().as_ref().unwrap();
    assert_eq!(linux.seccomp(), &None);
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    let rules: Vec<String> = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .iter()
        .flatten()
        .map(|r| format!("{} {r}", r.allow()))
        .collect();
    assert_eq!(rules, ["true a *:* rwm"]);
    assert!(!options(mount_at(app, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(options(mount_at(app, "/sys/fs/cgroup").unwrap()).contains(&"rw".to_string()));
}

#[test]
fn host_devices_are_added_once_looked_up() {
    let mut p = plan_with(|d| {
        d["containerDefinitions"][0]["linuxParameters"] =
            json!({"devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}]});
    });
    let app = p.containers.iter_mut().next().unwrap();
    assert_eq!(app.devices.len(), 1);
    assert_eq!(
        app.add_device_nodes(&[]).unwrap_err().to_string(),
        "container \"app\": 0 device nodes given for 1 requested devices"
    );
    app.add_device_nodes(&[DeviceNode {
        kind: DeviceKind::Char,
        major: 10,
        minor: 229,
        file_mode: 0o666,
        uid: 0,
        gid: 0,
    }])
    .unwrap();
    let linux = app.spec.linux().as_ref().unwrap();
    let devices = linux.devices().as_ref().unwrap();
    assert_eq!(devices[0].path(), Path::new("/dev/fuse"));
    let last = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(last, "c 10:229 rw");
}

#[test]
fn annotations_carry_labels_and_ecs_keys() {
    let p = plan(&web_def());
    let a = spec(&p, "web").annotations().clone().unwrap();
    assert_eq!(a["maintainer"], "NGINX");
    assert_eq!(a["team"], "web");
    assert_eq!(a["com.amazonaws.ecs.task-definition-family"], "web-app");
    assert_eq!(a["com.amazonaws.ecs.task-definition-version"], "3");
    assert_eq!(a["com.amazonaws.ecs.container-name"], "web");
    assert_eq!(a["com.amazonaws.ecs.cluster"], "default");
    assert_eq!(
        a["com.amazonaws.ecs.task-arn"],
        format!("arn:aws:ecs:local:000000000000:task/default/{TASK_ID}")
    );
    assert_eq!(a["dev.berth.task-id"], TASK_ID);
}

#[test]
fn init_log_and_timeouts() {
    let p = plan_with(|d| {
        let c = &mut d["containerDefinitions"][0];
        c["linuxParameters"] = json!({"initProcessEnabled": true});
        c["logConfiguration"] =
            json!({"logDriver": "json-file", "options": {"max-size": "10m", "max-file": "3"}});
        c["startTimeout"] = json!(60);
        c["healthCheck"] =
            json!({"command": ["CMD", "/bin/check", "--quick"], "retries": 5, "startPeriod": 20});
    });
    let app = container(&p, "app");
    assert!(app.init);
    assert_eq!(
        app.log,
        LogOptions {
            max_size_bytes: Some(10 << 20),
            max_files: 3
        }
    );
    assert_eq!(app.start_timeout, Some(Duration::from_secs(60)));
    let hc = app.health_check.as_ref().unwrap();
    assert_eq!(hc.command, ["/bin/check", "--quick"]);
    assert_eq!((hc.interval, hc.retries), (Duration::from_secs(30), 5));
    assert_eq!(hc.start_period, Duration::from_secs(20));

    let p = plan_with(|d| {
        d["containerDefinitions"][0]["logConfiguration"] = json!({"logDriver": "json-file"});
    });
    assert_eq!(
        container(&p, "app").log,
        LogOptions {
            max_size_bytes: None,
            max_files: 1
        }
    );
}

#[test]
fn specs_serialize_as_runtime_config() {
    let p = plan(&web_def());
    let config = serde_json::to_value(spec(&p, "web")).unwrap();
    assert_eq!(config["ociVersion"], "1.0.2");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["user"]["uid"], 0);
    assert_eq!(
        config["linux"]["cgroupsPath"],
        format!("/berth/tasks/{TASK_ID}/web")
    );
    assert_eq!(
        config["linux"]["seccomp"]["defaultAction"],
        "SCMP_ACT_ALLOW"
    );
    assert!(
        config["process"]["capabilities"]
            .get("inheritable")
            .is_none()
    );
    assert!(config["process"]["capabilities"].get("ambient").is_none());
    // What it says is what the runtime reads back.
    let back: Spec = serde_json::from_value(config).unwrap();
    assert_eq!(&back, spec(&p, "web"));
}

#[test]
fn a_none_health_check_plans_no_check() {
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["healthCheck"] = json!({"command": ["NONE"]});
    });
    assert_eq!(container(&p, "app").health_check, None);
}

#[test]
fn security_options_set_no_new_privileges_and_the_apparmor_profile() {
    let p = plan_with(|_| {});
    let process = spec(&p, "app").process().clone().unwrap();
    assert_eq!(process.no_new_privileges(), Some(false));
    assert_eq!(process.apparmor_profile(), &None);

    let p = plan_with(|d| {
        d["containerDefinitions"][0]["dockerSecurityOptions"] =
            json!(["no-new-privileges", "apparmor:berth-web"]);
    });
    let process = spec(&p, "app").process().clone().unwrap();
    assert_eq!(process.no_new_privileges(), Some(true));
    assert_eq!(process.apparmor_profile().as_deref(), Some("berth-web"));
}

#[test]
fn an_enabled_restart_policy_is_planned_with_ecs_defaults() {
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["restartPolicy"] = json!({"enabled": true});
    });
    assert_eq!(
        container(&p, "app").restart,
        Some(Restart {
            ignored_exit_codes: vec![],
            attempt_period: Duration::from_secs(300),
        })
    );
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["restartPolicy"] =
            json!({"enabled": true, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 60});
    });
    assert_eq!(
        container(&p, "app").restart,
        Some(Restart {
            ignored_exit_codes: vec![0, 143],
            attempt_period: Duration::from_secs(60),
        })
    );
    // A disabled policy, like none, never restarts.
    let p = plan_with(|d| {
        d["containerDefinitions"][0]["restartPolicy"] =
            json!({"enabled": false, "restartAttemptPeriod": 60});
    });
    assert_eq!(container(&p, "app").restart, None);
    assert_eq!(container(&plan_with(|_| {}), "app").restart, None);
}

#[test]
fn a_container_with_networking_disabled_gets_a_network_namespace_of_its_own() {
    let mut def = web_def();
    def["containerDefinitions"][1]["disableNetworking"] = json!(true);
    let p = plan(&def);
    assert_eq!(networks(&p, "log-shipper"), [None]);
    assert_eq!(
        networks(&p, "init"),
        [Some(PathBuf::from("/proc/{sandbox}/ns/net"))]
    );

    // On the host's network too: the host's namespace is left out, a new one put in.
    def["networkMode"] = json!("host");
    let p = plan(&def);
    assert_eq!(networks(&p, "log-shipper"), [None]);
    assert!(networks(&p, "init").is_empty());
}
