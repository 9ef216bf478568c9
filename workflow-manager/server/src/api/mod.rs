//! The REST API of `api-spec/openapi.yaml`: routing and thin handlers that parse, call the
//! manager or the store, and shape the answer. No business logic lives here.

pub mod access;
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
use crate::auth::policy::Access;
use crate::auth::{self, session};
use error::ApiError;
use wfm_core::access::Role;

/// Every (method, path) the API serves, in the spec's path syntax, with what it needs (see
/// [`crate::auth::policy`]). A test checks that this table, the router and
/// `api-spec/openapi.yaml` (paths and `x-required-role`) agree.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/_health", Access::Public),
    ("GET", "/login", Access::Public),
    ("POST", "/login", Access::Public),
    ("POST", "/logout", Access::Public),
    ("GET", "/session", Access::Role(Role::Reader)),
    ("GET", "/workflow-definitions", Access::Role(Role::Reader)),
    ("POST", "/workflow-definitions", Access::Role(Role::Admin)),
    (
        "GET",
        "/workflow-definitions/{name}",
        Access::Role(Role::Reader),
    ),
    (
        "PUT",
        "/workflow-definitions/{name}",
        Access::Role(Role::Admin),
    ),
    (
        "GET",
        "/workflow-definitions/{name}/{version}",
        Access::Role(Role::Reader),
    ),
    ("GET", "/workflows", Access::Role(Role::Reader)),
    ("GET", "/workflow-counts", Access::Role(Role::Reader)),
    ("POST", "/workflows", Access::Role(Role::Submitter)),
    ("GET", "/workflows/{workflowID}", Access::Role(Role::Reader)),
    (
        "DELETE",
        "/workflows/{workflowID}",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/workflows/{workflowID}",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/workflows/{workflowID}/resolved",
        Access::Role(Role::Operator),
    ),
    ("POST", "/repairs", Access::Role(Role::Operator)),
    ("GET", "/repairs/{repairID}", Access::Role(Role::Reader)),
    (
        "DELETE",
        "/repairs/{repairID}",
        Access::Role(Role::Operator),
    ),
    ("POST", "/state-resources", Access::Role(Role::Operator)),
    (
        "GET",
        "/state-resources/{namespace}/{name}",
        Access::Role(Role::Reader),
    ),
    (
        "PUT",
        "/state-resources/{namespace}/{name}",
        Access::Role(Role::Operator),
    ),
    (
        "DELETE",
        "/state-resources/{namespace}/{name}",
        Access::Role(Role::Operator),
    ),
    ("GET", "/tokens", Access::Role(Role::Admin)),
    ("POST", "/tokens", Access::Role(Role::Admin)),
    ("DELETE", "/tokens/{tokenID}", Access::Role(Role::Admin)),
    ("GET", "/access-keys", Access::Role(Role::Admin)),
    ("POST", "/access-keys", Access::Role(Role::Admin)),
    (
        "DELETE",
        "/access-keys/{accessKeyID}",
        Access::Role(Role::Admin),
    ),
    ("GET", "/audit-log", Access::Role(Role::Admin)),
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
pub fn router(state: AppState) -> Router<AppState> {
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
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/session", get(session::whoami))
        .route(
            "/tokens",
            get(access::list_tokens).post(access::create_token),
        )
        .route(
            "/tokens/{tokenID}",
            axum::routing::delete(access::revoke_token),
        )
        .route(
            "/access-keys",
            get(access::list_access_keys).post(access::create_access_key),
        )
        .route(
            "/access-keys/{accessKeyID}",
            axum::routing::delete(access::revoke_access_key),
        )
        .route("/audit-log", get(access::audit_log))
        .merge(crate::ui::router())
        .route_layer(axum::middleware::from_fn_with_state(state, auth::gate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
