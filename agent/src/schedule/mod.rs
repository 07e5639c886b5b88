//! Scheduled tasks: EventBridge Scheduler's schedules (a cron, rate or at expression in a
//! time zone, and a task definition to run) and the pure decision of when one fires.
//! The agent's actions and its firing loop are in `actions.rs`.

mod actions;
pub mod expression;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use expression::{Expression, ExpressionError, last_fire, next_fire, parse, parse_timezone};

pub const ENABLED: &str = "ENABLED";
pub const DISABLED: &str = "DISABLED";

/// The one schedule group of this host.
pub const GROUP: &str = "default";

/// `arn:aws:scheduler:local:000000000000:schedule/default/NAME`
pub fn schedule_arn(name: &str) -> String {
    format!(
        "arn:aws:scheduler:{}:{}:schedule/{GROUP}/{name}",
        crate::ecs::REGION,
        crate::ecs::ACCOUNT
    )
}

/// What the tasks a schedule starts carry as startedBy: `schedule/NAME`, cut to the 36
/// characters ECS allows (as ECS cuts `events-rule/NAME`).
pub fn started_by(name: &str) -> String {
    format!("schedule/{name}").chars().take(36).collect()
}

/// A schedule as stored and as GetSchedule shows it (without the computed fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Schedule {
    pub name: String,
    pub group_name: String,
    pub schedule_expression: String,
    pub schedule_expression_timezone: String,
    /// ENABLED or DISABLED; an at() schedule is DISABLED once it has fired.
    pub state: String,
    pub target: Target,
    /// Epoch seconds.
    pub creation_date: f64,
    pub last_modification_date: f64,
    /// Slots at or before this instant never fire: set when the schedule is created, its
    /// expression changes or it is enabled again.
    pub start_date: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    /// The cluster's ARN.
    pub arn: String,
    pub ecs_parameters: EcsParameters,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EcsParameters {
    /// family, family:revision or a task definition ARN, as given.
    pub task_definition_arn: String,
    pub task_count: u64,
}

/// What the last firing started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LastRun {
    /// The slot that fired (epoch seconds).
    pub date: f64,
    pub task_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// What the scheduler does with a schedule at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The slot to fire now: the latest one that is due, so that however many slots
    /// passed while the agent was down, the schedule fires once.
    pub fire: Option<DateTime<Utc>>,
    /// When it fires next after that; None when it never will (a fired at(), a cron
    /// whose years are over, a disabled schedule).
    pub next: Option<DateTime<Utc>>,
}

/// Epoch seconds as a UTC time (millisecond precision).
pub fn utc(epoch: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis((epoch * 1000.0).round() as i64).unwrap_or_default()
}

/// UTC time as epoch seconds.
pub fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Whether `schedule`, last fired at `last_fired_at` (epoch seconds), fires at `now`, and
/// when it fires next. Firing again with the slot recorded as last_fired_at gives
/// `fire: None`: applying a decision twice fires once.
pub fn due(
    schedule: &Schedule,
    last_fired_at: Option<f64>,
    now: DateTime<Utc>,
) -> Result<Decision, ExpressionError> {
    let expr = parse(&schedule.schedule_expression)?;
    let tz = parse_timezone(&schedule.schedule_expression_timezone)?;
    if schedule.state != ENABLED {
        return Ok(Decision {
            fire: None,
            next: None,
        });
    }
    let since = utc(last_fired_at.map_or(schedule.start_date, |l| l.max(schedule.start_date)));
    let fire = last_fire(&expr, since, now, tz);
    let next = next_fire(&expr, fire.unwrap_or(since), tz);
    Ok(Decision { fire, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn schedule(expression: &str, state: &str, created: &str) -> Schedule {
        let created = epoch(t(created));
        Schedule {
            name: "nightly".into(),
            group_name: GROUP.into(),
            schedule_expression: expression.into(),
            schedule_expression_timezone: "UTC".into(),
            state: state.into(),
            target: Target {
                arn: crate::ecs::cluster_arn(),
                ecs_parameters: EcsParameters {
                    task_definition_arn: "batch".into(),
                    task_count: 1,
                },
            },
            creation_date: created,
            last_modification_date: created,
            start_date: created,
            last_run: None,
        }
    }

    /// Runs the scheduler's passes at each of `ticks`, recording each firing as the
    /// agent does; returns the slots that fired.
    fn passes(s: &mut Schedule, ticks: &[&str]) -> Vec<String> {
        let mut last = None;
        let mut fired = Vec::new();
        for tick in ticks {
            let d = due(s, last, t(tick)).unwrap();
            if let Some(slot) = d.fire {
                last = Some(epoch(slot));
                fired.push(slot.to_rfc3339());
                if d.next.is_none() {
                    s.state = DISABLED.into();
                }
            }
        }
        fired
    }

    #[test]
    fn a_cron_fires_at_each_slot_once() {
        let mut s = schedule("cron(0/5 * * * ? *)", ENABLED, "2026-11-26T10:01:00Z");
        let fired = passes(
            &mut s,
            &[
                "2026-11-26T10:04:59Z",
                "2026-11-26T10:05:00Z",
                "2026-11-26T10:05:01Z",
                "2026-11-26T10:09:00Z",
                "2026-11-26T10:10:00.500Z",
            ],
        );
        assert_eq!(
            fired,
            ["2026-11-26T10:05:00+00:00", "2026-11-26T10:10:00+00:00"]
        );
    }

    #[test]
    fn downtime_over_several_slots_fires_once() {
        let mut s = schedule("rate(5 minutes)", ENABLED, "2026-11-26T10:00:00Z");
        // The agent was down from 10:06 until 10:38: six slots missed, one firing.
        let fired = passes(
            &mut s,
            &[
                "2026-11-26T10:05:00Z",
                "2026-11-26T10:38:10Z",
                "2026-11-26T10:39:00Z",
            ],
        );
        assert_eq!(
            fired,
            ["2026-11-26T10:05:00+00:00", "2026-11-26T10:35:00+00:00"]
        );
        // Slots stay on the rate's grid afterwards.
        let d = due(
            &s,
            Some(epoch(t("2026-11-26T10:35:00Z"))),
            t("2026-11-26T10:39:00Z"),
        );
        assert_eq!(d.unwrap().next, Some(t("2026-11-26T10:40:00Z")));

        let mut c = schedule("cron(0 * * * ? *)", ENABLED, "2026-11-26T10:30:00Z");
        let fired = passes(&mut c, &["2026-11-26T15:20:00Z", "2026-11-26T15:59:59Z"]);
        assert_eq!(fired, ["2026-11-26T15:00:00+00:00"]);
    }

    #[test]
    fn a_disabled_schedule_never_fires() {
        let mut s = schedule("rate(1 minute)", DISABLED, "2026-11-26T10:00:00Z");
        let fired = passes(&mut s, &["2026-11-26T10:01:00Z", "2026-11-27T10:00:00Z"]);
        assert!(fired.is_empty());
        let d = due(&s, None, t("2026-11-27T10:00:00Z")).unwrap();
        assert_eq!(d.next, None);
    }

    #[test]
    fn at_fires_once_then_is_done() {
        let mut s = schedule("at(2026-11-26T12:00:00)", ENABLED, "2026-11-26T10:00:00Z");
        let d = due(&s, None, t("2026-11-26T11:00:00Z")).unwrap();
        assert_eq!((d.fire, d.next), (None, Some(t("2026-11-26T12:00:00Z"))));
        let fired = passes(
            &mut s,
            &[
                "2026-11-26T12:00:00Z",
                "2026-11-26T12:00:01Z",
                "2026-11-27T12:00:00Z",
            ],
        );
        assert_eq!(fired, ["2026-11-26T12:00:00+00:00"]);
        assert_eq!(s.state, DISABLED);
        // Even still enabled, a recorded firing is not repeated.
        s.state = ENABLED.into();
        let d = due(
            &s,
            Some(epoch(t("2026-11-26T12:00:00Z"))),
            t("2026-11-28T00:00:00Z"),
        );
        assert_eq!(
            d.unwrap(),
            Decision {
                fire: None,
                next: None
            }
        );
    }

    #[test]
    fn slots_before_the_start_do_not_fire() {
        // Created at 10:00:30: the 10:00 slot is not one of its firings.
        let mut s = schedule("cron(* * * * ? *)", ENABLED, "2026-11-26T10:00:30Z");
        assert_eq!(
            passes(&mut s, &["2026-11-26T10:00:40Z"]),
            Vec::<String>::new()
        );
        // Enabled again at 12:00:10 after a pause: nothing of the pause fires.
        s.start_date = epoch(t("2026-11-26T12:00:10Z"));
        let d = due(
            &s,
            Some(epoch(t("2026-11-26T10:01:00Z"))),
            t("2026-11-26T12:00:20Z"),
        );
        assert_eq!(
            d.unwrap(),
            Decision {
                fire: None,
                next: Some(t("2026-11-26T12:01:00Z"))
            }
        );
    }

    #[test]
    fn started_by_fits_ecs() {
        assert_eq!(started_by("nightly"), "schedule/nightly");
        assert_eq!(started_by(&"x".repeat(64)).len(), 36);
        assert_eq!(
            schedule_arn("nightly"),
            "arn:aws:scheduler:local:000000000000:schedule/default/nightly"
        );
    }
}
