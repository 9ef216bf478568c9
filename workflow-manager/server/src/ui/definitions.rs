//! Definitions: every definition with its latest version; one definition's versions, the graph
//! of the chosen version, its ASL, and the line diff between two versions.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{self, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

/// GET /ui/definitions.
pub async fn list(State(app): State<AppState>, frame: Frame) -> Response {
    match app.manager.store().latest_workflow_definitions().await {
        Ok(mut defs) => {
            defs.sort_by(|a, b| a.name.cmp(&b.name));
            let body = html! {
                h1 { "Definitions" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Latest version" } th scope="col" { "States" } th scope="col" { "Created" } } }
                    tbody {
                        @for d in &defs {
                            tr {
                                td { a href={"/ui/definitions/" (d.name)} { (d.name) } }
                                td { (d.version) }
                                td { (d.state_machine.states.len()) }
                                td { (d.created_at.format("%Y-%m-%d %H:%M")) }
                            }
                        }
                        @if defs.is_empty() { tr { td colspan="4" .muted { "No definition yet." } } }
                    }
                } }
            };
            layout::page(&frame, "Definitions", None, body).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            (
                e.status,
                layout::page(
                    &frame,
                    "Definitions",
                    None,
                    html! { p.problem { (e.message) } },
                ),
            )
                .into_response()
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn diff(old: &str, new: &str) -> Markup {
    let diff = similar::TextDiff::from_lines(old, new);
    html! {
        pre.diff {
            @for change in diff.iter_all_changes() {
                @match change.tag() {
                    similar::ChangeTag::Delete => { span style="color:#ff9b9b" { "-" (change.value()) } }
                    similar::ChangeTag::Insert => { span style="color:#8ee59b" { "+" (change.value()) } }
                    similar::ChangeTag::Equal => { " " (change.value()) }
                }
            }
        }
    }
}

/// GET /ui/definitions/{name}: `version` to show (default latest), `diff` to compare with.
pub async fn show(
    State(app): State<AppState>,
    frame: Frame,
    Path(name): Path<String>,
    pairs: QueryPairs,
) -> Response {
    match render(&app, &frame, &name, &pairs).await {
        Ok(body) => layout::page(&frame, &name, None, body).into_response(),
        Err(e) => (
            e.status,
            layout::page(
                &frame,
                "Definition",
                None,
                html! { h1 { "Definition" } p.problem role="alert" { (e.message) } },
            ),
        )
            .into_response(),
    }
}

async fn render(
    app: &AppState,
    _frame: &Frame,
    name: &str,
    pairs: &QueryPairs,
) -> Result<Markup, ApiError> {
    let versions = app
        .manager
        .store()
        .workflow_definition_versions(name)
        .await?;
    let version = pairs.int("version")?;
    let shown = match version {
        Some(v) => versions
            .iter()
            .find(|d| d.version == v)
            .ok_or_else(|| ApiError::not_found(format!("version {v} of {name} does not exist")))?,
        None => versions
            .first()
            .ok_or_else(|| ApiError::not_found(format!("no version of {name}")))?,
    };
    let compared =
        match pairs.int("diff")? {
            Some(v) => Some(versions.iter().find(|d| d.version == v).ok_or_else(|| {
                ApiError::not_found(format!("version {v} of {name} does not exist"))
            })?),
            None => None,
        };
    let machine = serde_json::to_value(&shown.state_machine).unwrap_or(Value::Null);
    Ok(html! {
        h1 { (name) " " span.muted { "version " (shown.version) } }
        div.grid {
            section.card aria-labelledby="versions" {
                h2 id="versions" { "Versions" }
                ul {
                    @for d in &versions {
                        li {
                            @if d.version == shown.version { strong { "version " (d.version) } } @else { a href={"/ui/definitions/" (name) "?version=" (d.version)} { "version " (d.version) } }
                            " " span.muted { (d.created_at.format("%Y-%m-%d %H:%M")) }
                        }
                    }
                }
                @if versions.len() > 1 {
                    form method="get" action={"/ui/definitions/" (name)} {
                        input type="hidden" name="version" value=(shown.version);
                        label { "Compare with "
                            select name="diff" {
                                @for d in versions.iter().filter(|d| d.version != shown.version) {
                                    option value=(d.version) selected[compared.is_some_and(|c| c.version == d.version)] { "version " (d.version) }
                                }
                            }
                        }
                        " " button type="submit" { "Diff" }
                    }
                }
            }
            section.card aria-labelledby="graph" {
                h2 id="graph" { "State machine" }
                (super::graph::draw(&machine, &HashMap::new()))
            }
        }
        @if let Some(other) = compared {
            section aria-labelledby="diff" {
                h2 id="diff" { "From version " (other.version) " to version " (shown.version) }
                (diff(&pretty(&serde_json::to_value(&other.state_machine).unwrap_or(Value::Null)), &pretty(&machine)))
            }
        }
        section aria-labelledby="asl" {
            h2 id="asl" { "Amazon States Language" }
            pre { (pretty(&machine)) }
        }
    })
}
