//! `/workflow-definitions` routes: thin handlers over the manager and the store.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use wfm_core::model::{NewWorkflowDefinitionRequest, WorkflowDefinition};

use super::body::{JsonBody, QueryPairs};
use super::error::ApiError;
use crate::app::AppState;
use crate::auth::audit::AuditTarget;
use crate::limits;
use axum::Extension;

/// A definition's size, state count and default tags, within [`limits`].
fn check_limits(req: &NewWorkflowDefinitionRequest) -> Result<(), ApiError> {
    if let Some(machine) = &req.state_machine {
        limits::check_state_machine("stateMachine", machine)?;
    }
    limits::check_tags("defaultTags", &req.default_tags)
}

/// GET /workflow-definitions: the latest version of every definition.
pub async fn list(State(app): State<AppState>) -> Result<Json<Vec<WorkflowDefinition>>, ApiError> {
    Ok(Json(
        app.manager.store().latest_workflow_definitions().await?,
    ))
}

/// POST /workflow-definitions: version 0 of a new definition.
pub async fn create(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<NewWorkflowDefinitionRequest>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<WorkflowDefinition>), ApiError> {
    check_limits(&req)?;
    made(app.manager.new_workflow_definition(&req).await?)
}

/// 201 with the version made, named for the audit log.
fn made(
    def: WorkflowDefinition,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<WorkflowDefinition>), ApiError> {
    let target = AuditTarget(format!("{}:{}", def.name, def.version));
    Ok((StatusCode::CREATED, Extension(target), Json(def)))
}

/// GET /workflow-definitions/{name}: the latest version, or all with `latest=false`.
pub async fn versions(
    State(app): State<AppState>,
    Path(name): Path<String>,
    query: QueryPairs,
) -> Result<Json<Vec<WorkflowDefinition>>, ApiError> {
    let store = app.manager.store();
    if query.bool("latest")?.unwrap_or(true) {
        Ok(Json(vec![store.latest_workflow_definition(&name).await?]))
    } else {
        Ok(Json(store.workflow_definition_versions(&name).await?))
    }
}

/// PUT /workflow-definitions/{name}: the next version.
pub async fn update(
    State(app): State<AppState>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<NewWorkflowDefinitionRequest>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<WorkflowDefinition>), ApiError> {
    check_limits(&req)?;
    made(app.manager.update_workflow_definition(&name, &req).await?)
}

/// GET /workflow-definitions/{name}/{version}.
pub async fn get(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<WorkflowDefinition>, ApiError> {
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version: '{version}' is not an integer")))?;
    Ok(Json(
        app.manager
            .store()
            .get_workflow_definition(&name, version)
            .await?,
    ))
}
