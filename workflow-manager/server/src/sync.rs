//! The push path from the embedded engine to the store: the engine tells the [`SyncObserver`]
//! whenever an execution's history grows, and one sync task brings each changed workflow up to
//! date through the manager. Notifications for the same workflow that arrive while it is being
//! synced are folded into one more sync, so a burst of events costs two syncs, not one per event.

use std::collections::HashSet;

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

/// Syncs workflows as their executions change, until the channel closes.
pub async fn run_sync(manager: WorkflowManager, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = rx.recv().await {
        let mut batch: Vec<String> = vec![first];
        let mut seen: HashSet<String> = batch.iter().cloned().collect();
        while let Ok(id) = rx.try_recv() {
            if seen.insert(id.clone()) {
                batch.push(id);
            }
        }
        for id in batch {
            match manager.sync_workflow(&id).await {
                Ok(_) => {}
                // Executions started straight through /sfn are not workflows.
                Err(ManagerError::NotFound(_)) => {}
                Err(e) => tracing::warn!(workflow_id = %id, error = %e, "cannot sync workflow"),
            }
        }
    }
}
