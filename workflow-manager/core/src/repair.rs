//! Bulk repair: pick workflows by a filter or by ids, then resume, resolve or cancel each of
//! them — as a dry run that says what would be done, or as a job that runs at a bounded rate,
//! reports a result per workflow, can be watched while it runs and can be stopped.
//!
//! Jobs live in memory: a restart forgets them (the workflows they created or changed stay).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::manager::{ManagerError, WorkflowManager};
use crate::model::{Workflow, WorkflowStatus};
use crate::store::WorkflowQuery;

/// What to do to each workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepairAction {
    /// Resume from `startAt`, or from the state each workflow failed in.
    Resume,
    /// Mark resolved.
    Resolve,
    /// Cancel (with `reason`).
    Cancel,
}

/// A bulk repair request (the filter is built by the API from the same parameters as
/// GET /workflows).
#[derive(Debug, Clone)]
pub struct RepairRequest {
    /// Workflows matching this filter…
    pub filter: Option<WorkflowQuery>,
    /// …or these ids.
    pub workflow_ids: Vec<String>,
    /// What to do.
    pub action: RepairAction,
    /// For resume: the state to resume from (default: each workflow's failed state).
    pub start_at: Option<String>,
    /// For cancel: the reason.
    pub reason: String,
    /// At most this many workflows.
    pub limit: usize,
    /// Actions per second.
    pub rate_per_second: f64,
}

/// One workflow of a repair: what would be or was done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairItem {
    /// The workflow.
    pub workflow_id: String,
    /// Its status when picked.
    pub status: WorkflowStatus,
    /// The state a resume starts at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// Why it is skipped, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// After the run: done (`ok`), failed (`error`), the workflow a resume created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_workflow_id: Option<String>,
}

/// A repair job as GET /repairs/{id} shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// Job id.
    pub id: String,
    /// The action.
    pub action: RepairAction,
    /// `running`, `done` or `stopped`.
    pub state: &'static str,
    /// Workflows picked.
    pub total: usize,
    /// Workflows handled so far (done, failed or skipped).
    pub processed: usize,
    /// Handled successfully.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// One entry per workflow.
    pub items: Vec<RepairItem>,
}

struct Job {
    id: String,
    action: RepairAction,
    items: Mutex<Vec<RepairItem>>,
    processed: Mutex<usize>,
    finished: AtomicBool,
    stop: AtomicBool,
}

/// The repair jobs of this process.
#[derive(Default, Clone)]
pub struct Repairs {
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The plan for one workflow: what the action would do to it, or why it is skipped.
fn plan_one(wf: &Workflow, req: &RepairRequest) -> RepairItem {
    let mut item = RepairItem {
        workflow_id: wf.id.clone(),
        status: wf.status,
        start_at: None,
        skip: None,
        ok: None,
        error: None,
        new_workflow_id: None,
    };
    match req.action {
        RepairAction::Resume => {
            if !wf.status.is_terminal() {
                item.skip = Some(format!("still {}", wf.status.as_str()));
            } else {
                item.start_at = req
                    .start_at
                    .clone()
                    .or_else(|| wf.last_job.as_ref().map(|j| j.state.clone()));
                if item.start_at.is_none() {
                    item.skip = Some("no failed state to resume from; give startAt".into());
                }
            }
        }
        RepairAction::Resolve => {
            if wf.resolved_by_user {
                item.skip = Some("already resolved".into());
            }
        }
        RepairAction::Cancel => {
            if matches!(
                wf.status,
                WorkflowStatus::Succeeded | WorkflowStatus::Failed | WorkflowStatus::Cancelled
            ) {
                item.skip = Some(format!("already {}", wf.status.as_str()));
            }
        }
    }
    item
}

impl Repairs {
    /// What `req` would do, workflow by workflow.
    pub async fn plan(
        &self,
        manager: &WorkflowManager,
        req: &RepairRequest,
    ) -> Result<Vec<RepairItem>, ManagerError> {
        let mut workflows = Vec::new();
        if let Some(filter) = &req.filter {
            let mut q = WorkflowQuery {
                limit: req.limit.clamp(1, 10_000),
                ..filter.clone()
            };
            while workflows.len() < req.limit {
                let page = manager.store().list_workflows(&q).await?;
                workflows.extend(page.workflows);
                match page.next_page_token {
                    Some(t) => q.page_token = Some(t),
                    None => break,
                }
            }
        }
        for id in req.workflow_ids.iter().take(req.limit) {
            workflows.push(manager.store().get_workflow(id).await?);
        }
        workflows.truncate(req.limit);
        Ok(workflows.iter().map(|wf| plan_one(wf, req)).collect())
    }

    /// Starts a repair job; returns its id.
    pub async fn start(
        &self,
        manager: WorkflowManager,
        req: RepairRequest,
    ) -> Result<String, ManagerError> {
        let items = self.plan(&manager, &req).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let job = Arc::new(Job {
            id: id.clone(),
            action: req.action,
            items: Mutex::new(items.clone()),
            processed: Mutex::new(0),
            finished: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        lock(&self.jobs).insert(id.clone(), job.clone());
        let period = Duration::from_secs_f64(1.0 / req.rate_per_second.clamp(0.01, 1000.0));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            for (i, item) in items.into_iter().enumerate() {
                if job.stop.load(Ordering::SeqCst) {
                    break;
                }
                if item.skip.is_none() {
                    ticker.tick().await;
                    if job.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let result = match req.action {
                        RepairAction::Resume => manager
                            .retry_workflow(
                                &item.workflow_id,
                                item.start_at.as_deref().unwrap_or(""),
                                None,
                            )
                            .await
                            .map(|wf| Some(wf.id)),
                        RepairAction::Resolve => manager
                            .resolve_workflow(&item.workflow_id)
                            .await
                            .map(|()| None),
                        RepairAction::Cancel => manager
                            .cancel_workflow(&item.workflow_id, &req.reason)
                            .await
                            .map(|()| None),
                    };
                    let mut items = lock(&job.items);
                    match result {
                        Ok(new_id) => {
                            items[i].ok = Some(true);
                            items[i].new_workflow_id = new_id;
                        }
                        Err(e) => {
                            items[i].ok = Some(false);
                            items[i].error = Some(e.to_string());
                        }
                    }
                }
                *lock(&job.processed) += 1;
            }
            job.finished.store(true, Ordering::SeqCst);
        });
        Ok(id)
    }

    /// The report of a job.
    pub fn report(&self, id: &str) -> Option<RepairReport> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let items = lock(&job.items).clone();
        let processed = *lock(&job.processed);
        let stopped = job.stop.load(Ordering::SeqCst);
        let finished = job.finished.load(Ordering::SeqCst);
        Some(RepairReport {
            id: job.id.clone(),
            action: job.action,
            state: match (finished, stopped) {
                (true, true) => "stopped",
                (true, false) => "done",
                (false, _) => "running",
            },
            total: items.len(),
            processed,
            done: items.iter().filter(|i| i.ok == Some(true)).count(),
            failed: items.iter().filter(|i| i.ok == Some(false)).count(),
            items,
        })
    }

    /// Asks a job to stop after the workflow in hand; false if there is no such job.
    pub fn stop(&self, id: &str) -> bool {
        match lock(&self.jobs).get(id) {
            Some(job) => {
                job.stop.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}
