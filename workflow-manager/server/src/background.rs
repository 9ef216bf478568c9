//! The service's background work under one driver: each task has a name, the driver owns its
//! handle, its state (running, ended, panicked) is a `/_ready` check (`background`) and the
//! gauge `wfm_background_task_running{task}` in `/metrics`, and at shutdown the driver waits
//! for the tasks to end (they watch the shutdown signal), aborting what is left after a
//! deadline. A background task that ends or panics while the service runs makes it not ready:
//! without its status sync, for one, workflows would never change again.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};

use crate::ops::Probe;

/// Where a background task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Doing its work.
    Running,
    /// Its work returned (at shutdown, or too early).
    Ended,
    /// It panicked, with this message.
    Panicked(String),
}

struct Task {
    name: &'static str,
    state: Arc<Mutex<TaskState>>,
    /// The task doing the work (aborted at a shutdown that waits too long).
    work: AbortHandle,
    /// The task watching it (ends when the work does).
    watcher: JoinHandle<()>,
}

/// The background tasks of one service instance.
#[derive(Default)]
pub struct Driver {
    tasks: Mutex<Vec<Task>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Driver {
    /// A driver with no tasks.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `work` as the background task `name`.
    pub fn spawn<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = Arc::new(Mutex::new(TaskState::Running));
        metrics::gauge!("wfm_background_task_running", "task" => name).set(1.0);
        let inner = tokio::spawn(work);
        let abort = inner.abort_handle();
        let watched = state.clone();
        let watcher = tokio::spawn(async move {
            let ended = match inner.await {
                Ok(()) => TaskState::Ended,
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    tracing::error!(task = name, %message, "background task panicked");
                    TaskState::Panicked(message)
                }
                Err(_) => TaskState::Ended,
            };
            metrics::gauge!("wfm_background_task_running", "task" => name).set(0.0);
            *lock(&watched) = ended;
        });
        lock(&self.tasks).push(Task {
            name,
            state,
            work: abort,
            watcher,
        });
    }

    /// Every task's name and state, in the order they were started.
    pub fn states(&self) -> Vec<(&'static str, TaskState)> {
        lock(&self.tasks)
            .iter()
            .map(|t| (t.name, lock(&t.state).clone()))
            .collect()
    }

    /// Waits up to `patience` in all for the tasks to end (after the shutdown signal), then
    /// aborts the rest; returns the names of those aborted.
    pub async fn stop(&self, patience: Duration) -> Vec<&'static str> {
        let tasks: Vec<Task> = std::mem::take(&mut *lock(&self.tasks));
        let deadline = tokio::time::Instant::now() + patience;
        let mut aborted = Vec::new();
        for mut t in tasks {
            if tokio::time::timeout_at(deadline, &mut t.watcher)
                .await
                .is_err()
            {
                t.work.abort();
                let _ = t.watcher.await;
                aborted.push(t.name);
            }
        }
        if !aborted.is_empty() {
            tracing::warn!(tasks = ?aborted, "background tasks did not stop in time and were aborted");
        }
        aborted
    }
}

/// `/_ready`'s `background` check: every background task is running.
pub struct BackgroundProbe(pub Arc<Driver>);

#[async_trait::async_trait]
impl Probe for BackgroundProbe {
    fn name(&self) -> &'static str {
        "background"
    }

    async fn check(&self) -> Result<(), String> {
        let wrong: Vec<String> = self
            .0
            .states()
            .into_iter()
            .filter_map(|(name, state)| match state {
                TaskState::Running => None,
                TaskState::Ended => Some(format!("{name} ended")),
                TaskState::Panicked(m) => Some(format!("{name} panicked: {m}")),
            })
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_are_watched_reported_and_stopped() {
        let driver = Driver::new();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut rx = stop_rx.clone();
        driver.spawn("polite", async move {
            let _ = rx.wait_for(|s| *s).await;
        });
        driver.spawn("stubborn", std::future::pending());
        driver.spawn("broken", async { panic!("out of cheese") });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let probe = BackgroundProbe(driver.clone());
        let failed = probe.check().await.expect_err("one task panicked");
        assert!(
            failed.contains("broken panicked: out of cheese"),
            "{failed}"
        );
        assert_eq!(driver.states()[0], ("polite", TaskState::Running));
        let _ = stop_tx.send(true);
        let aborted = driver.stop(Duration::from_millis(200)).await;
        assert_eq!(
            aborted,
            ["stubborn"],
            "the one that ignores shutdown is aborted"
        );
        assert!(driver.states().is_empty());
        drop(stop_rx);
    }
}
