//! The pull path from AWS Step Functions to the store: a reconciliation loop that keeps every
//! unfinished workflow in step with its execution while staying inside Step Functions' read
//! quotas (DescribeExecution refills at 15/s, GetExecutionHistory at 20/s per account and
//! region, shared with everything else that reads them).
//!
//! - Every sync (one DescribeExecution, and GetExecutionHistory only when the execution has
//!   moved on) first takes a token from a [`TokenBucket`] refilled at `rate` per second.
//! - What most likely changed is looked at first: a workflow is due again after an interval
//!   that starts short (`min_interval`) for a new workflow or one that just changed, and
//!   doubles up to `max_interval` each time it is found unchanged. The queue is ordered by due
//!   time, so a workflow that moves is checked far more often than one waiting for hours.
//! - Throttling halves the bucket's rate (down to a floor) and postpones the workflow; each
//!   clean sync gives a little rate back, up to the configured one (additive increase,
//!   multiplicative decrease).
//! - Every `list_interval`, the RUNNING executions of each state machine with tracked
//!   workflows are listed (ListExecutions, with its own bucket at `list_rate`): a tracked
//!   workflow that left the list most likely ended, and is looked at at once instead of when
//!   its backoff says. One call covers up to 1,000 executions, so ends show within a few
//!   seconds whatever the number of running workflows.
//! - New workflows are picked up every `refresh_interval` by asking the store only for
//!   unfinished workflows created since the last look (a Query on a keys-only index in
//!   DynamoDB), and all unfinished ones are read again every `full_refresh_interval`;
//!   [`Reconciler::nudge`] makes one due at once.
//!
//! EventBridge: Step Functions emits "Step Functions Execution Status Change" events. Routed
//! by a rule to an SQS queue, the consumer of [`crate::events`] (`--events-queue-url`) calls
//! [`Reconciler::nudge`] with each event's execution name: that workflow is looked at before
//! anything due, so status changes show within about a second, and the loop's own checks
//! remain the safety net.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use wfm_core::model::{JobStatus, WorkflowStatus};
use wfm_core::{ManagerError, WorkflowManager};

/// Tunables of the loop.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Syncs per second at most (each is one DescribeExecution, sometimes history reads).
    pub rate: f64,
    /// Tokens that may be spent at once after a quiet spell.
    pub burst: f64,
    /// Interval of a workflow that just changed.
    pub min_interval: Duration,
    /// Longest interval of a workflow found unchanged again and again.
    pub max_interval: Duration,
    /// How often the store is asked for workflows created since the last look.
    pub refresh_interval: Duration,
    /// How often every unfinished workflow is read again (a safety net for anything the
    /// incremental look missed, such as a workflow written with an old creation time).
    pub full_refresh_interval: Duration,
    /// The rate never drops below this under throttling.
    pub min_rate: f64,
    /// How often each state machine's RUNNING executions are listed, so that workflows that
    /// left the list (most likely ended) are looked at first.
    pub list_interval: Duration,
    /// ListExecutions calls per second at most (AWS refills its bucket at 2/s per account).
    pub list_rate: f64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            rate: 10.0,
            burst: 10.0,
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(1),
            full_refresh_interval: Duration::from_secs(600),
            min_rate: 0.5,
            list_interval: Duration::from_secs(2),
            list_rate: 1.0,
        }
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// How long until a token is available (zero if one is), taking it when it is.
    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// The current rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Changes the rate (refilling at the old one first).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate;
    }

    /// Halves the rate, not below `floor` (multiplicative decrease on throttling); returns the
    /// new rate.
    pub fn halve(&mut self, floor: f64, now: Instant) -> f64 {
        let rate = (self.rate / 2.0).max(floor);
        self.set_rate(rate, now);
        rate
    }
}

/// What the loop knows of one workflow.
struct Tracked {
    due: Instant,
    interval: Duration,
    /// Status, job count and last job's status last seen: a change in any is "it moved".
    seen: Option<(WorkflowStatus, usize, Option<JobStatus>)>,
    /// The state machine it runs on, once a sync has seen it.
    state_machine: Option<String>,
}

/// How far back each incremental look reaches before the newest creation time seen: a
/// workflow created just before another may be written just after it (or, on DynamoDB, show in
/// the index a little later).
const LATE_WRITES: chrono::Duration = chrono::Duration::seconds(30);

/// Handle to send workflows to check now.
#[derive(Clone)]
pub struct Reconciler {
    tx: mpsc::UnboundedSender<String>,
}

impl Reconciler {
    /// Makes a workflow due at once.
    pub fn nudge(&self, id: &str) {
        let _ = self.tx.send(id.to_string());
    }
}

/// Counters of the loop, for tests and metrics.
#[derive(Debug, Default, Clone)]
pub struct ReconcileStats {
    /// Syncs made.
    pub syncs: u64,
    /// Syncs refused by throttling.
    pub throttled: u64,
    /// ListExecutions calls (RUNNING executions of one state machine).
    pub lists: u64,
    /// Workflows looked at early because they left the RUNNING list.
    pub listed_as_ended: u64,
}

/// Starts the loop as a task of its own; it ends when `shutdown` turns true.
pub fn spawn(
    manager: WorkflowManager,
    config: ReconcileConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> (Reconciler, tokio::task::JoinHandle<ReconcileStats>) {
    let (reconciler, work) = start(manager, config, shutdown);
    (reconciler, tokio::spawn(work))
}

/// The loop as a future to run (under the background driver); it ends when `shutdown` turns
/// true.
pub fn start(
    manager: WorkflowManager,
    config: ReconcileConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> (
    Reconciler,
    impl std::future::Future<Output = ReconcileStats> + Send + 'static,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let work = async move {
        let mut state = Loop::new(config);
        let mut next_refresh = Instant::now();
        let mut next_list = Instant::now() + state.config.list_interval;
        loop {
            let now = Instant::now();
            if now >= next_refresh {
                state.refresh(&manager).await;
                next_refresh = Instant::now() + state.config.refresh_interval;
            }
            if now >= next_list {
                state.list_round(&manager).await;
                next_list = Instant::now() + state.config.list_interval;
            }
            // Wait for the earliest due workflow (or the next refresh or listing), a nudge, or
            // shutdown.
            let timers = next_refresh.min(next_list);
            let wake = state.next_due().map_or(timers, |d| d.min(timers));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                Some(id) = rx.recv() => { state.nudged(id, Instant::now()); continue; }
                _ = shutdown.wait_for(|s| *s) => return state.stats,
            }
            let Some(id) = state.pop_due(Instant::now()) else {
                continue;
            };
            let wait = state.bucket.take(Instant::now());
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return state.stats,
                }
                // The token accrued while sleeping.
                let _ = state.bucket.take(Instant::now());
            }
            let result = manager.sync_workflow(&id).await;
            if let Ok(wf) = &result {
                state.note_state_machine(&id, manager.state_machine_arn_of(wf));
            }
            state.after_sync(&id, result, Instant::now());
        }
    };
    (Reconciler { tx }, work)
}

struct Loop {
    config: ReconcileConfig,
    /// ListExecutions budget, and where the last round stopped (rounds resume there, so no
    /// state machine starves when the budget runs out).
    list_bucket: TokenBucket,
    list_cursor: usize,
    /// Set when the backend cannot list executions: no more rounds.
    listing_unsupported: bool,
    /// Creation time of the newest unfinished workflow seen, and when all were last read.
    watermark: Option<chrono::DateTime<chrono::Utc>>,
    last_full: Option<Instant>,
    bucket: TokenBucket,
    tracked: HashMap<String, Tracked>,
    /// (due, id), the earliest first.
    queue: BTreeSet<(Instant, String)>,
    /// Workflows that most likely ended (they left their machine's RUNNING list): looked at
    /// before anything due, in the order found.
    urgent: std::collections::VecDeque<String>,
    /// The same ids, to ask "already urgent?" in constant time.
    urgent_ids: std::collections::HashSet<String>,
    stats: ReconcileStats,
}

impl Loop {
    fn new(config: ReconcileConfig) -> Self {
        Self {
            bucket: TokenBucket::new(config.rate, config.burst),
            list_bucket: TokenBucket::new(config.list_rate, config.list_rate.max(1.0)),
            list_cursor: 0,
            listing_unsupported: false,
            config,
            watermark: None,
            last_full: None,
            tracked: HashMap::new(),
            queue: BTreeSet::new(),
            urgent: Default::default(),
            urgent_ids: Default::default(),
            stats: ReconcileStats::default(),
        }
    }

    fn schedule(&mut self, id: &str, due: Instant) {
        if let Some(t) = self.tracked.get_mut(id) {
            self.queue.remove(&(t.due, id.to_string()));
            t.due = due;
            self.queue.insert((due, id.to_string()));
        }
    }

    /// Told from outside (an execution status event) that a workflow changed: looked at before
    /// anything due, with the short interval again.
    fn nudged(&mut self, id: String, now: Instant) {
        match self.tracked.get_mut(&id) {
            Some(t) => {
                t.interval = self.config.min_interval;
                self.push_urgent(id);
            }
            None => self.make_due(id, now),
        }
    }

    fn make_due(&mut self, id: String, now: Instant) {
        let min = self.config.min_interval;
        self.tracked
            .entry(id.clone())
            .or_insert(Tracked {
                due: now,
                interval: min,
                seen: None,
                state_machine: None,
            })
            .interval = min;
        self.schedule(&id, now);
    }

    async fn refresh(&mut self, manager: &WorkflowManager) {
        let now = Instant::now();
        let full = self
            .last_full
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.full_refresh_interval);
        if full {
            // Read before listing: nothing created during the listing is missed.
            let read_at = chrono::Utc::now();
            match manager.store().unfinished_workflow_ids(1_000_000).await {
                Ok(ids) => {
                    let open: std::collections::HashSet<&String> = ids.iter().collect();
                    // Workflows that ended (synced by another instance) are forgotten.
                    let gone: Vec<String> = self
                        .tracked
                        .keys()
                        .filter(|id| !open.contains(id))
                        .cloned()
                        .collect();
                    for id in gone {
                        if let Some(t) = self.tracked.remove(&id) {
                            self.queue.remove(&(t.due, id));
                        }
                    }
                    for id in ids {
                        if !self.tracked.contains_key(&id) {
                            self.make_due(id, now);
                        }
                    }
                    self.last_full = Some(now);
                    self.watermark = Some(read_at - LATE_WRITES);
                }
                Err(e) => tracing::warn!(error = %e, "cannot list unfinished workflows"),
            }
            return;
        }
        let Some(since) = self.watermark else {
            return;
        };
        match manager
            .store()
            .unfinished_workflows_since(since, 10_000)
            .await
        {
            Ok(rows) => {
                for (id, created) in rows {
                    // Overlapping looks see a workflow again: only new ones become due.
                    if !self.tracked.contains_key(&id) {
                        self.make_due(id, now);
                    }
                    if created - LATE_WRITES > since {
                        self.watermark = Some(created - LATE_WRITES);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list new unfinished workflows"),
        }
    }

    /// Queues a workflow to be looked at before anything due; false if it already is.
    fn push_urgent(&mut self, id: String) -> bool {
        if !self.urgent_ids.insert(id.clone()) {
            return false;
        }
        self.urgent.push_back(id);
        true
    }

    fn note_state_machine(&mut self, id: &str, state_machine: String) {
        if let Some(t) = self.tracked.get_mut(id) {
            t.state_machine.get_or_insert(state_machine);
        }
    }

    /// Lists the RUNNING executions of each state machine with tracked workflows (as the
    /// ListExecutions budget allows) and makes due at once every tracked workflow, already
    /// seen running, that is missing from its machine's list: it most likely ended.
    async fn list_round(&mut self, manager: &WorkflowManager) {
        if self.listing_unsupported {
            return;
        }
        let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (id, t) in &self.tracked {
            if let (Some(sm), Some(_)) = (&t.state_machine, &t.seen) {
                groups.entry(sm.clone()).or_default().push(id.clone());
            }
        }
        if groups.is_empty() {
            return;
        }
        let mut groups: Vec<(String, Vec<String>)> = groups.into_iter().collect();
        let start = self.list_cursor % groups.len();
        groups.rotate_left(start);
        for (sm, ids) in groups {
            let now = Instant::now();
            if !self.list_bucket.take(now).is_zero() {
                return;
            }
            self.list_cursor += 1;
            self.stats.lists += 1;
            match manager.running_executions(&sm).await {
                Ok(Some(names)) => {
                    let running: std::collections::HashSet<String> = names.into_iter().collect();
                    for id in ids {
                        if !running.contains(&id) && self.push_urgent(id) {
                            self.stats.listed_as_ended += 1;
                        }
                    }
                }
                Ok(None) => {
                    self.listing_unsupported = true;
                    return;
                }
                Err(ManagerError::Unavailable(m)) => {
                    let rate = self.list_bucket.halve(0.1, Instant::now());
                    tracing::warn!(state_machine = %sm, rate, "ListExecutions throttled; slowing down: {m}");
                    return;
                }
                Err(e) => {
                    tracing::warn!(state_machine = %sm, error = %e, "cannot list running executions");
                }
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        if !self.urgent.is_empty() {
            return Some(Instant::now());
        }
        self.queue.first().map(|(d, _)| *d)
    }

    fn pop_due(&mut self, now: Instant) -> Option<String> {
        while let Some(id) = self.urgent.pop_front() {
            self.urgent_ids.remove(&id);
            if let Some(t) = self.tracked.get(&id) {
                self.queue.remove(&(t.due, id.clone()));
                return Some(id);
            }
        }
        let (due, _) = self.queue.first()?;
        if *due > now {
            return None;
        }
        self.queue.pop_first().map(|(_, id)| id)
    }

    fn after_sync(
        &mut self,
        id: &str,
        result: Result<wfm_core::model::Workflow, ManagerError>,
        now: Instant,
    ) {
        self.stats.syncs += 1;
        match result {
            Ok(wf) if wf.status.is_terminal() => {
                self.tracked.remove(id);
                self.recover_rate(now);
            }
            Ok(wf) => {
                let seen = Some((
                    wf.status,
                    wf.jobs.len(),
                    wf.last_job.as_ref().map(|j| j.status),
                ));
                let (min, max) = (self.config.min_interval, self.config.max_interval);
                let due = self.tracked.get_mut(id).map(|t| {
                    t.interval = if t.seen == seen {
                        (t.interval * 2).min(max)
                    } else {
                        min
                    };
                    t.seen = seen;
                    now + t.interval
                });
                if let Some(due) = due {
                    self.schedule(id, due);
                }
                self.recover_rate(now);
            }
            Err(ManagerError::NotFound(_)) => {
                self.tracked.remove(id);
            }
            Err(ManagerError::Unavailable(m)) => {
                self.stats.throttled += 1;
                let rate = self.bucket.halve(self.config.min_rate, now);
                tracing::warn!(workflow_id = %id, rate, "throttled by Step Functions; slowing down: {m}");
                let backoff = self.config.max_interval.min(Duration::from_secs(5));
                self.schedule(id, now + backoff);
            }
            Err(e) => {
                tracing::warn!(workflow_id = %id, error = %e, "cannot sync workflow");
                let backoff = self.config.max_interval.min(Duration::from_secs(10));
                self.schedule(id, now + backoff);
            }
        }
    }

    /// Additive increase: a tenth of the configured rate back per clean sync.
    fn recover_rate(&mut self, now: Instant) {
        let rate = self.bucket.rate();
        if rate < self.config.rate {
            let next = (rate + self.config.rate / 10.0).min(self.config.rate);
            self.bucket.set_rate(next, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_spends_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0);
        for _ in 0..3 {
            assert_eq!(b.take(start), Duration::ZERO);
        }
        let wait = b.take(start);
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert_eq!(b.take(start + Duration::from_millis(100)), Duration::ZERO);
        // Never more than the burst saved up.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(later), Duration::ZERO);
        }
        assert!(b.take(later) > Duration::ZERO);
    }

    fn wf(status: WorkflowStatus, jobs: usize) -> wfm_core::model::Workflow {
        let def = wfm_core::store_suite::sample_definition("d", 0);
        let mut w = wfm_core::store_suite::sample_workflow("w", &def);
        w.status = status;
        w.jobs = (0..jobs)
            .map(|i| {
                serde_json::from_value(serde_json::json!({"id": format!("j{i}"), "state": "S", "status": "running", "createdAt": "2026-01-01T00:00:00Z"}))
                    .expect("job")
            })
            .collect();
        w
    }

    #[test]
    fn unchanged_workflows_back_off_and_changed_ones_are_looked_at_soon() {
        let now = Instant::now();
        let mut l = Loop::new(ReconcileConfig::default());
        l.make_due("w".into(), now);
        assert_eq!(l.pop_due(now).as_deref(), Some("w"));
        l.after_sync("w", Ok(wf(WorkflowStatus::Running, 1)), now);
        let mut intervals = Vec::new();
        for _ in 0..8 {
            let due = l.next_due().expect("scheduled");
            intervals.push(due - now);
            let _ = l.pop_due(due);
            l.after_sync("w", Ok(wf(WorkflowStatus::Running, 1)), now);
        }
        let secs: Vec<u64> = intervals.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60], "doubling up to the cap");
        // It moved: back to the short interval.
        let due = l.next_due().expect("scheduled");
        let _ = l.pop_due(due);
        l.after_sync("w", Ok(wf(WorkflowStatus::Running, 2)), now);
        assert_eq!(
            l.next_due().expect("scheduled") - now,
            Duration::from_secs(1)
        );
        // Ended: forgotten.
        let due = l.next_due().expect("scheduled");
        let _ = l.pop_due(due);
        l.after_sync("w", Ok(wf(WorkflowStatus::Succeeded, 2)), now);
        assert!(l.next_due().is_none() && l.tracked.is_empty());
    }

    #[test]
    fn workflows_that_left_the_running_list_go_before_anything_due() {
        let now = Instant::now();
        let mut l = Loop::new(ReconcileConfig::default());
        l.make_due("early".into(), now);
        l.make_due("ended".into(), now + Duration::from_secs(30));
        assert!(l.push_urgent("ended".into()));
        assert!(!l.push_urgent("ended".into()), "queued once");
        assert!(l.push_urgent("forgotten".into()));
        assert_eq!(l.pop_due(now).as_deref(), Some("ended"));
        assert_eq!(
            l.pop_due(now).as_deref(),
            Some("early"),
            "untracked ids are skipped"
        );
        assert_eq!(l.pop_due(now), None);
    }

    #[test]
    fn throttling_halves_the_rate_and_clean_syncs_give_it_back() {
        let now = Instant::now();
        let mut l = Loop::new(ReconcileConfig::default());
        for id in ["a", "b"] {
            l.make_due(id.into(), now);
        }
        l.after_sync(
            "a",
            Err(ManagerError::Unavailable("Throttling".into())),
            now,
        );
        assert_eq!(l.bucket.rate(), 5.0);
        l.after_sync(
            "b",
            Err(ManagerError::Unavailable("Throttling".into())),
            now,
        );
        assert_eq!(l.bucket.rate(), 2.5);
        for _ in 0..3 {
            l.after_sync("a", Ok(wf(WorkflowStatus::Running, 0)), now);
        }
        assert_eq!(l.bucket.rate(), 5.5);
        for _ in 0..20 {
            l.after_sync("a", Ok(wf(WorkflowStatus::Running, 0)), now);
        }
        assert_eq!(l.bucket.rate(), 10.0, "never above the configured rate");
        assert_eq!(l.stats.throttled, 2);
    }
}
