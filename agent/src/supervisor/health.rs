//! Health as ECS computes it: a container's status from the results of its checks over
//! time, and a task's from its essential containers. Pure; the supervisor runs the checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A container's or a task's healthStatus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Health {
    /// No check has decided yet, or there is no check.
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    /// The word ECS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// Exit code 0.
    Passed,
    /// Another exit code, or the command could not run.
    Failed,
    /// Killed at its timeout; counts as a failure.
    TimedOut,
}

/// The part of a container's health check that judges results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judging {
    /// Failures in a row that make the container unhealthy.
    pub retries: u32,
    /// Failures this soon after the container started do not count, until a check passes.
    pub start_period: Duration,
}

/// What the checks of one container have shown so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerHealth {
    pub status: Health,
    /// Failures in a row that counted.
    pub failures: u32,
    /// A check has passed once: the start period is over.
    pub passed_once: bool,
}

impl ContainerHealth {
    /// Takes in the result of a check that ended `since_start` after the container
    /// started; returns whether the status changed.
    pub fn record(&mut self, result: CheckResult, since_start: Duration, judging: Judging) -> bool {
        let before = self.status;
        match result {
            CheckResult::Passed => {
                self.passed_once = true;
                self.failures = 0;
                self.status = Health::Healthy;
            }
            CheckResult::Failed | CheckResult::TimedOut => {
                let grace = !self.passed_once && since_start < judging.start_period;
                if !grace {
                    self.failures = self.failures.saturating_add(1);
                    if self.failures >= judging.retries.max(1) {
                        self.status = Health::Unhealthy;
                    }
                }
            }
        }
        self.status != before
    }
}

/// A container as the task's health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub essential: bool,
    pub has_check: bool,
    pub status: Health,
}

/// The task's health: UNHEALTHY when an essential container is, HEALTHY when every
/// essential container with a check is, else UNKNOWN. Containers without a check, and
/// those that are not essential, have no say; with no essential check at all it is
/// UNKNOWN.
pub fn task_health(members: impl IntoIterator<Item = Member>) -> Health {
    let judged: Vec<Health> = members
        .into_iter()
        .filter(|m| m.essential && m.has_check)
        .map(|m| m.status)
        .collect();
    if judged.contains(&Health::Unhealthy) {
        Health::Unhealthy
    } else if !judged.is_empty() && judged.iter().all(|h| *h == Health::Healthy) {
        Health::Healthy
    } else {
        Health::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckResult::{Failed, Passed, TimedOut};
    use Health::{Healthy, Unhealthy, Unknown};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Feeds (seconds since start, result) in order; returns the status after each.
    fn run(retries: u32, start_period: u64, checks: &[(u64, CheckResult)]) -> Vec<Health> {
        let judging = Judging {
            retries,
            start_period: secs(start_period),
        };
        let mut h = ContainerHealth::default();
        checks
            .iter()
            .map(|&(at, r)| {
                h.record(r, secs(at), judging);
                h.status
            })
            .collect()
    }

    #[test]
    fn container_status_over_time() {
        // (what, retries, startPeriod, (seconds since start, result)..., status after each)
        type Case = (
            &'static str,
            u32,
            u64,
            &'static [(u64, CheckResult)],
            &'static [Health],
        );
        let table: &[Case] = &[
            ("first pass", 3, 0, &[(30, Passed)], &[Healthy]),
            (
                "retries failures in a row",
                3,
                0,
                &[(30, Failed), (60, Failed), (90, Failed)],
                &[Unknown, Unknown, Unhealthy],
            ),
            (
                "a pass resets the count",
                2,
                0,
                &[(5, Failed), (10, Passed), (15, Failed), (20, Failed)],
                &[Unknown, Healthy, Healthy, Unhealthy],
            ),
            (
                "one retry: the first failure decides",
                1,
                0,
                &[(5, Passed), (10, Failed)],
                &[Healthy, Unhealthy],
            ),
            (
                "timeouts are failures",
                2,
                0,
                &[(5, TimedOut), (10, TimedOut)],
                &[Unknown, Unhealthy],
            ),
            (
                "failures in the start period do not count",
                1,
                20,
                &[(5, Failed), (10, TimedOut), (15, Failed), (25, Failed)],
                &[Unknown, Unknown, Unknown, Unhealthy],
            ),
            (
                "a pass in the start period makes it healthy and ends the period",
                1,
                60,
                &[(5, Failed), (10, Passed), (15, Failed)],
                &[Unknown, Healthy, Unhealthy],
            ),
            (
                "unhealthy recovers on a pass",
                1,
                0,
                &[(5, Failed), (10, Passed)],
                &[Unhealthy, Healthy],
            ),
            ("retries of 0 act as 1", 0, 0, &[(5, Failed)], &[Unhealthy]),
        ];
        for (what, retries, start_period, checks, want) in table {
            assert_eq!(
                run(*retries, *start_period, checks),
                want.to_vec(),
                "{what}"
            );
        }
    }

    #[test]
    fn record_says_when_the_status_changes() {
        let judging = Judging {
            retries: 2,
            start_period: secs(0),
        };
        let mut h = ContainerHealth::default();
        assert!(!h.record(Failed, secs(5), judging));
        assert!(h.record(Failed, secs(10), judging));
        assert!(!h.record(Failed, secs(15), judging));
        assert!(h.record(Passed, secs(20), judging));
        assert!(!h.record(Passed, secs(25), judging));
    }

    #[test]
    fn task_status_from_essential_containers() {
        let m = |essential, has_check, status| Member {
            essential,
            has_check,
            status,
        };
        let table: &[(&str, Vec<Member>, Health)] = &[
            ("no containers", vec![], Unknown),
            ("no checks", vec![m(true, false, Unknown)], Unknown),
            (
                "essential healthy, others without checks",
                vec![m(true, true, Healthy), m(true, false, Unknown)],
                Healthy,
            ),
            (
                "one essential not decided yet",
                vec![m(true, true, Healthy), m(true, true, Unknown)],
                Unknown,
            ),
            (
                "any essential unhealthy",
                vec![m(true, true, Healthy), m(true, true, Unhealthy)],
                Unhealthy,
            ),
            (
                "unhealthy beats unknown",
                vec![m(true, true, Unknown), m(true, true, Unhealthy)],
                Unhealthy,
            ),
            (
                "a non-essential container has no say",
                vec![m(true, true, Healthy), m(false, true, Unhealthy)],
                Healthy,
            ),
            (
                "only non-essential checks",
                vec![m(false, true, Healthy), m(true, false, Unknown)],
                Unknown,
            ),
        ];
        for (what, members, want) in table {
            assert_eq!(task_health(members.iter().copied()), *want, "{what}");
        }
    }
}
