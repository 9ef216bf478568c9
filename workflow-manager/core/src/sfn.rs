//! The `StepFunctions` trait: the part of the Step Functions API the manager needs. The embedded
//! engine and AWS Step Functions (through aws-sdk-sfn) both implement it, and both return
//! history in Step Functions' own event shape, so history becomes jobs in one place.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use wfm_asl::{HistoryEvent, StateMachine};

/// A Step Functions failure, by the error code the manager reacts to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfnError {
    /// The execution is unknown (not started yet, or a zombie).
    #[error("{0}")]
    ExecutionDoesNotExist(String),
    /// The execution name is taken.
    #[error("{0}")]
    ExecutionAlreadyExists(String),
    /// The state machine definition was rejected.
    #[error("{0}")]
    InvalidDefinition(String),
    /// The input was rejected.
    #[error("{0}")]
    InvalidInput(String),
    /// A state machine of the wanted name exists with another definition, and the manager did
    /// not make it (so it is not changed).
    #[error("{0}")]
    ForeignStateMachine(String),
    /// The request was throttled (a quota was exceeded): try again later, more slowly.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Anything else (network, internal).
    #[error("{0}")]
    Other(String),
}

/// Execution status as Step Functions reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl ExecutionStatus {
    /// Parses Step Functions' status name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            "PENDING_REDRIVE" => ExecutionStatus::PendingRedrive,
            _ => return None,
        })
    }
}

/// What DescribeExecution returns that the manager uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionDescription {
    /// Status.
    pub status: ExecutionStatus,
    /// Input (JSON text).
    pub input: Option<String>,
    /// Start.
    pub start_date: DateTime<Utc>,
    /// Stop, once ended.
    pub stop_date: Option<DateTime<Utc>>,
    /// Output, once succeeded.
    pub output: Option<String>,
    /// Error, once failed.
    pub error: Option<String>,
    /// Cause, once failed.
    pub cause: Option<String>,
}

/// A page of history events.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Events in order.
    pub events: Vec<HistoryEvent>,
    /// Token of the next page.
    pub next_token: Option<String>,
}

/// The Step Functions operations the manager uses.
#[async_trait]
pub trait StepFunctions: Send + Sync {
    /// The ARN of the activity with this (already namespaced) name.
    fn activity_arn(&self, activity_name: &str) -> String;
    /// The ARN of the state machine named `state_machine_name`.
    fn state_machine_arn(&self, state_machine_name: &str) -> String;
    /// The ARN an execution of `execution_name` on state machine `state_machine_name` has.
    fn execution_arn(&self, state_machine_name: &str, execution_name: &str) -> String;
    /// Creates the state machine (with `tags`) unless it exists; returns its ARN.
    async fn ensure_state_machine(
        &self,
        name: &str,
        definition: &StateMachine,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, SfnError>;
    /// Starts an execution; returns its ARN.
    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, SfnError>;
    /// Describes an execution.
    async fn describe_execution(
        &self,
        execution_arn: &str,
    ) -> Result<ExecutionDescription, SfnError>;
    /// Stops an execution.
    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), SfnError>;
    /// The names of a state machine's executions that are RUNNING now, or `None` when the
    /// backend cannot list them. A tracked workflow missing from the list most likely ended:
    /// the reconciliation loop looks at those first.
    async fn running_executions(
        &self,
        state_machine_arn: &str,
    ) -> Result<Option<Vec<String>>, SfnError> {
        let _ = state_machine_arn;
        Ok(None)
    }
    /// One page of an execution's history, oldest first.
    async fn execution_history_page(
        &self,
        execution_arn: &str,
        next_token: Option<&str>,
    ) -> Result<HistoryPage, SfnError>;
}
