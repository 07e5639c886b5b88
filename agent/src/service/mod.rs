//! Services: desiredCount copies of a task kept running, replaced when they stop or turn
//! unhealthy, rolled to new revisions within the deployment configuration's bounds.
//! `model` is the ECS document, `reconcile` the pure decision of one pass, `actions` the
//! ECS API actions and `controller` the loop that applies the decisions.

mod actions;
mod controller;
pub mod model;
pub mod reconcile;

use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub use controller::TICK;

/// What the agent keeps for its services between calls: a wake-up for the reconciler and
/// the lock that keeps an API edit and a reconcile pass of a service from crossing.
#[derive(Default)]
pub(crate) struct Services {
    changed: Mutex<bool>,
    wake: Condvar,
    pub(crate) edit: Mutex<()>,
}

impl Services {
    /// Something changed (a task, a service): the reconciler looks again now.
    pub(crate) fn notify(&self) {
        let mut changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        *changed = true;
        self.wake.notify_all();
    }

    /// Waits for a change or `timeout`, whichever comes first.
    fn wait(&self, timeout: Duration) {
        let changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        let (mut changed, _) = self
            .wake
            .wait_timeout_while(changed, timeout, |c| !*c)
            .unwrap_or_else(|e| e.into_inner());
        *changed = false;
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.edit.lock().unwrap_or_else(|e| e.into_inner())
    }
}
