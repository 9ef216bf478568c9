//! An index of what is due when: (due time, execution, number) in order, and a driver that
//! hands each entry over once its time has come. Timers (Wait states, retries, task and
//! execution time-outs) and heartbeat deadlines each have one. Nothing else about a waiting
//! execution is in memory.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::clock::Clock;

/// What is due: (due epoch ms, execution, number).
pub type Due = (i64, i64, u32);

/// The index.
#[derive(Default)]
pub struct DueSet {
    entries: Mutex<BTreeSet<Due>>,
    changed: Notify,
}

impl DueSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<Due>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an entry.
    pub fn insert(&self, due: Due) {
        let first = {
            let mut set = self.lock();
            set.insert(due);
            set.first() == Some(&due)
        };
        if first {
            self.changed.notify_one();
        }
    }

    /// Removes an entry (it is no longer wanted).
    pub fn remove(&self, due: Due) {
        self.lock().remove(&due);
    }

    /// Adds many entries (after a restart).
    pub fn extend(&self, entries: impl IntoIterator<Item = Due>) {
        self.lock().extend(entries);
        self.changed.notify_one();
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Wakes the driver (its owner is going away, or stopped).
    pub fn wake(&self) {
        self.changed.notify_one();
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Takes the entries due at `now_ms`; or says when the next one is due.
    fn take_due(&self, now_ms: i64) -> (Vec<Due>, Option<i64>) {
        let mut set = self.lock();
        let mut out = Vec::new();
        while let Some(first) = set.first().copied() {
            if first.0 > now_ms || out.len() >= 1024 {
                break;
            }
            set.pop_first();
            out.push(first);
        }
        let next = set.first().map(|d| d.0);
        (out, next)
    }

    /// Hands every entry to `fire` once due, until `owner` is gone or `stop` says so.
    pub async fn drive<O: Send + Sync + 'static>(
        self: Arc<Self>,
        clock: Clock,
        owner: Weak<O>,
        stop: impl Fn(&O) -> bool,
        fire: impl Fn(&Arc<O>, Due),
    ) {
        loop {
            let Some(o) = owner.upgrade() else { return };
            if stop(&o) {
                return;
            }
            let (due, next) = self.take_due(clock.now_ms());
            for d in due.iter().copied() {
                fire(&o, d);
            }
            drop(o);
            if !due.is_empty() {
                tokio::task::yield_now().await;
                continue;
            }
            // Wake at the next due time, when an earlier entry comes, or when the owner goes
            // (it wakes the index as it drops or halts).
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep(clock.until(at)) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}
