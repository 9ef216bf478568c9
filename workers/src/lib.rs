//! The worker runtime. A [`Worker`] polls one Step Functions activity (GetActivityTask long
//! poll), runs each task through a [`TaskHandler`], heartbeats while it runs, and answers with
//! SendTaskSuccess or SendTaskFailure. It speaks to Step Functions only through aws-sdk-sfn, so
//! the same worker runs against AWS or, by endpoint URL, the embedded engine's `/sfn`.
//!
//! [`command::CommandHandler`] runs any program the way Clever's `sfncli` does; the
//! `wfm-worker` binary wraps it. This crate must not depend on the service's crates.

pub mod command;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::Client;
use serde_json::Value;
use tokio::sync::watch;

/// A task handed to a handler.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task token.
    pub token: String,
    /// The input, as received (JSON text).
    pub input: String,
}

/// Why a task failed: the error name and cause reported with SendTaskFailure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Error name (`sfncli.CommandExitedNonzero`, or the program's own).
    pub error: String,
    /// Cause.
    pub cause: String,
}

impl TaskFailure {
    /// A failure with this error name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Does the work of one task.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// Runs `task`. `cancel` turns true when the task must stop early: the worker is shutting
    /// down (SIGTERM) or Step Functions no longer knows the task (a heartbeat was refused).
    async fn handle(
        &self,
        task: Task,
        cancel: watch::Receiver<Cancel>,
    ) -> Result<Value, TaskFailure>;
}

/// Why a running task is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Keep going.
    No,
    /// The worker received SIGTERM: stop within the grace period.
    Terminate,
    /// Step Functions dropped the task (timed out, execution stopped): stop at once.
    TaskGone,
}

/// Settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The activity to poll.
    pub activity_arn: String,
    /// Name reported in GetActivityTask (shown as the job's container).
    pub worker_name: String,
    /// Interval of SendTaskHeartbeat while a task runs.
    pub heartbeat_interval: Duration,
}

/// A worker polling one activity, one task at a time.
pub struct Worker {
    client: Client,
    config: WorkerConfig,
    handler: Arc<dyn TaskHandler>,
}

/// Builds an aws-sdk-sfn client. With `endpoint_url`, it talks to that endpoint (the embedded
/// engine's `/sfn`, LocalStack...) and, unless AWS credentials are in the environment, signs
/// with static local credentials. Without it, the standard AWS configuration chain applies
/// (`AWS_REGION`, profiles, `AWS_ENDPOINT_URL_SFN`...).
pub async fn sfn_client(endpoint_url: Option<&str>, region: Option<&str>) -> Client {
    sfn_client_with(endpoint_url, region, None).await
}

/// [`sfn_client`], signing with the access key `credentials` (id, secret) when given.
pub async fn sfn_client_with(
    endpoint_url: Option<&str>,
    region: Option<&str>,
    credentials: Option<(String, String)>,
) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    let from_environment = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some();
    match credentials {
        Some((id, secret)) => {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                id,
                secret,
                None,
                None,
                "wfm-issued",
            ));
        }
        None if endpoint_url.is_some() && !from_environment => {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "wfm-local",
            ));
        }
        None => {}
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        if region.is_none()
            && std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
    }
    Client::new(&loader.load().await)
}

/// Creates (or finds) the activity named `name`; returns its ARN.
pub async fn ensure_activity(client: &Client, name: &str) -> Result<String, String> {
    let out = client
        .create_activity()
        .name(name)
        .send()
        .await
        .map_err(|e| describe_sdk_error(&e))?;
    Ok(out.activity_arn().to_string())
}

/// A one-line description of an SDK error: its code and message when the service sent them.
pub fn describe_sdk_error<E: ProvideErrorMetadata + std::fmt::Debug>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => format!("{e:?}"),
    }
}

/// Error codes meaning the task no longer exists in Step Functions.
fn task_is_gone(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")
    )
}

impl Worker {
    /// A worker with this client, configuration and handler.
    pub fn new(client: Client, config: WorkerConfig, handler: Arc<dyn TaskHandler>) -> Self {
        Self {
            client,
            config,
            handler,
        }
    }

    /// Polls and runs tasks until `shutdown` turns true. A task running at shutdown is told to
    /// terminate and its outcome is still reported.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let poll = self
                .client
                .get_activity_task()
                .activity_arn(&self.config.activity_arn)
                .worker_name(&self.config.worker_name)
                .send();
            let response = tokio::select! {
                r = poll => r,
                _ = shutdown.changed() => return,
            };
            let out = match response {
                Ok(out) => {
                    backoff = Duration::from_millis(100);
                    out
                }
                Err(e) => {
                    tracing::warn!(activity = %self.config.activity_arn, error = %describe_sdk_error(&e), "GetActivityTask failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            let Some(token) = out.task_token().filter(|t| !t.is_empty()) else {
                continue;
            };
            let task = Task {
                token: token.to_string(),
                input: out.input().unwrap_or("{}").to_string(),
            };
            self.run_task(task, shutdown.clone()).await;
        }
    }

    /// Runs one task with heartbeats and reports its outcome.
    pub async fn run_task(&self, task: Task, mut shutdown: watch::Receiver<bool>) {
        let (cancel_tx, cancel_rx) = watch::channel(Cancel::No);
        if *shutdown.borrow() {
            let _ = cancel_tx.send(Cancel::Terminate);
        }
        let token = task.token.clone();
        let handler = self.handler.clone();
        let mut work = tokio::spawn(async move { handler.handle(task, cancel_rx).await });
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = ticker.tick() => {
                    if let Err(e) = self.client.send_task_heartbeat().task_token(&token).send().await {
                        let code = e.code().map(str::to_string);
                        tracing::warn!(error = %describe_sdk_error(&e), "heartbeat refused");
                        if task_is_gone(code.as_deref()) {
                            let _ = cancel_tx.send(Cancel::TaskGone);
                        }
                    }
                }
                Ok(()) = shutdown.changed(), if !*shutdown.borrow() => {
                    if *shutdown.borrow() {
                        let _ = cancel_tx.send(Cancel::Terminate);
                    }
                }
            }
        };
        let outcome = match result {
            Ok(r) => r,
            Err(join) => Err(TaskFailure::new(
                "sfncli.Unknown",
                format!("the task handler panicked: {join}"),
            )),
        };
        if *cancel_tx.borrow() == Cancel::TaskGone {
            return;
        }
        let sent = match outcome {
            Ok(output) => self
                .client
                .send_task_success()
                .task_token(&token)
                .output(output.to_string())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| describe_sdk_error(&e)),
            Err(f) => self
                .client
                .send_task_failure()
                .task_token(&token)
                .error(truncate(&f.error, 256))
                .cause(truncate(&f.cause, 32768))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| describe_sdk_error(&e)),
        };
        if let Err(e) = sent {
            tracing::error!(error = %e, "cannot report the task's outcome");
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, keeping the end (the most recent
/// output matters most).
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}
