//! `/workflows` routes: start, list (with `X-Next-Page-Path` paging), get, cancel, resume from
//! a state, resolve.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde_json::Value;
use wfm_core::model::{StartWorkflowRequest, Workflow, WorkflowStatus};
use wfm_core::store::WorkflowQuery;

use super::body::{JsonBody, QueryPairs};
use super::error::ApiError;
use crate::app::AppState;
use crate::auth::audit::AuditTarget;
use crate::limits;
use axum::Extension;

/// Default and largest page sizes of GET /workflows.
pub const DEFAULT_LIMIT: i64 = 10;
/// The largest page size.
pub const MAX_LIMIT: i64 = 10_000;

/// POST /workflows: start a workflow.
pub async fn start(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<StartWorkflowRequest>,
) -> Result<(Extension<AuditTarget>, Json<Workflow>), ApiError> {
    limits::check_payload("input", &req.input)?;
    limits::check_tags("tags", &req.tags)?;
    // A start is finished even when the client goes away meanwhile: cut short between
    // storing the workflow and starting its execution, it would leave a workflow that never runs.
    let manager = app.manager.clone();
    let wf = tokio::spawn(async move { manager.create_workflow(&req).await })
        .await
        .map_err(|e| {
            ApiError::from(wfm_core::manager::ManagerError::Internal(format!(
                "the start was interrupted: {e}"
            )))
        })??;
    Ok((Extension(AuditTarget(wf.id.clone())), Json(wf)))
}

fn timestamp(
    pairs: &QueryPairs,
    key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match pairs.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                ApiError::bad_request(format!("{key}: '{v}' is not an RFC 3339 timestamp"))
            }),
    }
}

/// The filters of GET /workflows and GET /workflow-counts (paging aside).
pub(crate) fn filters_from(pairs: &QueryPairs) -> Result<WorkflowQuery, ApiError> {
    let mut statuses = Vec::new();
    for value in pairs.all("status") {
        for s in value.split(',').filter(|s| !s.is_empty()) {
            statuses.push(WorkflowStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: '{s}' is not a workflow status (queued, running, failed, succeeded, cancelled)"
                ))
            })?);
        }
    }
    let tags: Vec<(String, String)> = pairs
        .0
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("tag.")
                .map(|key| (key.to_string(), v.clone()))
        })
        .collect();
    if let Some((k, _)) = tags.iter().find(|(k, _)| k.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "tag.{k}: a tag filter needs a key (tag.KEY=VALUE)"
        )));
    }
    let text = |key: &str| pairs.get(key).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(WorkflowQuery {
        definition_name: text("workflowDefinitionName").unwrap_or_default(),
        statuses,
        resolved_by_user: pairs.bool("resolvedByUser")?,
        created_after: timestamp(pairs, "createdAfter")?,
        created_before: timestamp(pairs, "createdBefore")?,
        tags,
        namespace: text("namespace"),
        queue: text("queue"),
        oldest_first: pairs.bool("oldestFirst")?.unwrap_or(false),
        limit: DEFAULT_LIMIT as usize,
        page_token: text("pageToken"),
    })
}

pub(crate) fn query_from(pairs: &QueryPairs) -> Result<(WorkflowQuery, bool), ApiError> {
    let limit = pairs.int("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is out of range (1 to {MAX_LIMIT})"
        )));
    }
    let query = WorkflowQuery {
        limit: limit as usize,
        ..filters_from(pairs)?
    };
    Ok((query, pairs.bool("summaryOnly")?.unwrap_or(false)))
}

/// GET /workflow-counts: how many workflows match the filters, per status (every status
/// present, zero when none).
pub async fn counts(
    State(app): State<AppState>,
    pairs: QueryPairs,
) -> Result<Json<serde_json::Map<String, Value>>, ApiError> {
    let query = filters_from(&pairs)?;
    let counts = app.manager.store().count_workflows(&query).await?;
    let mut out = serde_json::Map::new();
    for status in [
        WorkflowStatus::Queued,
        WorkflowStatus::Running,
        WorkflowStatus::Failed,
        WorkflowStatus::Succeeded,
        WorkflowStatus::Cancelled,
    ] {
        out.insert(
            status.as_str().to_string(),
            Value::from(counts.get(&status).copied().unwrap_or(0)),
        );
    }
    Ok(Json(out))
}

/// A workflow without its definition's state machine, jobs and output.
fn summary(wf: &Workflow) -> Value {
    let mut v = serde_json::to_value(wf).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("jobs");
        o.remove("output");
        if let Some(Value::Object(def)) = o.get_mut("workflowDefinition") {
            def.remove("stateMachine");
            def.remove("defaultTags");
        }
    }
    v
}

/// GET /workflows: a page of one definition's workflows, newest first unless `oldestFirst`.
/// When more rows exist, `X-Next-Page-Path` holds the path of the next page.
pub async fn list(
    State(app): State<AppState>,
    pairs: QueryPairs,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let (query, summary_only) = query_from(&pairs)?;
    let page = app.manager.store().list_workflows(&query).await?;
    let mut headers = HeaderMap::new();
    if let Some(token) = &page.next_page_token {
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.0.iter().filter(|(k, _)| k != "pageToken") {
            next.append_pair(k, v);
        }
        next.append_pair("pageToken", token);
        let path = format!("/workflows?{}", next.finish());
        if let Ok(value) = HeaderValue::from_str(&path) {
            headers.insert("X-Next-Page-Path", value);
        }
    }
    let body = page
        .workflows
        .iter()
        .map(|wf| {
            if summary_only {
                summary(wf)
            } else {
                serde_json::to_value(wf).unwrap_or(Value::Null)
            }
        })
        .collect();
    Ok((headers, Json(body)))
}

/// GET /workflows/{workflowID}.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(app.manager.store().get_workflow(&id).await?))
}

/// Body of DELETE /workflows/{workflowID}.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelReason {
    /// Why (recorded as the status reason).
    #[serde(default)]
    pub reason: String,
}

/// DELETE /workflows/{workflowID}: cancel.
pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let reason: CancelReason = if body.iter().all(u8::is_ascii_whitespace) {
        CancelReason::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?
    };
    app.manager.cancel_workflow(&id, &reason.reason).await?;
    Ok(StatusCode::OK)
}

/// Body of POST /workflows/{workflowID}.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// The state to resume from.
    #[serde(rename = "StartAt", default)]
    pub start_at: String,
    /// Extension: the input to resume with (a JSON object as text) instead of the input the
    /// job at StartAt received.
    #[serde(default)]
    pub input: Option<String>,
}

/// POST /workflows/{workflowID}: resume from a state, as a new workflow.
pub async fn resume(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ResumeRequest>,
) -> Result<(Extension<AuditTarget>, Json<Workflow>), ApiError> {
    if let Some(input) = &req.input {
        limits::check_payload("input", input)?;
    }
    let wf = app
        .manager
        .retry_workflow(&id, &req.start_at, req.input.as_deref())
        .await?;
    Ok((Extension(AuditTarget(wf.id.clone())), Json(wf)))
}

/// POST /workflows/{workflowID}/resolved: mark resolved (409 when already).
pub async fn resolve(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.manager.resolve_workflow(&id).await?;
    Ok(StatusCode::CREATED)
}
