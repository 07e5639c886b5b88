//! The ECS verbs, with the AWS CLI's names and flags, as clients of the agent's API.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::OutputFormat;
use super::{Context, output};

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The task definition file (JSON, as for `aws ecs register-task-definition`)
    pub file: Option<PathBuf>,
    /// The same, as the AWS CLI takes it: file://PATH
    #[arg(long, value_name = "file://PATH")]
    pub cli_input_json: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TaskDefinitionArg {
    /// family, family:revision or a task definition ARN
    #[arg(
        value_name = "TASK_DEFINITION",
        required_unless_present = "task_definition_flag"
    )]
    pub task_definition: Option<String>,
    #[arg(long = "task-definition", value_name = "TASK_DEFINITION")]
    pub task_definition_flag: Option<String>,
}

impl TaskDefinitionArg {
    fn get(&self) -> String {
        self.task_definition_flag
            .clone()
            .or_else(|| self.task_definition.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, clap::Args)]
pub struct ListDefinitionsArgs {
    #[arg(long)]
    pub family_prefix: Option<String>,
    #[arg(long, default_value = "ACTIVE", value_parser = ["ACTIVE", "INACTIVE"])]
    pub status: String,
    #[arg(long, value_parser = ["ASC", "DESC"])]
    pub sort: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListFamiliesArgs {
    #[arg(long)]
    pub family_prefix: Option<String>,
    #[arg(long, default_value = "ACTIVE", value_parser = ["ACTIVE", "INACTIVE", "ALL"])]
    pub status: String,
}

#[derive(Debug, clap::Args)]
pub struct RunTaskArgs {
    #[arg(long)]
    pub task_definition: String,
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    #[arg(long)]
    pub started_by: Option<String>,
    /// ECS overrides JSON ({"containerOverrides": [...]}), or file://PATH
    #[arg(long)]
    pub overrides: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    /// Accepted for the AWS CLI's sake: this host is the one cluster, `default`
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct DescribeTasksArgs {
    /// Task ids or ARNs
    pub tasks: Vec<String>,
    #[arg(long = "tasks", num_args = 1.., value_name = "TASK")]
    pub tasks_flag: Vec<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct ListTasksArgs {
    #[arg(long)]
    pub family: Option<String>,
    #[arg(long, default_value = "RUNNING", value_parser = ["RUNNING", "PENDING", "STOPPED"])]
    pub desired_status: String,
    #[arg(long)]
    pub started_by: Option<String>,
    #[arg(long)]
    pub service_name: Option<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct StopTaskArgs {
    /// The task id or ARN
    #[arg(required_unless_present = "task_flag")]
    pub task: Option<String>,
    #[arg(long = "task", value_name = "TASK")]
    pub task_flag: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

/// Reads a task definition file; malformed JSON is reported with its line and column.
pub fn read_definition(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid JSON at line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

pub(super) fn file_or_inline(s: &str) -> anyhow::Result<Value> {
    match s.strip_prefix("file://") {
        Some(p) => read_definition(std::path::Path::new(p)),
        None => serde_json::from_str(s).map_err(|e| {
            anyhow::anyhow!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            )
        }),
    }
}

pub fn register(ctx: &Context, a: &RegisterArgs) -> anyhow::Result<()> {
    let body = match (&a.file, &a.cli_input_json) {
        (Some(f), _) => read_definition(f)?,
        (None, Some(s)) => file_or_inline(s)?,
        (None, None) => {
            bail!("register-task-definition: give a FILE or --cli-input-json file://FILE")
        }
    };
    let resp = ctx.call("RegisterTaskDefinition", &body)?;
    print_definition(ctx, &resp)
}

fn print_definition(ctx: &Context, resp: &Value) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return output::json(resp);
    }
    let td = &resp["taskDefinition"];
    println!("{}", td["taskDefinitionArn"].as_str().unwrap_or_default());
    println!("status: {}", td["status"].as_str().unwrap_or_default());
    for c in td["containerDefinitions"].as_array().into_iter().flatten() {
        println!(
            "container {}: {}",
            c["name"].as_str().unwrap_or_default(),
            c["image"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

pub fn describe_definition(ctx: &Context, a: &TaskDefinitionArg) -> anyhow::Result<()> {
    let resp = ctx.call(
        "DescribeTaskDefinition",
        &json!({"taskDefinition": a.get()}),
    )?;
    if ctx.output == OutputFormat::Table {
        return output::json(&resp["taskDefinition"]);
    }
    output::json(&resp)
}

pub fn deregister(ctx: &Context, a: &TaskDefinitionArg) -> anyhow::Result<()> {
    let resp = ctx.call(
        "DeregisterTaskDefinition",
        &json!({"taskDefinition": a.get()}),
    )?;
    print_definition(ctx, &resp)
}

pub fn list_definitions(ctx: &Context, a: &ListDefinitionsArgs) -> anyhow::Result<()> {
    let mut body = json!({"status": a.status});
    if let Some(f) = &a.family_prefix {
        body["familyPrefix"] = json!(f);
    }
    if let Some(s) = &a.sort {
        body["sort"] = json!(s);
    }
    let resp = ctx.call("ListTaskDefinitions", &body)?;
    print_list(ctx, &resp, "taskDefinitionArns")
}

pub fn list_families(ctx: &Context, a: &ListFamiliesArgs) -> anyhow::Result<()> {
    let mut body = json!({"status": a.status});
    if let Some(f) = &a.family_prefix {
        body["familyPrefix"] = json!(f);
    }
    let resp = ctx.call("ListTaskDefinitionFamilies", &body)?;
    print_list(ctx, &resp, "families")
}

fn print_list(ctx: &Context, resp: &Value, key: &str) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return output::json(resp);
    }
    for v in resp[key].as_array().into_iter().flatten() {
        println!("{}", v.as_str().unwrap_or_default());
    }
    Ok(())
}

pub fn run_task(ctx: &Context, a: &RunTaskArgs) -> anyhow::Result<()> {
    let mut body =
        json!({"taskDefinition": a.task_definition, "count": a.count, "cluster": a.cluster});
    if let Some(s) = &a.started_by {
        body["startedBy"] = json!(s);
    }
    if let Some(g) = &a.group {
        body["group"] = json!(g);
    }
    if let Some(o) = &a.overrides {
        body["overrides"] = file_or_inline(o).context("--overrides")?;
    }
    let resp = ctx.call("RunTask", &body)?;
    print_tasks(ctx, &resp)?;
    if resp["tasks"].as_array().is_none_or(|t| t.is_empty()) {
        bail!("no task started: {}", failures_text(&resp));
    }
    Ok(())
}

fn failures_text(resp: &Value) -> String {
    resp["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["reason"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn describe_tasks(ctx: &Context, a: &DescribeTasksArgs) -> anyhow::Result<()> {
    let names: Vec<&String> = a.tasks.iter().chain(&a.tasks_flag).collect();
    if names.is_empty() {
        bail!("describe-tasks: name at least one task (id or ARN)");
    }
    let resp = ctx.call(
        "DescribeTasks",
        &json!({"tasks": names, "cluster": a.cluster}),
    )?;
    print_tasks(ctx, &resp)
}

pub fn list_tasks(ctx: &Context, a: &ListTasksArgs) -> anyhow::Result<()> {
    let mut body = json!({"desiredStatus": a.desired_status, "cluster": a.cluster});
    if let Some(f) = &a.family {
        body["family"] = json!(f);
    }
    if let Some(s) = &a.started_by {
        body["startedBy"] = json!(s);
    }
    if let Some(s) = &a.service_name {
        body["serviceName"] = json!(s);
    }
    let resp = ctx.call("ListTasks", &body)?;
    print_list(ctx, &resp, "taskArns")
}

pub fn stop_task(ctx: &Context, a: &StopTaskArgs) -> anyhow::Result<()> {
    let task = a
        .task_flag
        .clone()
        .or_else(|| a.task.clone())
        .unwrap_or_default();
    let mut body = json!({"task": task, "cluster": a.cluster});
    if let Some(r) = &a.reason {
        body["reason"] = json!(r);
    }
    let resp = ctx.call("StopTask", &body)?;
    if ctx.output == OutputFormat::Json {
        return output::json(&resp);
    }
    print_task_rows(&[resp["task"].clone()])
}

pub fn simple(ctx: &Context, action: &str) -> anyhow::Result<()> {
    let resp = ctx.call(action, &json!({}))?;
    output::json(&resp)
}

fn print_tasks(ctx: &Context, resp: &Value) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return output::json(resp);
    }
    let tasks: Vec<Value> = resp["tasks"].as_array().cloned().unwrap_or_default();
    print_task_rows(&tasks)?;
    for f in resp["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "failure: {} {}",
            f["arn"].as_str().unwrap_or_default(),
            f["reason"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn print_task_rows(tasks: &[Value]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("-").to_string();
            let def = s("taskDefinitionArn");
            let def = def.rsplit('/').next().unwrap_or(&def).to_string();
            let containers = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let code = c["exitCode"]
                        .as_i64()
                        .map(|e| format!(" exit {e}"))
                        .unwrap_or_default();
                    // Only a container with a verdict from its check says so.
                    let health = match c["healthStatus"].as_str() {
                        Some(h @ ("HEALTHY" | "UNHEALTHY")) => format!(" {h}"),
                        _ => String::new(),
                    };
                    let restarts = match c["restartCount"].as_u64() {
                        Some(1) => " (restarted once)".to_string(),
                        Some(n) => format!(" (restarted {n} times)"),
                        None => String::new(),
                    };
                    format!(
                        "{}:{}{}{}{}",
                        c["name"].as_str().unwrap_or_default(),
                        c["lastStatus"].as_str().unwrap_or_default(),
                        health,
                        code,
                        restarts
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let id = s("taskArn");
            vec![
                id.rsplit('/').next().unwrap_or(&id).to_string(),
                def,
                s("lastStatus"),
                s("desiredStatus"),
                s("healthStatus"),
                containers,
                t["stoppedReason"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "TASK",
            "DEFINITION",
            "LAST",
            "DESIRED",
            "HEALTH",
            "CONTAINERS",
            "STOPPED REASON",
        ],
        &rows,
    )
}
