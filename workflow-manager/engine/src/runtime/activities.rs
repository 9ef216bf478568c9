//! Activity tasks between the step machine and the workers: per activity, the tasks ready to
//! hand out (oldest first) and the pollers waiting for one; the tasks handed out, with their
//! token's secret and heartbeat deadline. A ready task is only its key here (its input stays
//! in the store until it is handed out). A poller that gives up is removed at once, and an
//! activity with neither tasks nor pollers has no entry.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// A ready task: (scheduled epoch ms, execution, number).
pub type Ready = (i64, i64, u32);

#[derive(Default)]
struct Queue {
    ready: BTreeSet<Ready>,
    waiters: VecDeque<(u64, oneshot::Sender<Ready>)>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.waiters.is_empty()
    }
}

/// A task a worker holds.
#[derive(Debug, Clone)]
pub struct Held {
    /// The activity.
    pub activity: String,
    /// Its token's secret.
    pub secret: String,
    /// `HeartbeatSeconds`.
    pub heartbeat: Option<u64>,
    /// The heartbeat deadline (epoch ms).
    pub deadline_ms: Option<i64>,
}

/// The queues and the tasks handed out.
#[derive(Default)]
pub struct Activities {
    queues: Mutex<HashMap<String, Queue>>,
    held: Mutex<HashMap<(i64, u32), Held>>,
    next_waiter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Activities {
    /// Makes a task available: to the longest-waiting poller, else to the next one.
    pub fn schedule(&self, activity: &str, task: Ready) {
        let mut queues = lock(&self.queues);
        let queue = queues.entry(activity.to_string()).or_default();
        let mut task = task;
        while let Some((_, waiter)) = queue.waiters.pop_front() {
            match waiter.send(task) {
                Ok(()) => return,
                Err(back) => task = back,
            }
        }
        queue.ready.insert(task);
    }

    /// Adds tasks ready after a restart.
    pub fn restore(&self, activity: &str, tasks: impl IntoIterator<Item = Ready>) {
        let mut queues = lock(&self.queues);
        queues
            .entry(activity.to_string())
            .or_default()
            .ready
            .extend(tasks);
    }

    /// A task is over: it is no longer handed out, and a worker's heartbeat for it is refused.
    pub fn unschedule(&self, activity: &str, task: Ready) {
        {
            let mut queues = lock(&self.queues);
            if let Some(q) = queues.get_mut(activity) {
                q.ready.remove(&task);
                if q.is_empty() {
                    queues.remove(activity);
                }
            }
        }
        lock(&self.held).remove(&(task.1, task.2));
    }

    /// Waits up to `wait` for a task of `activity`, or until `stop` turns true. A task handed
    /// over meanwhile is kept either way.
    pub async fn poll(
        &self,
        activity: &str,
        wait: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<Ready> {
        let id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let mut rx = {
            let mut queues = lock(&self.queues);
            let queue = queues.entry(activity.to_string()).or_default();
            if let Some(t) = queue.ready.pop_first() {
                if queue.is_empty() {
                    queues.remove(activity);
                }
                return Some(t);
            }
            let (tx, rx) = oneshot::channel();
            queue.waiters.push_back((id, tx));
            rx
        };
        let received = tokio::select! {
            r = &mut rx => r.ok(),
            _ = tokio::time::sleep(wait) => None,
            _ = stop.wait_for(|s| *s) => None,
        };
        if received.is_some() {
            return received;
        }
        // Gave up: leave the queue, keeping a task handed over just now.
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get_mut(activity) {
            q.waiters.retain(|(w, _)| *w != id);
            if q.is_empty() {
                queues.remove(activity);
            }
        }
        rx.close();
        rx.try_recv().ok()
    }

    /// A worker holds the task now.
    pub fn hold(&self, execution: i64, seq: u32, held: Held) {
        lock(&self.held).insert((execution, seq), held);
    }

    /// The task a worker holds.
    pub fn held(&self, execution: i64, seq: u32) -> Option<Held> {
        lock(&self.held).get(&(execution, seq)).cloned()
    }

    /// Moves a held task's heartbeat deadline; returns the old and new deadlines.
    pub fn beat(&self, execution: i64, seq: u32, now_ms: i64) -> Option<(i64, i64)> {
        let mut held = lock(&self.held);
        let h = held.get_mut(&(execution, seq))?;
        let old = h.deadline_ms?;
        let new = now_ms + (h.heartbeat? as i64) * 1000;
        h.deadline_ms = Some(new);
        Some((old, new))
    }

    /// Tasks no worker holds yet, and the oldest one's scheduling time.
    pub fn waiting(&self) -> (usize, Option<i64>) {
        let queues = lock(&self.queues);
        let count = queues.values().map(|q| q.ready.len()).sum();
        let oldest = queues
            .values()
            .filter_map(|q| q.ready.first().map(|r| r.0))
            .min();
        (count, oldest)
    }

    /// Tasks handed out and not answered.
    pub fn held_count(&self) -> usize {
        lock(&self.held).len()
    }

    /// Forgets everything (the engine halts).
    pub fn clear(&self) {
        lock(&self.queues).clear();
        lock(&self.held).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_go_oldest_first_and_pollers_that_give_up_leave() {
        let a = Activities::default();
        let (_tx, mut stop) = tokio::sync::watch::channel(false);
        a.schedule("x", (20, 1, 1));
        a.schedule("x", (10, 2, 1));
        assert_eq!(
            a.poll("x", Duration::ZERO, &mut stop).await,
            Some((10, 2, 1))
        );
        a.unschedule("x", (20, 1, 1));
        assert_eq!(a.poll("x", Duration::from_millis(5), &mut stop).await, None);
        assert!(lock(&a.queues).is_empty(), "idle activities keep no entry");
        assert_eq!(a.waiting(), (0, None));
    }
}
