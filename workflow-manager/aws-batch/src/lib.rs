//! AWS Batch for the embedded engine: the `arn:aws:states:::batch:submitJob` and
//! `arn:aws:states:::batch:submitJob.sync` integrations through aws-sdk-batch, at whatever
//! endpoint the SDK configuration names (`AWS_ENDPOINT_URL_BATCH`). SubmitJob with the state's
//! parameters; for `.sync`, DescribeJobs until the job ends, with the job's description as the
//! result (as Step Functions gives it: `JobId`, `Status`, `Attempts`, `Container`, ...), or
//! `States.TaskFailed` with that description as the cause; TerminateJob when the execution is
//! stopped.

mod job;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_batch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_batch::types::{
    ContainerOverrides, JobTimeout, KeyValuePair, ResourceRequirement, ResourceType, RetryStrategy,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use wfm_engine::integrations::{IntegrationFailure, ServiceIntegration, Submitted};

/// Makes the Batch client when the first Batch task runs (so that a service without Batch
/// states never loads AWS configuration).
pub type ClientLoader =
    Box<dyn Fn() -> BoxFuture<'static, Result<aws_sdk_batch::Client, String>> + Send + Sync>;

/// The Batch integration.
pub struct BatchIntegration {
    client: OnceCell<aws_sdk_batch::Client>,
    loader: ClientLoader,
    region: String,
    poll_interval: Duration,
}

impl BatchIntegration {
    /// With a client made already.
    pub fn new(client: aws_sdk_batch::Client) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        Self {
            client: OnceCell::new_with(Some(metered(&client))),
            loader: Box::new(|| Box::pin(async { Err("no client loader".to_string()) })),
            region,
            poll_interval: Duration::from_secs(5),
        }
    }

    /// With a client made on first use by `loader`; `region` is what history events show.
    pub fn lazy(region: impl Into<String>, loader: ClientLoader) -> Self {
        Self {
            client: OnceCell::new(),
            loader,
            region: region.into(),
            poll_interval: Duration::from_secs(5),
        }
    }

    /// How often a `.sync` task asks for its job's status (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    async fn client(&self) -> Result<&aws_sdk_batch::Client, IntegrationFailure> {
        self.client
            .get_or_try_init(|| async { (self.loader)().await.map(|c| metered(&c)) })
            .await
            .map_err(|e| IntegrationFailure {
                error: "States.Runtime".into(),
                cause: format!("cannot make the AWS Batch client: {e}"),
            })
    }
}

/// The same client, every call counted for /metrics.
fn metered(client: &aws_sdk_batch::Client) -> aws_sdk_batch::Client {
    aws_sdk_batch::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(wfm_aws_metrics::Metered)
            .build(),
    )
}

/// An SDK failure as Step Functions names it: `Batch.<ErrorCode>`.
fn failure<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> IntegrationFailure {
    match e.as_service_error() {
        Some(s) => IntegrationFailure {
            error: format!("Batch.{}", s.code().unwrap_or("AWSBatchException")),
            cause: format!(
                "{} (Service: AWSBatch; Error Code: {})",
                s.message().unwrap_or_default(),
                s.code().unwrap_or_default()
            ),
        },
        None => IntegrationFailure {
            error: "Batch.AWSBatchException".into(),
            cause: format!("{e:?}"),
        },
    }
}

fn bad_parameter(cause: String) -> IntegrationFailure {
    IntegrationFailure {
        error: "States.Runtime".into(),
        cause,
    }
}

fn string_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_map(
    v: Option<&Value>,
    field: &str,
) -> Result<Option<HashMap<String, String>>, IntegrationFailure> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(
            m.iter().map(|(k, v)| (k.clone(), string_of(v))).collect(),
        )),
        Some(_) => Err(bad_parameter(format!("{field} must be an object"))),
    }
}

fn required<'a>(p: &'a Value, field: &str) -> Result<&'a str, IntegrationFailure> {
    p.get(field).and_then(Value::as_str).ok_or_else(|| {
        bad_parameter(format!(
            "The field '{field}' is required by batch:submitJob and must be a string"
        ))
    })
}

const KNOWN: &[&str] = &[
    "JobName",
    "JobQueue",
    "JobDefinition",
    "Parameters",
    "ContainerOverrides",
    "RetryStrategy",
    "Timeout",
    "Tags",
    "PropagateTags",
    "SchedulingPriorityOverride",
    "ShareIdentifier",
];

fn overrides(v: &Value) -> Result<ContainerOverrides, IntegrationFailure> {
    let mut b = ContainerOverrides::builder();
    if let Some(cmd) = v.get("Command") {
        let items = cmd
            .as_array()
            .ok_or_else(|| bad_parameter("ContainerOverrides.Command must be an array".into()))?;
        b = b.set_command(Some(items.iter().map(string_of).collect()));
    }
    if let Some(env) = v.get("Environment") {
        let items = env.as_array().ok_or_else(|| {
            bad_parameter("ContainerOverrides.Environment must be an array".into())
        })?;
        for kv in items {
            b = b.environment(
                KeyValuePair::builder()
                    .set_name(kv.get("Name").map(string_of))
                    .set_value(kv.get("Value").map(string_of))
                    .build(),
            );
        }
    }
    if let Some(reqs) = v.get("ResourceRequirements").and_then(Value::as_array) {
        for r in reqs {
            let t = r.get("Type").map(string_of).unwrap_or_default();
            b = b.resource_requirements(
                ResourceRequirement::builder()
                    .r#type(ResourceType::from(t.as_str()))
                    .value(r.get("Value").map(string_of).unwrap_or_default())
                    .build(),
            );
        }
    }
    if let Some(t) = v.get("InstanceType").and_then(Value::as_str) {
        b = b.instance_type(t);
    }
    Ok(b.build())
}

#[async_trait]
impl ServiceIntegration for BatchIntegration {
    fn resource_type(&self) -> &'static str {
        "batch"
    }

    fn handles(&self, resource: &str) -> bool {
        matches!(
            resource,
            "arn:aws:states:::batch:submitJob" | "arn:aws:states:::batch:submitJob.sync"
        )
    }

    fn region(&self) -> String {
        self.region.clone()
    }

    async fn submit(&self, _: &str, p: &Value) -> Result<Submitted, IntegrationFailure> {
        if let Some(fields) = p.as_object() {
            if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                return Err(bad_parameter(format!(
                    "The field '{unknown}' is not supported by batch:submitJob here (supported: {})",
                    KNOWN.join(", ")
                )));
            }
        } else {
            return Err(bad_parameter(
                "batch:submitJob needs Parameters (an object)".into(),
            ));
        }
        let client = self.client().await?;
        let mut request = client
            .submit_job()
            .job_name(required(p, "JobName")?)
            .job_queue(required(p, "JobQueue")?)
            .job_definition(required(p, "JobDefinition")?)
            .set_parameters(string_map(p.get("Parameters"), "Parameters")?)
            .set_tags(string_map(p.get("Tags"), "Tags")?);
        if let Some(o) = p.get("ContainerOverrides") {
            request = request.container_overrides(overrides(o)?);
        }
        if let Some(n) = p.pointer("/RetryStrategy/Attempts").and_then(Value::as_i64) {
            request = request.retry_strategy(RetryStrategy::builder().attempts(n as i32).build());
        }
        if let Some(n) = p
            .pointer("/Timeout/AttemptDurationSeconds")
            .and_then(Value::as_i64)
        {
            request = request.timeout(
                JobTimeout::builder()
                    .attempt_duration_seconds(n as i32)
                    .build(),
            );
        }
        if let Some(b) = p.get("PropagateTags").and_then(Value::as_bool) {
            request = request.propagate_tags(b);
        }
        if let Some(n) = p.get("SchedulingPriorityOverride").and_then(Value::as_i64) {
            request = request.scheduling_priority_override(n as i32);
        }
        if let Some(s) = p.get("ShareIdentifier").and_then(Value::as_str) {
            request = request.share_identifier(s);
        }
        let out = request.send().await;
        let out = out.map_err(failure)?;
        let job_id = out.job_id().ok_or_else(|| IntegrationFailure {
            error: "Batch.AWSBatchException".into(),
            cause: "SubmitJob answered without a job id".into(),
        })?;
        Ok(Submitted {
            handle: job_id.to_string(),
            output: json!({
                "JobArn": out.job_arn(),
                "JobId": out.job_id(),
                "JobName": out.job_name(),
            }),
        })
    }

    async fn wait(&self, _: &str, job_id: &str) -> Result<Value, IntegrationFailure> {
        let client = self.client().await?;
        loop {
            let out = client.describe_jobs().jobs(job_id).send().await;
            match out {
                Ok(out) => {
                    let Some(detail) = out.jobs().first() else {
                        return Err(IntegrationFailure {
                            error: "States.TaskFailed".into(),
                            cause: format!("Batch job {job_id} no longer exists"),
                        });
                    };
                    let description = job::describe(detail);
                    match detail.status().map(|s| s.as_str()) {
                        Some("SUCCEEDED") => return Ok(description),
                        Some("FAILED") => {
                            return Err(IntegrationFailure {
                                error: "States.TaskFailed".into(),
                                cause: description.to_string(),
                            })
                        }
                        _ => {}
                    }
                }
                // A failed poll is retried: the job runs on regardless.
                Err(e) => {
                    tracing::warn!(job_id, error = %failure(e).cause, "cannot describe Batch job; retrying")
                }
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn cancel(&self, job_id: &str, reason: &str) -> Result<(), IntegrationFailure> {
        let client = self.client().await?;
        let out = client
            .terminate_job()
            .job_id(job_id)
            .reason(reason.chars().take(256).collect::<String>())
            .send()
            .await;
        out.map(|_| ()).map_err(failure)
    }
}
