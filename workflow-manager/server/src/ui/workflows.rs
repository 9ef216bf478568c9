//! The Workflows page: a table of workflows with the filters operators use (definition, status,
//! created date range, resolved, tags, namespace, queue), counts by status, paging, chosen tag
//! columns and auto-refresh. Everything is in the URL, so a view can be shared.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup};
use wfm_core::model::WorkflowStatus;
use wfm_core::store::WorkflowQuery;

use super::layout::{self, badge, Frame};
use crate::api::body::QueryPairs;
use crate::api::error::ApiError;
use crate::app::AppState;

const STATUSES: [WorkflowStatus; 5] = [
    WorkflowStatus::Queued,
    WorkflowStatus::Running,
    WorkflowStatus::Failed,
    WorkflowStatus::Succeeded,
    WorkflowStatus::Cancelled,
];

/// The page size.
const PAGE: usize = 50;

/// The filters of the page, as its URL carries them.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    definition: String,
    statuses: Vec<WorkflowStatus>,
    from: String,
    to: String,
    resolved: String,
    tags: Vec<(String, String)>,
    namespace: String,
    queue: String,
    columns: Vec<String>,
    refresh: bool,
}

fn date(field: &str, text: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!("{field}: '{text}' is not a date (YYYY-MM-DD)"))
    })?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

impl Filters {
    fn from_pairs(pairs: &QueryPairs) -> Result<Self, ApiError> {
        let text = |k: &str| pairs.get(k).unwrap_or("").trim().to_string();
        let mut statuses = Vec::new();
        for s in pairs.all("status").iter().flat_map(|v| v.split(',')) {
            if s.is_empty() {
                continue;
            }
            statuses.push(WorkflowStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("status: '{s}' is not a workflow status"))
            })?);
        }
        let mut tags = Vec::new();
        for t in pairs.all("tag").iter().flat_map(|v| v.lines()) {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => tags.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "tag: '{t}' is not KEY=VALUE"
                    )))
                }
            }
        }
        let resolved = text("resolved");
        if !["", "yes", "no"].contains(&resolved.as_str()) {
            return Err(ApiError::bad_request("resolved: yes, no or empty"));
        }
        let columns = text("columns")
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        let filters = Self {
            definition: text("definition"),
            statuses,
            from: text("from"),
            to: text("to"),
            resolved,
            tags,
            namespace: text("namespace"),
            queue: text("queue"),
            columns,
            refresh: pairs.get("refresh") == Some("on"),
        };
        filters.query(None)?;
        Ok(filters)
    }

    /// The store query of these filters (and `page`).
    fn query(&self, page: Option<String>) -> Result<WorkflowQuery, ApiError> {
        let nonempty = |s: &String| (!s.is_empty()).then(|| s.clone());
        Ok(WorkflowQuery {
            definition_name: self.definition.clone(),
            statuses: self.statuses.clone(),
            resolved_by_user: match self.resolved.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            created_after: date("from", &self.from, false)?,
            created_before: date("to", &self.to, true)?,
            tags: self.tags.clone(),
            namespace: nonempty(&self.namespace),
            queue: nonempty(&self.queue),
            oldest_first: false,
            limit: PAGE,
            page_token: page,
        })
    }

    /// The page's URL with these filters, `statuses` instead of the chosen ones, and `extra`.
    fn url(&self, statuses: &[WorkflowStatus], extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let pairs = [
            ("definition", self.definition.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("resolved", self.resolved.as_str()),
            ("namespace", self.namespace.as_str()),
            ("queue", self.queue.as_str()),
        ];
        for (k, v) in pairs {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        for s in statuses {
            q.append_pair("status", s.as_str());
        }
        for (k, v) in &self.tags {
            q.append_pair("tag", &format!("{k}={v}"));
        }
        if !self.columns.is_empty() {
            q.append_pair("columns", &self.columns.join(","));
        }
        if self.refresh {
            q.append_pair("refresh", "on");
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        format!("/ui/workflows?{}", q.finish())
    }
}

/// GET /ui/workflows.
pub async fn page(State(app): State<AppState>, frame: Frame, pairs: QueryPairs) -> Response {
    let filters = match Filters::from_pairs(&pairs) {
        Ok(f) => f,
        Err(e) => {
            let body = html! { h1 { "Workflows" } p.problem role="alert" { (e.message) } a href="/ui/workflows" { "Clear the filters" } };
            return (e.status, layout::page(&frame, "Workflows", None, body)).into_response();
        }
    };
    match render(&app, &filters, pairs.get("page").map(str::to_string)).await {
        Ok(body) => {
            layout::page(&frame, "Workflows", filters.refresh.then_some(10), body).into_response()
        }
        Err(e) => (
            e.status,
            layout::page(
                &frame,
                "Workflows",
                None,
                html! { p.problem role="alert" { (e.message) } },
            ),
        )
            .into_response(),
    }
}

async fn render(
    app: &AppState,
    filters: &Filters,
    page_token: Option<String>,
) -> Result<Markup, ApiError> {
    let store = app.manager.store();
    let mut definitions: Vec<String> = store
        .latest_workflow_definitions()
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    definitions.sort();
    let counts = {
        let mut q = filters.query(None)?;
        q.statuses.clear();
        store.count_workflows(&q).await?
    };
    let listed = store
        .list_workflows(&filters.query(page_token.clone())?)
        .await?;
    let tag_text: String = filters
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    Ok(html! {
        h1 { "Workflows" }
        form.card.filters method="get" action="/ui/workflows" aria-label="Filters" {
            label { "Definition"
                select name="definition" {
                    option value="" { "any" }
                    @for d in &definitions {
                        option value=(d) selected[*d == filters.definition] { (d) }
                    }
                }
            }
            fieldset.filters style="border:none;padding:0;margin:0" {
                legend.muted style="font-size:13px" { "Status" }
                @for s in STATUSES {
                    label style="flex-direction:row;gap:4px;align-items:center" {
                        input type="checkbox" name="status" value=(s.as_str()) checked[filters.statuses.contains(&s)];
                        (s.as_str())
                    }
                }
            }
            label { "Created from" input type="date" name="from" value=(filters.from); }
            label { "to" input type="date" name="to" value=(filters.to); }
            label { "Resolved"
                select name="resolved" {
                    option value="" selected[filters.resolved.is_empty()] { "any" }
                    option value="yes" selected[filters.resolved == "yes"] { "yes" }
                    option value="no" selected[filters.resolved == "no"] { "no" }
                }
            }
            label { "Namespace" input name="namespace" value=(filters.namespace) size="10"; }
            label { "Queue" input name="queue" value=(filters.queue) size="10"; }
            label { "Tags (KEY=VALUE per line)" textarea name="tag" rows="1" cols="18" { (tag_text) } }
            label { "Tag columns" input name="columns" value=(filters.columns.join(",")) size="12" placeholder="team,run"; }
            label style="flex-direction:row;gap:4px;align-items:center" {
                input type="checkbox" name="refresh" value="on" checked[filters.refresh]; "Auto-refresh (10 s)"
            }
            button type="submit" { "Apply" }
            a.button.secondary href="/ui/workflows" { "Clear" }
        }
        ul.counts aria-label="Counts by status" {
            @for s in STATUSES {
                li { a href=(filters.url(&[s], &[])) { (badge(s.as_str())) (counts.get(&s).copied().unwrap_or(0)) } }
            }
            li { a href=(filters.url(&[], &[])) { "all " (counts.values().sum::<u64>()) } }
        }
        div.table-wrap {
            table {
                caption.muted style="text-align:left;padding:6px 10px" { (listed.workflows.len()) " shown, newest first" }
                thead { tr {
                    th scope="col" { "Created" }
                    th scope="col" { "ID" }
                    th scope="col" { "Definition" }
                    th scope="col" { "Status" }
                    th scope="col" { "Namespace" }
                    th scope="col" { "Queue" }
                    @for c in &filters.columns { th scope="col" { "tag: " (c) } }
                    th scope="col" { "Resolved" }
                } }
                tbody {
                    @for wf in &listed.workflows {
                        tr {
                            td { (wf.created_at.format("%Y-%m-%d %H:%M:%S")) }
                            td.id { a href={"/ui/workflows/" (wf.id)} { (wf.id) } }
                            td { (wf.workflow_definition.name) ":" (wf.workflow_definition.version) }
                            td { (badge(wf.status.as_str())) }
                            td { (wf.namespace) }
                            td { (wf.queue) }
                            @for c in &filters.columns { td { (wf.tags.get(c).map(String::as_str).unwrap_or("")) } }
                            td { @if wf.resolved_by_user { "yes" } }
                        }
                    }
                    @if listed.workflows.is_empty() {
                        tr { td colspan="20" .muted { "No workflow matches these filters." } }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if page_token.is_some() {
                a href=(filters.url(&filters.statuses, &[])) { "First page" }
            }
            @if let Some(next) = &listed.next_page_token {
                a href=(filters.url(&filters.statuses, &[("page", next)])) rel="next" { "Next page" }
            }
        }
    })
}
