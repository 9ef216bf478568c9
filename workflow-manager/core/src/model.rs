//! The domain model, serialised exactly as Clever's `swagger.yml` names it (camelCase JSON,
//! RFC 3339 timestamps with nanoseconds), so Clever's generated clients read it unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wfm_asl::StateMachine;

/// Tags: string keys to string values.
pub type Tags = BTreeMap<String, String>;

/// A versioned workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDefinition {
    /// Unique id of this version.
    pub id: String,
    /// Name shared by all versions.
    pub name: String,
    /// 0 for the first version, then +1 per update.
    pub version: i64,
    /// When this version was created.
    pub created_at: DateTime<Utc>,
    /// Always `step-functions`.
    pub manager: String,
    /// The ASL state machine.
    pub state_machine: StateMachine,
    /// Tags every workflow of this definition gets.
    #[serde(default)]
    pub default_tags: Tags,
}

/// A workflow's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// Stored, execution not yet seen running.
    Queued,
    /// Executing.
    Running,
    /// Ended with an error (or timed out).
    Failed,
    /// Ended successfully.
    Succeeded,
    /// Stopped by a user.
    Cancelled,
}

impl WorkflowStatus {
    /// Whether no further status change can happen.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            WorkflowStatus::Failed | WorkflowStatus::Succeeded | WorkflowStatus::Cancelled
        )
    }

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Queued => "queued",
            WorkflowStatus::Running => "running",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Succeeded => "succeeded",
            WorkflowStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => WorkflowStatus::Queued,
            "running" => WorkflowStatus::Running,
            "failed" => WorkflowStatus::Failed,
            "succeeded" => WorkflowStatus::Succeeded,
            "cancelled" => WorkflowStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JobStatus {
    Created,
    Queued,
    WaitingForDeps,
    Running,
    Succeeded,
    Failed,
    AbortedDepsFailed,
    AbortedByUser,
}

/// Kind of a state resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum StateResourceType {
    JobDefinitionARN,
    ActivityARN,
    LambdaFunctionARN,
    TaskARN,
}

/// What a state's `Resource` stands for in a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateResource {
    /// Short name used in definitions.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// What it resolves to (an ARN).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// Last change.
    pub last_updated: DateTime<Utc>,
    /// Kind.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<StateResourceType>,
}

/// One earlier attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct JobAttempt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    #[serde(
        rename = "containerInstanceARN",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub container_instance_arn: String,
    #[serde(rename = "taskARN", default, skip_serializing_if = "String::is_empty")]
    pub task_arn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// One state entered during a workflow's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The id of the history event that entered the state.
    pub id: String,
    /// Earlier attempts, when the state was retried.
    #[serde(default)]
    pub attempts: Vec<JobAttempt>,
    /// The worker that ran it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// When the state was entered.
    pub created_at: DateTime<Utc>,
    /// When work started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// The state's input (JSON text).
    #[serde(default)]
    pub input: String,
    /// The state's output (JSON text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// The state's name.
    pub state: String,
    /// What the state ran, for Task states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_resource: Option<StateResource>,
    /// Status.
    pub status: JobStatus,
    /// Why it failed or was aborted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_reason: String,
}

/// A workflow: one run of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Id (also the execution name).
    pub id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub last_updated: DateTime<Utc>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// The definition version it runs.
    pub workflow_definition: WorkflowDefinition,
    /// Status.
    pub status: WorkflowStatus,
    /// Namespace (resources resolve in it).
    pub namespace: String,
    /// Queue.
    pub queue: String,
    /// Input (JSON object text).
    pub input: String,
    /// Whether a user marked it resolved (or it needs no attention).
    #[serde(default)]
    pub resolved_by_user: bool,
    /// The workflow this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_for: Option<String>,
    /// Workflows that retry this one.
    #[serde(default)]
    pub retries: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
    /// The job that failed (or the last job), for failed workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<Job>,
    /// Why it is in its status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_reason: String,
    /// Output (JSON text), once succeeded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// One job per state entered.
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// The workflow whose `workflow:` Task started this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_workflow_id: Option<String>,
    /// The workflows this one's `workflow:` Tasks started, in the order they started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_workflow_ids: Vec<String>,
}

/// Which definition a workflow runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDefinitionRef {
    /// Name.
    pub name: String,
    /// Version; -1 (or absent) for the latest.
    #[serde(default = "latest_version")]
    pub version: i64,
}

fn latest_version() -> i64 {
    -1
}

/// Body of POST /workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartWorkflowRequest {
    /// The definition.
    pub workflow_definition: WorkflowDefinitionRef,
    /// Input: a JSON object as text; empty means `{}`.
    #[serde(default)]
    pub input: String,
    /// Namespace (default `default`).
    #[serde(default)]
    pub namespace: String,
    /// Queue (default `default`).
    #[serde(default)]
    pub queue: String,
    /// Tags; values must be strings.
    #[serde(default)]
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// Appended to the generated id (Clever's embedded mode).
    #[serde(default)]
    pub id_suffix: String,
    /// Extension: the workflow id, chosen by the client to make the start idempotent. The same
    /// id with the same request returns the existing workflow; with another request, 409.
    #[serde(default)]
    pub id: String,
}

/// Body of POST and PUT /workflow-definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWorkflowDefinitionRequest {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Ignored: the store assigns versions.
    #[serde(default)]
    pub version: Option<i64>,
    /// Must be `step-functions` when given.
    #[serde(default)]
    pub manager: Option<String>,
    /// The ASL state machine, validated when the request is handled.
    #[serde(default)]
    pub state_machine: Option<serde_json::Value>,
    /// Default tags; values must be strings.
    #[serde(default)]
    pub default_tags: serde_json::Map<String, serde_json::Value>,
}

/// Body of POST /state-resources and PUT /state-resources/{namespace}/{name}.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStateResource {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// URI (an ARN).
    #[serde(default)]
    pub uri: String,
}
