//! The `berth` command line: global flags here, one file per command group that parses
//! its arguments and calls the library. Errors become one line on stderr and exit code 1.

mod agent;
mod exec;
mod image;
mod logs;
mod output;
mod progress;
mod run;
mod schedules;
mod services;
mod stats;
mod tasks;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Run ECS-style tasks on this host, without Docker"
)]
pub struct Cli {
    /// Where berth keeps its state: images, tasks, the database
    #[arg(
        long,
        global = true,
        env = "BERTH_STATE_DIR",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// How results are printed: tables for people, JSON for scripts
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The agent's API socket
    #[arg(
        long,
        global = true,
        env = "BERTH_SOCKET",
        default_value = "/run/berth/berth.sock",
        value_name = "PATH"
    )]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull, import, list, remove and unpack images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Run the agent: the API on --socket, tasks under their supervisors
    Agent(agent::AgentArgs),
    /// Register, run and follow one task in the foreground, without the agent daemon
    Run(run::RunArgs),
    /// Print a task's container logs
    Logs(logs::LogsArgs),
    /// Run a command in a running container of a task
    Exec(exec::ExecArgs),
    /// Show the CPU, memory and process use of task containers
    Stats(stats::StatsArgs),
    /// Register a task definition (a new revision of its family)
    RegisterTaskDefinition(tasks::RegisterArgs),
    DescribeTaskDefinition(tasks::TaskDefinitionArg),
    ListTaskDefinitions(tasks::ListDefinitionsArgs),
    ListTaskDefinitionFamilies(tasks::ListFamiliesArgs),
    /// Mark a revision INACTIVE (running tasks are not touched)
    DeregisterTaskDefinition(tasks::TaskDefinitionArg),
    /// Start tasks from a task definition
    RunTask(tasks::RunTaskArgs),
    DescribeTasks(tasks::DescribeTasksArgs),
    ListTasks(tasks::ListTasksArgs),
    /// Stop a task: SIGTERM, then SIGKILL after each container's stopTimeout
    StopTask(tasks::StopTaskArgs),
    /// Keep a number of copies of a task running
    CreateService(services::CreateServiceArgs),
    /// Change a service's desired count, task definition or deployment configuration
    UpdateService(services::UpdateServiceArgs),
    /// Delete a service (scaled to 0 first, or with --force)
    DeleteService(services::DeleteServiceArgs),
    DescribeServices(services::DescribeServicesArgs),
    ListServices(services::ListServicesArgs),
    ListClusters,
    DescribeClusters,
    ListContainerInstances,
    DescribeContainerInstances,
    /// Run a task definition on a schedule: cron(...), rate(...) or at(...)
    CreateSchedule(schedules::CreateScheduleArgs),
    /// Show a schedule with its next and last firing
    GetSchedule(schedules::ScheduleNameArg),
    ListSchedules(schedules::ListSchedulesArgs),
    /// Change a schedule's expression, time zone, state, task definition or count
    UpdateSchedule(schedules::UpdateScheduleArgs),
    /// Delete a schedule (tasks it started keep running)
    DeleteSchedule(schedules::ScheduleNameArg),
}

/// What every command gets besides its own arguments.
pub struct Context {
    pub state_dir: PathBuf,
    pub output: OutputFormat,
    pub socket: PathBuf,
}

impl Context {
    /// One ECS action on the agent's API.
    pub fn call(
        &self,
        action: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        berth_agent::api::client::Client::new(&self.socket)
            .call(action, body)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

impl Context {
    /// A task by id or ARN: from the agent when it runs, else as the store on disk last
    /// recorded it (so that a task can be reached while the agent is down).
    pub fn find_task(&self, name: &str) -> anyhow::Result<berth_agent::ecs::Task> {
        use berth_agent::api::client::{Client, ClientError};
        let id = berth_agent::ecs::task_id_of(name);
        let found = match Client::new(&self.socket)
            .call("DescribeTasks", &serde_json::json!({"tasks": [name]}))
        {
            Ok(resp) => match resp["tasks"].get(0) {
                Some(task) => Some(serde_json::from_value(task.clone())?),
                None => None,
            },
            Err(ClientError::NotRunning { .. }) => {
                berth_agent::store::Store::open(&self.state_dir.join("berth.db"))?.task(id)?
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        };
        found.ok_or_else(|| anyhow::anyhow!("task {id:?} does not exist"))
    }
}

/// Runs the command; the value is the exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let ctx = Context {
        state_dir: cli.state_dir,
        output: cli.output,
        socket: cli.socket,
    };
    let done = |r: anyhow::Result<()>| r.map(|()| 0);
    if !matches!(
        cli.command,
        Command::Agent(_) | Command::Run(_) | Command::Exec(_)
    ) {
        printing_to_a_closed_pipe_ends_quietly();
    }
    match cli.command {
        Command::Image(command) => done(image::run(&ctx, command)),
        Command::Agent(a) => done(agent::run(&ctx, &a)),
        Command::Run(a) => run::run(&ctx, &a),
        Command::Logs(a) => done(logs::run(&ctx, &a)),
        Command::Exec(a) => exec::run(&ctx, &a),
        Command::Stats(a) => done(stats::run(&ctx, &a)),
        Command::RegisterTaskDefinition(a) => done(tasks::register(&ctx, &a)),
        Command::DescribeTaskDefinition(a) => done(tasks::describe_definition(&ctx, &a)),
        Command::ListTaskDefinitions(a) => done(tasks::list_definitions(&ctx, &a)),
        Command::ListTaskDefinitionFamilies(a) => done(tasks::list_families(&ctx, &a)),
        Command::DeregisterTaskDefinition(a) => done(tasks::deregister(&ctx, &a)),
        Command::RunTask(a) => done(tasks::run_task(&ctx, &a)),
        Command::DescribeTasks(a) => done(tasks::describe_tasks(&ctx, &a)),
        Command::ListTasks(a) => done(tasks::list_tasks(&ctx, &a)),
        Command::StopTask(a) => done(tasks::stop_task(&ctx, &a)),
        Command::CreateService(a) => done(services::create(&ctx, &a)),
        Command::UpdateService(a) => done(services::update(&ctx, &a)),
        Command::DeleteService(a) => done(services::delete(&ctx, &a)),
        Command::DescribeServices(a) => done(services::describe(&ctx, &a)),
        Command::ListServices(a) => done(services::list(&ctx, &a)),
        Command::ListClusters => done(tasks::simple(&ctx, "ListClusters")),
        Command::DescribeClusters => done(tasks::simple(&ctx, "DescribeClusters")),
        Command::ListContainerInstances => done(tasks::simple(&ctx, "ListContainerInstances")),
        Command::DescribeContainerInstances => {
            done(tasks::simple(&ctx, "DescribeContainerInstances"))
        }
        Command::CreateSchedule(a) => done(schedules::create(&ctx, &a)),
        Command::GetSchedule(a) => done(schedules::get(&ctx, &a)),
        Command::ListSchedules(a) => done(schedules::list(&ctx, &a)),
        Command::UpdateSchedule(a) => done(schedules::update(&ctx, &a)),
        Command::DeleteSchedule(a) => done(schedules::delete(&ctx, &a)),
    }
}

/// `berth list-tasks | head` ends like any Unix filter when `head` has seen enough: killed
/// by SIGPIPE, quietly, instead of a panic about a broken pipe. Not for the commands that
/// own tasks (the agent, `run`, `exec`): there a reader going away must not kill them.
fn printing_to_a_closed_pipe_ends_quietly() {
    // SAFETY: signal(2) restoring the default action; no handler is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
