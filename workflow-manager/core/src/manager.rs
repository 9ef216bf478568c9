//! The `WorkflowManager`: the one implementation of the service's behaviour, written over the
//! `Store` and `StepFunctions` traits. It validates requests, records workflows before starting
//! their executions, and brings execution status and history back into the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::conventions::{batch_resources, state_machine_name, JOB_QUEUE_FIELD};
use crate::jobs::{jobs_from_history, last_lines, REASON_WORKFLOW_TIMED_OUT};
use crate::model::{
    NewWorkflowDefinitionRequest, StartWorkflowRequest, Tags, Workflow, WorkflowDefinition,
    WorkflowStatus,
};
use crate::sfn::{ExecutionStatus, SfnError, StepFunctions};
use crate::store::{Store, StoreError};

/// A manager failure, by how the API should answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagerError {
    /// The request is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// Something named does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with stored state (409).
    #[error("{0}")]
    Conflict(String),
    /// A backend failed (500).
    #[error("{0}")]
    Internal(String),
    /// A backend refused for now (throttled): try again later (503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ManagerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ManagerError::NotFound(m),
            StoreError::Conflict(m) => ManagerError::Conflict(m),
            e @ StoreError::TerminalToNonTerminal { .. } => ManagerError::Conflict(e.to_string()),
            e @ StoreError::InvalidPageToken(_) => ManagerError::BadRequest(e.to_string()),
            StoreError::Backend(m) => ManagerError::Internal(format!("store: {m}")),
        }
    }
}

impl From<SfnError> for ManagerError {
    fn from(e: SfnError) -> Self {
        match e {
            SfnError::InvalidDefinition(m) | SfnError::InvalidInput(m) => {
                ManagerError::BadRequest(m)
            }
            SfnError::ExecutionAlreadyExists(m) | SfnError::ForeignStateMachine(m) => {
                ManagerError::Conflict(m)
            }
            SfnError::ExecutionDoesNotExist(m) | SfnError::Other(m) => {
                ManagerError::Internal(format!("step functions: {m}"))
            }
            SfnError::Throttled(m) => {
                ManagerError::Unavailable(format!("step functions throttled the request: {m}"))
            }
        }
    }
}

/// Tunables of the manager.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// How long an execution may be missing before its workflow is marked failed.
    pub zombie_grace: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            zombie_grace: Duration::from_secs(300),
        }
    }
}

/// The workflow manager.
#[derive(Clone)]
pub struct WorkflowManager {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sfn: Arc<dyn StepFunctions>,
    config: ManagerConfig,
}

/// Definition names become part of state machine names: keep them to safe characters.
fn check_definition_name(name: &str) -> Result<(), ManagerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ManagerError::BadRequest(format!(
            "name: '{name}' is not a valid workflow definition name (1 to 64 letters, digits, \
             '-', '_', '.' or ':')"
        )))
    }
}

/// Tags must map strings to strings; the error names the offending tag.
pub fn string_tags(
    tags: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Tags, ManagerError> {
    tags.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(ManagerError::BadRequest(format!(
                "{field}.{k}: tag values must be strings, got {other}"
            ))),
        })
        .collect()
}

/// The answer to a start whose client-chosen id exists: the existing workflow when it was
/// started by the same request (definition, version unless "latest", input, namespace,
/// queue, tags), else a conflict.
fn same_start(
    existing: Workflow,
    requested: &Workflow,
    version: i64,
) -> Result<Workflow, ManagerError> {
    let json = |s: &str| serde_json::from_str::<Value>(s).ok();
    let same = existing.workflow_definition.name == requested.workflow_definition.name
        && (version == -1
            || existing.workflow_definition.version == requested.workflow_definition.version)
        && json(&existing.input) == json(&requested.input)
        && existing.namespace == requested.namespace
        && existing.queue == requested.queue
        && existing.tags == requested.tags
        && existing.retry_for.is_none();
    if same {
        Ok(existing)
    } else {
        Err(ManagerError::Conflict(format!(
            "workflow {} already exists and was started with another request",
            existing.id
        )))
    }
}

/// A new workflow, queued, created now.
pub(crate) fn queued_workflow(
    id: String,
    definition: WorkflowDefinition,
    namespace: &str,
    queue: &str,
    input: String,
    tags: Tags,
    retry_for: Option<String>,
) -> Workflow {
    let now = Utc::now();
    Workflow {
        id,
        created_at: now,
        last_updated: now,
        stopped_at: None,
        workflow_definition: definition,
        status: WorkflowStatus::Queued,
        namespace: namespace.to_string(),
        queue: queue.to_string(),
        input,
        resolved_by_user: false,
        retry_for,
        retries: Vec::new(),
        tags,
        last_job: None,
        status_reason: String::new(),
        output: String::new(),
        jobs: Vec::new(),
        parent_workflow_id: None,
        child_workflow_ids: Vec::new(),
    }
}

impl WorkflowManager {
    /// A manager over a store and a Step Functions backend.
    pub fn new(store: Arc<dyn Store>, sfn: Arc<dyn StepFunctions>, config: ManagerConfig) -> Self {
        Self { store, sfn, config }
    }

    /// The store (read paths of the API go straight to it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn definition_from_request(
        &self,
        name: &str,
        version: i64,
        req: &NewWorkflowDefinitionRequest,
    ) -> Result<WorkflowDefinition, ManagerError> {
        check_definition_name(name)?;
        if let Some(m) = &req.manager {
            if m != "step-functions" {
                return Err(ManagerError::BadRequest(format!(
                    "manager: '{m}' is not supported; use 'step-functions'"
                )));
            }
        }
        let raw = req
            .state_machine
            .as_ref()
            .ok_or_else(|| ManagerError::BadRequest("stateMachine: required".into()))?;
        let machine = wfm_asl::parse_definition_value(raw)
            .and_then(|m| wfm_asl::validate(&m).map(|()| m))
            .map_err(|e| {
                ManagerError::BadRequest(format!(
                    "stateMachine: invalid at {}: {}",
                    e.path, e.message
                ))
            })?;
        Ok(WorkflowDefinition {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            version,
            created_at: Utc::now(),
            manager: "step-functions".into(),
            state_machine: machine,
            default_tags: string_tags(&req.default_tags, "defaultTags")?,
        })
    }

    /// Creates version 0 of a new definition; 409 if the name exists.
    pub async fn new_workflow_definition(
        &self,
        req: &NewWorkflowDefinitionRequest,
    ) -> Result<WorkflowDefinition, ManagerError> {
        let def = self.definition_from_request(&req.name, 0, req)?;
        self.store.save_workflow_definition(&def).await.map_err(|e| match e {
            StoreError::Conflict(_) => ManagerError::Conflict(format!(
                "workflow definition '{}' already exists; update it with PUT to create a new version",
                def.name
            )),
            other => other.into(),
        })?;
        Ok(def)
    }

    /// Creates the next version of an existing definition.
    pub async fn update_workflow_definition(
        &self,
        name: &str,
        req: &NewWorkflowDefinitionRequest,
    ) -> Result<WorkflowDefinition, ManagerError> {
        if !req.name.is_empty() && req.name != name {
            return Err(ManagerError::BadRequest(format!(
                "name: '{}' does not match the definition in the path, '{name}'",
                req.name
            )));
        }
        let latest = self.store.latest_workflow_definition(name).await?;
        let def = self.definition_from_request(name, latest.version + 1, req)?;
        self.store.save_workflow_definition(&def).await?;
        Ok(def)
    }

    /// Starts a workflow: resolves the definition version, merges tags, stores the workflow,
    /// then starts its execution (and removes the workflow again if the start fails).
    pub async fn create_workflow(
        &self,
        req: &StartWorkflowRequest,
    ) -> Result<Workflow, ManagerError> {
        let def_ref = &req.workflow_definition;
        if def_ref.name.is_empty() {
            return Err(ManagerError::BadRequest(
                "workflowDefinition.name: required".into(),
            ));
        }
        let definition = match def_ref.version {
            -1 => self.store.latest_workflow_definition(&def_ref.name).await,
            v if v < 0 => {
                return Err(ManagerError::BadRequest(format!(
                    "workflowDefinition.version: {v} is not a version (use -1 for the latest)"
                )))
            }
            v => self.store.get_workflow_definition(&def_ref.name, v).await,
        }
        .map_err(|e| match e {
            StoreError::NotFound(_) => ManagerError::NotFound(format!(
                "workflow definition not found: {} version {}",
                def_ref.name,
                if def_ref.version == -1 {
                    "latest".to_string()
                } else {
                    def_ref.version.to_string()
                }
            )),
            other => other.into(),
        })?;

        let input_text = if req.input.trim().is_empty() {
            "{}"
        } else {
            req.input.as_str()
        };
        let input: Value = serde_json::from_str(input_text)
            .map_err(|e| ManagerError::BadRequest(format!("input: not valid JSON: {e}")))?;
        if !input.is_object() {
            return Err(ManagerError::BadRequest(format!(
                "input: must be a JSON object, got {}",
                match &input {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            )));
        }
        let mut tags = definition.default_tags.clone();
        tags.extend(string_tags(&req.tags, "tags")?);
        let namespace = if req.namespace.is_empty() {
            "default"
        } else {
            req.namespace.as_str()
        };
        let queue = if req.queue.is_empty() {
            "default"
        } else {
            req.queue.as_str()
        };
        for (field, value) in [("namespace", namespace), ("queue", queue)] {
            if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                || value.len() > 64
            {
                return Err(ManagerError::BadRequest(format!(
                    "{field}: '{value}' may only hold letters, digits, '-' and '_' (64 at most)"
                )));
            }
        }

        let chosen = !req.id.is_empty();
        let id = if chosen {
            let ok = req.id.len() <= 80
                && req
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
            if !ok {
                return Err(ManagerError::BadRequest(format!(
                    "id: '{}' must be 1 to 80 letters, digits, '-' or '_'",
                    req.id
                )));
            }
            req.id.clone()
        } else {
            // Time-ordered (UUID version 7): a new workflow's id, and its execution's name and
            // ARN, sort after the ones before it, so that inserts land at the end of every
            // index keyed by them instead of on a random page of it.
            let mut id = uuid::Uuid::now_v7().to_string();
            if !req.id_suffix.is_empty() {
                id = format!("{id}-{}", req.id_suffix).chars().take(80).collect();
            }
            id
        };
        let workflow = queued_workflow(
            id.clone(),
            definition.clone(),
            namespace,
            queue,
            input_text.to_string(),
            tags,
            None,
        );
        if chosen {
            match self.store.get_workflow(&id).await {
                Ok(existing) => {
                    let existing = same_start(existing, &workflow, def_ref.version)?;
                    if existing.status == WorkflowStatus::Queued {
                        // The first start may have been cut short (the service died between
                        // storing the workflow and starting its execution): finish it. A start
                        // that did happen is the same start again.
                        let mut input: Value =
                            serde_json::from_str(&existing.input).unwrap_or(Value::Null);
                        let sm_arn = self.start_target(&existing, &mut input).await?;
                        match self
                            .sfn
                            .start_execution(&sm_arn, &existing.id, &input.to_string())
                            .await
                        {
                            Ok(_) | Err(SfnError::ExecutionAlreadyExists(_)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    return Ok(existing);
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.launch(workflow.clone(), input).await {
            // Another start with the same id won the race: same answer as if it came first.
            Err(ManagerError::Conflict(_)) if chosen => same_start(
                self.store.get_workflow(&id).await?,
                &workflow,
                def_ref.version,
            ),
            other => other,
        }
    }

    /// The state machine a workflow's execution runs on (created if needed), and its input
    /// with `_EXECUTION_NAME` (and the Batch job queue) added.
    async fn start_target(
        &self,
        workflow: &Workflow,
        input: &mut Value,
    ) -> Result<String, ManagerError> {
        let definition = &workflow.workflow_definition;
        let batch = batch_resources(&definition.state_machine);
        let children = crate::conventions::workflow_resources(&definition.state_machine);
        let sm_arn = self
            .state_machine_for(definition, &workflow.namespace, &mut Vec::new())
            .await?;
        if let Some(obj) = input.as_object_mut() {
            obj.insert("_EXECUTION_NAME".into(), Value::String(workflow.id.clone()));
            // Batch states read the queue from the input, and child workflows pass it on.
            if !batch.is_empty() || !children.is_empty() {
                obj.insert(
                    JOB_QUEUE_FIELD.into(),
                    Value::String(workflow.queue.clone()),
                );
            }
        }
        Ok(sm_arn)
    }

    /// Stores `workflow` and starts its execution on the state machine of its definition in
    /// its namespace (created if needed), with `_EXECUTION_NAME` added to `input`. If the start
    /// fails, the stored workflow is removed again and the error returned.
    async fn launch(&self, workflow: Workflow, mut input: Value) -> Result<Workflow, ManagerError> {
        let definition = &workflow.workflow_definition;
        let sm_arn = self.start_target(&workflow, &mut input).await?;
        let id = workflow.id.clone();
        self.store.save_workflow(&workflow).await?;
        match self
            .sfn
            .start_execution(&sm_arn, &id, &input.to_string())
            .await
        {
            Ok(execution) => tracing::info!(
                workflow_id = %id,
                execution = %execution,
                definition = %definition.name,
                version = definition.version,
                "workflow started"
            ),
            Err(e) => {
                if let Err(del) = self.store.delete_workflow(&id).await {
                    tracing::error!(workflow_id = %id, error = %del, "cannot remove a workflow whose start failed");
                }
                return Err(e.into());
            }
        }
        metrics::counter!(
            "wfm_workflows_started_total",
            "definition" => definition.name.clone()
        )
        .increment(1);
        Ok(workflow)
    }

    /// Cancels a workflow: records the reason and marks it resolved, then stops its
    /// execution. The status becomes `cancelled` when the sync sees the execution ABORTED.
    /// Succeeded and failed workflows cannot be cancelled.
    pub async fn cancel_workflow(&self, id: &str, reason: &str) -> Result<(), ManagerError> {
        let mut wf = self.store.get_workflow(id).await?;
        if matches!(
            wf.status,
            WorkflowStatus::Succeeded | WorkflowStatus::Failed
        ) {
            return Err(ManagerError::BadRequest(format!(
                "Cancellation not allowed. Workflow {id} is {}",
                wf.status.as_str()
            )));
        }
        if wf.status == WorkflowStatus::Cancelled {
            return Ok(());
        }
        let reason = if reason.trim().is_empty() {
            "cancelled by user"
        } else {
            reason
        };
        // Stored before the stop, so that the sync the stop triggers reads the reason.
        wf.status_reason = reason.to_string();
        wf.resolved_by_user = true;
        wf.last_updated = Utc::now();
        self.store.update_workflow(&wf).await?;
        let arn = self.execution_arn(&wf);
        self.sfn.stop_execution(&arn, None, Some(reason)).await?;
        Ok(())
    }

    /// Marks a workflow resolved by a user; `Conflict` if it already is.
    pub async fn resolve_workflow(&self, id: &str) -> Result<(), ManagerError> {
        let mut wf = self.store.get_workflow(id).await?;
        if wf.resolved_by_user {
            return Err(ManagerError::Conflict(format!(
                "workflow {id} is already resolved"
            )));
        }
        wf.resolved_by_user = true;
        wf.last_updated = Utc::now();
        self.store.update_workflow(&wf).await?;
        Ok(())
    }

    /// Resumes a finished workflow from `start_at` as a new workflow (linked by `retryFor` and
    /// `retries`) on a state machine that starts there, unreachable states removed. Its input
    /// is `input` when given, else the input the job at `start_at` received.
    pub async fn retry_workflow(
        &self,
        id: &str,
        start_at: &str,
        input: Option<&str>,
    ) -> Result<Workflow, ManagerError> {
        let mut original = self.store.get_workflow(id).await?;
        if !original.status.is_terminal() {
            return Err(ManagerError::BadRequest(format!(
                "workflow {id} is still active ({}): only finished workflows can be resumed",
                original.status.as_str()
            )));
        }
        for retry in &original.retries {
            let r = self.store.get_workflow(retry).await?;
            if !r.status.is_terminal() {
                return Err(ManagerError::BadRequest(format!(
                    "workflow {id} has a retry that is still active: {retry} ({})",
                    r.status.as_str()
                )));
            }
        }
        if start_at.is_empty() {
            return Err(ManagerError::BadRequest("StartAt: required".into()));
        }
        let machine =
            crate::conventions::start_at(&original.workflow_definition.state_machine, start_at)
                .map_err(|e| ManagerError::BadRequest(format!("StartAt: {e}")))?;
        let input_text = match input {
            Some(text) => text.to_string(),
            None => {
                if original.jobs.is_empty() {
                    self.apply_history(&mut original).await?;
                }
                let from_last = original.last_job.as_ref().filter(|j| j.state == start_at);
                from_last
                    .or_else(|| original.jobs.iter().rev().find(|j| j.state == start_at))
                    .map(|j| j.input.clone())
                    .ok_or_else(|| {
                        ManagerError::BadRequest(format!(
                            "StartAt: no job of workflow {id} ran at state '{start_at}', so there is no input to resume with"
                        ))
                    })?
            }
        };
        let parsed: Value = serde_json::from_str(if input_text.trim().is_empty() {
            "{}"
        } else {
            &input_text
        })
        .map_err(|e| ManagerError::BadRequest(format!("input: not valid JSON: {e}")))?;
        let Value::Object(mut fields) = parsed else {
            return Err(ManagerError::BadRequest(
                "input: must be a JSON object".into(),
            ));
        };
        fields.remove("_EXECUTION_NAME");
        fields.remove(JOB_QUEUE_FIELD);
        let mut definition = original.workflow_definition.clone();
        definition.state_machine = machine;
        let retry = queued_workflow(
            uuid::Uuid::now_v7().to_string(),
            definition,
            &original.namespace,
            &original.queue,
            Value::Object(fields.clone()).to_string(),
            original.tags.clone(),
            Some(original.id.clone()),
        );
        let retry = self.launch(retry, Value::Object(fields)).await?;
        original.retries.push(retry.id.clone());
        original.last_updated = Utc::now();
        self.store.update_workflow(&original).await?;
        Ok(retry)
    }

    /// The ARN of the state machine a workflow's execution runs on.
    pub fn state_machine_arn_of(&self, wf: &Workflow) -> String {
        self.sfn.state_machine_arn(&state_machine_name_of(wf))
    }

    /// The names of the executions RUNNING on a state machine, if the backend can list them.
    pub async fn running_executions(
        &self,
        state_machine_arn: &str,
    ) -> Result<Option<Vec<String>>, ManagerError> {
        Ok(self.sfn.running_executions(state_machine_arn).await?)
    }

    fn execution_arn(&self, wf: &Workflow) -> String {
        self.sfn.execution_arn(&state_machine_name_of(wf), &wf.id)
    }

    /// Brings status, stop time, output and (on failure) the last job from the execution into
    /// `wf`. Returns false when the execution is not (yet) visible and nothing changed.
    async fn apply_summary(&self, wf: &mut Workflow) -> Result<bool, ManagerError> {
        let arn = self.execution_arn(wf);
        let description = match self.sfn.describe_execution(&arn).await {
            Ok(d) => d,
            Err(SfnError::ExecutionDoesNotExist(_)) => {
                let age = Utc::now().signed_duration_since(wf.last_updated);
                if age.to_std().unwrap_or_default() > self.config.zombie_grace {
                    wf.status = WorkflowStatus::Failed;
                    wf.status_reason = "execution not found".into();
                    wf.last_updated = Utc::now();
                    return Ok(true);
                }
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        wf.status = match description.status {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => WorkflowStatus::Running,
            ExecutionStatus::Succeeded => WorkflowStatus::Succeeded,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut => WorkflowStatus::Failed,
            ExecutionStatus::Aborted => WorkflowStatus::Cancelled,
        };
        if description.status == ExecutionStatus::TimedOut {
            wf.status_reason = REASON_WORKFLOW_TIMED_OUT.into();
        }
        if description.status == ExecutionStatus::Failed && wf.status_reason.is_empty() {
            wf.status_reason = [
                last_lines(description.cause.as_deref().unwrap_or("")),
                description.error.clone().unwrap_or_default(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        }
        if description.status == ExecutionStatus::Aborted && wf.status_reason.is_empty() {
            wf.status_reason = "cancelled by user".into();
        }
        wf.stopped_at = description.stop_date;
        if matches!(
            wf.status,
            WorkflowStatus::Succeeded | WorkflowStatus::Cancelled
        ) {
            wf.resolved_by_user = true;
        }
        wf.output = description.output.unwrap_or_default();
        wf.last_updated = Utc::now();
        Ok(true)
    }

    /// The first `limit` events of a workflow's execution history, oldest first (none when
    /// the execution does not exist, or no longer does).
    pub async fn execution_history(
        &self,
        wf: &Workflow,
        limit: usize,
    ) -> Result<Vec<wfm_asl::HistoryEvent>, ManagerError> {
        let arn = self.execution_arn(wf);
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        while events.len() < limit {
            let page = match self
                .sfn
                .execution_history_page(&arn, token.as_deref())
                .await
            {
                Ok(p) => p,
                Err(SfnError::ExecutionDoesNotExist(_)) => break,
                Err(e) => return Err(e.into()),
            };
            events.extend(page.events);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        events.truncate(limit);
        Ok(events)
    }

    /// Rebuilds `wf.jobs` from the whole execution history, and `lastJob` for failures.
    async fn apply_history(&self, wf: &mut Workflow) -> Result<(), ManagerError> {
        let arn = self.execution_arn(wf);
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match self
                .sfn
                .execution_history_page(&arn, token.as_deref())
                .await
            {
                Ok(p) => p,
                Err(SfnError::ExecutionDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            events.extend(page.events);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        wf.jobs = jobs_from_history(&events, wf);
        self.adopt_children(wf).await?;
        if wf.status == WorkflowStatus::Failed {
            wf.last_job = wf
                .jobs
                .iter()
                .rev()
                .find(|j| j.status == crate::model::JobStatus::Failed)
                .or(wf.jobs.last())
                .cloned();
        }
        Ok(())
    }

    /// Refreshes status and summary fields of a workflow from its execution, and stores it.
    pub async fn update_workflow_summary(&self, wf: &mut Workflow) -> Result<(), ManagerError> {
        if wf.status.is_terminal() {
            return Ok(());
        }
        if self.apply_summary(wf).await? {
            if wf.status == WorkflowStatus::Failed {
                self.apply_history(wf).await?;
            }
            self.store.update_workflow(wf).await?;
        }
        Ok(())
    }

    /// Refreshes the jobs of a workflow from its execution history, and stores it.
    pub async fn update_workflow_history(&self, wf: &mut Workflow) -> Result<(), ManagerError> {
        self.apply_history(wf).await?;
        self.store.update_workflow(wf).await?;
        Ok(())
    }

    /// Refreshes summary and jobs in one store write (the sync path). The summary is read
    /// before the history, so a terminal status is never stored with an incomplete history.
    pub async fn sync_workflow(&self, id: &str) -> Result<Workflow, ManagerError> {
        // Optimistic: a change made meanwhile (an operator's cancel reason, resolve, retries)
        // makes the conditional write fail, and the sync starts over from the fresh record.
        for _ in 0..10 {
            let mut wf = self.store.get_workflow(id).await?;
            if wf.status.is_terminal() {
                return Ok(wf);
            }
            let read_at = wf.last_updated;
            let known = wf.child_workflow_ids.clone();
            if !self.apply_summary(&mut wf).await? {
                return Ok(wf);
            }
            self.apply_history(&mut wf).await?;
            if wf.last_updated <= read_at {
                wf.last_updated = read_at + chrono::Duration::microseconds(1);
            }
            match self.store.update_workflow_if(&wf, read_at).await {
                Ok(true) => {
                    // Children seen for the first time are synced now (their execution may
                    // have ended before their record existed).
                    for child in wf.child_workflow_ids.iter().filter(|c| !known.contains(c)) {
                        if let Err(e) = Box::pin(self.sync_workflow(child)).await {
                            tracing::warn!(workflow_id = %child, error = %e, "cannot sync a new child workflow");
                        }
                    }
                    if wf.status.is_terminal() {
                        let state = wf
                            .last_job
                            .as_ref()
                            .or(wf.jobs.last())
                            .map(|j| j.state.as_str())
                            .unwrap_or("");
                        if wf.status == crate::model::WorkflowStatus::Succeeded {
                            tracing::info!(workflow_id = %wf.id, definition = %wf.workflow_definition.name, status = wf.status.as_str(), state, "workflow ended");
                        } else {
                            tracing::warn!(workflow_id = %wf.id, definition = %wf.workflow_definition.name, status = wf.status.as_str(), state, reason = %wf.status_reason, "workflow ended");
                        }
                        metrics::counter!(
                            "wfm_workflows_finished_total",
                            "definition" => wf.workflow_definition.name.clone(),
                            "status" => wf.status.as_str()
                        )
                        .increment(1);
                    }
                    return Ok(wf);
                }
                Ok(false) => continue,
                Err(StoreError::TerminalToNonTerminal { .. }) => {
                    return Ok(self.store.get_workflow(id).await?)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ManagerError::Internal(format!(
            "workflow {id} kept changing during its sync"
        )))
    }
}

/// The name of the state machine a workflow's execution runs on.
fn state_machine_name_of(wf: &Workflow) -> String {
    let def = &wf.workflow_definition;
    state_machine_name(
        &def.name,
        def.version,
        &wf.namespace,
        &def.state_machine.start_at,
    )
}

/// The tags of a state machine: the definition's default tags, and what it runs.
pub(crate) fn state_machine_tags(
    definition: &crate::model::WorkflowDefinition,
    namespace: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut tags = definition.default_tags.clone();
    tags.insert(
        "workflow-manager:definition".into(),
        definition.name.clone(),
    );
    tags.insert(
        "workflow-manager:version".into(),
        definition.version.to_string(),
    );
    tags.insert("workflow-manager:namespace".into(), namespace.to_string());
    tags
}
