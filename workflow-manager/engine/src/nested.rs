//! Nested executions, run by the engine itself: `arn:aws:states:::states:startExecution`
//! (request-response, `.sync`, `.sync:2`, `.waitForTaskToken`) and the Step Functions actions
//! of `arn:aws:states:::aws-sdk:sfn:*` (`startExecution`, `describeExecution`,
//! `stopExecution`, `sendTaskSuccess`, `sendTaskFailure`, `sendTaskHeartbeat`), with the
//! result shapes and error names Step Functions gives them.
//!
//! A child is started with the call's key as its parent link (kept in the store), so a call
//! submitted again after a restart gets the child it started instead of a second one, and a
//! child started without a `Name` gets a name derived from that key. A `.sync` call waits
//! for the child's end without polling (the runtime signals each execution's end); stopping
//! the parent (or its state timing out) stops the child.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::error::EngineError;
use crate::integrations::{CallContext, IntegrationFailure, ServiceIntegration, Submitted};
use crate::machine::compiled::{Pattern, Resource};
use crate::runtime::Runtime;
use crate::store::write::Parent;
use crate::{Engine, ExecutionInfo};

const OPTIMIZED: &str = "arn:aws:states:::states:startExecution";
const SDK: &str = "arn:aws:states:::aws-sdk:sfn:";

/// The nested-execution integration of one engine.
pub(crate) struct Nested {
    rt: Weak<Runtime>,
}

impl Nested {
    pub(crate) fn new(rt: &Arc<Runtime>) -> Self {
        Self {
            rt: Arc::downgrade(rt),
        }
    }

    fn engine(&self) -> Result<Engine, IntegrationFailure> {
        self.rt
            .upgrade()
            .map(|rt| Engine { rt })
            .ok_or_else(|| failure("States.Runtime", "the engine is shutting down"))
    }
}

fn failure(error: &str, cause: impl Into<String>) -> IntegrationFailure {
    IntegrationFailure {
        error: error.into(),
        cause: cause.into(),
    }
}

/// A request id, as AWS answers carry one.
fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An engine error as the optimized integration raises it
/// (`StepFunctions.ExecutionAlreadyExistsException`).
fn optimized_error(e: EngineError) -> IntegrationFailure {
    let code = e.code();
    failure(
        &format!("StepFunctions.{}", exception(code)),
        format!(
            "{e} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; Request ID: {}; Proxy: null)",
            request_id()
        ),
    )
}

/// An engine error as an AWS SDK integration raises it (`Sfn.InvalidTokenException`).
fn sdk_error(e: EngineError) -> IntegrationFailure {
    failure(
        &format!("Sfn.{}", exception(e.code())),
        format!(
            "{e} (Service: Sfn, Status Code: 400, Request ID: {}) (SDK Attempt Count: 1)",
            request_id()
        ),
    )
}

fn exception(code: &str) -> String {
    if code.ends_with("Exception") {
        code.to_string()
    } else {
        format!("{code}Exception")
    }
}

fn epoch_ms(d: DateTime<Utc>) -> Value {
    json!(d.timestamp_millis())
}

fn iso(d: DateTime<Utc>) -> Value {
    json!(d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A string parameter.
fn text<'a>(parameters: &'a Value, field: &str) -> Result<Option<&'a str>, IntegrationFailure> {
    match parameters.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(failure(
            "States.Runtime",
            format!("The field '{field}' must be a string, not {other}"),
        )),
    }
}

fn required<'a>(parameters: &'a Value, field: &str) -> Result<&'a str, IntegrationFailure> {
    text(parameters, field)?
        .ok_or_else(|| failure("States.Runtime", format!("The field '{field}' is required")))
}

/// The child's input text: JSON text as given, any other JSON value serialized, `{}` when
/// there is none.
fn child_input(parameters: &Value) -> Result<String, IntegrationFailure> {
    match parameters.get("Input") {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).map_err(|e| {
                failure(
                    "States.Runtime",
                    format!("The field 'Input' is not JSON text: {e}"),
                )
            })?;
            Ok(s.clone())
        }
        Some(v) => Ok(v.to_string()),
    }
}

/// A name for a child started without one: the call key's first 16 bytes as a UUID.
fn default_name(key: &str) -> String {
    let hex: String = key
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    match uuid::Uuid::try_parse(&hex) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => uuid::Uuid::new_v4().to_string(),
    }
}

/// DescribeExecution of an ended child, as `.sync` (`Input`/`Output` as text) or `.sync:2`
/// (as JSON) give it.
fn describe(info: &ExecutionInfo, json_values: bool) -> Map<String, Value> {
    let body = |t: &str| {
        if json_values {
            serde_json::from_str(t).unwrap_or_else(|_| json!(t))
        } else {
            json!(t)
        }
    };
    let mut d = Map::new();
    d.insert("ExecutionArn".into(), json!(info.execution_arn));
    d.insert("Input".into(), body(&info.input));
    d.insert("InputDetails".into(), json!({"Included": true}));
    d.insert("Name".into(), json!(info.name));
    d.insert("StartDate".into(), epoch_ms(info.start_date));
    d.insert("StateMachineArn".into(), json!(info.state_machine_arn));
    d.insert("Status".into(), json!(info.status));
    if let Some(stop) = info.stop_date {
        d.insert("StopDate".into(), epoch_ms(stop));
    }
    d
}

/// What a `.sync` call ends with once its child ended.
fn sync_result(info: &ExecutionInfo, json_values: bool) -> Result<Value, IntegrationFailure> {
    let mut d = describe(info, json_values);
    if info.status == "SUCCEEDED" {
        let out = info.output.as_deref().unwrap_or("null");
        let output = if json_values {
            serde_json::from_str(out).unwrap_or(Value::Null)
        } else {
            json!(out)
        };
        d.insert("Output".into(), output);
        d.insert("OutputDetails".into(), json!({"Included": true}));
        d.insert("RedriveCount".into(), json!(0));
        d.insert("RedriveStatus".into(), json!("NOT_REDRIVABLE"));
        d.insert(
            "RedriveStatusReason".into(),
            json!("Execution is SUCCEEDED and cannot be redriven"),
        );
        return Ok(Value::Object(d));
    }
    if let Some(e) = info.error.as_deref().filter(|e| !e.is_empty()) {
        d.insert("Error".into(), json!(e));
    }
    if let Some(c) = info.cause.as_deref().filter(|c| !c.is_empty()) {
        d.insert("Cause".into(), json!(c));
    }
    Err(failure("States.TaskFailed", Value::Object(d).to_string()))
}

fn start_answer(info: &ExecutionInfo) -> Value {
    let body = json!({
        "executionArn": info.execution_arn,
        "startDate": info.start_date.timestamp_millis() as f64 / 1000.0,
    })
    .to_string();
    let date = info
        .start_date
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let request = request_id();
    json!({
        "ExecutionArn": info.execution_arn,
        "StartDate": epoch_ms(info.start_date),
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Content-Length": [body.len().to_string()],
                "Content-Type": ["application/x-amz-json-1.0"],
                "Date": [date.clone()],
                "connection": ["keep-alive"],
                "x-amzn-RequestId": [request.clone()],
            },
            "HttpHeaders": {
                "Content-Length": body.len().to_string(),
                "Content-Type": "application/x-amz-json-1.0",
                "Date": date,
                "connection": "keep-alive",
                "x-amzn-RequestId": request.clone(),
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request},
    })
}

impl Nested {
    /// A child's number. The store is read again a few times before a read error fails the
    /// task (`States.Runtime` is not caught, so one transient error must not end the parent).
    async fn child_id(&self, engine: &Engine, handle: &str) -> Result<i64, IntegrationFailure> {
        let mut attempt = 0;
        loop {
            let child = handle.to_string();
            match crate::runtime::blocking(&engine.rt.db, move |db| db.execution(&child)).await {
                Ok(Some(row)) => return Ok(row.id),
                Ok(None) => {
                    return Err(failure(
                        "States.TaskFailed",
                        format!("the execution '{handle}' does not exist"),
                    ))
                }
                Err(e) if attempt >= 10 => return Err(failure("States.Runtime", e.to_string())),
                Err(_) => attempt += 1,
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// A child's description, read again a few times on a read error.
    async fn describe_child(
        &self,
        engine: &Engine,
        handle: &str,
    ) -> Result<ExecutionInfo, IntegrationFailure> {
        let mut attempt = 0;
        loop {
            match engine.describe_execution(handle).await {
                Ok(info) => return Ok(info),
                Err(EngineError::Storage(_)) if attempt < 10 => attempt += 1,
                Err(e) => return Err(optimized_error(e)),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    async fn start(
        &self,
        call: &CallContext<'_>,
        parameters: &Value,
    ) -> Result<ExecutionInfo, EngineError> {
        let bad = |f: IntegrationFailure| EngineError::Validation(f.cause);
        let machine = required(parameters, "StateMachineArn").map_err(bad)?;
        let input = child_input(parameters).map_err(bad)?;
        let name = match text(parameters, "Name").map_err(bad)? {
            Some(n) => n.to_string(),
            None => default_name(call.key),
        };
        let engine = self.engine().map_err(|f| EngineError::Storage(f.cause))?;
        engine
            .start_execution_from(
                machine,
                Some(&name),
                Some(&input),
                Some(Parent {
                    execution_arn: call.execution_arn.to_string(),
                    call_key: call.key.to_string(),
                }),
            )
            .await
    }

    async fn sdk(
        &self,
        call: &CallContext<'_>,
        action: &str,
        parameters: &Value,
    ) -> Result<Value, IntegrationFailure> {
        let engine = self.engine()?;
        let arg = |f: &str| required(parameters, f);
        match action {
            "startExecution" => {
                let info = self.start(call, parameters).await.map_err(sdk_error)?;
                Ok(json!({"ExecutionArn": info.execution_arn, "StartDate": iso(info.start_date)}))
            }
            "describeExecution" => {
                let info = engine
                    .describe_execution(arg("ExecutionArn")?)
                    .await
                    .map_err(sdk_error)?;
                let mut d = describe(&info, false);
                d.insert("StartDate".into(), iso(info.start_date));
                if let Some(stop) = info.stop_date {
                    d.insert("StopDate".into(), iso(stop));
                }
                for (k, v) in [
                    ("Output", &info.output),
                    ("Error", &info.error),
                    ("Cause", &info.cause),
                ] {
                    if let Some(v) = v {
                        d.insert(k.into(), json!(v));
                    }
                }
                Ok(Value::Object(d))
            }
            "stopExecution" => {
                let stopped = engine
                    .stop_execution(
                        arg("ExecutionArn")?,
                        text(parameters, "Error")?,
                        text(parameters, "Cause")?,
                    )
                    .await
                    .map_err(sdk_error)?;
                Ok(json!({"StopDate": iso(stopped)}))
            }
            "sendTaskSuccess" => {
                let output = match parameters.get("Output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return Err(failure("States.Runtime", "The field 'Output' is required")),
                };
                engine
                    .send_task_success(arg("TaskToken")?, &output)
                    .await
                    .map_err(sdk_error)?;
                Ok(json!({}))
            }
            "sendTaskFailure" => {
                engine
                    .send_task_failure(
                        arg("TaskToken")?,
                        text(parameters, "Error")?,
                        text(parameters, "Cause")?,
                    )
                    .await
                    .map_err(sdk_error)?;
                Ok(json!({}))
            }
            "sendTaskHeartbeat" => {
                engine
                    .send_task_heartbeat(arg("TaskToken")?)
                    .await
                    .map_err(sdk_error)?;
                Ok(json!({}))
            }
            other => Err(failure(
                "States.Runtime",
                format!(
                    "The action '{other}' of the service 'sfn' is not supported by the embedded engine"
                ),
            )),
        }
    }
}

#[async_trait]
impl ServiceIntegration for Nested {
    fn resource_type(&self) -> &'static str {
        "states"
    }

    fn handles(&self, resource: &str) -> bool {
        resource.starts_with(OPTIMIZED) || resource.starts_with(SDK)
    }

    fn region(&self) -> String {
        self.rt
            .upgrade()
            .map(|rt| rt.config.region.clone())
            .unwrap_or_default()
    }

    async fn submit(&self, resource: &str, _: &Value) -> Result<Submitted, IntegrationFailure> {
        Err(failure(
            "States.Runtime",
            format!("'{resource}' needs its calling execution"),
        ))
    }

    async fn submit_call(
        &self,
        call: &CallContext<'_>,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        if call.resource.starts_with(SDK) {
            let action = match Resource::parse(call.resource) {
                Resource::Service { action, .. } => action,
                other => other.arn().to_string(),
            };
            let action = action.strip_prefix("sfn:").unwrap_or(&action);
            let output = self.sdk(call, action, parameters).await?;
            return Ok(Submitted {
                handle: String::new(),
                output,
            });
        }
        let info = self
            .start(call, parameters)
            .await
            .map_err(optimized_error)?;
        Ok(Submitted {
            handle: info.execution_arn.clone(),
            output: start_answer(&info),
        })
    }

    async fn wait(&self, resource: &str, handle: &str) -> Result<Value, IntegrationFailure> {
        let json_values = matches!(
            Resource::parse(resource),
            Resource::Service {
                pattern: Pattern::Sync2,
                ..
            }
        );
        loop {
            let engine = self.engine()?;
            let id = self.child_id(&engine, handle).await?;
            // Subscribed before reading the status: an end in between is not missed.
            let ended = engine.rt.when_ended(id);
            let info = self.describe_child(&engine, handle).await?;
            if info.status != "RUNNING" {
                drop(ended);
                engine.rt.forget_gone_waiters(id);
                return sync_result(&info, json_values);
            }
            drop(engine);
            // The sender goes only when the engine halts (this task is then dropped too).
            if ended.await.is_err() {
                std::future::pending::<()>().await;
            }
            let engine = self.engine()?;
            let info = self.describe_child(&engine, handle).await?;
            if info.status != "RUNNING" {
                return sync_result(&info, json_values);
            }
        }
    }

    async fn cancel(&self, handle: &str, reason: &str) -> Result<(), IntegrationFailure> {
        let engine = self.engine()?;
        match engine
            .stop_execution(
                handle,
                None,
                Some(&format!("the parent execution {reason}")),
            )
            .await
        {
            Ok(_) | Err(EngineError::ExecutionDoesNotExist(_)) => Ok(()),
            Err(e) => Err(optimized_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_come_from_the_call_key() {
        let a = default_name("0123456789abcdef0123456789abcdef");
        assert_eq!(a, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(a, default_name("0123456789abcdef0123456789abcdef"));
        assert_ne!(a, default_name("f123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn inputs_are_text_values_or_an_empty_object() {
        assert_eq!(child_input(&json!({})).ok().as_deref(), Some("{}"));
        assert_eq!(
            child_input(&json!({"Input": {"a": 1}})).ok().as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(
            child_input(&json!({"Input": "[1]"})).ok().as_deref(),
            Some("[1]")
        );
        assert!(child_input(&json!({"Input": "nope"})).is_err());
    }

    #[test]
    fn errors_are_named_as_step_functions_names_them() {
        let e = sdk_error(EngineError::InvalidToken(
            "Invalid Token: 'Invalid token'".into(),
        ));
        assert_eq!(e.error, "Sfn.InvalidTokenException");
        assert!(e.cause.starts_with(
            "Invalid Token: 'Invalid token' (Service: Sfn, Status Code: 400, Request ID: "
        ));
        assert!(e.cause.ends_with(") (SDK Attempt Count: 1)"));
        let e = optimized_error(EngineError::ExecutionAlreadyExists("x".into()));
        assert_eq!(e.error, "StepFunctions.ExecutionAlreadyExistsException");
    }
}
