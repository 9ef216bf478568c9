//! Service integrations: Task states whose `Resource` is an AWS service integration
//! (`arn:aws:states:::batch:submitJob.sync`, ...) rather than an activity. The engine knows
//! nothing of AWS; an integration registered with [`Engine::register_integration`]
//! (`crate::Engine`) makes the calls. The step machine records the `Task*` history events Step
//! Functions records (TaskScheduled, TaskStarted, TaskSubmitted, TaskSucceeded, TaskFailed or
//! TaskTimedOut) and keeps a call's handle in the execution's state, so that after a restart
//! the engine waits for work it submitted instead of submitting it again, and cancels the work
//! when the execution is stopped or the state times out.

use async_trait::async_trait;
use serde_json::Value;

/// A failed call, as the state sees it (its Retry and Catch match `error`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationFailure {
    /// Error name (`States.TaskFailed`, `Batch.ClientException`, ...).
    pub error: String,
    /// Cause (for a failed job, the job's description as JSON, as Step Functions gives it).
    pub cause: String,
}

/// What a submission returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The handle to wait on or cancel (a Batch job id); kept in the execution's state.
    pub handle: String,
    /// The answer of the submit call: the task's result when the resource does not wait.
    pub output: Value,
}

/// Who makes a call: the execution, and a key unique to the call.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The resource ARN.
    pub resource: &'a str,
    /// The calling execution's ARN.
    pub execution_arn: &'a str,
    /// Unique to this call (each attempt of a state is another call) and the same when the
    /// call is submitted again after a restart: an idempotency key.
    pub key: &'a str,
}

/// One AWS service behind Task states.
#[async_trait]
pub trait ServiceIntegration: Send + Sync {
    /// The service name in history events (`batch`).
    fn resource_type(&self) -> &'static str;
    /// Whether `resource` is this service's (`arn:aws:states:::batch:submitJob[.sync]`).
    fn handles(&self, resource: &str) -> bool;
    /// The region calls go to (recorded in TaskScheduled).
    fn region(&self) -> String;
    /// Starts the work with the state's effective parameters.
    async fn submit(
        &self,
        resource: &str,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure>;
    /// [`submit`](Self::submit), knowing who calls (an integration that can make a call
    /// idempotent overrides this).
    async fn submit_call(
        &self,
        call: &CallContext<'_>,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        self.submit(call.resource, parameters).await
    }
    /// Waits until submitted work ends (for `.sync` resources): its result, or its failure.
    /// An integration without `.sync` resources keeps this default.
    async fn wait(&self, resource: &str, _handle: &str) -> Result<Value, IntegrationFailure> {
        Err(IntegrationFailure {
            error: "States.Runtime".into(),
            cause: format!("'{resource}' does not run to completion"),
        })
    }
    /// Cancels submitted work (the execution was stopped, or the state timed out); nothing
    /// to cancel by default (request-response calls are over when answered).
    async fn cancel(&self, _handle: &str, _reason: &str) -> Result<(), IntegrationFailure> {
        Ok(())
    }
}
