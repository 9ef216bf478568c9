//! AWS Step Functions behind the manager's [`StepFunctions`] trait, over aws-sdk-sfn. What the
//! manager sends is already expanded (activity ARNs, Batch integrations, default retriers; see
//! `wfm_core::conventions`); this crate creates the state machines on first use (with their
//! tags and the activities they name), starts, describes and stops executions, and turns the
//! SDK's history events into the Step Functions JSON shape the rest of the service reads.
//!
//! It works against AWS, LocalStack, and the embedded engine's own `/sfn` endpoint alike: the
//! endpoint comes from the SDK configuration (`AWS_ENDPOINT_URL_SFN`). The account of its ARNs
//! is learned ([`account`]) when it is not configured.

pub mod account;
mod history;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::Tag;
use wfm_asl::StateMachine;
use wfm_core::sfn::{ExecutionDescription, ExecutionStatus, HistoryPage, SfnError, StepFunctions};

/// Step Functions through aws-sdk-sfn.
pub struct AwsStepFunctions {
    client: aws_sdk_sfn::Client,
    region: String,
    account: String,
    role_arn: String,
    /// State machines known to exist: name → ARN (a name's definition never changes).
    ensured: Mutex<HashMap<String, String>>,
}

impl AwsStepFunctions {
    /// An existing state machine of a wanted name: the same definition is used as it is; a
    /// different one is updated when the manager made the machine (its tags say so), and
    /// refused otherwise.
    async fn reconcile_definition(
        &self,
        arn: &str,
        existing: &str,
        wanted: &str,
    ) -> Result<(), SfnError> {
        let same = serde_json::from_str::<serde_json::Value>(existing).ok()
            == serde_json::from_str::<serde_json::Value>(wanted).ok();
        if same {
            return Ok(());
        }
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(map_error)?;
        let ours = tags.tags().iter().any(|t| t.key() == Some(MANAGED_TAG));
        if !ours {
            return Err(SfnError::ForeignStateMachine(format!(
                "the state machine {arn} exists with another definition and was not made by the \
                 workflow-manager (it has no {MANAGED_TAG} tag), so it is not changed; wanted: \
                 {}; found: {}. Delete or rename it, or use another namespace.",
                shortened(wanted),
                shortened(existing)
            )));
        }
        self.client
            .update_state_machine()
            .state_machine_arn(arn)
            .definition(wanted)
            .send()
            .await
            .map_err(map_error)?;
        tracing::warn!(state_machine = %arn, "updated a state machine whose definition differed from its workflow definition's");
        Ok(())
    }

    /// Creates a state machine (and the activities it names).
    async fn create(
        &self,
        name: &str,
        arn: &str,
        definition: &StateMachine,
        json: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), SfnError> {
        // Activities first: a state machine may name activities no worker created yet.
        // CreateActivity is idempotent.
        for activity in wfm_core::conventions::activity_names(definition) {
            self.client
                .create_activity()
                .name(activity)
                .send()
                .await
                .map_err(map_error)?;
        }
        let mut request = self
            .client
            .create_state_machine()
            .name(name)
            .definition(json)
            .role_arn(&self.role_arn);
        for (k, v) in tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        match request.send().await {
            Ok(out) => {
                tracing::info!(
                    state_machine = out.state_machine_arn(),
                    "created state machine"
                );
                let made = out.state_machine_arn();
                if made != arn {
                    tracing::warn!(expected = %arn, made = %made, "state machine ARN differs from the configured region and account");
                }
                Ok(())
            }
            // Created meanwhile by another instance: its definition is checked like any
            // existing one's.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_already_exists()) =>
            {
                let existing = self
                    .client
                    .describe_state_machine()
                    .state_machine_arn(arn)
                    .send()
                    .await
                    .map_err(map_error)?;
                self.reconcile_definition(arn, existing.definition(), json)
                    .await
            }
            Err(e) => Err(map_error(e)),
        }
    }

    /// A backend in `region` and `account` (for ARNs), whose state machines run as `role_arn`.
    pub fn new(
        client: aws_sdk_sfn::Client,
        region: impl Into<String>,
        account: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            // Every call counted for /metrics.
            client: aws_sdk_sfn::Client::from_conf(
                client
                    .config()
                    .to_builder()
                    .interceptor(wfm_aws_metrics::Metered)
                    .build(),
            ),
            region: region.into(),
            account: account.into(),
            role_arn: role_arn.into(),
            ensured: Mutex::new(HashMap::new()),
        }
    }

    /// Whether Step Functions answers (ListStateMachines of one): the readiness check.
    pub async fn ping(&self) -> Result<(), SfnError> {
        self.client
            .list_state_machines()
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(map_error)
    }
}

/// The tag the manager puts on the state machines it makes.
const MANAGED_TAG: &str = "workflow-manager:definition";

/// A definition, cut for an error message.
fn shortened(definition: &str) -> String {
    let cut: String = definition.chars().take(300).collect();
    if cut.len() < definition.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

/// Maps an SDK failure by its error code.
pub fn map_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> SfnError {
    let Some(service) = e.as_service_error() else {
        return SfnError::Other(format!("{e:?}"));
    };
    let code = service.code().unwrap_or_default();
    let message = format!("{code}: {}", service.message().unwrap_or_default());
    match code {
        "ExecutionDoesNotExist" => SfnError::ExecutionDoesNotExist(message),
        "ExecutionAlreadyExists" => SfnError::ExecutionAlreadyExists(message),
        "InvalidDefinition" | "InvalidArn" | "InvalidName" | "ValidationException" => {
            SfnError::InvalidDefinition(message)
        }
        "InvalidExecutionInput" => SfnError::InvalidInput(message),
        c if wfm_aws_metrics::is_throttling(c) => SfnError::Throttled(message),
        _ => SfnError::Other(message),
    }
}

fn to_chrono(t: &aws_sdk_sfn::primitives::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

#[async_trait]
impl StepFunctions for AwsStepFunctions {
    fn activity_arn(&self, activity_name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:activity:{activity_name}",
            self.region, self.account
        )
    }

    fn state_machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }

    fn execution_arn(&self, state_machine_name: &str, execution_name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:execution:{state_machine_name}:{execution_name}",
            self.region, self.account
        )
    }

    async fn ensure_state_machine(
        &self,
        name: &str,
        definition: &StateMachine,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, SfnError> {
        if let Some(arn) = self
            .ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(arn.clone());
        }
        let arn = self.state_machine_arn(name);
        let found = match self
            .client
            .describe_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await
        {
            Ok(out) => Some(out.definition().to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
            {
                None
            }
            Err(e) => return Err(map_error(e)),
        };
        let mut wanted = definition.clone();
        wfm_core::conventions::add_default_retriers(&mut wanted);
        let json = serde_json::to_string(&wanted)
            .map_err(|e| SfnError::InvalidDefinition(e.to_string()))?;
        match found {
            Some(existing) => self.reconcile_definition(&arn, &existing, &json).await?,
            None => self.create(name, &arn, definition, &json, tags).await?,
        }
        self.ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), arn.clone());
        Ok(arn)
    }

    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, SfnError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(map_error)?;
        Ok(out.execution_arn().to_string())
    }

    async fn describe_execution(
        &self,
        execution_arn: &str,
    ) -> Result<ExecutionDescription, SfnError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(map_error)?;
        let status = ExecutionStatus::parse(out.status().as_str()).ok_or_else(|| {
            SfnError::Other(format!(
                "unknown execution status {}",
                out.status().as_str()
            ))
        })?;
        Ok(ExecutionDescription {
            status,
            input: out.input().map(str::to_string),
            start_date: to_chrono(out.start_date()),
            stop_date: out.stop_date().map(to_chrono),
            output: out.output().map(str::to_string),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
        })
    }

    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), SfnError> {
        self.client
            .stop_execution()
            .execution_arn(execution_arn)
            .set_error(error.map(str::to_string))
            .set_cause(cause.map(str::to_string))
            .send()
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
        // At most 20 pages of 1,000: beyond that the per-workflow checks take over.
        for _ in 0..20 {
            let out = self
                .client
                .list_executions()
                .state_machine_arn(state_machine_arn)
                .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(map_error)?;
            names.extend(out.executions().iter().map(|e| e.name().to_string()));
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(Some(names));
            }
        }
        // Truncated: an incomplete list would make running workflows look ended.
        Ok(None)
    }

    async fn execution_history_page(
        &self,
        execution_arn: &str,
        next_token: Option<&str>,
    ) -> Result<HistoryPage, SfnError> {
        let out = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .set_next_token(next_token.map(str::to_string))
            .send()
            .await
            .map_err(map_error)?;
        Ok(HistoryPage {
            events: out
                .events()
                .iter()
                .map(history::convert)
                .collect::<Result<_, _>>()?,
            next_token: out.next_token().map(str::to_string),
        })
    }
}
