//! The `Store` trait: where definitions, state resources and workflows live. Implementations
//! (SQLite, DynamoDB) must all pass the same behaviour: versions never overwrite each other, a
//! terminal workflow never becomes non-terminal, and page tokens never skip or repeat a row.

use async_trait::async_trait;

use crate::model::{StateResource, Workflow, WorkflowDefinition, WorkflowStatus};

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Nothing stored under that key.
    #[error("{0}")]
    NotFound(String),
    /// The key is taken (a definition version saved twice, a workflow id reused).
    #[error("{0}")]
    Conflict(String),
    /// A terminal workflow cannot become non-terminal.
    #[error("workflow {id} is {from} and cannot become {to}")]
    TerminalToNonTerminal {
        /// Workflow id.
        id: String,
        /// Stored status.
        from: &'static str,
        /// Requested status.
        to: &'static str,
    },
    /// A page token this store did not issue.
    #[error("invalid pageToken: {0}")]
    InvalidPageToken(String),
    /// The backend failed.
    #[error("store backend: {0}")]
    Backend(String),
}

/// Filters and paging of a workflow listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowQuery {
    /// Only workflows of this definition (empty for all definitions).
    pub definition_name: String,
    /// Only these statuses (any of them); empty for all.
    pub statuses: Vec<WorkflowStatus>,
    /// Only resolved (or unresolved) workflows.
    pub resolved_by_user: Option<bool>,
    /// Only workflows created at or after this instant.
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only workflows created before this instant.
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only workflows carrying every one of these tags (key, value).
    pub tags: Vec<(String, String)>,
    /// Only workflows of this namespace.
    pub namespace: Option<String>,
    /// Only workflows of this queue.
    pub queue: Option<String>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after the page that returned this token.
    pub page_token: Option<String>,
}

/// A page of workflows.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPage {
    /// The workflows.
    pub workflows: Vec<Workflow>,
    /// Token of the next page, if there are more rows.
    pub next_page_token: Option<String>,
}

/// Persistent state of the workflow manager.
#[async_trait]
pub trait Store: Send + Sync {
    /// Saves a new definition version; `Conflict` if that name and version exist.
    async fn save_workflow_definition(&self, def: &WorkflowDefinition) -> Result<(), StoreError>;
    /// One version of a definition.
    async fn get_workflow_definition(
        &self,
        name: &str,
        version: i64,
    ) -> Result<WorkflowDefinition, StoreError>;
    /// The highest version of a definition.
    async fn latest_workflow_definition(
        &self,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError>;
    /// All versions of a definition, newest first; `NotFound` if there are none.
    async fn workflow_definition_versions(
        &self,
        name: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError>;
    /// The latest version of every definition, by name.
    async fn latest_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError>;

    /// Creates or replaces a state resource.
    async fn save_state_resource(&self, resource: &StateResource) -> Result<(), StoreError>;
    /// One state resource.
    async fn get_state_resource(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<StateResource, StoreError>;
    /// The state resources of a namespace (of every namespace with `None`), by namespace and
    /// name.
    async fn list_state_resources(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<StateResource>, StoreError>;
    /// Deletes a state resource; `NotFound` if absent.
    async fn delete_state_resource(&self, namespace: &str, name: &str) -> Result<(), StoreError>;

    /// Saves a new workflow; `Conflict` if the id exists.
    async fn save_workflow(&self, workflow: &Workflow) -> Result<(), StoreError>;
    /// Replaces a stored workflow. Refuses to move a terminal status to a non-terminal one.
    async fn update_workflow(&self, workflow: &Workflow) -> Result<(), StoreError>;
    /// Replaces a stored workflow only if its stored `lastUpdated` is still `expected` (it was
    /// not changed since it was read); returns whether it was replaced. Same terminal rule.
    async fn update_workflow_if(
        &self,
        workflow: &Workflow,
        expected: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
    /// One workflow.
    async fn get_workflow(&self, id: &str) -> Result<Workflow, StoreError>;
    /// Deletes a workflow.
    async fn delete_workflow(&self, id: &str) -> Result<(), StoreError>;
    /// A page of workflows of one definition.
    async fn list_workflows(&self, query: &WorkflowQuery) -> Result<WorkflowPage, StoreError>;
    /// How many workflows match the filters of `query` (paging ignored), per status.
    async fn count_workflows(
        &self,
        query: &WorkflowQuery,
    ) -> Result<std::collections::BTreeMap<WorkflowStatus, u64>, StoreError>;
    /// Ids of workflows not yet in a terminal status (queued or running), oldest first, at
    /// most `limit`: what a sync must look at after a restart.
    async fn unfinished_workflow_ids(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Unfinished workflows created at or after `since`, oldest first, at most `limit`, with
    /// their creation time: what a reconciliation loop reads to pick up new workflows without
    /// reading every unfinished one again.
    async fn unfinished_workflows_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, StoreError>;
}
