//! The Step Functions JSON 1.0 wire protocol over the embedded engine, served under `/sfn` (and
//! `/sfn/`, which aws-sdk-sfn posts to): `X-Amz-Target: AWSStepFunctions.<Operation>`, bodies in
//! `application/x-amz-json-1.0`, errors as `{"__type": code, "message": ...}`. aws-sdk-sfn,
//! boto3 and the AWS CLI work against it by endpoint URL alone.
//!
//! With `--auth tokens`, requests must be signed (SigV4) by an access key the service issued,
//! and each operation is checked against the key's namespaces ([`crate::auth::sfn`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use wfm_engine::{EngineError, ExecutionInfo};

use crate::app::AppState;
use crate::auth::{self, policy, sfn::SfnRequest};
use wfm_core::access::AuditEntry;

mod catalog;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// A wire error: `__type` and message, with its HTTP status.
struct WireError {
    status: StatusCode,
    code: String,
    message: String,
}

impl WireError {
    fn client(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<EngineError> for WireError {
    fn from(e: EngineError) -> Self {
        let status = if e.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self {
            status,
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

fn respond(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        r.headers_mut().insert("x-amzn-requestid", id);
    }
    r
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        respond(
            self.status,
            json!({"__type": self.code, "message": self.message}),
        )
    }
}

fn epoch(t: DateTime<Utc>) -> Value {
    json!(t.timestamp_millis() as f64 / 1000.0)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        WireError::client(
            "ValidationException",
            format!("1 validation error detected: {e}"),
        )
    })
}

/// Routes of the protocol.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sfn", post(dispatch))
        .route("/sfn/", post(dispatch))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateActivity {
    name: String,
    #[serde(default)]
    tags: Vec<catalog::Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetActivityTask {
    activity_arn: String,
    worker_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskToken {
    task_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendTaskSuccess {
    task_token: String,
    output: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendTaskFailure {
    task_token: String,
    error: Option<String>,
    cause: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateStateMachine {
    name: String,
    definition: String,
    role_arn: String,
    #[serde(rename = "type")]
    machine_type: Option<String>,
    #[serde(default)]
    tags: Vec<catalog::Tag>,
    #[serde(default)]
    publish: bool,
    version_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateMachineArn {
    state_machine_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStateMachine {
    state_machine_arn: String,
    definition: Option<String>,
    role_arn: Option<String>,
    #[serde(default)]
    publish: bool,
    version_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecutions {
    state_machine_arn: String,
    status_filter: Option<String>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityArn {
    activity_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartExecution {
    state_machine_arn: String,
    name: Option<String>,
    input: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionArn {
    execution_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopExecution {
    execution_arn: String,
    error: Option<String>,
    cause: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetExecutionHistory {
    execution_arn: String,
    max_results: Option<usize>,
    next_token: Option<String>,
    #[serde(default)]
    reverse_order: bool,
    include_execution_data: Option<bool>,
}

/// Events without their input and output (`includeExecutionData: false`).
fn without_data(events: &mut Value) {
    let Some(list) = events.as_array_mut() else {
        return;
    };
    for e in list {
        let Some(fields) = e.as_object_mut() else {
            continue;
        };
        for (name, details) in fields.iter_mut() {
            if !name.ends_with("EventDetails") {
                continue;
            }
            if let Some(d) = details.as_object_mut() {
                d.remove("input");
                d.remove("output");
                d.remove("parameters");
            }
        }
    }
}

fn execution_json(e: &ExecutionInfo) -> Value {
    let mut v = json!({
        "executionArn": e.execution_arn,
        "stateMachineArn": e.state_machine_arn,
        "name": e.name,
        "status": e.status,
        "startDate": epoch(e.start_date),
        "input": e.input,
        "inputDetails": {"included": true},
    });
    if let Some(o) = &e.output {
        v["output"] = json!(o);
        v["outputDetails"] = json!({"included": true});
    }
    if let Some(s) = e.stop_date {
        v["stopDate"] = epoch(s);
    }
    if let Some(x) = &e.error {
        v["error"] = json!(x);
    }
    if let Some(x) = &e.cause {
        v["cause"] = json!(x);
    }
    v
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["nextToken"] = json!(t);
    }
    v
}

async fn dispatch(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return WireError {
                status: e.status(),
                code: "ValidationException".into(),
                message: format!("cannot read the request body: {e}"),
            }
            .into_response()
        }
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(operation) = target.strip_prefix("AWSStepFunctions.") else {
        return WireError::client(
            "UnknownOperationException",
            format!("missing or unknown X-Amz-Target '{target}'"),
        )
        .into_response();
    };
    let request = SfnRequest {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
        operation,
    };
    let key = match auth::sfn::authenticate(&app.auth, &request).await {
        Ok(key) => key,
        Err(e) => return refused(e),
    };
    let permitted = match &key {
        Some(k) => auth::sfn::permit(k, &request, &|t| app.engine.task_activity(t)),
        None => Ok(()),
    };
    let response = match permitted {
        Ok(()) => match handle(&app, operation, &body).await {
            Ok(v) => respond(StatusCode::OK, v),
            Err(e) => e.into_response(),
        },
        Err(e) => refused(e),
    };
    if policy::sfn_is_audited(operation) {
        let (actor, credential_id) = match &key {
            Some(k) => (k.name.clone(), Some(k.access_key_id.clone())),
            None => ("anonymous".to_string(), None),
        };
        auth::audit::record_entry(
            &app.auth,
            AuditEntry {
                seq: 0,
                at: Utc::now(),
                actor,
                credential_id,
                method: "sfn".into(),
                path: operation.to_string(),
                status: response.status().as_u16(),
                target: None,
            },
        )
        .await;
    }
    response
}

fn refused(e: auth::sfn::SfnAuthError) -> Response {
    WireError {
        status: e.status,
        code: e.code.into(),
        message: e.message,
    }
    .into_response()
}

/// Refuses a payload over Step Functions' 256 KiB, as its API does.
fn check_payload(field: &str, payload: &str) -> Result<(), WireError> {
    if payload.len() > crate::limits::MAX_PAYLOAD_BYTES {
        return Err(WireError::client(
            "ValidationException",
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {}",
                crate::limits::MAX_PAYLOAD_BYTES
            ),
        ));
    }
    Ok(())
}

/// With `publish`, publishes the state machine's current revision and adds its
/// `stateMachineVersionArn` to `answer` (CreateStateMachine's and UpdateStateMachine's).
async fn publish_if(
    engine: &wfm_engine::Engine,
    publish: bool,
    arn: &str,
    description: Option<&str>,
    mut answer: Value,
) -> Result<Value, WireError> {
    if publish {
        let version = engine
            .publish_state_machine_version(arn, None, description)
            .await?;
        answer["stateMachineVersionArn"] = json!(version.arn);
    }
    Ok(answer)
}

async fn handle(app: &AppState, operation: &str, body: &[u8]) -> Result<Value, WireError> {
    let engine = &app.engine;
    match operation {
        "CreateActivity" => {
            let r: CreateActivity = parse(body)?;
            let tags = catalog::pairs(r.tags);
            wfm_engine::catalog::check_tags(&tags)?;
            let (arn, created) = engine.create_activity(&r.name)?;
            if !tags.is_empty() {
                engine.tag_resource(&arn, tags).await?;
            }
            Ok(json!({"activityArn": arn, "creationDate": epoch(created)}))
        }
        "GetActivityTask" => {
            let r: GetActivityTask = parse(body)?;
            let wait = app.activity_poll_wait;
            match engine
                .get_activity_task(&r.activity_arn, r.worker_name.as_deref(), wait)
                .await?
            {
                Some(t) => Ok(json!({"taskToken": t.task_token, "input": t.input})),
                None => Ok(json!({})),
            }
        }
        "SendTaskSuccess" => {
            let r: SendTaskSuccess = parse(body)?;
            check_payload("output", &r.output)?;
            engine.send_task_success(&r.task_token, &r.output).await?;
            Ok(json!({}))
        }
        "SendTaskFailure" => {
            let r: SendTaskFailure = parse(body)?;
            engine
                .send_task_failure(&r.task_token, r.error.as_deref(), r.cause.as_deref())
                .await?;
            Ok(json!({}))
        }
        "SendTaskHeartbeat" => {
            let r: TaskToken = parse(body)?;
            engine.send_task_heartbeat(&r.task_token).await?;
            Ok(json!({}))
        }
        "CreateStateMachine" => {
            let r: CreateStateMachine = parse(body)?;
            let tags = catalog::pairs(r.tags);
            wfm_engine::catalog::check_tags(&tags)?;
            let sm = engine.create_state_machine(
                &r.name,
                &r.definition,
                &r.role_arn,
                r.machine_type.as_deref().unwrap_or("STANDARD"),
            )?;
            if !tags.is_empty() {
                engine.tag_resource(&sm.arn, tags).await?;
            }
            let v = json!({"stateMachineArn": sm.arn, "creationDate": epoch(sm.created)});
            publish_if(
                engine,
                r.publish,
                &sm.arn,
                r.version_description.as_deref(),
                v,
            )
            .await
        }
        "DescribeStateMachine" => {
            let r: StateMachineArn = parse(body)?;
            let (sm, version) = engine
                .describe_qualified_state_machine(&r.state_machine_arn)
                .await?;
            let mut v = json!({
                "stateMachineArn": sm.arn, "name": sm.name, "status": "ACTIVE",
                "definition": sm.definition, "roleArn": sm.role_arn, "type": sm.machine_type,
                "creationDate": epoch(sm.created), "revisionId": sm.revision_id,
            });
            if let Some(ver) = version {
                v["creationDate"] = epoch(ver.created);
                if let Some(d) = ver.description {
                    v["description"] = json!(d);
                }
            }
            Ok(v)
        }
        "StartExecution" => {
            let r: StartExecution = parse(body)?;
            check_payload("input", r.input.as_deref().unwrap_or(""))?;
            let e = engine
                .start_execution(&r.state_machine_arn, r.name.as_deref(), r.input.as_deref())
                .await?;
            Ok(json!({"executionArn": e.execution_arn, "startDate": epoch(e.start_date)}))
        }
        "DescribeExecution" => {
            let r: ExecutionArn = parse(body)?;
            let mut v = execution_json(&engine.describe_execution(&r.execution_arn).await?);
            let q = engine.execution_qualifier(&r.execution_arn).await?;
            if let Some(a) = q.version_arn {
                v["stateMachineVersionArn"] = json!(a);
            }
            if let Some(a) = q.alias_arn {
                v["stateMachineAliasArn"] = json!(a);
            }
            Ok(v)
        }
        "StopExecution" => {
            let r: StopExecution = parse(body)?;
            let stopped = engine
                .stop_execution(&r.execution_arn, r.error.as_deref(), r.cause.as_deref())
                .await?;
            Ok(json!({"stopDate": epoch(stopped)}))
        }
        "GetExecutionHistory" => {
            let r: GetExecutionHistory = parse(body)?;
            let page = engine
                .get_execution_history(
                    &r.execution_arn,
                    r.max_results,
                    r.next_token.as_deref(),
                    r.reverse_order,
                )
                .await?;
            let mut v = json!({"events": page.events});
            if r.include_execution_data == Some(false) {
                without_data(&mut v["events"]);
            }
            if let Some(t) = page.next_token {
                v["nextToken"] = json!(t);
            }
            Ok(v)
        }
        "ListStateMachines" => {
            let r: Page = parse(body)?;
            let (machines, next) = engine
                .list_state_machines(r.max_results, r.next_token.as_deref())
                .await?;
            let items: Vec<Value> = machines
                .iter()
                .map(|m| json!({"stateMachineArn": m.arn, "name": m.name, "type": m.machine_type, "creationDate": epoch(m.created)}))
                .collect();
            Ok(with_token(json!({"stateMachines": items}), next))
        }
        "UpdateStateMachine" => {
            let r: UpdateStateMachine = parse(body)?;
            let updated = engine
                .update_state_machine(
                    &r.state_machine_arn,
                    r.definition.as_deref(),
                    r.role_arn.as_deref(),
                )
                .await?;
            let sm = engine.describe_state_machine(&r.state_machine_arn).await?;
            let v = json!({"updateDate": epoch(updated), "revisionId": sm.revision_id});
            publish_if(
                engine,
                r.publish,
                &sm.arn,
                r.version_description.as_deref(),
                v,
            )
            .await
        }
        "DeleteStateMachine" => {
            let r: StateMachineArn = parse(body)?;
            engine.delete_state_machine(&r.state_machine_arn).await?;
            Ok(json!({}))
        }
        "ListExecutions" => {
            let r: ListExecutions = parse(body)?;
            let (executions, next) = engine
                .list_executions(
                    &r.state_machine_arn,
                    r.status_filter.as_deref(),
                    r.max_results,
                    r.next_token.as_deref(),
                )
                .await?;
            let items: Vec<Value> = executions
                .iter()
                .map(|e| {
                    let mut v = json!({"executionArn": e.execution_arn, "stateMachineArn": e.state_machine_arn,
                        "name": e.name, "status": e.status, "startDate": epoch(e.start_date)});
                    if let Some(s) = e.stop_date {
                        v["stopDate"] = epoch(s);
                    }
                    v
                })
                .collect();
            Ok(with_token(json!({"executions": items}), next))
        }
        "StartSyncExecution" => {
            let r: StartExecution = parse(body)?;
            check_payload("input", r.input.as_deref().unwrap_or(""))?;
            let e = engine
                .start_sync_execution(&r.state_machine_arn, r.name.as_deref(), r.input.as_deref())
                .await?;
            Ok(execution_json(&e))
        }
        "DescribeActivity" => {
            let r: ActivityArn = parse(body)?;
            let (name, created) = engine.describe_activity(&r.activity_arn).await?;
            Ok(json!({"activityArn": r.activity_arn, "name": name, "creationDate": epoch(created)}))
        }
        "ListActivities" => {
            let r: Page = parse(body)?;
            let (activities, next) = engine
                .list_activities(r.max_results, r.next_token.as_deref())
                .await?;
            let items: Vec<Value> = activities
                .iter()
                .map(|a| json!({"activityArn": a.arn, "name": a.name, "creationDate": epoch(a.created)}))
                .collect();
            Ok(with_token(json!({"activities": items}), next))
        }
        "DeleteActivity" => {
            let r: ActivityArn = parse(body)?;
            engine.delete_activity(&r.activity_arn).await?;
            Ok(json!({}))
        }
        other => match catalog::handle(engine, other, body).await {
            Some(answer) => answer,
            None => Err(WireError::client(
                "UnknownOperationException",
                format!("the operation {other} is not supported by the embedded engine"),
            )),
        },
    }
}

/// Default long-poll wait of GetActivityTask, as in Step Functions.
pub const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(60);
