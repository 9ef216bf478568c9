//! Service integrations: Task states whose `Resource` is an AWS service integration
//! (`arn:aws:states:::batch:submitJob.sync`, ...) rather than an activity. The engine knows
//! nothing of AWS; an integration registered with [`Engine::register_integration`]
//! (`crate::Engine`) does the calls. The engine records the `Task*` history events Step
//! Functions records (TaskScheduled, TaskStarted, TaskSubmitted, TaskSucceeded or TaskFailed),
//! recovers a submitted task after a restart by waiting on it again instead of submitting it
//! twice, and cancels the work when the execution is stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    /// The handle to wait on or cancel (a Batch job id); recorded in the history.
    pub handle: String,
    /// The answer of the submit call: the task's result when the resource does not wait.
    pub output: Value,
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
    /// The handle in a submission's recorded output (how a restarted engine finds the work
    /// it submitted before, instead of submitting it again).
    fn handle_of(&self, submit_output: &Value) -> Option<String>;
    /// Waits until submitted work ends (for `.sync` resources): its result, or its failure.
    async fn wait(&self, resource: &str, handle: &str) -> Result<Value, IntegrationFailure>;
    /// Cancels submitted work (the execution was stopped).
    async fn cancel(&self, handle: &str, reason: &str) -> Result<(), IntegrationFailure>;
}

/// The operation part of an integration resource: `submitJob.sync` of
/// `arn:aws:states:::batch:submitJob.sync`.
pub fn operation(resource: &str) -> &str {
    resource.rsplit(':').next().unwrap_or(resource)
}

/// Whether the resource waits for the work to end (`.sync`).
pub fn waits(resource: &str) -> bool {
    resource.ends_with(".sync")
}

/// Work in flight: per execution, the integration and handle of each piece.
type InFlight = HashMap<String, Vec<(Arc<dyn ServiceIntegration>, String)>>;

/// The integrations, and the work in flight per execution (to cancel on stop).
#[derive(Default)]
pub(crate) struct Integrations {
    registered: std::sync::RwLock<Vec<Arc<dyn ServiceIntegration>>>,
    in_flight: Mutex<InFlight>,
}

impl Integrations {
    pub(crate) fn register(&self, integration: Arc<dyn ServiceIntegration>) {
        self.registered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(integration);
    }

    pub(crate) fn for_resource(&self, resource: &str) -> Option<Arc<dyn ServiceIntegration>> {
        self.registered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|i| i.handles(resource))
            .cloned()
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes work of an execution that a stop must cancel.
    pub(crate) fn started(
        &self,
        execution_arn: &str,
        integration: Arc<dyn ServiceIntegration>,
        handle: &str,
    ) {
        self.in_flight()
            .entry(execution_arn.to_string())
            .or_default()
            .push((integration, handle.to_string()));
    }

    /// The work ended by itself.
    pub(crate) fn ended(&self, execution_arn: &str, handle: &str) {
        let mut map = self.in_flight();
        if let Some(list) = map.get_mut(execution_arn) {
            list.retain(|(_, h)| h != handle);
            if list.is_empty() {
                map.remove(execution_arn);
            }
        }
    }

    /// Cancels the work of a stopped execution, in the background.
    pub(crate) fn cancel_execution(&self, execution_arn: &str, reason: &str) {
        let work = self.in_flight().remove(execution_arn).unwrap_or_default();
        for (integration, handle) in work {
            let reason = reason.to_string();
            let arn = execution_arn.to_string();
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = integration.cancel(&handle, &reason).await {
                            tracing::warn!(execution = %arn, handle, error = %e.error, cause = %e.cause, "cannot cancel the work of a stopped execution");
                        }
                    });
                }
                Err(_) => {
                    tracing::warn!(execution = %arn, handle, "no runtime to cancel the work of a stopped execution")
                }
            }
        }
    }
}
