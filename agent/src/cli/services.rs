//! The service verbs, with the AWS CLI's names and flags: create-service, update-service,
//! delete-service, describe-services, list-services.

use anyhow::bail;
use serde_json::{Map, Value, json};

use super::{Context, OutputFormat, output};

#[derive(Debug, clap::Args)]
pub struct CreateServiceArgs {
    #[arg(long)]
    pub service_name: String,
    /// family, family:revision or a task definition ARN
    #[arg(long)]
    pub task_definition: String,
    #[arg(long)]
    pub desired_count: u32,
    /// JSON, file://PATH, or the AWS CLI's shorthand:
    /// minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}
    #[arg(long)]
    pub deployment_configuration: Option<String>,
    #[arg(long, value_parser = ["EC2", "FARGATE", "EXTERNAL"])]
    pub launch_type: Option<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct UpdateServiceArgs {
    /// The service name or ARN
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub desired_count: Option<u32>,
    #[arg(long)]
    pub task_definition: Option<String>,
    /// Replace every task even when the task definition is the same
    #[arg(long)]
    pub force_new_deployment: bool,
    /// As for create-service
    #[arg(long)]
    pub deployment_configuration: Option<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct DeleteServiceArgs {
    #[arg(long)]
    pub service: String,
    /// Delete even when the desired count is not 0 (its tasks are stopped)
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct DescribeServicesArgs {
    #[arg(long, num_args = 1.., required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, clap::Args)]
pub struct ListServicesArgs {
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

pub fn create(ctx: &Context, a: &CreateServiceArgs) -> anyhow::Result<()> {
    let mut body = json!({
        "serviceName": a.service_name,
        "taskDefinition": a.task_definition,
        "desiredCount": a.desired_count,
        "cluster": a.cluster,
    });
    if let Some(c) = &a.deployment_configuration {
        body["deploymentConfiguration"] = structure("--deployment-configuration", c)?;
    }
    if let Some(l) = &a.launch_type {
        body["launchType"] = json!(l);
    }
    let resp = ctx.call("CreateService", &body)?;
    print_one(ctx, &resp)
}

pub fn update(ctx: &Context, a: &UpdateServiceArgs) -> anyhow::Result<()> {
    let mut body = json!({"service": a.service, "cluster": a.cluster});
    if let Some(n) = a.desired_count {
        body["desiredCount"] = json!(n);
    }
    if let Some(t) = &a.task_definition {
        body["taskDefinition"] = json!(t);
    }
    if a.force_new_deployment {
        body["forceNewDeployment"] = json!(true);
    }
    if let Some(c) = &a.deployment_configuration {
        body["deploymentConfiguration"] = structure("--deployment-configuration", c)?;
    }
    let resp = ctx.call("UpdateService", &body)?;
    print_one(ctx, &resp)
}

pub fn delete(ctx: &Context, a: &DeleteServiceArgs) -> anyhow::Result<()> {
    let body = json!({"service": a.service, "force": a.force, "cluster": a.cluster});
    let resp = ctx.call("DeleteService", &body)?;
    print_one(ctx, &resp)
}

pub fn describe(ctx: &Context, a: &DescribeServicesArgs) -> anyhow::Result<()> {
    let resp = ctx.call(
        "DescribeServices",
        &json!({"services": a.services, "cluster": a.cluster}),
    )?;
    if ctx.output == OutputFormat::Json {
        return output::json(&resp);
    }
    let services: Vec<Value> = resp["services"].as_array().cloned().unwrap_or_default();
    print_services(&services)?;
    for s in &services {
        println!();
        print_details(s)?;
    }
    for f in resp["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "failure: {} {}",
            f["arn"].as_str().unwrap_or_default(),
            f["reason"].as_str().unwrap_or_default()
        );
    }
    if services.is_empty() {
        bail!("no such service: {}", a.services.join(", "));
    }
    Ok(())
}

pub fn list(ctx: &Context, a: &ListServicesArgs) -> anyhow::Result<()> {
    let resp = ctx.call("ListServices", &json!({"cluster": a.cluster}))?;
    if ctx.output == OutputFormat::Json {
        return output::json(&resp);
    }
    for arn in resp["serviceArns"].as_array().into_iter().flatten() {
        println!("{}", arn.as_str().unwrap_or_default());
    }
    Ok(())
}

fn print_one(ctx: &Context, resp: &Value) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return output::json(resp);
    }
    print_services(&[resp["service"].clone()])
}

fn last_part(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn print_services(services: &[Value]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0).to_string();
            vec![
                s["serviceName"].as_str().unwrap_or("-").to_string(),
                s["status"].as_str().unwrap_or("-").to_string(),
                last_part(s["taskDefinition"].as_str().unwrap_or("-")).to_string(),
                n("desiredCount"),
                n("runningCount"),
                n("pendingCount"),
            ]
        })
        .collect();
    output::table(
        &[
            "SERVICE",
            "STATUS",
            "TASK DEFINITION",
            "DESIRED",
            "RUNNING",
            "PENDING",
        ],
        &rows,
    )
}

/// The deployments, then the ten newest events, as the ECS console shows them.
fn print_details(s: &Value) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = s["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let n = |k: &str| d[k].as_u64().unwrap_or(0).to_string();
            let t = |k: &str| d[k].as_str().unwrap_or("-").to_string();
            vec![
                t("id"),
                t("status"),
                last_part(d["taskDefinition"].as_str().unwrap_or("-")).to_string(),
                n("desiredCount"),
                n("runningCount"),
                n("pendingCount"),
                n("failedTasks"),
                t("rolloutState"),
            ]
        })
        .collect();
    output::table(
        &[
            "DEPLOYMENT",
            "STATUS",
            "TASK DEFINITION",
            "DESIRED",
            "RUNNING",
            "PENDING",
            "FAILED",
            "ROLLOUT",
        ],
        &rows,
    )?;
    println!();
    let rows: Vec<Vec<String>> = s["events"]
        .as_array()
        .into_iter()
        .flatten()
        .take(10)
        .map(|e| {
            vec![
                rfc3339(e["createdAt"].as_f64().unwrap_or(0.0)),
                e["message"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    output::table(&["TIME", "EVENT"], &rows)
}

/// Epoch seconds as `2026-11-26T10:00:00Z`.
fn rfc3339(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A structure argument as the AWS CLI takes it: JSON, file://PATH, or shorthand
/// `key=value,key={key=value,...}`.
fn structure(flag: &str, text: &str) -> anyhow::Result<Value> {
    let t = text.trim();
    if t.starts_with("file://") || t.starts_with('{') {
        return super::tasks::file_or_inline(t).map_err(|e| anyhow::anyhow!("{flag}: {e}"));
    }
    shorthand(t).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// The AWS CLI's shorthand syntax for a structure of scalars and structures.
fn shorthand(text: &str) -> Result<Value, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let v = shorthand_map(&chars, &mut pos)?;
    if pos != chars.len() {
        return Err(format!("unexpected {:?} at offset {pos}", chars[pos]));
    }
    Ok(v)
}

fn shorthand_map(c: &[char], pos: &mut usize) -> Result<Value, String> {
    let mut map = Map::new();
    loop {
        let start = *pos;
        while *pos < c.len() && c[*pos] != '=' && !matches!(c[*pos], ',' | '{' | '}') {
            *pos += 1;
        }
        let key: String = c[start..*pos].iter().collect::<String>().trim().to_string();
        if key.is_empty() || c.get(*pos) != Some(&'=') {
            return Err(format!("expected key=value at offset {start}"));
        }
        *pos += 1;
        let value = if c.get(*pos) == Some(&'{') {
            *pos += 1;
            let inner = shorthand_map(c, pos)?;
            if c.get(*pos) != Some(&'}') {
                return Err(format!("missing '}}' for {key}"));
            }
            *pos += 1;
            inner
        } else {
            let start = *pos;
            while *pos < c.len() && !matches!(c[*pos], ',' | '}') {
                *pos += 1;
            }
            scalar(c[start..*pos].iter().collect::<String>().trim())
        };
        map.insert(key, value);
        if c.get(*pos) == Some(&',') {
            *pos += 1;
            continue;
        }
        return Ok(Value::Object(map));
    }
}

fn scalar(s: &str) -> Value {
    match s {
        "true" => json!(true),
        "false" => json!(false),
        _ => s
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_and_json_give_the_same_structure() {
        let expected = json!({
            "minimumHealthyPercent": 50,
            "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": true, "rollback": false},
        });
        let short = "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=false}";
        assert_eq!(structure("--x", short).unwrap(), expected);
        assert_eq!(structure("--x", &expected.to_string()).unwrap(), expected);
        for bad in ["minimumHealthyPercent", "a=1,", "a={b=1", "a=1}"] {
            assert!(
                structure("--x", bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("--x: "),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000.5), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
    }
}
