//! The page of one workflow: its facts, its state machine drawn and coloured by job status, its
//! jobs with attempts and timings, input and output pretty-printed, links to what it retries
//! and what retried it, and the operator's actions (cancel with a reason, mark resolved, resume
//! from a chosen state with an optional input), each confirmed before it runs.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::Value;
use wfm_core::access::Role;
use wfm_core::model::{Job, Workflow, WorkflowStatus};

use super::layout::{self, badge, csrf_field, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

fn job_status(job: &Job) -> String {
    serde_json::to_value(job.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// JSON text pretty-printed, or as it is when it is not JSON.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

/// Milliseconds for people.
fn took_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn took(job: &Job) -> String {
    match (job.started_at, job.stopped_at) {
        (Some(a), Some(b)) => took_ms((b - a).num_milliseconds()),
        _ => String::new(),
    }
}

/// GET /ui/workflows/{id}.
pub async fn page(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<String>,
    pairs: QueryPairs,
) -> Response {
    match app.manager.store().get_workflow(&id).await {
        Ok(wf) => {
            let history = app
                .manager
                .execution_history(&wf, HISTORY_EVENTS)
                .await
                .unwrap_or_default();
            page_of(&frame, &wf, &history, &pairs).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            let body = html! { h1 { "Workflow" } p.problem role="alert" { (e.message) } a href="/ui/workflows" { "All workflows" } };
            (e.status, layout::page(&frame, "Workflow", None, body)).into_response()
        }
    }
}

/// The most history events a page shows.
const HISTORY_EVENTS: usize = 500;

/// The details object of an event (whatever its type), as compact JSON.
fn event_details(event: &wfm_asl::HistoryEvent) -> String {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    value
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventDetails")))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn page_of(
    frame: &Frame,
    wf: &Workflow,
    history: &[wfm_asl::HistoryEvent],
    pairs: &QueryPairs,
) -> Markup {
    let mut latest: HashMap<String, String> = HashMap::new();
    for job in &wf.jobs {
        latest.insert(job.state.clone(), job_status(job));
    }
    let machine =
        serde_json::to_value(&wf.workflow_definition.state_machine).unwrap_or(Value::Null);
    let state_names: Vec<String> = machine["States"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let terminal = matches!(
        wf.status,
        WorkflowStatus::Succeeded | WorkflowStatus::Failed | WorkflowStatus::Cancelled
    );
    let operator = frame.principal.role().includes(Role::Operator);
    let refresh = (!terminal).then_some(5);
    let body = html! {
        h1 { "Workflow " span.id style="font-family:ui-monospace,monospace;font-size:17px" { (wf.id) } " " (badge(wf.status.as_str())) }
        @if let Some(done) = pairs.get("done") {
            p.notice role="status" {
                (done)
                @if let Some(new) = pairs.get("new") { ": " a href={"/ui/workflows/" (new)} { (new) } }
            }
        }
        @if let Some(problem) = pairs.get("problem") { p.problem role="alert" { (problem) } }
        div.grid {
            section.card aria-labelledby="facts" {
                h2 id="facts" { "Facts" }
                dl.facts {
                    dt { "Definition" } dd { (wf.workflow_definition.name) " version " (wf.workflow_definition.version) }
                    dt { "Namespace" } dd { (wf.namespace) }
                    dt { "Queue" } dd { (wf.queue) }
                    dt { "Created" } dd { (wf.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC")) }
                    @if let Some(s) = wf.stopped_at { dt { "Stopped" } dd { (s.format("%Y-%m-%d %H:%M:%S%.3f UTC")) " (after " (took_between(wf)) ")" } }
                    dt { "Resolved" } dd { @if wf.resolved_by_user { "yes" } @else { "no" } }
                    dt { "Tags" } dd { @for (k, v) in &wf.tags { code { (k) "=" (v) } " " } }
                    @if let Some(r) = &wf.retry_for { dt { "Retry of" } dd { a href={"/ui/workflows/" (r)} { (r) } } }
                    @if !wf.retries.is_empty() {
                        dt { "Retried as" } dd { @for r in &wf.retries { a href={"/ui/workflows/" (r)} { (r) } " " } }
                    }
                    @if let Some(p) = &wf.parent_workflow_id { dt { "Started by" } dd { a href={"/ui/workflows/" (p)} { (p) } } }
                    @if !wf.child_workflow_ids.is_empty() {
                        dt { "Child workflows" } dd { @for c in &wf.child_workflow_ids { a href={"/ui/workflows/" (c)} { (c) } " " } }
                    }
                    @if !wf.status_reason.is_empty() { dt { "Reason" } dd { (wf.status_reason) } }
                }
            }
            section.card aria-labelledby="graph" {
                h2 id="graph" { "State machine" }
                (super::graph::draw(&machine, &latest))
            }
        }
        @if operator {
            section.card aria-labelledby="actions" {
                h2 id="actions" { "Actions" }
                div.actions {
                    @if !terminal {
                        form method="post" action={"/ui/workflows/" (wf.id) "/cancel"} {
                            (csrf_field(frame))
                            label { "Reason " input name="reason" required placeholder="why"; }
                            label { input type="checkbox" name="confirm" value="yes" required; " I am sure" }
                            button.danger type="submit" { "Cancel workflow" }
                        }
                    }
                    @if !wf.resolved_by_user {
                        form method="post" action={"/ui/workflows/" (wf.id) "/resolve"} {
                            (csrf_field(frame))
                            label { input type="checkbox" name="confirm" value="yes" required; " I am sure" }
                            button.secondary type="submit" { "Mark resolved" }
                        }
                    }
                    @if terminal {
                        form method="post" action={"/ui/workflows/" (wf.id) "/resume"} {
                            (csrf_field(frame))
                            label { "From state "
                                select name="state" required {
                                    @for s in &state_names {
                                        option value=(s) selected[wf.last_job.as_ref().is_some_and(|j| &j.state == s)] { (s) }
                                    }
                                }
                            }
                            label { "Input (optional JSON) " textarea name="input" rows="1" cols="30" {} }
                            label { input type="checkbox" name="confirm" value="yes" required; " I am sure" }
                            button type="submit" { "Resume" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="jobs" {
            h2 id="jobs" { "Jobs" }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "State" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "Input / output" } } }
                    tbody {
                        @for job in &wf.jobs {
                            tr {
                                td { (job.state) }
                                td { (badge(&job_status(job))) @if !job.status_reason.is_empty() { div.muted { (job.status_reason) } } }
                                td {
                                    (job.attempts.len().max(1))
                                    @if !job.attempts.is_empty() {
                                        details {
                                            summary { "attempts" }
                                            ol {
                                                @for a in &job.attempts {
                                                    li {
                                                        (a.started_at.map(|t| t.format("%H:%M:%S%.3f").to_string()).unwrap_or_default())
                                                        @if let (Some(s), Some(e)) = (a.started_at, a.stopped_at) { " · " (took_ms((e - s).num_milliseconds())) }
                                                        @if !a.reason.is_empty() { " · " (a.reason) }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                                td { (job.started_at.map(|t| t.format("%H:%M:%S%.3f").to_string()).unwrap_or_default()) }
                                td { (took(job)) }
                                td { details { summary { "show" } pre { (pretty(&job.input)) } @if !job.output.is_empty() { pre { (pretty(&job.output)) } } } }
                            }
                        }
                        @if wf.jobs.is_empty() { tr { td colspan="6" .muted { "No state has run yet." } } }
                    }
                }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { "Execution history" }
            details {
                summary { (history.len()) " events" @if history.len() == HISTORY_EVENTS { " (the first " (HISTORY_EVENTS) ")" } }
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "ID" } th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Details" } } }
                        tbody {
                            @for e in history {
                                tr {
                                    td { (e.id) }
                                    td { (e.timestamp.format("%H:%M:%S%.3f")) }
                                    td { (e.event_type) }
                                    td style="white-space:normal;font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere" { (event_details(e)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.grid {
            section aria-labelledby="input" { h2 id="input" { "Input" } pre { (pretty(&wf.input)) } }
            section aria-labelledby="output" { h2 id="output" { "Output" } pre { (if wf.output.is_empty() { "(none yet)".to_string() } else { pretty(&wf.output) }) } }
        }
    };
    layout::page(frame, &format!("Workflow {}", wf.id), refresh, body)
}

fn took_between(wf: &Workflow) -> String {
    wf.stopped_at
        .map(|s| took_ms((s - wf.created_at).num_milliseconds()))
        .unwrap_or_default()
}

/// Back to the workflow's page, saying what happened (or what went wrong).
fn back(id: &str, outcome: Result<(String, Option<String>), ApiError>) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    match outcome {
        Ok((done, new)) => {
            q.append_pair("done", &done);
            if let Some(n) = new {
                q.append_pair("new", &n);
            }
        }
        Err(e) => {
            q.append_pair("problem", &e.message);
        }
    }
    let path: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    Redirect::to(&format!("/ui/workflows/{path}?{}", q.finish())).into_response()
}

/// POST /ui/workflows/{id}/cancel.
pub async fn cancel(State(app): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let outcome = async {
        super::confirmed(&fields)?;
        let reason = fields.text("reason").trim();
        app.manager.cancel_workflow(&id, reason).await?;
        Ok((
            "Cancelling: the workflow stops at its current state".to_string(),
            None,
        ))
    }
    .await;
    back(&id, outcome)
}

/// POST /ui/workflows/{id}/resolve.
pub async fn resolve(State(app): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let outcome = async {
        super::confirmed(&fields)?;
        app.manager.resolve_workflow(&id).await?;
        Ok(("Marked resolved".to_string(), None))
    }
    .await;
    back(&id, outcome)
}

/// POST /ui/workflows/{id}/resume.
pub async fn resume(State(app): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let outcome = async {
        super::confirmed(&fields)?;
        let state = fields.text("state");
        let input = Some(fields.text("input").trim()).filter(|s| !s.is_empty());
        if let Some(text) = input {
            serde_json::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("input: not JSON: {e}")))?;
            crate::limits::check_payload("input", text)?;
        }
        let new = app.manager.retry_workflow(&id, state, input).await?;
        Ok((
            format!("Resumed from {state} as a new workflow"),
            Some(new.id),
        ))
    }
    .await;
    back(&id, outcome)
}
