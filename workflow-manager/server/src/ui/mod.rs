//! The operator web UI: server-rendered pages (maud), served by the same binary under `/ui`,
//! behind the same access control as the API (sign in through `/login`; form posts carry the
//! session's CSRF token). Pages read through the manager and the store, as the API does; no
//! JavaScript is needed to use them.

pub mod definitions;
pub mod graph;
pub mod layout;
pub mod repairs;
pub mod resources;
pub mod runs;
pub mod workflow;
pub mod workflows;

use axum::extract::Request;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use wfm_core::access::Role;

use crate::app::AppState;
use crate::auth::policy::Access;

/// Every (method, path) of the UI with what it needs; the access control reads it beside
/// [`crate::api::ROUTES`], and the role test calls each with every role.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/", Access::Public),
    ("GET", "/ui/workflows", Access::Role(Role::Reader)),
    (
        "GET",
        "/ui/workflows/{workflowID}",
        Access::Role(Role::Reader),
    ),
    (
        "POST",
        "/ui/workflows/{workflowID}/cancel",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/ui/workflows/{workflowID}/resolve",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/ui/workflows/{workflowID}/resume",
        Access::Role(Role::Operator),
    ),
    ("GET", "/ui/repairs", Access::Role(Role::Reader)),
    ("POST", "/ui/repairs", Access::Role(Role::Operator)),
    ("GET", "/ui/repairs/{repairID}", Access::Role(Role::Reader)),
    ("GET", "/ui/runs", Access::Role(Role::Reader)),
    ("POST", "/ui/runs", Access::Role(Role::Submitter)),
    ("GET", "/ui/definitions", Access::Role(Role::Reader)),
    ("GET", "/ui/definitions/{name}", Access::Role(Role::Reader)),
    ("GET", "/ui/resources", Access::Role(Role::Reader)),
    ("POST", "/ui/resources", Access::Role(Role::Operator)),
    ("POST", "/ui/resources/delete", Access::Role(Role::Operator)),
];

/// The UI's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/workflows") }))
        .route("/ui/workflows", get(workflows::page))
        .route("/ui/workflows/{workflowID}", get(workflow::page))
        .route("/ui/workflows/{workflowID}/cancel", post(workflow::cancel))
        .route(
            "/ui/workflows/{workflowID}/resolve",
            post(workflow::resolve),
        )
        .route("/ui/workflows/{workflowID}/resume", post(workflow::resume))
        .route("/ui/repairs", get(repairs::page).post(repairs::start))
        .route("/ui/runs", get(runs::page).post(runs::start))
        .route("/ui/resources", get(resources::page).post(resources::save))
        .route("/ui/resources/delete", post(resources::delete))
        .route("/ui/definitions", get(definitions::list))
        .route("/ui/definitions/{name}", get(definitions::show))
        .route("/ui/repairs/{repairID}", get(repairs::progress))
}

/// The "I am sure" tick every action form carries.
pub fn confirmed(fields: &crate::api::body::QueryPairs) -> Result<(), crate::api::error::ApiError> {
    match fields.get("confirm") {
        Some("yes") => Ok(()),
        _ => Err(crate::api::error::ApiError::bad_request(
            "confirm: tick 'I am sure' to go ahead",
        )),
    }
}

/// Whether a path is one of the UI's pages (an unauthenticated visit is sent to sign in).
pub fn is_page(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// Where an unauthenticated visit to `path` goes: the sign-in form, then back.
pub fn to_sign_in(request: &Request) -> Response {
    let back = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}
