//! Manual Runs: start a workflow by hand (definition and version, namespace, queue, tags, and
//! an input checked as JSON in the browser before it is sent, and again by the server).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped};
use serde_json::{json, Value};
use wfm_core::access::Role;
use wfm_core::model::StartWorkflowRequest;

use super::layout::{self, csrf_field, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

/// Checks the input textarea as JSON while typing and before submitting (the server checks
/// again: this only saves a round trip).
const CHECK_INPUT: &str = r#"
(function () {
  var input = document.getElementById('input');
  var note = document.getElementById('input-note');
  function check() {
    try { var v = JSON.parse(input.value || '{}');
      if (v === null || typeof v !== 'object' || Array.isArray(v)) { throw new Error('the input must be a JSON object'); }
      input.setCustomValidity(''); note.textContent = '';
    } catch (e) { input.setCustomValidity(e.message); note.textContent = 'Not valid: ' + e.message; }
  }
  input.addEventListener('input', check); check();
})();
"#;

async fn form_page(
    app: &AppState,
    frame: &Frame,
    values: &QueryPairs,
    problem: Option<&str>,
) -> Markup {
    let mut names: Vec<String> = app
        .manager
        .store()
        .latest_workflow_definitions()
        .await
        .map(|defs| defs.into_iter().map(|d| d.name).collect())
        .unwrap_or_default();
    names.sort();
    let value = |k: &str| values.text(k).to_string();
    let allowed = frame.principal.role().includes(Role::Submitter);
    html! {
        h1 { "Manual run" }
        @if let Some(p) = problem { p.problem role="alert" { (p) } }
        @if !allowed { p.muted { "Starting workflows needs the submitter role." } }
        form.card method="post" action="/ui/runs" {
            (csrf_field(frame))
            div.filters {
                label { "Definition"
                    select name="definition" required {
                        @for n in &names { option value=(n) selected[*n == value("definition")] { (n) } }
                    }
                }
                label { "Version" input type="number" name="version" min="0" placeholder="latest" value=(value("version")) size="6"; }
                label { "Namespace" input name="namespace" placeholder="default" value=(value("namespace")); }
                label { "Queue" input name="queue" placeholder="default" value=(value("queue")); }
                label { "Tags (KEY=VALUE per line)" textarea name="tags" rows="2" cols="24" { (value("tags")) } }
            }
            label style="display:block;margin-top:10px" for="input" { "Input (a JSON object)" }
            textarea id="input" name="input" rows="8" style="width:100%;font-family:ui-monospace,monospace" { (if value("input").is_empty() { "{}".to_string() } else { value("input") }) }
            p id="input-note" .muted role="status" aria-live="polite" {}
            button type="submit" disabled[!allowed] { "Start" }
        }
        script { (PreEscaped(CHECK_INPUT)) }
    }
}

/// GET /ui/runs.
pub async fn page(State(app): State<AppState>, frame: Frame) -> Response {
    let body = form_page(&app, &frame, &QueryPairs(Vec::new()), None).await;
    layout::page(&frame, "Manual run", None, body).into_response()
}

fn request(fields: &QueryPairs) -> Result<StartWorkflowRequest, ApiError> {
    let text = |k: &str| fields.text(k).trim().to_string();
    let input = if text("input").is_empty() {
        "{}".to_string()
    } else {
        text("input")
    };
    serde_json::from_str::<Value>(&input)
        .map_err(|e| ApiError::bad_request(format!("input: not JSON: {e}")))?;
    crate::limits::check_payload("input", &input)?;
    let version: i64 = match text("version").as_str() {
        "" => -1,
        v => v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("version: '{v}' is not a number")))?,
    };
    let mut tags = serde_json::Map::new();
    for line in text("tags")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                tags.insert(k.trim().to_string(), json!(v.trim()));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "tags: '{line}' is not KEY=VALUE"
                )))
            }
        }
    }
    crate::limits::check_tags("tags", &tags)?;
    serde_json::from_value(json!({
        "workflowDefinition": {"name": text("definition"), "version": version},
        "input": input,
        "namespace": text("namespace"),
        "queue": text("queue"),
        "tags": tags,
    }))
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// POST /ui/runs: starts the workflow; on to its page.
pub async fn start(State(app): State<AppState>, frame: Frame, body: Bytes) -> Response {
    let fields = QueryPairs::from_form(&body);
    let outcome = match request(&fields) {
        Ok(req) => app
            .manager
            .create_workflow(&req)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(wf) => Redirect::to(&format!("/ui/workflows/{}?done=Started", wf.id)).into_response(),
        Err(e) => {
            let body = form_page(&app, &frame, &fields, Some(&e.message)).await;
            let status = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, layout::page(&frame, "Manual run", None, body)).into_response()
        }
    }
}
