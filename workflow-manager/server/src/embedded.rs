//! The embedded engine behind the manager's `StepFunctions` trait. State machines are created
//! on first use together with the activities they name, so a workflow started before its worker
//! polls simply waits for it, as it would on AWS once the activity exists.

use async_trait::async_trait;
use wfm_asl::StateMachine;
use wfm_core::sfn::{ExecutionDescription, ExecutionStatus, HistoryPage, SfnError, StepFunctions};
use wfm_engine::{Engine, EngineError};

/// The embedded engine as a `StepFunctions` backend.
pub struct EmbeddedStepFunctions {
    engine: Engine,
    role_arn: String,
    /// State machines already ensured: name → ARN (they never change once created).
    ensured: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl EmbeddedStepFunctions {
    /// Wraps `engine`; state machines run as `role_arn` (recorded, not enforced).
    pub fn new(engine: Engine, role_arn: impl Into<String>) -> Self {
        Self {
            engine,
            role_arn: role_arn.into(),
            ensured: Default::default(),
        }
    }
}

fn map_error(e: EngineError) -> SfnError {
    match e {
        EngineError::ExecutionDoesNotExist(m) => SfnError::ExecutionDoesNotExist(m),
        EngineError::ExecutionAlreadyExists(m) => SfnError::ExecutionAlreadyExists(m),
        EngineError::InvalidDefinition(m) | EngineError::InvalidName(m) => {
            SfnError::InvalidDefinition(m)
        }
        EngineError::InvalidExecutionInput(m) => SfnError::InvalidInput(m),
        other => SfnError::Other(other.to_string()),
    }
}

#[async_trait]
impl StepFunctions for EmbeddedStepFunctions {
    fn activity_arn(&self, activity_name: &str) -> String {
        self.engine.activity_arn(activity_name)
    }

    fn state_machine_arn(&self, state_machine_name: &str) -> String {
        let c = self.engine.config();
        format!(
            "arn:aws:states:{}:{}:stateMachine:{state_machine_name}",
            c.region, c.account
        )
    }

    fn execution_arn(&self, state_machine_name: &str, execution_name: &str) -> String {
        let c = self.engine.config();
        format!(
            "arn:aws:states:{}:{}:execution:{state_machine_name}:{execution_name}",
            c.region, c.account
        )
    }

    async fn ensure_state_machine(
        &self,
        name: &str,
        definition: &StateMachine,
        // The embedded engine keeps no tags on state machines.
        _tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, SfnError> {
        if let Some(arn) = self
            .ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(arn.clone());
        }
        for n in wfm_core::conventions::activity_names(definition) {
            self.engine.create_activity(&n).map_err(map_error)?;
        }
        // The same machine as on AWS: every task retries a worker's graceful termination.
        let mut definition = definition.clone();
        wfm_core::conventions::add_default_retriers(&mut definition);
        let json = serde_json::to_string(&definition)
            .map_err(|e| SfnError::InvalidDefinition(e.to_string()))?;
        let sm = self
            .engine
            .create_state_machine(name, &json, &self.role_arn, "STANDARD")
            .map_err(map_error)?;
        self.ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), sm.arn.clone());
        Ok(sm.arn)
    }

    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, SfnError> {
        Ok(self
            .engine
            .start_execution(state_machine_arn, Some(name), Some(input))
            .await
            .map_err(map_error)?
            .execution_arn)
    }

    async fn describe_execution(
        &self,
        execution_arn: &str,
    ) -> Result<ExecutionDescription, SfnError> {
        let e = self
            .engine
            .describe_execution(execution_arn)
            .await
            .map_err(map_error)?;
        Ok(ExecutionDescription {
            status: ExecutionStatus::parse(&e.status)
                .ok_or_else(|| SfnError::Other(format!("unknown execution status {}", e.status)))?,
            input: Some(e.input),
            start_date: e.start_date,
            stop_date: e.stop_date,
            output: e.output,
            error: e.error,
            cause: e.cause,
        })
    }

    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), SfnError> {
        self.engine
            .stop_execution(execution_arn, error, cause)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn running_executions(
        &self,
        state_machine_arn: &str,
    ) -> Result<Option<Vec<String>>, SfnError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = self
                .engine
                .list_executions(
                    state_machine_arn,
                    Some("RUNNING"),
                    Some(1000),
                    token.as_deref(),
                )
                .await
                .map_err(map_error)?;
            names.extend(page.into_iter().map(|e| e.name));
            match next {
                Some(t) => token = Some(t),
                None => return Ok(Some(names)),
            }
        }
    }

    async fn execution_history_page(
        &self,
        execution_arn: &str,
        next_token: Option<&str>,
    ) -> Result<HistoryPage, SfnError> {
        let page = self
            .engine
            .get_execution_history(execution_arn, Some(1000), next_token, false)
            .await
            .map_err(map_error)?;
        Ok(HistoryPage {
            events: page.events,
            next_token: page.next_token,
        })
    }
}
