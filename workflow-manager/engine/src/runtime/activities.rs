//! Activity tasks between the step machine and the workers: per activity, the tasks ready to
//! hand out (oldest first) and the pollers waiting for one; the tasks handed out, with their
//! token's secret and heartbeat deadline. A ready task is only its key here (its input stays
//! in the store until it is handed out). A poller that gives up is removed at once, and an
//! activity with neither tasks nor pollers has no entry.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// A ready task: (scheduled epoch ms, execution, number).
pub type Ready = (i64, i64, u32);

/// What a waiting poller is given.
#[derive(Debug)]
pub enum Delivery {
    /// A task to hand out (the poller records the handout).
    Ready(Ready),
    /// A task already handed out to this poller, in the round that scheduled it.
    Handed {
        /// Its queue key.
        ready: Ready,
        /// The task.
        task: crate::ActivityTask,
    },
}

impl Delivery {
    fn key(&self) -> Ready {
        match self {
            Delivery::Ready(r) | Delivery::Handed { ready: r, .. } => *r,
        }
    }
}

/// Where a waiting poller gets its task. A poller that goes away (its request dropped) with a
/// task in its slot puts the task back.
#[derive(Default)]
struct Slot {
    /// The task handed over; `closed` once the poller stopped waiting.
    state: Mutex<(Option<Delivery>, bool)>,
    filled: Notify,
    /// The poller's worker name.
    worker: Option<String>,
}

impl Slot {
    /// Hands `task` over, unless the poller stopped waiting.
    fn offer(&self, task: Delivery) -> Result<(), Delivery> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.1 || st.0.is_some() {
            return Err(task);
        }
        st.0 = Some(task);
        drop(st);
        self.filled.notify_one();
        Ok(())
    }

    /// Stops waiting; returns a task handed over meanwhile.
    fn close(&self) -> Option<Delivery> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1 = true;
        st.0.take()
    }
}

#[derive(Default)]
struct Queue {
    ready: BTreeSet<Ready>,
    waiters: VecDeque<(u64, Arc<Slot>)>,
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
        let mut task = Delivery::Ready(task);
        while let Some((_, waiter)) = queue.waiters.pop_front() {
            match waiter.offer(task) {
                Ok(()) => return,
                Err(back) => task = back,
            }
        }
        queue.ready.insert(task.key());
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

    /// A task is over: it is no longer handed out. (What a worker holds of it is let go with
    /// [`release`](Self::release), which the runtime calls with the heartbeat deadline.)
    pub fn unschedule(&self, activity: &str, task: Ready) {
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get_mut(activity) {
            q.ready.remove(&task);
            if q.is_empty() {
                queues.remove(activity);
            }
        }
    }

    /// Waits up to `wait` for a task of `activity`, or until `stop` turns true. A task handed
    /// over meanwhile is kept either way; if the poll itself is dropped, it goes back.
    pub async fn poll(
        &self,
        activity: &str,
        worker: Option<&str>,
        wait: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<Delivery> {
        let id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let slot = {
            let mut queues = lock(&self.queues);
            let queue = queues.entry(activity.to_string()).or_default();
            if let Some(t) = queue.ready.pop_first() {
                if queue.is_empty() {
                    queues.remove(activity);
                }
                return Some(Delivery::Ready(t));
            }
            let slot = Arc::new(Slot {
                worker: worker.map(str::to_string),
                ..Slot::default()
            });
            queue.waiters.push_back((id, slot.clone()));
            slot
        };
        // However the wait ends (also when this future is dropped): leave the queue, and keep
        // or give back a task handed over just now.
        struct Leave<'a> {
            board: &'a Activities,
            activity: &'a str,
            id: u64,
            slot: Arc<Slot>,
            keep: bool,
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                {
                    let mut queues = lock(&self.board.queues);
                    if let Some(q) = queues.get_mut(self.activity) {
                        q.waiters.retain(|(w, _)| *w != self.id);
                        if q.is_empty() {
                            queues.remove(self.activity);
                        }
                    }
                }
                if !self.keep {
                    if let Some(t) = self.slot.close() {
                        self.board.schedule(self.activity, t.key());
                    }
                }
            }
        }
        let mut leave = Leave {
            board: self,
            activity,
            id,
            slot: slot.clone(),
            keep: false,
        };
        tokio::select! {
            _ = slot.filled.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        leave.keep = true;
        let got = slot.close();
        drop(leave);
        got
    }

    /// Takes the longest-waiting poller of `activity` for a task about to be scheduled: the
    /// round that schedules it hands it out to this poller too.
    pub fn reserve(&self, activity: &str) -> Option<Reservation> {
        let mut queues = lock(&self.queues);
        let queue = queues.get_mut(activity)?;
        while let Some((id, slot)) = queue.waiters.pop_front() {
            let open = !slot.state.lock().unwrap_or_else(|p| p.into_inner()).1;
            if open {
                return Some(Reservation {
                    id,
                    slot,
                    activity: activity.to_string(),
                });
            }
        }
        None
    }

    /// A worker holds the task now.
    pub fn hold(&self, execution: i64, seq: u32, held: Held) {
        lock(&self.held).insert((execution, seq), held);
    }

    /// Forgets a held task (its call is over); returns what was held.
    pub fn release(&self, execution: i64, seq: u32) -> Option<Held> {
        lock(&self.held).remove(&(execution, seq))
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

/// A poller taken for a task whose scheduling is not committed yet.
pub struct Reservation {
    id: u64,
    slot: Arc<Slot>,
    activity: String,
}

impl Reservation {
    /// The poller's worker name.
    pub fn worker(&self) -> Option<String> {
        self.slot.worker.clone()
    }

    /// Gives the poller its task; if it stopped waiting meanwhile, the task is queued.
    pub fn fill(self, board: &Activities, ready: Ready, task: crate::ActivityTask) {
        if let Err(back) = self.slot.offer(Delivery::Handed { ready, task }) {
            board.schedule(&self.activity, back.key());
        }
    }

    /// The round did not commit: the poller waits on, first in line.
    pub fn cancel(self, board: &Activities) {
        let mut queues = lock(&board.queues);
        queues
            .entry(self.activity.clone())
            .or_default()
            .waiters
            .push_front((self.id, self.slot));
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
        assert!(matches!(
            a.poll("x", None, Duration::ZERO, &mut stop).await,
            Some(Delivery::Ready((10, 2, 1)))
        ));
        a.unschedule("x", (20, 1, 1));
        assert!(a
            .poll("x", None, Duration::from_millis(5), &mut stop)
            .await
            .is_none());
        assert!(lock(&a.queues).is_empty(), "idle activities keep no entry");
        assert_eq!(a.waiting(), (0, None));
    }

    #[tokio::test]
    async fn a_task_handed_to_a_poll_that_is_then_dropped_goes_back() {
        use futures::FutureExt;
        let a = Activities::default();
        let (_tx, mut stop) = tokio::sync::watch::channel(false);
        let mut waiting = Box::pin(a.poll("x", Some("w"), Duration::from_secs(30), &mut stop));
        assert!((&mut waiting).now_or_never().is_none(), "it waits");
        a.schedule("x", (5, 1, 1));
        drop(waiting);
        let (_tx2, mut stop2) = tokio::sync::watch::channel(false);
        assert!(matches!(
            a.poll("x", None, Duration::ZERO, &mut stop2).await,
            Some(Delivery::Ready((5, 1, 1)))
        ));
    }
}
