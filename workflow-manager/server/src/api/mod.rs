//! The REST API of `api-spec/openapi.yaml`: routing and thin handlers that parse, call the
//! manager or the store, and shape the answer. No business logic lives here.

pub mod body;
pub mod definitions;
pub mod error;
pub mod repairs;
pub mod resources;
pub mod workflows;

use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::app::AppState;
use error::ApiError;

/// Every (method, path) the API serves, in the spec's path syntax. A test checks that this
/// table, the router and `api-spec/openapi.yaml` agree.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/_health"),
    ("GET", "/workflow-definitions"),
    ("POST", "/workflow-definitions"),
    ("GET", "/workflow-definitions/{name}"),
    ("PUT", "/workflow-definitions/{name}"),
    ("GET", "/workflow-definitions/{name}/{version}"),
    ("GET", "/workflows"),
    ("GET", "/workflow-counts"),
    ("POST", "/workflows"),
    ("GET", "/workflows/{workflowID}"),
    ("DELETE", "/workflows/{workflowID}"),
    ("POST", "/workflows/{workflowID}"),
    ("POST", "/workflows/{workflowID}/resolved"),
    ("POST", "/repairs"),
    ("GET", "/repairs/{repairID}"),
    ("DELETE", "/repairs/{repairID}"),
    ("POST", "/state-resources"),
    ("GET", "/state-resources/{namespace}/{name}"),
    ("PUT", "/state-resources/{namespace}/{name}"),
    ("DELETE", "/state-resources/{namespace}/{name}"),
];

async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this route".into(),
    }
}

/// The REST router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_health", get(health))
        .route(
            "/workflow-definitions",
            get(definitions::list).post(definitions::create),
        )
        .route(
            "/workflow-definitions/{name}",
            get(definitions::versions).put(definitions::update),
        )
        .route(
            "/workflow-definitions/{name}/{version}",
            get(definitions::get),
        )
        .route("/workflows", get(workflows::list).post(workflows::start))
        .route("/workflow-counts", get(workflows::counts))
        .route(
            "/workflows/{workflowID}",
            get(workflows::get)
                .delete(workflows::cancel)
                .post(workflows::resume),
        )
        .route("/workflows/{workflowID}/resolved", post(workflows::resolve))
        .route("/repairs", post(repairs::start))
        .route(
            "/repairs/{repairID}",
            get(repairs::get).delete(repairs::stop),
        )
        .route("/state-resources", post(resources::post))
        .route(
            "/state-resources/{namespace}/{name}",
            get(resources::get)
                .put(resources::put)
                .delete(resources::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
