//! `/state-resources` routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use wfm_core::model::{NewStateResource, StateResource, StateResourceType};

use super::body::JsonBody;
use super::error::ApiError;
use crate::app::AppState;

fn check(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field}: required")));
    }
    if value.len() > 128 || value.contains('/') {
        return Err(ApiError::bad_request(format!(
            "{field}: '{value}' must be 1 to 128 characters without '/'"
        )));
    }
    Ok(())
}

async fn save(
    app: &AppState,
    req: NewStateResource,
) -> Result<(StatusCode, Json<StateResource>), ApiError> {
    Ok((StatusCode::CREATED, Json(save_resource(app, req).await?)))
}

/// Checks and stores a state resource (the API and the UI both save through here).
pub(crate) async fn save_resource(
    app: &AppState,
    req: NewStateResource,
) -> Result<StateResource, ApiError> {
    check("name", &req.name)?;
    check("namespace", &req.namespace)?;
    if req.uri.is_empty() {
        return Err(ApiError::bad_request("uri: required"));
    }
    let resource_type = if req.uri.contains(":job-definition/") {
        Some(StateResourceType::JobDefinitionARN)
    } else if req.uri.contains(":activity:") {
        Some(StateResourceType::ActivityARN)
    } else if req.uri.contains(":function:") {
        Some(StateResourceType::LambdaFunctionARN)
    } else {
        None
    };
    let resource = StateResource {
        name: req.name,
        namespace: req.namespace,
        uri: req.uri,
        last_updated: Utc::now(),
        resource_type,
    };
    app.manager.store().save_state_resource(&resource).await?;
    Ok(resource)
}

/// POST /state-resources.
pub async fn post(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<NewStateResource>,
) -> Result<(StatusCode, Json<StateResource>), ApiError> {
    save(&app, req).await
}

/// PUT /state-resources/{namespace}/{name}.
pub async fn put(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(mut req): JsonBody<NewStateResource>,
) -> Result<(StatusCode, Json<StateResource>), ApiError> {
    for (field, given, path) in [
        ("name", &mut req.name, &name),
        ("namespace", &mut req.namespace, &namespace),
    ] {
        if given.is_empty() {
            *given = path.clone();
        } else if given != path {
            return Err(ApiError::bad_request(format!(
                "{field}: '{given}' does not match the path's '{path}'"
            )));
        }
    }
    save(&app, req).await
}

/// GET /state-resources/{namespace}/{name}.
pub async fn get(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<StateResource>, ApiError> {
    Ok(Json(
        app.manager
            .store()
            .get_state_resource(&namespace, &name)
            .await?,
    ))
}

/// DELETE /state-resources/{namespace}/{name}.
pub async fn delete(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    app.manager
        .store()
        .delete_state_resource(&namespace, &name)
        .await?;
    Ok(Json(json!({})))
}
