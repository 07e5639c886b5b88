//! Scheduled tasks: EventBridge Scheduler's verbs for this host's schedules, as clients of
//! the agent's API.

use serde_json::{Value, json};

use super::OutputFormat;
use super::{Context, output};

#[derive(Debug, clap::Args)]
pub struct CreateScheduleArgs {
    #[arg(long)]
    pub name: String,
    /// cron(min hour day-of-month month day-of-week year), rate(N minutes|hours|days)
    /// or at(yyyy-mm-ddThh:mm:ss)
    #[arg(long, value_name = "EXPR")]
    pub schedule_expression: String,
    /// family, family:revision or a task definition ARN
    #[arg(long)]
    pub task_definition: String,
    /// Tasks each firing starts (1 to 10)
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// The IANA time zone the expression is read in (default UTC)
    #[arg(long, alias = "schedule-expression-timezone", value_name = "TZ")]
    pub timezone: Option<String>,
    /// ENABLED or DISABLED
    #[arg(long, default_value = "ENABLED")]
    pub state: String,
}

#[derive(Debug, clap::Args)]
pub struct UpdateScheduleArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long, value_name = "EXPR")]
    pub schedule_expression: Option<String>,
    #[arg(long)]
    pub task_definition: Option<String>,
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(long, alias = "schedule-expression-timezone", value_name = "TZ")]
    pub timezone: Option<String>,
    /// ENABLED or DISABLED
    #[arg(long)]
    pub state: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ScheduleNameArg {
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct ListSchedulesArgs {
    #[arg(long)]
    pub name_prefix: Option<String>,
    /// Only the ENABLED or the DISABLED ones
    #[arg(long)]
    pub state: Option<String>,
}

pub fn create(ctx: &Context, a: &CreateScheduleArgs) -> anyhow::Result<()> {
    let mut body = json!({
        "Name": a.name,
        "ScheduleExpression": a.schedule_expression,
        "State": a.state,
        "Target": {"EcsParameters": {"TaskDefinitionArn": a.task_definition, "TaskCount": a.count}},
    });
    if let Some(tz) = &a.timezone {
        body["ScheduleExpressionTimezone"] = json!(tz);
    }
    let resp = ctx.call("CreateSchedule", &body)?;
    print_schedule(ctx, &resp)
}

pub fn update(ctx: &Context, a: &UpdateScheduleArgs) -> anyhow::Result<()> {
    let mut body = json!({"Name": a.name});
    if let Some(e) = &a.schedule_expression {
        body["ScheduleExpression"] = json!(e);
    }
    if let Some(tz) = &a.timezone {
        body["ScheduleExpressionTimezone"] = json!(tz);
    }
    if let Some(s) = &a.state {
        body["State"] = json!(s);
    }
    if let Some(d) = &a.task_definition {
        body["Target"]["EcsParameters"]["TaskDefinitionArn"] = json!(d);
    }
    if let Some(c) = a.count {
        body["Target"]["EcsParameters"]["TaskCount"] = json!(c);
    }
    let resp = ctx.call("UpdateSchedule", &body)?;
    print_schedule(ctx, &resp)
}

pub fn get(ctx: &Context, a: &ScheduleNameArg) -> anyhow::Result<()> {
    let resp = ctx.call("GetSchedule", &json!({"Name": a.name}))?;
    print_schedule(ctx, &resp)
}

pub fn delete(ctx: &Context, a: &ScheduleNameArg) -> anyhow::Result<()> {
    let resp = ctx.call("DeleteSchedule", &json!({"Name": a.name}))?;
    if ctx.output == OutputFormat::Json {
        return output::json(&resp);
    }
    println!("{}", a.name);
    Ok(())
}

pub fn list(ctx: &Context, a: &ListSchedulesArgs) -> anyhow::Result<()> {
    let mut body = json!({});
    if let Some(p) = &a.name_prefix {
        body["NamePrefix"] = json!(p);
    }
    if let Some(s) = &a.state {
        body["State"] = json!(s);
    }
    let resp = ctx.call("ListSchedules", &body)?;
    if ctx.output == OutputFormat::Json {
        return output::json(&resp);
    }
    let rows: Vec<Vec<String>> = resp["Schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let params = &s["Target"]["EcsParameters"];
            vec![
                text(&s["Name"]),
                text(&s["State"]),
                text(&s["ScheduleExpression"]),
                text(&s["ScheduleExpressionTimezone"]),
                text(&params["TaskDefinitionArn"]),
                params["TaskCount"].to_string(),
                time(&s["NextInvocationDate"]),
                time(&s["LastInvocationDate"]),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "STATE",
            "EXPRESSION",
            "TIMEZONE",
            "TASK DEFINITION",
            "COUNT",
            "NEXT",
            "LAST",
        ],
        &rows,
    )
}

fn print_schedule(ctx: &Context, s: &Value) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return output::json(s);
    }
    let params = &s["Target"]["EcsParameters"];
    let last_run = &s["LastRun"];
    let tasks = last_run["TaskArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(|a| a.rsplit('/').next().unwrap_or(a)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut lines = vec![
        ("arn", text(&s["Arn"])),
        ("name", text(&s["Name"])),
        ("state", text(&s["State"])),
        ("expression", text(&s["ScheduleExpression"])),
        ("timezone", text(&s["ScheduleExpressionTimezone"])),
        ("task definition", text(&params["TaskDefinitionArn"])),
        ("count", params["TaskCount"].to_string()),
        ("next", time(&s["NextInvocationDate"])),
        ("last", time(&s["LastInvocationDate"])),
    ];
    if !tasks.is_empty() {
        lines.push(("last tasks", tasks));
    }
    if let Some(f) = last_run["Failure"].as_str() {
        lines.push(("last failure", f.to_string()));
    }
    for (key, value) in lines {
        println!("{key}: {value}");
    }
    Ok(())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

/// Epoch seconds as `2026-12-01T10:00:00Z`; `-` when there is none.
fn time(v: &Value) -> String {
    v.as_f64()
        .and_then(|t| chrono::DateTime::from_timestamp(t.round() as i64, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}
