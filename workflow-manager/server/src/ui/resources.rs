//! State resources: the resources of each namespace (what a Task's short name stands for),
//! created, edited and deleted here.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use wfm_core::access::Role;
use wfm_core::model::NewStateResource;

use super::layout::{self, csrf_field, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

/// GET /ui/resources: `namespace` to show one namespace, `edit=NAMESPACE/NAME` to fill the form.
pub async fn page(State(app): State<AppState>, frame: Frame, pairs: QueryPairs) -> Response {
    let namespace = pairs.get("namespace").filter(|n| !n.is_empty());
    let resources = match app.manager.store().list_state_resources(namespace).await {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::from(e);
            return (
                e.status,
                layout::page(
                    &frame,
                    "Resources",
                    None,
                    html! { p.problem { (e.message) } },
                ),
            )
                .into_response();
        }
    };
    let editing = pairs
        .get("edit")
        .and_then(|e| e.split_once('/'))
        .and_then(|(ns, n)| resources.iter().find(|r| r.namespace == ns && r.name == n));
    let operator = frame.principal.role().includes(Role::Operator);
    let body = html! {
        h1 { "State resources" }
        @if let Some(done) = pairs.get("done") { p.notice role="status" { (done) } }
        @if let Some(problem) = pairs.get("problem") { p.problem role="alert" { (problem) } }
        form.card.filters method="get" action="/ui/resources" {
            label { "Namespace" input name="namespace" value=(namespace.unwrap_or("")); }
            button type="submit" { "Show" }
            a.button.secondary href="/ui/resources" { "All namespaces" }
        }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Namespace" } th scope="col" { "Name" } th scope="col" { "URI" } th scope="col" { "Type" } th scope="col" { "Updated" } @if operator { th scope="col" { "" } } } }
            tbody {
                @for r in &resources {
                    tr {
                        td { (r.namespace) } td { (r.name) } td.id { (r.uri) }
                        td { (r.resource_type.map(|t| format!("{t:?}")).unwrap_or_default()) }
                        td { (r.last_updated.format("%Y-%m-%d %H:%M")) }
                        @if operator {
                            td {
                                a href={"/ui/resources?edit=" (r.namespace) "/" (r.name)} { "Edit" }
                                form method="post" action="/ui/resources/delete" style="display:inline-flex;gap:6px;margin-left:12px" {
                                    (csrf_field(&frame))
                                    input type="hidden" name="namespace" value=(r.namespace);
                                    input type="hidden" name="name" value=(r.name);
                                    label { input type="checkbox" name="confirm" value="yes" required; " sure" }
                                    button.danger type="submit" aria-label={"Delete " (r.namespace) "/" (r.name)} { "Delete" }
                                }
                            }
                        }
                    }
                }
                @if resources.is_empty() { tr { td colspan="6" .muted { "No state resource." } } }
            }
        } }
        @if operator {
            section.card aria-labelledby="save" style="margin-top:14px" {
                h2 id="save" { @if editing.is_some() { "Edit" } @else { "Create or replace" } }
                form.filters method="post" action="/ui/resources" {
                    (csrf_field(&frame))
                    label { "Namespace" input name="namespace" required value=(editing.map(|r| r.namespace.as_str()).or(namespace).unwrap_or("")); }
                    label { "Name" input name="name" required value=(editing.map(|r| r.name.as_str()).unwrap_or("")); }
                    label { "URI (ARN)" input name="uri" required size="60" value=(editing.map(|r| r.uri.as_str()).unwrap_or("")); }
                    button type="submit" { "Save" }
                }
            }
        }
    };
    layout::page(&frame, "Resources", None, body).into_response()
}

fn back(namespace: &str, outcome: Result<String, ApiError>) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("namespace", namespace);
    match outcome {
        Ok(done) => q.append_pair("done", &done),
        Err(e) => q.append_pair("problem", &e.message),
    };
    Redirect::to(&format!("/ui/resources?{}", q.finish())).into_response()
}

/// POST /ui/resources: creates or replaces a resource.
pub async fn save(State(app): State<AppState>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let field = |k: &str| fields.text(k).trim().to_string();
    let req = NewStateResource {
        name: field("name"),
        namespace: field("namespace"),
        uri: field("uri"),
    };
    let key = format!("{}/{}", req.namespace, req.name);
    let namespace = req.namespace.clone();
    let outcome = crate::api::resources::save_resource(&app, req)
        .await
        .map(|_| format!("Saved {key}"));
    back(&namespace, outcome)
}

/// POST /ui/resources/delete.
pub async fn delete(State(app): State<AppState>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let field = |k: &str| fields.text(k).to_string();
    let (namespace, name) = (field("namespace"), field("name"));
    let outcome = async {
        if field("confirm") != "yes" {
            return Err(ApiError::bad_request("confirm: tick 'sure' to delete"));
        }
        app.manager
            .store()
            .delete_state_resource(&namespace, &name)
            .await?;
        Ok(format!("Deleted {namespace}/{name}"))
    }
    .await;
    back(&namespace, outcome)
}
