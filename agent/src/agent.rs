//! The agent: ECS actions on this host's one cluster. It keeps task definitions and tasks
//! in the store, starts a supervisor per task, and learns how tasks fare from the status
//! files the supervisors write (announced on its notify socket, read again on start-up).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{Actions, ApiError};
use crate::ecs::{self, Task, task_arn, task_definition_arn};
use crate::images::{Images, PullBehavior};
use crate::net;
use crate::plan::{self, ContainerInput, FileContent, TaskContext};
use crate::store::{Store, StoredTaskDefinition, TaskFilter};
use crate::supervisor::task::{
    Condition as SupCondition, ContainerSpec, Dependency, HealthCheck as SupHealthCheck,
    RestartPolicy as SupRestartPolicy, STOP_FILE, StopRequest, TASK_FILE, TaskSpec, TaskStatus,
    read_status,
};
use crate::taskdef::{self, TaskDefinition, TaskOverride};

/// Where the agent keeps things and how it behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// berth.db, images, tasks/<id> (default /var/lib/berth).
    pub state_dir: PathBuf,
    /// Runtime state and sockets (default /run/berth).
    pub run_dir: PathBuf,
    /// The berth-supervisor binary (default: next to the running executable).
    pub supervisor: PathBuf,
    pub pull_behavior: PullBehavior,
    /// How long stopped tasks stay listed before their files go.
    pub task_retention: Duration,
    /// Capacity to offer; None measures the host (1024 CPU units per core, its memory).
    pub cpu_units: Option<u64>,
    pub memory_mib: Option<u64>,
    /// The datagram socket supervisors announce changes on.
    pub notify_socket: PathBuf,
    /// The bridge that bridge and awsvpc tasks join.
    pub network: net::NetworkConfig,
}

impl Config {
    pub fn new(state_dir: &Path, run_dir: &Path) -> Config {
        // Next to the running program (berth), one level up (an example or test binary
        // in a cargo target dir), else whatever PATH finds.
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let supervisor = exe_dir
            .iter()
            .flat_map(|d| [d.join("berth-supervisor"), d.join("../berth-supervisor")])
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("berth-supervisor"));
        Config {
            state_dir: state_dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            supervisor,
            pull_behavior: PullBehavior::Default,
            task_retention: Duration::from_secs(3600),
            cpu_units: None,
            memory_mib: None,
            notify_socket: run_dir.join("notify.sock"),
            network: net::NetworkConfig::default(),
        }
    }
}

/// The agent, shareable between threads: cloning it is cheap and every clone is the same
/// agent.
///
/// Every ECS action goes through [`Actions::call`] with the ECS API's request and
/// response shapes, the way the API socket serves them:
///
/// ```no_run
/// use berth_agent::api::Actions;
/// use berth_agent::images::StoreImages;
/// use berth_agent::{Agent, Config};
/// use std::path::Path;
///
/// let state = Path::new("/var/lib/berth");
/// let images = StoreImages::open(state, Vec::new()).unwrap();
/// let agent = Agent::open(Config::new(state, Path::new("/run/berth")), Box::new(images)).unwrap();
/// agent.watch().unwrap();
/// let run = agent
///     .call("RunTask", serde_json::json!({"taskDefinition": "web:3", "count": 2}))
///     .unwrap();
/// println!("{}", run["tasks"][0]["taskArn"]);
/// ```
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    store: Mutex<Store>,
    images: Box<dyn Images>,
    host_id: String,
    cpu_units: u64,
    memory_mib: u64,
    services: crate::service::Services,
    /// Whether the host is ready for bridge tasks.
    host_network_ready: Mutex<bool>,
}

pub const CGROUP_ROOT: &str = "/berth/task";

impl Agent {
    /// Opens the store and picks up every task a previous agent left running.
    pub fn open(cfg: Config, images: Box<dyn Images>) -> Result<Agent, String> {
        for d in [&cfg.state_dir, &cfg.run_dir, &cfg.state_dir.join("tasks")] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let store = Store::open(&cfg.state_dir.join("berth.db")).map_err(|e| e.to_string())?;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let cpu_units = cfg.cpu_units.unwrap_or(cpus * 1024);
        let memory_mib = cfg.memory_mib.unwrap_or_else(host_memory_mib);
        let host_id = std::fs::read_to_string("/etc/machine-id")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "berth".into());
        let agent = Agent {
            inner: Arc::new(Inner {
                cfg,
                store: Mutex::new(store),
                images,
                host_id,
                cpu_units,
                memory_mib,
                services: Default::default(),
                host_network_ready: Mutex::new(false),
            }),
        };
        agent.refresh_all();
        Ok(agent)
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Listens on the notify socket and refreshes a task whenever its supervisor speaks;
    /// also cleans up expired stopped tasks once a minute. Runs on its own threads.
    pub fn watch(&self) -> Result<(), String> {
        let path = &self.inner.cfg.notify_socket;
        let _ = std::fs::remove_file(path);
        let sock = std::os::unix::net::UnixDatagram::bind(path)
            .map_err(|e| format!("bind {}: {e}", path.display()))?;
        let agent = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = sock.recv(&mut buf) {
                let id = String::from_utf8_lossy(&buf[..n]).to_string();
                agent.refresh(&id);
            }
        });
        let agent = self.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(60));
                agent.clean_up_expired();
            }
        });
        Ok(())
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn services(&self) -> &crate::service::Services {
        &self.inner.services
    }

    // ---- task definitions ----

    pub fn register_task_definition(&self, body: Value) -> Result<Value, ApiError> {
        let def = TaskDefinition::from_json(&body.to_string())
            .map_err(|e| ApiError::client(e.to_string()))?;
        let warnings = def
            .validate()
            .map_err(|e| ApiError::client(e.to_string()))?;
        for w in &warnings {
            tracing::warn!(family = %def.family, "{w}");
        }
        let normalized = serde_json::to_value(&def).map_err(|e| ApiError::server(e.to_string()))?;
        let stored = self
            .store()
            .register_task_definition(&def.family, &normalized, ecs::now())
            .map_err(|e| ApiError::server(e.to_string()))?;
        Ok(json!({"taskDefinition": definition_json(&stored), "tags": []}))
    }

    pub(crate) fn resolve_definition(
        &self,
        reference: &str,
    ) -> Result<StoredTaskDefinition, ApiError> {
        let (family, revision) =
            ecs::parse_task_definition_ref(reference).map_err(ApiError::client)?;
        self.store()
            .task_definition(&family, revision)
            .map_err(|e| ApiError::server(e.to_string()))?
            .ok_or_else(|| {
                ApiError::client(match revision {
                    Some(r) => format!("taskDefinition: {family}:{r} does not exist"),
                    None => format!("taskDefinition: no ACTIVE revision of family {family:?}"),
                })
            })
    }

    pub fn describe_task_definition(&self, body: Value) -> Result<Value, ApiError> {
        let reference = str_field(&body, "taskDefinition")?;
        let stored = self.resolve_definition(&reference)?;
        Ok(json!({"taskDefinition": definition_json(&stored), "tags": []}))
    }

    pub fn list_task_definitions(&self, body: Value) -> Result<Value, ApiError> {
        let family = body["familyPrefix"].as_str();
        let status = body["status"].as_str().unwrap_or("ACTIVE");
        let mut list = self
            .store()
            .list_task_definitions(family, Some(status))
            .map_err(|e| ApiError::server(e.to_string()))?;
        if body["sort"].as_str() == Some("DESC") {
            list.reverse();
        }
        let arns: Vec<String> = list
            .iter()
            .map(|(f, r)| task_definition_arn(f, *r))
            .collect();
        Ok(json!({"taskDefinitionArns": arns}))
    }

    pub fn list_task_definition_families(&self, body: Value) -> Result<Value, ApiError> {
        let status = match body["status"].as_str().unwrap_or("ACTIVE") {
            "ALL" => None,
            s => Some(s.to_string()),
        };
        let families = self
            .store()
            .list_families(body["familyPrefix"].as_str(), status.as_deref())
            .map_err(|e| ApiError::server(e.to_string()))?;
        Ok(json!({"families": families}))
    }

    pub fn deregister_task_definition(&self, body: Value) -> Result<Value, ApiError> {
        let reference = str_field(&body, "taskDefinition")?;
        let (family, revision) =
            ecs::parse_task_definition_ref(&reference).map_err(ApiError::client)?;
        let revision = revision.ok_or_else(|| {
            ApiError::client("taskDefinition: name a revision (family:revision) to deregister")
        })?;
        let stored = self
            .store()
            .deregister_task_definition(&family, revision, ecs::now())
            .map_err(|e| ApiError::server(e.to_string()))?
            .ok_or_else(|| {
                ApiError::client(format!(
                    "taskDefinition: {family}:{revision} does not exist"
                ))
            })?;
        Ok(json!({"taskDefinition": definition_json(&stored)}))
    }

    // ---- tasks ----

    pub fn run_task(&self, body: Value) -> Result<Value, ApiError> {
        let reference = str_field(&body, "taskDefinition")?;
        let stored = self.resolve_definition(&reference)?;
        // A service keeps its tasks going on a revision deregistered since, as in ECS.
        if stored.status != "ACTIVE" && body["berthService"].is_null() {
            return Err(ApiError::client(format!(
                "taskDefinition: {}:{} is INACTIVE and cannot run new tasks",
                stored.family, stored.revision
            )));
        }
        let count = body["count"].as_u64().unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(ApiError::invalid("count: must be between 1 and 10"));
        }
        let def = TaskDefinition::from_json(&stored.body.to_string())
            .map_err(|e| ApiError::server(e.to_string()))?;
        let overrides_json = body.get("overrides").cloned().unwrap_or(json!({}));
        let def = if overrides_json.as_object().is_some_and(|o| !o.is_empty()) {
            let o = TaskOverride::from_json(&overrides_json.to_string())
                .map_err(|e| ApiError::client(format!("overrides: {e}")))?;
            taskdef::apply_overrides(&def, &o).map_err(|e| ApiError::client(e.to_string()))?
        } else {
            def
        };
        def.validate()
            .map_err(|e| ApiError::client(e.to_string()))?;
        let (cpu, memory) = reservation(&def);
        if cpu > self.inner.cpu_units || memory > self.inner.memory_mib {
            return Err(ApiError::client(format!(
                "the task needs {cpu} CPU units and {memory} MiB; this host has {} and {} in all",
                self.inner.cpu_units, self.inner.memory_mib
            )));
        }
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for _ in 0..count {
            // The capacity check and the reservation happen under one lock, so that
            // parallel run-task calls cannot overcommit.
            let mut store = self.store();
            let (used_cpu, used_mem) = reserved(&store);
            if used_cpu + cpu > self.inner.cpu_units {
                failures.push(json!({"arn": task_definition_arn(&stored.family, stored.revision), "reason": "RESOURCE:CPU"}));
                continue;
            }
            if used_mem + memory > self.inner.memory_mib {
                failures.push(json!({"arn": task_definition_arn(&stored.family, stored.revision), "reason": "RESOURCE:MEMORY"}));
                continue;
            }
            let id = new_task_id();
            let task = self.new_task(
                &id,
                &stored,
                &def,
                &body,
                overrides_json.clone(),
                cpu,
                memory,
            );
            store
                .put_task(&task)
                .map_err(|e| ApiError::server(e.to_string()))?;
            drop(store);
            tasks.push(task.clone());
            let agent = self.clone();
            let def = def.clone();
            std::thread::spawn(move || agent.start_task(task, def));
        }
        Ok(json!({"tasks": tasks, "failures": failures}))
    }

    #[allow(clippy::too_many_arguments)]
    fn new_task(
        &self,
        id: &str,
        stored: &StoredTaskDefinition,
        def: &TaskDefinition,
        body: &Value,
        overrides: Value,
        cpu: u64,
        memory: u64,
    ) -> Task {
        let arn = task_arn(id);
        let containers = def
            .container_definitions
            .iter()
            .map(|c| ecs::Container {
                container_arn: ecs::container_arn(id, &c.name),
                task_arn: arn.clone(),
                name: c.name.clone(),
                image: c.image.clone(),
                runtime_id: Some(crate::supervisor::runtime_id(id, &c.name)),
                last_status: "PENDING".into(),
                health_status: "UNKNOWN".into(),
                cpu: c.cpu.map(|v| v.to_string()),
                memory: c.memory.map(|v| v.to_string()),
                memory_reservation: c.memory_reservation.map(|v| v.to_string()),
                ..Default::default()
            })
            .collect();
        let mut task = Task {
            task_arn: arn,
            cluster_arn: ecs::cluster_arn(),
            task_definition_arn: task_definition_arn(&stored.family, stored.revision),
            container_instance_arn: ecs::container_instance_arn(&self.inner.host_id),
            overrides,
            last_status: "PROVISIONING".into(),
            desired_status: "RUNNING".into(),
            cpu: def.cpu.clone(),
            memory: def.memory.clone(),
            containers,
            started_by: body["startedBy"].as_str().map(str::to_string),
            version: 1,
            created_at: ecs::now(),
            group: body["group"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("family:{}", stored.family)),
            launch_type: "EC2".into(),
            health_status: "UNKNOWN".into(),
            local: ecs::Local {
                family: stored.family.clone(),
                revision: stored.revision,
                task_dir: self
                    .inner
                    .cfg
                    .state_dir
                    .join("tasks")
                    .join(id)
                    .display()
                    .to_string(),
                service: body["berthService"].as_str().map(str::to_string),
                reserved_cpu: cpu,
                reserved_memory: memory,
                images: Vec::new(),
                essential_exited: None,
            },
            ..Default::default()
        };
        net::host_bindings(def, &mut task);
        task
    }

    /// Pulls the images, plans the containers and hands the task to a new supervisor.
    /// A failure stops the task with TaskFailedToStart and a reason that says why.
    fn start_task(&self, mut task: Task, def: TaskDefinition) {
        if let Err(reason) = self.launch(&mut task, &def) {
            tracing::warn!(task = %task.id(), "{reason}");
            let now = ecs::now();
            task.last_status = "STOPPED".into();
            task.desired_status = "STOPPED".into();
            task.stop_code = Some("TaskFailedToStart".into());
            task.stopped_reason = Some(reason);
            task.stopping_at.get_or_insert(now);
            task.stopped_at = Some(now);
            task.execution_stopped_at = Some(now);
            for c in &mut task.containers {
                c.last_status = "STOPPED".into();
            }
            self.inner.images.release(task.id());
            let _ = self.store().put_task(&task);
            self.inner.services.notify();
        }
    }

    fn launch(&self, task: &mut Task, def: &TaskDefinition) -> Result<(), String> {
        let id = task.id().to_string();
        let task_dir = PathBuf::from(&task.local.task_dir);
        std::fs::create_dir_all(&task_dir)
            .map_err(|e| format!("create {}: {e}", task_dir.display()))?;

        task.pull_started_at = Some(ecs::now());
        self.save_if_wanted(task);
        let mut env_files = taskdef::read_environment_files(def).map_err(|e| e.to_string())?;
        let mut inputs = BTreeMap::new();
        let mut layers = BTreeMap::new();
        let mut digests = BTreeMap::new();
        for (i, c) in def.container_definitions.iter().enumerate() {
            let image = self
                .inner
                .images
                .resolve(&c.image, self.inner.cfg.pull_behavior)
                .map_err(|e| format!("CannotPullContainerError: {e}"))?;
            task.containers[i].image_digest = Some(image.digest.clone());
            task.local.images.push(image.digest.clone());
            inputs.insert(
                c.name.clone(),
                ContainerInput {
                    image: image.config.clone(),
                    users: image.users.clone(),
                    environment_files: env_files.remove(&c.name).unwrap_or_default(),
                },
            );
            layers.insert(c.name.clone(), image.layers.clone());
            digests.insert(c.name.clone(), image.digest.clone());
        }
        self.inner.images.lease(&id, &task.local.images)?;
        task.pull_stopped_at = Some(ecs::now());

        let ctx = TaskContext {
            task_id: id.clone(),
            task_arn: Some(task.task_arn.clone()),
            revision: Some(task.local.revision),
            task_dir: task_dir.clone(),
        };
        let host = plan::Host {
            cgroup_root: CGROUP_ROOT.into(),
            cpus: 0,
            memory_mib: 0,
        };
        let plan = plan::plan_task(def, &ctx, &host, &inputs).map_err(|e| e.to_string())?;
        for d in &plan.volume_dirs {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        if let Some(shm) = &plan.shared_shm {
            std::fs::create_dir_all(&shm.path)
                .map_err(|e| format!("create {}: {e}", shm.path.display()))?;
            let data = format!("size={}m,mode=1777", shm.size_mib);
            nix::mount::mount(
                Some("shm"),
                &shm.path,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC,
                Some(data.as_str()),
            )
            .map_err(|e| format!("mount the task's /dev/shm at {}: {e}", shm.path.display()))?;
        }
        let mut containers = Vec::new();
        for mut c in plan.containers {
            for f in &c.files {
                write_task_file(&task_dir, &f.path, &f.content)?;
            }
            let nodes = c
                .devices
                .iter()
                .map(|d| device_node(&d.host_path))
                .collect::<Result<Vec<_>, _>>()?;
            if !nodes.is_empty() {
                c.add_device_nodes(&nodes).map_err(|e| e.to_string())?;
            }
            let bundle = task_dir.join("containers").join(&c.name);
            std::fs::create_dir_all(&bundle)
                .map_err(|e| format!("create {}: {e}", bundle.display()))?;
            containers.push(ContainerSpec {
                name: c.name.clone(),
                essential: c.essential,
                depends_on: c
                    .depends_on
                    .iter()
                    .map(|(name, cond)| Dependency {
                        container: name.clone(),
                        condition: match cond {
                            taskdef::Condition::Start => SupCondition::Start,
                            taskdef::Condition::Complete => SupCondition::Complete,
                            taskdef::Condition::Success => SupCondition::Success,
                            taskdef::Condition::Healthy => SupCondition::Healthy,
                            // validate() refuses unknown conditions before a plan exists.
                            taskdef::Condition::Unknown(_) => SupCondition::Start,
                        },
                    })
                    .collect(),
                stop_timeout_secs: c.stop_timeout.as_secs(),
                start_timeout_secs: c.start_timeout.map(|t| t.as_secs()),
                health_check: c.health_check.as_ref().map(|h| SupHealthCheck {
                    command: h.command.clone(),
                    interval_secs: h.interval.as_secs(),
                    timeout_secs: h.timeout.as_secs(),
                    retries: h.retries,
                    start_period_secs: h.start_period.as_secs(),
                }),
                restart_policy: c.restart.as_ref().map(|r| SupRestartPolicy {
                    ignored_exit_codes: r.ignored_exit_codes.clone(),
                    attempt_period_secs: r.attempt_period.as_secs(),
                }),
                image: digests.get(&c.name).cloned(),
                image_store: Some(self.inner.cfg.state_dir.clone()),
                layers: layers.get(&c.name).cloned().unwrap_or_default(),
                log_max_size: c.log.max_size_bytes,
                log_max_files: c.log.max_files,
                interactive: c.interactive,
                spec: c.spec,
            });
        }
        let network = if net::uses_bridge(def) {
            self.host_network()?;
            Some(net::TaskNetwork {
                mode: def.network_mode().to_string(),
                config: self.inner.cfg.network.clone(),
                conflist: None,
                ports: net::port_requests(def),
            })
        } else {
            None
        };
        let spec = TaskSpec {
            task_id: id.clone(),
            task_cgroup: plan.task_cgroup,
            task_resources: Some(plan.task_resources),
            shared_namespaces: plan
                .sandbox
                .map(|s| s.namespaces.iter().map(|t| namespace_kind(*t)).collect())
                .unwrap_or_default(),
            hostname: None,
            containers,
            runtime_root: self.inner.cfg.run_dir.join("runtime"),
            notify_socket: Some(self.inner.cfg.notify_socket.clone()),
            network,
        };
        let text = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
        berth_runtime::container::state::write_volatile(&task_dir.join(TASK_FILE), &text)
            .map_err(|e| e.to_string())?;

        task.last_status = "PENDING".into();
        for c in &mut task.containers {
            c.last_status = "PENDING".into();
        }
        self.save_if_wanted(task);
        if self.current_desired(task.id()) == Some("STOPPED".into()) {
            return Err("Task stopped before it started".into());
        }
        spawn_supervisor(&self.inner.cfg.supervisor, &task_dir)?;
        Ok(())
    }

    /// Readies the host for bridge tasks, once per agent.
    fn host_network(&self) -> Result<(), String> {
        let mut ready = self
            .inner
            .host_network_ready
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !*ready {
            let cfg = &self.inner.cfg.network;
            net::host::prepare(cfg).map_err(|e| format!("the task network {}: {e}", cfg.bridge))?;
            *ready = true;
        }
        Ok(())
    }

    /// Saves progress unless a stop came in meanwhile (the stop's record wins).
    fn save_if_wanted(&self, task: &Task) {
        let mut store = self.store();
        let current: Option<Task> = store.task(task.id()).ok().flatten();
        if current.is_some_and(|c| c.desired_status == "STOPPED") {
            return;
        }
        let _ = store.put_task(task);
    }

    fn current_desired(&self, id: &str) -> Option<String> {
        let t: Option<Task> = self.store().task(id).ok().flatten();
        t.map(|t| t.desired_status)
    }

    pub fn stop_task(&self, body: Value) -> Result<Value, ApiError> {
        let name = str_field(&body, "task")?;
        let reason = body["reason"]
            .as_str()
            .unwrap_or("Task stopped by user")
            .to_string();
        let task = self.stop(&name, "UserInitiated", &reason)?;
        Ok(json!({"task": task}))
    }

    /// Asks the task's supervisor to stop it (or stops it outright when it has none yet),
    /// recording `stop_code` and `reason` unless the task already has a stop code.
    pub(crate) fn stop(&self, name: &str, stop_code: &str, reason: &str) -> Result<Task, ApiError> {
        let id = ecs::task_id_of(name).to_string();
        self.refresh(&id);
        let mut task: Task = self
            .store()
            .task(&id)
            .map_err(|e| ApiError::server(e.to_string()))?
            .ok_or_else(|| ApiError::invalid(format!("task {name:?} does not exist")))?;
        if task.last_status == "STOPPED" {
            return Err(ApiError::invalid(format!("task {id} is already STOPPED")));
        }
        task.desired_status = "STOPPED".into();
        if task.stop_code.is_none() {
            task.stop_code = Some(stop_code.into());
            task.stopped_reason = Some(reason.into());
        }
        let task_dir = PathBuf::from(&task.local.task_dir);
        let status = read_status(&task_dir);
        match status {
            Some(s) if s.last_status != "STOPPED" => {
                let req = StopRequest {
                    stop_code: stop_code.into(),
                    reason: reason.into(),
                };
                let text = serde_json::to_vec(&req).map_err(|e| ApiError::server(e.to_string()))?;
                berth_runtime::container::state::write_volatile(&task_dir.join(STOP_FILE), &text)
                    .map_err(|e| ApiError::server(e.to_string()))?;
                task.last_status = "DEACTIVATING".into();
                task.stopping_at.get_or_insert(ecs::now());
                // SAFETY: kill(2) of the supervisor, whose pid its own status file names.
                unsafe { libc::kill(s.supervisor_pid as i32, libc::SIGTERM) };
            }
            _ => {
                // Not handed to a supervisor yet: launch() sees the stop and gives up.
                task.last_status = "STOPPED".into();
                let now = ecs::now();
                task.stopping_at.get_or_insert(now);
                task.stopped_at = Some(now);
                for c in &mut task.containers {
                    c.last_status = "STOPPED".into();
                }
            }
        }
        self.store()
            .put_task(&task)
            .map_err(|e| ApiError::server(e.to_string()))?;
        self.inner.services.notify();
        Ok(task)
    }

    pub fn describe_tasks(&self, body: Value) -> Result<Value, ApiError> {
        let names = crate::api::name_list(&body, "tasks", "task")?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for name in names {
            let id = ecs::task_id_of(&name).to_string();
            self.refresh(&id);
            match self.store().task::<Task>(&id) {
                Ok(Some(t)) => tasks.push(t),
                _ => failures.push(json!({"arn": name, "reason": "MISSING"})),
            }
        }
        Ok(json!({"tasks": tasks, "failures": failures}))
    }

    pub fn list_tasks(&self, body: Value) -> Result<Value, ApiError> {
        let filter = TaskFilter {
            family: body["family"].as_str().map(str::to_string),
            desired_status: Some(
                body["desiredStatus"]
                    .as_str()
                    .unwrap_or("RUNNING")
                    .to_string(),
            ),
            started_by: body["startedBy"].as_str().map(str::to_string),
            service: body["serviceName"].as_str().map(str::to_string),
            active_only: false,
        };
        let tasks: Vec<Task> = self
            .store()
            .tasks(&filter)
            .map_err(|e| ApiError::server(e.to_string()))?;
        Ok(json!({"taskArns": tasks.iter().map(|t| t.task_arn.clone()).collect::<Vec<_>>()}))
    }

    pub fn tasks(&self, filter: &TaskFilter) -> Vec<Task> {
        self.store().tasks(filter).unwrap_or_default()
    }

    pub fn task(&self, name: &str) -> Option<Task> {
        let id = ecs::task_id_of(name);
        self.refresh(id);
        self.store().task(id).ok().flatten()
    }

    // ---- the cluster and this host ----

    fn counts(&self) -> (usize, usize) {
        let active: Vec<Task> = self
            .store()
            .tasks(&TaskFilter {
                active_only: true,
                ..Default::default()
            })
            .unwrap_or_default();
        let running = active.iter().filter(|t| t.last_status == "RUNNING").count();
        (running, active.len() - running)
    }

    pub fn describe_clusters(&self, _body: Value) -> Result<Value, ApiError> {
        let (running, pending) = self.counts();
        Ok(json!({"clusters": [{
            "clusterArn": ecs::cluster_arn(),
            "clusterName": ecs::CLUSTER,
            "status": "ACTIVE",
            "registeredContainerInstancesCount": 1,
            "runningTasksCount": running,
            "pendingTasksCount": pending,
            "activeServicesCount": self.active_service_count(),
        }], "failures": []}))
    }

    pub fn describe_container_instances(&self, _body: Value) -> Result<Value, ApiError> {
        let (running, pending) = self.counts();
        let (used_cpu, used_mem) = reserved(&self.store());
        let res = |cpu: u64, mem: u64| {
            json!([
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": mem},
            ])
        };
        Ok(json!({"containerInstances": [{
            "containerInstanceArn": ecs::container_instance_arn(&self.inner.host_id),
            "ec2InstanceId": nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            "status": "ACTIVE",
            "agentConnected": true,
            "registeredResources": res(self.inner.cpu_units, self.inner.memory_mib),
            "remainingResources": res(self.inner.cpu_units.saturating_sub(used_cpu), self.inner.memory_mib.saturating_sub(used_mem)),
            "runningTasksCount": running,
            "pendingTasksCount": pending,
            "versionInfo": {"agentVersion": env!("CARGO_PKG_VERSION")},
            "attributes": [{"name": "ecs.os-type", "value": "linux"}, {"name": "ecs.cpu-architecture", "value": std::env::consts::ARCH}],
        }], "failures": []}))
    }

    // ---- what the supervisors report ----

    /// Reads a task's status file into the store. A supervisor that is gone without a
    /// final status leaves a STOPPED task that says so.
    pub fn refresh(&self, id: &str) {
        let mut store = self.store();
        let Ok(Some(mut task)) = store.task::<Task>(id) else {
            return;
        };
        if task.last_status == "STOPPED" {
            return;
        }
        let dir = PathBuf::from(&task.local.task_dir);
        let Some(status) = read_status(&dir) else {
            return;
        };
        let before = task.clone();
        apply_status(&mut task, &status);
        if task.last_status != "STOPPED" && !supervisor_alive(status.supervisor_pid) {
            if let Err(e) = crate::sweep::dead_task(&dir) {
                tracing::warn!(task = %id, "clean up after the supervisor: {e}");
            }
            let now = ecs::now();
            task.last_status = "STOPPED".into();
            task.desired_status = "STOPPED".into();
            task.stop_code.get_or_insert("TaskFailedToStart".into());
            task.stopped_reason =
                Some("the task's supervisor exited without finishing the task".into());
            task.stopped_at = Some(now);
        }
        if task.last_status == "STOPPED" {
            self.inner.images.release(id);
        }
        if task != before {
            task.version += 1;
            let _ = store.put_task(&task);
            self.inner.services.notify();
        }
    }

    pub fn refresh_all(&self) {
        let active: Vec<Task> = self
            .store()
            .tasks(&TaskFilter {
                active_only: true,
                ..Default::default()
            })
            .unwrap_or_default();
        for t in active {
            self.refresh(t.id());
        }
    }

    /// Stopped tasks past their retention go, files and all.
    pub fn clean_up_expired(&self) {
        let before = ecs::now() - self.inner.cfg.task_retention.as_secs_f64();
        let ids = self.store().stopped_before(before).unwrap_or_default();
        for id in ids {
            let dir = self.inner.cfg.state_dir.join("tasks").join(&id);
            let _ = nix::mount::umount2(&dir.join("shm"), nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir_all(&dir);
            let _ = self.store().delete_task(&id);
        }
    }
}

impl Actions for Agent {
    fn call(&self, action: &str, body: Value) -> Result<Value, ApiError> {
        match action {
            "RegisterTaskDefinition" => self.register_task_definition(body),
            "DescribeTaskDefinition" => self.describe_task_definition(body),
            "ListTaskDefinitions" => self.list_task_definitions(body),
            "ListTaskDefinitionFamilies" => self.list_task_definition_families(body),
            "DeregisterTaskDefinition" => self.deregister_task_definition(body),
            "RunTask" => self.run_task(body),
            "StopTask" => self.stop_task(body),
            "DescribeTasks" => self.describe_tasks(body),
            "ListTasks" => self.list_tasks(body),
            "ListClusters" => Ok(json!({"clusterArns": [ecs::cluster_arn()]})),
            "DescribeClusters" => self.describe_clusters(body),
            "ListContainerInstances" => Ok(
                json!({"containerInstanceArns": [ecs::container_instance_arn(&self.inner.host_id)]}),
            ),
            "DescribeContainerInstances" => self.describe_container_instances(body),
            "CreateService" => self.create_service(body),
            "UpdateService" => self.update_service(body),
            "DeleteService" => self.delete_service(body),
            "DescribeServices" => self.describe_services(body),
            "ListServices" => self.list_services(body),
            "CreateSchedule" => self.create_schedule(body),
            "GetSchedule" => self.get_schedule(body),
            "ListSchedules" => self.list_schedules(body),
            "UpdateSchedule" => self.update_schedule(body),
            "DeleteSchedule" => self.delete_schedule(body),
            other => Err(ApiError {
                kind: "UnknownOperationException".into(),
                message: format!("{other} is not an action berth knows"),
            }),
        }
    }

    fn metrics(&self) -> String {
        crate::stats::metrics_of_agent(self)
    }

    fn stats(&self, all: bool) -> Result<Value, ApiError> {
        serde_json::to_value(crate::stats::of_agent(self, all))
            .map_err(|e| ApiError::server(e.to_string()))
    }
}

fn apply_status(task: &mut Task, s: &TaskStatus) {
    let t = |v: &Option<String>| v.as_deref().and_then(ecs::parse_rfc3339);
    task.last_status = match s.last_status.as_str() {
        "PENDING" => "PENDING",
        "RUNNING" => "RUNNING",
        "STOPPING" => "STOPPING",
        "STOPPED" => "STOPPED",
        other => other,
    }
    .to_string();
    if s.stop_code.is_some() && task.stop_code.as_deref() != Some("UserInitiated") {
        task.stop_code = s.stop_code.clone();
        task.stopped_reason = s.stopped_reason.clone();
    }
    if task.last_status == "STOPPING" || task.last_status == "STOPPED" {
        task.desired_status = "STOPPED".into();
    }
    if s.essential_exited.is_some() {
        task.local.essential_exited = s.essential_exited.clone();
    }
    task.started_at = t(&s.started_at).or(task.started_at);
    task.stopping_at = t(&s.stopping_at).or(task.stopping_at);
    task.stopped_at = t(&s.stopped_at).or(task.stopped_at);
    if task.last_status == "STOPPED" {
        task.execution_stopped_at = task.stopped_at;
    }
    if let Some(n) = &s.network {
        net::describe(task, n);
    }
    for c in &mut task.containers {
        if let Some(cs) = s.containers.get(&c.name) {
            c.last_status = cs.last_status.clone();
            c.exit_code = cs.exit_code;
            c.reason = cs.reason.clone();
            c.runtime_id = Some(cs.runtime_id.clone());
            c.health_status = cs.health_status.as_str().into();
            c.restart_count = (cs.restart_count > 0).then_some(cs.restart_count);
        }
    }
    task.health_status = s.health_status.as_str().into();
}

fn supervisor_alive(pid: u32) -> bool {
    pid > 0
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("berth-supervisor"))
            .unwrap_or(false)
        && berth_runtime::container::state::proc_start_time(pid as i32)
            .is_some_and(|(_, zombie)| !zombie)
}

/// Starts the supervisor detached from the agent (its own session; it forks once more so
/// that the agent never is its parent for long).
fn spawn_supervisor(bin: &Path, task_dir: &Path) -> Result<(), String> {
    let status = Command::new(bin)
        .arg("--detach")
        .arg(task_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} --detach {}: {status}",
            bin.display(),
            task_dir.display()
        ))
    }
}

fn write_task_file(task_dir: &Path, rel: &Path, content: &FileContent) -> Result<(), String> {
    let path = task_dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    let text = match content {
        FileContent::Text(t) => t.clone(),
        FileContent::HostCopy { host_path, append } => {
            let mut base = std::fs::read_to_string(host_path).unwrap_or_default();
            if !base.is_empty() && !base.ends_with('\n') {
                base.push('\n');
            }
            base + append
        }
    };
    std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

fn device_node(path: &Path) -> Result<plan::DeviceNode, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path)
        .map_err(|e| format!("linuxParameters.devices: {}: {e}", path.display()))?;
    let kind = if m.file_type().is_block_device() {
        plan::DeviceKind::Block
    } else if m.file_type().is_char_device() {
        plan::DeviceKind::Char
    } else {
        return Err(format!(
            "linuxParameters.devices: {} is not a device",
            path.display()
        ));
    };
    let rdev = m.rdev();
    Ok(plan::DeviceNode {
        kind,
        major: libc::major(rdev) as i64,
        minor: libc::minor(rdev) as i64,
        file_mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

fn namespace_kind(t: oci_spec::runtime::LinuxNamespaceType) -> String {
    use oci_spec::runtime::LinuxNamespaceType as T;
    match t {
        T::Network => "network",
        T::Ipc => "ipc",
        T::Uts => "uts",
        T::Pid => "pid",
        T::Mount => "mount",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
    .to_string()
}

/// CPU units and MiB a task holds: the task-level values, or the sum of its containers'.
pub fn reservation(def: &TaskDefinition) -> (u64, u64) {
    let cpu = def
        .cpu
        .as_deref()
        .and_then(|c| taskdef::units::parse_cpu_units(c).ok())
        .unwrap_or_else(|| {
            def.container_definitions
                .iter()
                .map(|c| c.cpu.unwrap_or(0).max(0) as u64)
                .sum()
        });
    let memory = def
        .memory
        .as_deref()
        .and_then(|m| taskdef::units::parse_memory_mib(m).ok())
        .unwrap_or_else(|| {
            def.container_definitions
                .iter()
                .map(|c| c.memory.or(c.memory_reservation).unwrap_or(0).max(0) as u64)
                .sum()
        });
    (cpu, memory)
}

fn reserved(store: &Store) -> (u64, u64) {
    let active: Vec<Task> = store
        .tasks(&TaskFilter {
            active_only: true,
            ..Default::default()
        })
        .unwrap_or_default();
    active.iter().fold((0, 0), |(c, m), t| {
        (c + t.local.reserved_cpu, m + t.local.reserved_memory)
    })
}

fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kib| kib / 1024)
        .unwrap_or(0)
}

/// A random 32-hex-digit id, as ECS task ids look.
fn new_task_id() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = ecs::now().to_bits().to_le_bytes();
        b[..8].copy_from_slice(&t);
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn str_field(body: &Value, name: &str) -> Result<String, ApiError> {
    body[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid(format!("{name}: required")))
}

/// A stored revision as ECS returns it.
fn definition_json(s: &StoredTaskDefinition) -> Value {
    let mut v = s.body.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "taskDefinitionArn".into(),
            json!(task_definition_arn(&s.family, s.revision)),
        );
        o.insert("revision".into(), json!(s.revision));
        o.insert("status".into(), json!(s.status));
        o.insert("registeredAt".into(), json!(s.registered_at));
        if let Some(d) = s.deregistered_at {
            o.insert("deregisteredAt".into(), json!(d));
        }
        o.insert("requiresAttributes".into(), json!([]));
        o.insert("compatibilities".into(), json!(["EC2"]));
    }
    v
}
