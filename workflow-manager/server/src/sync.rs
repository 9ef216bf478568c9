//! The push path from the embedded engine to the store: the engine tells the [`SyncObserver`]
//! whenever an execution's history grows, and one sync task brings each changed workflow up to
//! date through the manager. A workflow is synced [`SYNC_DELAY`] after the first change that
//! it has not been synced for, so that the burst of events of a short execution (or of a step
//! of a long one) costs one sync, not one per event. Up to [`CONCURRENT_SYNCS`] workflows are
//! synced at once, never the same one twice at a time: changes that arrive while it is being
//! synced are folded into one more sync.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::task::JoinSet;

use tokio::sync::mpsc;
use wfm_core::{ManagerError, WorkflowManager};
use wfm_engine::ExecutionObserver;

/// Forwards "execution changed" to the sync task. Execution names are workflow ids.
pub struct SyncObserver {
    tx: mpsc::UnboundedSender<String>,
}

/// Queues every unfinished workflow for a sync: after a restart, an execution may have ended
/// (or moved on) while the store was not told.
pub async fn queue_unfinished(
    manager: &WorkflowManager,
    tx: &mpsc::UnboundedSender<String>,
) -> Result<usize, ManagerError> {
    let ids = manager.store().unfinished_workflow_ids(100_000).await?;
    let n = ids.len();
    for id in ids {
        let _ = tx.send(id);
    }
    Ok(n)
}

impl SyncObserver {
    /// An observer and the receiving end for [`run_sync`].
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Another sender into the same sync queue.
    pub fn sender(&self) -> mpsc::UnboundedSender<String> {
        self.tx.clone()
    }
}

impl ExecutionObserver for SyncObserver {
    fn execution_changed(&self, _execution_arn: &str, execution_name: &str) {
        // The receiver only goes away at shutdown; nothing to sync then.
        let _ = self.tx.send(execution_name.to_string());
    }
}

/// How many workflows are synced at once.
pub const CONCURRENT_SYNCS: usize = 32;

/// How long after a change its workflow is synced: the store lags the engine by about this.
pub const SYNC_DELAY: Duration = Duration::from_millis(50);

async fn sync_one(manager: &WorkflowManager, id: &str) {
    match manager.sync_workflow(id).await {
        Ok(_) => {}
        // Executions started straight through /sfn are not workflows.
        Err(ManagerError::NotFound(_)) => {}
        Err(e) => tracing::warn!(workflow_id = %id, error = %e, "cannot sync workflow"),
    }
}

/// Syncs workflows as their executions change, until the channel closes.
pub async fn run_sync(manager: WorkflowManager, mut rx: mpsc::UnboundedReceiver<String>) {
    // Due times only grow along the queue: each is its first change plus the same delay.
    let mut waiting: VecDeque<(tokio::time::Instant, String)> = VecDeque::new();
    let mut waiting_ids: HashSet<String> = HashSet::new();
    // Workflows being synced, by the task that syncs them.
    let mut syncing: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut syncing_ids: HashSet<String> = HashSet::new();
    // Changed again while being synced: synced once more when the current sync ends.
    let mut changed_meanwhile: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut open = true;
    loop {
        let next_due = waiting
            .front()
            .map(|(due, _)| *due)
            .unwrap_or_else(|| tokio::time::Instant::now() + SYNC_DELAY);
        tokio::select! {
            received = rx.recv(), if open => match received {
                Some(id) if syncing_ids.contains(&id) => {
                    changed_meanwhile.insert(id);
                }
                Some(id) => {
                    if waiting_ids.insert(id.clone()) {
                        waiting.push_back((tokio::time::Instant::now() + SYNC_DELAY, id));
                    }
                }
                None => open = false,
            },
            Some(finished) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let task = match finished {
                    Ok((task, ())) => task,
                    // A sync that panicked: the next change of its workflow syncs it again.
                    Err(e) => e.id(),
                };
                if let Some(id) = syncing.remove(&task) {
                    syncing_ids.remove(&id);
                    if changed_meanwhile.remove(&id) && waiting_ids.insert(id.clone()) {
                        waiting.push_back((tokio::time::Instant::now() + SYNC_DELAY, id));
                    }
                }
            },
            _ = tokio::time::sleep_until(next_due), if tasks.len() < CONCURRENT_SYNCS && !waiting.is_empty() => {}
            else => break,
        }
        let now = tokio::time::Instant::now();
        while tasks.len() < CONCURRENT_SYNCS && waiting.front().is_some_and(|(due, _)| *due <= now)
        {
            let Some((_, id)) = waiting.pop_front() else {
                break;
            };
            waiting_ids.remove(&id);
            syncing_ids.insert(id.clone());
            let manager = manager.clone();
            let task = {
                let id = id.clone();
                tasks.spawn(async move { sync_one(&manager, &id).await })
            };
            syncing.insert(task.id(), id);
        }
        if !open && tasks.is_empty() && waiting.is_empty() {
            break;
        }
    }
}
