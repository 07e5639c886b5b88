use super::*;
use crate::service::model::{CircuitBreaker, DeploymentConfiguration};

const NOW: f64 = 1000.0;

fn deployment(id: &str, def: &str, state: &str) -> Deployment {
    Deployment {
        id: id.into(),
        status: "ACTIVE".into(),
        task_definition: def.into(),
        rollout_state: state.into(),
        created_at: 1.0,
        ..Default::default()
    }
}

/// A service of `desired` tasks whose deployments are `deps`, the first being primary.
fn service(desired: u32, min: u32, max: u32, mut deps: Vec<Deployment>) -> Service {
    deps[0].status = "PRIMARY".into();
    Service {
        service_name: "web".into(),
        status: "ACTIVE".into(),
        task_definition: deps[0].task_definition.clone(),
        desired_count: desired,
        deployment_configuration: DeploymentConfiguration {
            minimum_healthy_percent: min,
            maximum_percent: max,
            deployment_circuit_breaker: CircuitBreaker {
                enable: true,
                rollback: true,
            },
        },
        deployments: deps,
        ..Default::default()
    }
}

fn task(id: &str, dep: &str, status: &str) -> ObservedTask {
    let created = id
        .trim_start_matches(|c: char| c.is_alphabetic())
        .parse()
        .unwrap_or(0.0);
    ObservedTask {
        id: id.into(),
        started_by: Some(dep.into()),
        last_status: status.into(),
        desired_status: if status == "STOPPED" {
            "STOPPED"
        } else {
            "RUNNING"
        }
        .into(),
        health_status: "UNKNOWN".into(),
        created_at: created,
        started_at: (status == "RUNNING" || status == "STOPPED").then_some(created + 1.0),
        ..Default::default()
    }
}

/// A task of `dep` whose essential container exited `after` seconds after it started,
/// at `at`.
fn exited(id: &str, dep: &str, after: f64, at: f64) -> ObservedTask {
    ObservedTask {
        started_at: Some(at - after),
        stopped_at: Some(at),
        stop_code: Some("EssentialContainerExited".into()),
        ..task(id, dep, "STOPPED")
    }
}

fn stopped_ids(d: &Decision) -> Vec<&str> {
    let mut ids: Vec<&str> = d.stop.iter().map(|s| s.task.as_str()).collect();
    ids.sort();
    ids
}

fn launched(d: &Decision) -> u32 {
    d.launch.as_ref().map_or(0, |l| l.count)
}

#[test]
fn percentages_round_as_ecs_does() {
    // (desired, percent, minimum healthy rounded up, maximum rounded down)
    for (desired, percent, min, max) in [
        (3, 100, 3, 3),
        (3, 50, 2, 1),
        (5, 33, 2, 1),
        (4, 50, 2, 2),
        (3, 150, 5, 4),
        (1, 150, 2, 1),
        (3, 200, 6, 6),
        (0, 100, 0, 0),
        (10, 0, 0, 0),
    ] {
        assert_eq!(
            minimum_healthy(desired, percent),
            min,
            "min {desired} {percent}"
        );
        assert_eq!(
            maximum_tasks(desired, percent),
            max,
            "max {desired} {percent}"
        );
    }
}

#[test]
fn circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    for (desired, threshold) in [
        (0, 3),
        (1, 3),
        (5, 3),
        (6, 3),
        (7, 4),
        (10, 5),
        (399, 200),
        (1000, 200),
    ] {
        assert_eq!(failure_threshold(desired), threshold, "desired {desired}");
    }
}

#[test]
fn throttle_delays_grow_to_a_cap() {
    let delays: Vec<f64> = (0..7).map(throttle_delay).collect();
    assert_eq!(delays, [0.0, 0.0, 0.0, 10.0, 20.0, 40.0, 80.0]);
    assert_eq!(throttle_delay(100), 27.0 * 60.0);
}

#[test]
fn a_new_service_launches_its_desired_count() {
    let s = service(
        3,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "IN_PROGRESS")],
    );
    let d = reconcile(&s, &[], NOW);
    assert_eq!(
        d.launch,
        Some(Launch {
            deployment: "ecs-svc/1".into(),
            task_definition: "web:1".into(),
            count: 3
        })
    );
    assert!(d.stop.is_empty());
    assert_eq!(d.service.deployments[0].rollout_state, "IN_PROGRESS");
}

#[test]
fn pending_tasks_count_so_nothing_is_launched_twice() {
    let s = service(
        3,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "IN_PROGRESS")],
    );
    let tasks = [
        task("t1", "ecs-svc/1", "PROVISIONING"),
        task("t2", "ecs-svc/1", "PENDING"),
        task("t3", "ecs-svc/1", "RUNNING"),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(d.launch, None);
    assert!(d.stop.is_empty());
    assert_eq!((d.service.running_count, d.service.pending_count), (1, 2));
    assert_eq!(d.service.deployments[0].rollout_state, "IN_PROGRESS");
}

#[test]
fn all_running_completes_the_deployment_then_says_steady_state_once() {
    let s = service(
        2,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "IN_PROGRESS")],
    );
    let tasks = [
        task("t1", "ecs-svc/1", "RUNNING"),
        task("t2", "ecs-svc/1", "RUNNING"),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(d.service.deployments[0].rollout_state, "COMPLETED");
    assert_eq!(
        d.events,
        [
            "(service web) (deployment ecs-svc/1) deployment completed.",
            "(service web) has reached a steady state."
        ]
    );
    let mut s = d.service;
    s.add_events(&d.events, NOW, || "id".into());
    let again = reconcile(&s, &tasks, NOW + 1.0);
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.service, s);
}

#[test]
fn a_stopped_task_is_replaced() {
    let s = service(
        3,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    let tasks = [
        task("t1", "ecs-svc/1", "RUNNING"),
        exited("t2", "ecs-svc/1", 100.0, NOW - 1.0),
        task("t3", "ecs-svc/1", "RUNNING"),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(launched(&d), 1);
    assert_eq!(d.service.running_count, 2);
}

#[test]
fn a_task_stopped_by_the_user_is_replaced_while_it_stops() {
    let s = service(
        2,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    let mut stopping = task("t2", "ecs-svc/1", "RUNNING");
    stopping.desired_status = "STOPPED".into();
    let d = reconcile(&s, &[task("t1", "ecs-svc/1", "RUNNING"), stopping], NOW);
    assert_eq!(launched(&d), 1);
}

#[test]
fn scaling_in_stops_pending_then_newest_tasks() {
    let s = service(
        1,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    let tasks = [
        task("t1", "ecs-svc/1", "RUNNING"),
        task("t2", "ecs-svc/1", "RUNNING"),
        task("t3", "ecs-svc/1", "RUNNING"),
        task("t0", "ecs-svc/1", "PENDING"),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(stopped_ids(&d), ["t0", "t2", "t3"]);
    assert_eq!(d.launch, None);
    assert!(
        d.stop[0]
            .reason
            .contains("Scaling activity initiated by (deployment ecs-svc/1)")
    );
    assert_eq!(d.service.deployments[0].desired_count, 1);
}

#[test]
fn scaling_to_zero_stops_everything() {
    let s = service(
        0,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    let d = reconcile(&s, &[task("t1", "ecs-svc/1", "RUNNING")], NOW);
    assert_eq!(stopped_ids(&d), ["t1"]);
}

/// Old revision 1 with `old` tasks, new revision 2 with `new` tasks.
fn rolling(desired: u32, min: u32, max: u32, old: &[&str], new: &[&str]) -> Decision {
    let s = service(
        desired,
        min,
        max,
        vec![
            deployment("ecs-svc/2", "web:2", "IN_PROGRESS"),
            deployment("ecs-svc/1", "web:1", "COMPLETED"),
        ],
    );
    let mut tasks = Vec::new();
    for (i, status) in old.iter().enumerate() {
        tasks.push(task(&format!("o{i}"), "ecs-svc/1", status));
    }
    for (i, status) in new.iter().enumerate() {
        tasks.push(task(&format!("n{}", 10 + i), "ecs-svc/2", status));
    }
    reconcile(&s, &tasks, NOW)
}

#[test]
fn rolling_deployment_with_room_starts_new_tasks_before_stopping_old_ones() {
    let r = ["RUNNING"; 3];
    // min 100%, max 200%: three new at once, no old one stopped yet.
    let d = rolling(3, 100, 200, &r, &[]);
    assert_eq!((launched(&d), d.stop.len()), (3, 0));
    // One new one running: one old one may go.
    let d = rolling(3, 100, 200, &r, &["RUNNING", "PENDING", "PENDING"]);
    assert_eq!((launched(&d), stopped_ids(&d)), (0, vec!["o0"]));
    // All new ones running: the old ones go.
    let d = rolling(3, 100, 200, &r, &r);
    assert_eq!(stopped_ids(&d), ["o0", "o1", "o2"]);
    assert_eq!(d.service.deployments[1].desired_count, 0);
    assert_eq!(d.service.deployments[0].rollout_state, "IN_PROGRESS");
    // Old ones gone: completed, the old deployment dropped.
    let d = rolling(3, 100, 200, &["STOPPED"; 3], &r);
    assert_eq!(d.service.deployments.len(), 1);
    assert_eq!(d.service.deployments[0].rollout_state, "COMPLETED");
}

#[test]
fn rolling_deployment_without_room_stops_old_tasks_down_to_minimum_healthy() {
    let r = ["RUNNING"; 4];
    // min 50%, max 100%: two old ones go first, nothing starts until they have stopped.
    let d = rolling(4, 50, 100, &r, &[]);
    assert_eq!((launched(&d), stopped_ids(&d)), (0, vec!["o0", "o1"]));
    let d = rolling(
        4,
        50,
        100,
        &["STOPPED", "STOPPED", "RUNNING", "RUNNING"],
        &[],
    );
    assert_eq!((launched(&d), d.stop.len()), (2, 0));
    // min 75%, max 125% of 3: at least 3 (rounded up), at most 3 (rounded down): stuck
    // until a task is gone, never under the minimum.
    let d = rolling(3, 75, 125, &["RUNNING"; 3], &[]);
    assert_eq!((launched(&d), d.stop.len()), (0, 0));
}

#[test]
fn new_tasks_with_health_checks_must_be_healthy_before_old_ones_stop() {
    let s = service(
        1,
        100,
        200,
        vec![
            deployment("ecs-svc/2", "web:2", "IN_PROGRESS"),
            deployment("ecs-svc/1", "web:1", "COMPLETED"),
        ],
    );
    let old = task("o1", "ecs-svc/1", "RUNNING");
    let mut new = task("n2", "ecs-svc/2", "RUNNING");
    new.has_health_check = true;
    let d = reconcile(&s, &[old.clone(), new.clone()], NOW);
    assert!(d.stop.is_empty());
    new.health_status = "HEALTHY".into();
    let d = reconcile(&s, &[old, new], NOW);
    assert_eq!(stopped_ids(&d), ["o1"]);
}

#[test]
fn unhealthy_tasks_are_replaced() {
    let s = service(
        2,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    let mut sick = task("t1", "ecs-svc/1", "RUNNING");
    sick.health_status = "UNHEALTHY".into();
    let d = reconcile(&s, &[sick, task("t2", "ecs-svc/1", "RUNNING")], NOW);
    assert_eq!(stopped_ids(&d), ["t1"]);
    assert_eq!(d.stop[0].reason, UNHEALTHY_REASON);
    assert_eq!(launched(&d), 1);
}

#[test]
fn the_circuit_breaker_fails_the_deployment_and_rolls_back() {
    let s = service(
        3,
        100,
        200,
        vec![
            deployment("ecs-svc/2", "web:2", "IN_PROGRESS"),
            deployment("ecs-svc/1", "web:1", "COMPLETED"),
        ],
    );
    let mut tasks: Vec<ObservedTask> = (0..3)
        .map(|i| task(&format!("o{i}"), "ecs-svc/1", "RUNNING"))
        .collect();
    tasks.push(exited("n1", "ecs-svc/2", 0.1, NOW - 3.0));
    tasks.push(exited("n2", "ecs-svc/2", 0.1, NOW - 2.0));
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(d.service.deployments[0].rollout_state, "IN_PROGRESS");
    assert_eq!(d.service.deployments[0].failed_tasks, 2);
    assert_eq!(launched(&d), 3);

    tasks.push(exited("n3", "ecs-svc/2", 0.1, NOW - 1.0));
    let d = reconcile(&s, &tasks, NOW);
    let deps = &d.service.deployments;
    assert_eq!(
        (
            deps[0].id.as_str(),
            deps[0].status.as_str(),
            deps[0].rollout_state.as_str()
        ),
        ("ecs-svc/1", "PRIMARY", "IN_PROGRESS")
    );
    assert_eq!(
        (
            deps[1].id.as_str(),
            deps[1].status.as_str(),
            deps[1].rollout_state.as_str()
        ),
        ("ecs-svc/2", "ACTIVE", "FAILED")
    );
    assert_eq!(deps[1].failed_tasks, 3);
    assert_eq!(d.service.task_definition, "web:1");
    assert!(d.events[0].contains("deployment failed: tasks failed to start"));
    // The old tasks belong to the primary deployment again: nothing to start or stop.
    assert_eq!((launched(&d), d.stop.len()), (0, 0));

    // The next pass completes the rollback.
    let again = reconcile(&d.service, &tasks, NOW + 1.0);
    assert_eq!(again.service.deployments.len(), 1);
    assert_eq!(again.service.deployments[0].rollout_state, "COMPLETED");
}

#[test]
fn without_rollback_a_failed_deployment_stays_failed_and_the_old_tasks_stay() {
    let mut s = service(
        2,
        100,
        200,
        vec![
            deployment("ecs-svc/2", "web:2", "IN_PROGRESS"),
            deployment("ecs-svc/1", "web:1", "COMPLETED"),
        ],
    );
    s.deployment_configuration
        .deployment_circuit_breaker
        .rollback = false;
    let tasks = [
        task("o1", "ecs-svc/1", "RUNNING"),
        task("o2", "ecs-svc/1", "RUNNING"),
        exited("n1", "ecs-svc/2", 0.1, NOW - 300.0),
        exited("n2", "ecs-svc/2", 0.1, NOW - 200.0),
        exited("n3", "ecs-svc/2", 0.1, NOW - 100.0),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(d.service.deployments[0].rollout_state, "FAILED");
    assert_eq!(d.service.deployments[0].id, "ecs-svc/2");
    assert!(d.stop.is_empty());
}

#[test]
fn quick_failures_throttle_launches() {
    let mut s = service(
        1,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    s.deployment_configuration.deployment_circuit_breaker.enable = false;
    let tasks = [
        exited("t1", "ecs-svc/1", 0.5, NOW - 30.0),
        exited("t2", "ecs-svc/1", 0.5, NOW - 20.0),
        exited("t3", "ecs-svc/1", 0.5, NOW - 4.0),
    ];
    let d = reconcile(&s, &tasks, NOW);
    assert_eq!(d.launch, None);
    assert_eq!(d.requeue_after, Some(6.0));
    assert_eq!(
        d.events,
        ["(service web) is unable to consistently start tasks successfully."]
    );
    // Once the delay is over, the next one starts.
    let d = reconcile(&s, &tasks, NOW + 6.0);
    assert_eq!(launched(&d), 1);
    // Tasks that ran a while do not throttle.
    let long = [
        exited("t1", "ecs-svc/1", 60.0, NOW - 30.0),
        exited("t2", "ecs-svc/1", 60.0, NOW - 20.0),
        exited("t3", "ecs-svc/1", 60.0, NOW - 4.0),
    ];
    assert_eq!(launched(&reconcile(&s, &long, NOW)), 1);
    // A new deployment starts afresh.
    let mut fresh = s.clone();
    fresh
        .deployments
        .insert(0, deployment("ecs-svc/2", "web:1", "IN_PROGRESS"));
    fresh.deployments[0].status = "PRIMARY".into();
    assert_eq!(launched(&reconcile(&fresh, &tasks, NOW)), 1);
}

#[test]
fn a_deleted_service_stops_its_tasks_then_becomes_inactive() {
    let mut s = service(
        0,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "COMPLETED")],
    );
    s.status = "DRAINING".into();
    let d = reconcile(&s, &[task("t1", "ecs-svc/1", "RUNNING")], NOW);
    assert_eq!(stopped_ids(&d), ["t1"]);
    assert_eq!(
        d.events,
        ["(service web) has stopped 1 running tasks: (task t1)."]
    );
    assert_eq!(d.service.status, "DRAINING");
    let d = reconcile(&s, &[task("t1", "ecs-svc/1", "STOPPED")], NOW);
    assert!(d.stop.is_empty());
    assert_eq!(d.service.status, "INACTIVE");
}

#[test]
fn a_task_running_for_a_moment_does_not_replace_an_old_one_yet() {
    let s = service(
        1,
        100,
        200,
        vec![
            deployment("ecs-svc/2", "web:2", "IN_PROGRESS"),
            deployment("ecs-svc/1", "web:1", "COMPLETED"),
        ],
    );
    let old = task("o1", "ecs-svc/1", "RUNNING");
    let mut new = task("n2", "ecs-svc/2", "RUNNING");
    new.started_at = Some(NOW - 0.5);
    let d = reconcile(&s, &[old.clone(), new.clone()], NOW);
    assert!(d.stop.is_empty());
    assert_eq!(d.requeue_after, Some(1.5));
    let d = reconcile(&s, &[old, new], NOW + 1.5);
    assert_eq!(stopped_ids(&d), ["o1"]);
}

#[test]
fn no_steady_state_while_a_task_is_still_stopping() {
    let s = service(
        1,
        100,
        200,
        vec![deployment("ecs-svc/1", "web:1", "IN_PROGRESS")],
    );
    let mut going = task("t2", "ecs-svc/1", "RUNNING");
    going.desired_status = "STOPPED".into();
    let d = reconcile(&s, &[task("t1", "ecs-svc/1", "RUNNING"), going], NOW);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert_eq!(d.service.deployments[0].rollout_state, "IN_PROGRESS");
}
