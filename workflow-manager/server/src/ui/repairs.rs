//! The Repairs page: failed workflows nobody resolved or resumed, grouped by definition, the
//! state they failed in and the error; pick a group (or a definition), preview what a resume or resolve would do,
//! run it in bulk at a chosen rate, and watch its progress.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use wfm_core::access::Role;
use wfm_core::model::{Workflow, WorkflowStatus};
use wfm_core::repair::{RepairAction, RepairRequest};
use wfm_core::store::WorkflowQuery;

use super::layout::{self, badge, csrf_field, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

/// The most failed workflows a page groups.
const SCAN: usize = 5_000;

/// A group: definition, failed state, error name.
type GroupKey = (String, String, String);

/// The error name of a failed workflow: the last line of its last job's reason.
fn error_name(wf: &Workflow) -> String {
    wf.last_job
        .as_ref()
        .map(|j| {
            j.status_reason
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn failed_state(wf: &Workflow) -> String {
    wf.last_job
        .as_ref()
        .map(|j| j.state.clone())
        .unwrap_or_default()
}

/// Failed workflows nobody resolved or resumed, by group, newest first within each.
async fn groups(app: &AppState) -> Result<BTreeMap<GroupKey, Vec<Workflow>>, ApiError> {
    let page = app
        .manager
        .store()
        .list_workflows(&WorkflowQuery {
            statuses: vec![WorkflowStatus::Failed],
            resolved_by_user: Some(false),
            limit: SCAN,
            ..Default::default()
        })
        .await?;
    let mut groups: BTreeMap<GroupKey, Vec<Workflow>> = BTreeMap::new();
    // A workflow already resumed is in the hands of its retry.
    for wf in page.workflows.into_iter().filter(|w| w.retries.is_empty()) {
        let key = (
            wf.workflow_definition.name.clone(),
            failed_state(&wf),
            error_name(&wf),
        );
        groups.entry(key).or_default().push(wf);
    }
    Ok(groups)
}

/// The chosen group, from the fields `definition`, `state`, `error`.
fn chosen(fields: &QueryPairs) -> GroupKey {
    (
        fields.text("definition").to_string(),
        fields.text("state").to_string(),
        fields.text("error").to_string(),
    )
}

/// GET /ui/repairs: the groups, and a preview of the selected one (`?definition=&state=&error=`).
pub async fn page(State(app): State<AppState>, frame: Frame, pairs: QueryPairs) -> Response {
    match render(&app, &frame, &pairs).await {
        Ok(body) => layout::page(&frame, "Repairs", None, body).into_response(),
        Err(e) => (
            e.status,
            layout::page(
                &frame,
                "Repairs",
                None,
                html! { p.problem role="alert" { (e.message) } },
            ),
        )
            .into_response(),
    }
}

async fn render(app: &AppState, frame: &Frame, fields: &QueryPairs) -> Result<Markup, ApiError> {
    let groups = groups(app).await?;
    let selected = chosen(fields);
    let selection = groups.get(&selected);
    let operator = frame.principal.role().includes(Role::Operator);
    Ok(html! {
        h1 { "Repairs" }
        p.muted { "Failed workflows nobody has resolved or resumed, grouped by definition, the state they failed in and the error." }
        @if let Some(problem) = fields.get("problem") { p.problem role="alert" { (problem) } }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Definition" } th scope="col" { "Failed in" } th scope="col" { "Error" } th scope="col" { "Workflows" } th scope="col" { "Newest" } th scope="col" {} } }
                tbody {
                    @for ((definition, state, error), workflows) in &groups {
                        @let link = select_url(definition, state, error);
                        tr {
                            td { (definition) } td { (state) } td { code { (error) } }
                            td { (workflows.len()) }
                            td { (workflows.first().map(|w| w.created_at.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()) }
                            td { a href=(link) { "Select" } }
                        }
                    }
                    @if groups.is_empty() { tr { td colspan="6" .muted { "Nothing to repair: every failed workflow is resolved or resumed." } } }
                }
            }
        }
        @if let Some(workflows) = selection {
            section.card aria-labelledby="selected" style="margin-top:14px" {
                h2 id="selected" { (workflows.len()) " failed in " (selected.1) " of " (selected.0) " with " code { (selected.2) } }
                ul {
                    @for wf in workflows.iter().take(20) {
                        li { a href={"/ui/workflows/" (wf.id)} { (wf.id) } " " span.muted { (wf.created_at.format("%Y-%m-%d %H:%M:%S")) } }
                    }
                    @if workflows.len() > 20 { li.muted { "and " (workflows.len() - 20) " more" } }
                }
                @if operator {
                    form.actions method="post" action="/ui/repairs" {
                        (csrf_field(frame))
                        input type="hidden" name="definition" value=(selected.0);
                        input type="hidden" name="state" value=(selected.1);
                        input type="hidden" name="error" value=(selected.2);
                        label { "Action "
                            select name="action" {
                                option value="resume" { "Resume from the failed state" }
                                option value="resolve" { "Mark resolved" }
                            }
                        }
                        label { "Rate (per second) " input type="number" name="rate" value="5" min="0.1" max="100" step="0.1"; }
                        label { input type="checkbox" name="confirm" value="yes" required; " I am sure" }
                        button type="submit" { "Run on " (workflows.len()) " workflows" }
                    }
                }
            }
        }
    })
}

fn select_url(definition: &str, state: &str, error: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("definition", definition)
        .append_pair("state", state)
        .append_pair("error", error)
        .finish();
    format!("/ui/repairs?{q}")
}

/// POST /ui/repairs: runs the action on the chosen group; on to its progress.
pub async fn start(State(app): State<AppState>, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let selected = chosen(&fields);
    let outcome = async {
        super::confirmed(&fields)?;
        let action = match fields.text("action") {
            "resume" => RepairAction::Resume,
            "resolve" => RepairAction::Resolve,
            other => {
                return Err(ApiError::bad_request(format!(
                    "action: '{other}' is not resume or resolve"
                )))
            }
        };
        let rate: f64 = fields.text("rate").parse().unwrap_or(5.0);
        if !(0.1..=100.0).contains(&rate) {
            return Err(ApiError::bad_request(
                "rate: between 0.1 and 100 per second",
            ));
        }
        let ids: Vec<String> = groups(&app)
            .await?
            .remove(&selected)
            .ok_or_else(|| {
                ApiError::not_found("no failed, unresolved workflow is left in that group")
            })?
            .into_iter()
            .map(|w| w.id)
            .collect();
        let request = RepairRequest {
            filter: None,
            limit: ids.len(),
            workflow_ids: ids,
            action,
            start_at: None,
            reason: String::new(),
            rate_per_second: rate,
        };
        Ok(app.repairs.start(app.manager.clone(), request).await?)
    }
    .await;
    match outcome {
        Ok(id) => Redirect::to(&format!("/ui/repairs/{id}")).into_response(),
        Err(e) => {
            let mut url = select_url(&selected.0, &selected.1, &selected.2);
            url.push_str("&problem=");
            url.extend(form_urlencoded::byte_serialize(e.message.as_bytes()));
            Redirect::to(&url).into_response()
        }
    }
}

/// GET /ui/repairs/{id}: the progress of a bulk repair (refreshing while it runs).
pub async fn progress(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<String>,
) -> Response {
    let Some(report) = app.repairs.report(&id) else {
        let body = html! { h1 { "Repair" } p.problem role="alert" { "repair not found: " (id) } };
        return (
            StatusCode::NOT_FOUND,
            layout::page(&frame, "Repair", None, body),
        )
            .into_response();
    };
    let running = report.state == "running";
    let action = match report.action {
        RepairAction::Resume => "resume",
        RepairAction::Resolve => "resolve",
        RepairAction::Cancel => "cancel",
    };
    let body = html! {
        h1 { "Repair " span.muted { (action) } " " (badge(report.state)) }
        p role="status" { (report.processed) " of " (report.total) " handled: " (report.done) " done, " (report.failed) " failed" }
        progress max=(report.total.max(1)) value=(report.processed) aria-label="Progress" {}
        div.table-wrap style="margin-top:12px" {
            table {
                thead { tr { th scope="col" { "Workflow" } th scope="col" { "Outcome" } th scope="col" { "New workflow" } } }
                tbody {
                    @for item in &report.items {
                        tr {
                            td.id { a href={"/ui/workflows/" (item.workflow_id)} { (item.workflow_id) } }
                            td {
                                @match (item.ok, &item.skip, &item.error) {
                                    (Some(true), _, _) => { (badge("succeeded")) }
                                    (Some(false), _, Some(e)) => { (badge("failed")) " " (e) }
                                    (_, Some(skip), _) => { span.muted { "skipped: " (skip) } }
                                    _ => { span.muted { "waiting" } }
                                }
                            }
                            td.id { @if let Some(new) = &item.new_workflow_id { a href={"/ui/workflows/" (new)} { (new) } } }
                        }
                    }
                }
            }
        }
        p { a href="/ui/repairs" { "Back to Repairs" } }
    };
    layout::page(&frame, "Repair", running.then_some(2), body).into_response()
}
