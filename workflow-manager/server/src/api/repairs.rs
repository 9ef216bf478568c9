//! `/repairs` routes: bulk resume, resolve or cancel, as a dry run or a rate-limited job that
//! can be watched and stopped.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wfm_core::model::WorkflowStatus;
use wfm_core::repair::{RepairAction, RepairRequest};
use wfm_core::store::WorkflowQuery;

use super::body::JsonBody;
use super::error::ApiError;
use crate::app::AppState;
use crate::auth::audit::AuditTarget;
use axum::response::IntoResponse;
use axum::Extension;

/// Which workflows: the filters of GET /workflows, as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairFilter {
    #[serde(default)]
    workflow_definition_name: String,
    #[serde(default)]
    status: Vec<WorkflowStatus>,
    resolved_by_user: Option<bool>,
    created_after: Option<chrono::DateTime<chrono::Utc>>,
    created_before: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    namespace: Option<String>,
    queue: Option<String>,
}

/// Body of POST /repairs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairBody {
    action: RepairAction,
    filter: Option<RepairFilter>,
    #[serde(default)]
    workflow_ids: Vec<String>,
    start_at: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    dry_run: bool,
    limit: Option<usize>,
    rate_per_second: Option<f64>,
}

fn request(body: RepairBody) -> Result<(RepairRequest, bool), ApiError> {
    if body.filter.is_none() && body.workflow_ids.is_empty() {
        return Err(ApiError::bad_request(
            "filter or workflowIds: one is required",
        ));
    }
    let limit = body.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is out of range (1 to 10000)"
        )));
    }
    let rate = body.rate_per_second.unwrap_or(10.0);
    if !(rate > 0.0 && rate <= 1000.0) {
        return Err(ApiError::bad_request(format!(
            "ratePerSecond: {rate} is out of range (0 to 1000]"
        )));
    }
    let filter = body.filter.map(|f| WorkflowQuery {
        definition_name: f.workflow_definition_name,
        statuses: f.status,
        resolved_by_user: f.resolved_by_user,
        created_after: f.created_after,
        created_before: f.created_before,
        tags: f.tags.into_iter().collect(),
        namespace: f.namespace,
        queue: f.queue,
        oldest_first: true,
        limit,
        page_token: None,
    });
    Ok((
        RepairRequest {
            filter,
            workflow_ids: body.workflow_ids,
            action: body.action,
            start_at: body.start_at.filter(|s| !s.is_empty()),
            reason: body.reason,
            limit,
            rate_per_second: rate,
        },
        body.dry_run,
    ))
}

/// POST /repairs: a dry run (200, what would be done) or a job (202, its first report).
pub async fn start(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<RepairBody>,
) -> Result<axum::response::Response, ApiError> {
    let (req, dry_run) = request(body)?;
    if dry_run {
        let items = app.repairs.plan(&app.manager, &req).await?;
        return Ok((
            StatusCode::OK,
            Json(json!({"dryRun": true, "total": items.len(), "items": items})),
        )
            .into_response());
    }
    let id = app.repairs.start(app.manager.clone(), req).await?;
    let report = app
        .repairs
        .report(&id)
        .ok_or_else(|| ApiError::not_found(format!("repair {id}")))?;
    Ok((
        StatusCode::ACCEPTED,
        Extension(AuditTarget(id)),
        Json(json!(report)),
    )
        .into_response())
}

/// GET /repairs/{repairID}: progress and per-workflow results.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let report = app
        .repairs
        .report(&id)
        .ok_or_else(|| ApiError::not_found(format!("repair not found: {id}")))?;
    Ok(Json(json!(report)))
}

/// DELETE /repairs/{repairID}: stop after the workflow in hand.
pub async fn stop(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !app.repairs.stop(&id) {
        return Err(ApiError::not_found(format!("repair not found: {id}")));
    }
    Ok(Json(json!({})))
}
