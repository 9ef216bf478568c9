//! Service integration calls in flight: the registered integrations, and per call the task
//! that submits or waits, so that a call that is over (timed out, its execution stopped) is
//! dropped and its work cancelled. Answers go back to the execution as completions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::integrations::ServiceIntegration;
use crate::machine::{Completion, Failure, Submission};

/// The integrations and the calls in flight.
#[derive(Default)]
pub struct Calls {
    registered: RwLock<Vec<Arc<dyn ServiceIntegration>>>,
    in_flight: Mutex<HashMap<(i64, u32), tokio::task::AbortHandle>>,
}

/// Where a call's answer goes.
pub type Deliver = Arc<dyn Fn(i64, Completion) + Send + Sync>;

impl Calls {
    /// Registers an integration.
    pub fn register(&self, integration: Arc<dyn ServiceIntegration>) {
        self.registered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(integration);
    }

    /// The integration that runs `resource`.
    pub fn for_resource(&self, resource: &str) -> Option<Arc<dyn ServiceIntegration>> {
        self.registered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|i| i.handles(resource))
            .cloned()
    }

    fn in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(i64, u32), tokio::task::AbortHandle>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(
        self: &Arc<Self>,
        key: (i64, u32),
        work: impl std::future::Future<Output = Completion> + Send + 'static,
        deliver: Deliver,
    ) {
        let calls = Arc::downgrade(self);
        let handle = tokio::spawn(async move {
            let completion = work.await;
            if let Some(c) = calls.upgrade() {
                c.in_flight().remove(&key);
            }
            deliver(key.0, completion);
        });
        if let Some(old) = self.in_flight().insert(key, handle.abort_handle()) {
            old.abort();
        }
    }

    /// The integration for `resource`, or the failure a call of it gets.
    fn integration_or_failure(
        &self,
        resource: &str,
    ) -> Result<Arc<dyn ServiceIntegration>, Failure> {
        self.for_resource(resource).ok_or_else(|| {
            Failure::new(
                "States.Runtime",
                format!("no integration is registered for '{resource}'"),
            )
        })
    }

    /// Submits a call's work.
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        self: &Arc<Self>,
        execution: i64,
        execution_arn: String,
        seq: u32,
        resource: String,
        parameters: Value,
        key: String,
        deliver: Deliver,
    ) {
        let integration = self.integration_or_failure(&resource);
        let work = async move {
            let call = crate::integrations::CallContext {
                resource: &resource,
                execution_arn: &execution_arn,
                key: &key,
            };
            let result = match integration {
                Ok(i) => i
                    .submit_call(&call, &parameters)
                    .await
                    .map(|s| Submission {
                        handle: s.handle,
                        output: s.output,
                    })
                    .map_err(|f| Failure::new(f.error, f.cause)),
                Err(f) => Err(f),
            };
            Completion::Submitted { seq, result }
        };
        self.spawn((execution, seq), work, deliver);
    }

    /// Waits for a submitted call's work.
    pub fn wait(
        self: &Arc<Self>,
        execution: i64,
        seq: u32,
        resource: String,
        handle: String,
        deliver: Deliver,
    ) {
        let integration = self.integration_or_failure(&resource);
        let work = async move {
            let result = match integration {
                Ok(i) => i
                    .wait(&resource, &handle)
                    .await
                    .map_err(|f| Failure::new(f.error, f.cause)),
                Err(f) => Err(f),
            };
            Completion::CallEnded { seq, result }
        };
        self.spawn((execution, seq), work, deliver);
    }

    /// A call is over: its task is dropped and, if `cancel` names the work, the work cancelled
    /// in the background.
    pub fn end(&self, execution: i64, seq: u32, resource: Option<&str>, cancel: Option<String>) {
        if let Some(h) = self.in_flight().remove(&(execution, seq)) {
            h.abort();
        }
        let (Some(handle), Some(integration)) =
            (cancel, resource.and_then(|r| self.for_resource(r)))
        else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = integration
                .cancel(&handle, "execution stopped or timed out")
                .await
            {
                tracing::warn!(handle, error = %e.error, cause = %e.cause, "cannot cancel the work of a call");
            }
        });
    }

    /// Drops every call in flight (the engine halts).
    pub fn clear(&self) {
        for (_, h) in self.in_flight().drain() {
            h.abort();
        }
    }
}
