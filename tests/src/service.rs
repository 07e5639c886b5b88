//! ECS services on the agent under test: describe-services and list-tasks --service-name
//! through the `berth` command line, and waiting for a service to reach a state.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Agent;

impl Agent {
    /// `describe-services --services NAME`: the service; panics when it is missing.
    #[track_caller]
    pub fn describe_service(&self, name: &str) -> Value {
        let mut response = self.json(&["describe-services", "--services", name]);
        let service = response["services"][0].take();
        assert!(
            service.is_object(),
            "describe-services {name}: {response:#}"
        );
        service
    }

    /// Polls describe-services every 100 ms until `done` holds, and returns the service.
    #[track_caller]
    pub fn wait_service(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let service = self.describe_service(name);
            if done(&service) {
                return service;
            }
            assert!(
                Instant::now() < deadline,
                "service {name}: not {what} after {timeout:?}: {service:#}\nagent log:\n{}",
                self.daemon_log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the service's only deployment is COMPLETED with `count` tasks RUNNING
    /// and none pending.
    #[track_caller]
    pub fn wait_steady(&self, name: &str, count: u64, timeout: Duration) -> Value {
        self.wait_service(
            name,
            &format!("steady with {count} tasks running"),
            timeout,
            |s| {
                s["runningCount"] == count
                    && s["pendingCount"] == 0
                    && s["deployments"].as_array().is_some_and(|d| d.len() == 1)
                    && s["deployments"][0]["rolloutState"] == "COMPLETED"
            },
        )
    }

    /// `list-tasks --service-name NAME [--desired-status STATUS]`: task ids.
    #[track_caller]
    pub fn service_tasks(&self, name: &str, desired_status: &str) -> Vec<String> {
        let response = self.json(&[
            "list-tasks",
            "--service-name",
            name,
            "--desired-status",
            desired_status,
        ]);
        response["taskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|arn| arn.as_str())
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string())
            .collect()
    }
}
