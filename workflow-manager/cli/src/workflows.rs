//! `wfm start`, `wfm workflows list|show`, `wfm cancel|resume|resolve`.

use anyhow::anyhow;
use serde_json::{json, Value};
use wfm_client::{types, Client};

use crate::args::{CancelArgs, IdArgs, ListArgs, ResumeArgs, ShowArgs, StartArgs};
use crate::input::{answer, body, json_text, name_version, tags};
use crate::output::{duration, time, Out};

fn status_of(s: Option<types::WorkflowStatus>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

fn definition_label(wf: &types::Workflow) -> String {
    match &wf.workflow_definition {
        Some(d) => format!(
            "{}:{}",
            d.name.clone().unwrap_or_default(),
            d.version.unwrap_or(0)
        ),
        None => "-".into(),
    }
}

/// `start NAME[:VERSION]`: prints the new workflow's id (or the workflow, `--json`).
pub async fn start(client: &Client, out: &Out, args: StartArgs) -> anyhow::Result<u8> {
    let (name, version) = name_version(&args.definition)?;
    let input = match &args.input {
        Some(given) => json_text("--input", given)?,
        None => "{}".into(),
    };
    let tags: serde_json::Map<String, Value> = tags(&args.tags)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut request = json!({
        "workflowDefinition": {"name": name},
        "input": input,
        "tags": tags,
    });
    if let Some(v) = version {
        request["workflowDefinition"]["version"] = json!(v);
    }
    for (key, value) in [
        ("namespace", &args.namespace),
        ("queue", &args.queue),
        ("id", &args.id),
    ] {
        if let Some(v) = value {
            request[key] = json!(v);
        }
    }
    let request: types::StartWorkflowRequest = body(request)?;
    let wf = answer(client.start_workflow().body(request.clone()).send().await)?;
    let id = wf.id.clone().unwrap_or_default();
    if args.json {
        out.json(&serde_json::to_value(&wf)?);
    } else {
        out.data(&id);
    }
    out.message(&format!("started {id} ({})", definition_label(&wf)));
    Ok(0)
}

/// `workflows list`.
pub async fn list(client: &Client, out: &Out, args: ListArgs) -> anyhow::Result<u8> {
    let statuses: Vec<&str> = args
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .collect();
    let status = (!statuses.is_empty()).then(|| statuses.join(","));
    let parse_time =
        |flag: &str, v: &Option<String>| -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| anyhow!("{flag}: '{t}' is not an RFC 3339 time"))
                })
                .transpose()
        };
    let after = parse_time("--created-after", &args.created_after)?;
    let before = parse_time("--created-before", &args.created_before)?;
    let resolved = match (args.resolved, args.unresolved) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let limit =
        std::num::NonZeroU64::new(args.limit).ok_or_else(|| anyhow!("--limit: at least 1"))?;
    let filtered = client.with_tags(&tags(&args.tags)?);
    let mut all: Vec<types::Workflow> = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut request = filtered
            .get_workflows()
            .limit(limit)
            .oldest_first(args.oldest_first)
            .summary_only(!args.json);
        if let Some(t) = after {
            request = request.created_after(t);
        }
        if let Some(t) = before {
            request = request.created_before(t);
        }
        if let Some(r) = resolved {
            request = request.resolved_by_user(r);
        }
        if let Some(v) = &args.namespace {
            request = request.namespace(v);
        }
        if let Some(v) = &args.queue {
            request = request.queue(v);
        }
        if let Some(v) = &status {
            request = request.status(v);
        }
        if let Some(v) = &args.definition {
            request = request.workflow_definition_name(v);
        }
        if let Some(v) = &page_token {
            request = request.page_token(v);
        }
        let page = request.send().await;
        let page = match page {
            Ok(v) => v,
            Err(e) => return answer::<()>(Err(e)).map(|_| 1),
        };
        let next = page
            .headers()
            .get("x-next-page-path")
            .and_then(|v| v.to_str().ok())
            .and_then(|path| path.split_once('?'))
            .and_then(|(_, query)| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "pageToken")
                    .map(|(_, v)| v.into_owned())
            });
        all.extend(page.into_inner());
        match next {
            Some(t) if args.all => page_token = Some(t),
            Some(_) => {
                out.message("(more: --all for every page)");
                break;
            }
            None => break,
        }
    }
    if args.json {
        out.json(&serde_json::to_value(&all)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|wf| {
            vec![
                wf.id.clone().unwrap_or_default(),
                definition_label(wf),
                status_of(wf.status),
                time(wf.created_at),
                wf.namespace.clone().unwrap_or_default(),
                wf.queue.clone().unwrap_or_default(),
                if wf.resolved_by_user == Some(true) {
                    "yes"
                } else {
                    ""
                }
                .to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "ID",
            "DEFINITION",
            "STATUS",
            "CREATED",
            "NAMESPACE",
            "QUEUE",
            "RESOLVED",
        ],
        &rows,
        Some(2),
    );
    Ok(0)
}

/// A job's row: state, status, attempts, started, took.
pub fn job_row(job: &types::Job) -> Vec<String> {
    let took = match (job.started_at, job.stopped_at) {
        (Some(a), Some(b)) => duration(b - a),
        _ => String::new(),
    };
    vec![
        job.state.clone().unwrap_or_default(),
        job.status.map(|s| s.to_string()).unwrap_or_default(),
        job.attempts.len().max(1).to_string(),
        time(job.started_at),
        took,
    ]
}

/// One workflow, by id.
pub async fn fetch(client: &Client, id: &str) -> anyhow::Result<types::Workflow> {
    answer(client.get_workflow_by_id().workflow_id(id).send().await)
}

/// `workflows show ID`.
pub async fn show(client: &Client, out: &Out, args: ShowArgs) -> anyhow::Result<u8> {
    let wf = fetch(client, &args.id).await?;
    if args.json {
        out.json(&serde_json::to_value(&wf)?);
        return Ok(0);
    }
    let field = |k: &str, v: String| out.data(&format!("{} {v}", out.bold(&format!("{k:<11}"))));
    field("id", wf.id.clone().unwrap_or_default());
    field("definition", definition_label(&wf));
    field("status", out.status(&status_of(wf.status)));
    field("namespace", wf.namespace.clone().unwrap_or_default());
    field("queue", wf.queue.clone().unwrap_or_default());
    field("created", time(wf.created_at));
    if let Some(stopped) = wf.stopped_at {
        field("stopped", time(Some(stopped)));
    }
    let mut tags: Vec<_> = wf.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tags.sort();
    field("tags", tags.join(" "));
    field(
        "resolved",
        if wf.resolved_by_user == Some(true) {
            "yes"
        } else {
            "no"
        }
        .into(),
    );
    if let Some(r) = &wf.retry_for {
        field("retry for", r.clone());
    }
    if !wf.retries.is_empty() {
        field("retries", wf.retries.join(" "));
    }
    if let Some(reason) = wf.status_reason.as_deref().filter(|r| !r.is_empty()) {
        field("reason", reason.to_string());
    }
    field("input", wf.input.clone().unwrap_or_default());
    if let Some(output) = wf.output.as_deref().filter(|o| !o.is_empty()) {
        field("output", output.to_string());
    }
    out.data("");
    let rows: Vec<Vec<String>> = wf.jobs.iter().map(job_row).collect();
    out.table(
        &["STATE", "STATUS", "ATTEMPTS", "STARTED", "TOOK"],
        &rows,
        Some(1),
    );
    Ok(0)
}

/// `cancel ID --reason`.
pub async fn cancel(client: &Client, out: &Out, args: CancelArgs) -> anyhow::Result<u8> {
    let reason: types::CancelReason = body(json!({"reason": args.reason}))?;
    answer(
        client
            .cancel_workflow()
            .workflow_id(&args.id)
            .body(reason.clone())
            .send()
            .await,
    )?;
    out.message(&format!("cancelling {}", args.id));
    Ok(0)
}

/// `resume ID --from STATE [--input]`: prints the new workflow's id.
pub async fn resume(client: &Client, out: &Out, args: ResumeArgs) -> anyhow::Result<u8> {
    let mut request = json!({"StartAt": args.from});
    if let Some(given) = &args.input {
        request["input"] = json!(json_text("--input", given)?);
    }
    let overrides: types::WorkflowDefinitionOverrides = body(request)?;
    let wf = answer(
        client
            .resume_workflow_by_id()
            .workflow_id(&args.id)
            .body(overrides.clone())
            .send()
            .await,
    )?;
    let id = wf.id.unwrap_or_default();
    out.data(&id);
    out.message(&format!("resumed {} from {} as {id}", args.id, args.from));
    Ok(0)
}

/// `resolve ID`.
pub async fn resolve(client: &Client, out: &Out, args: IdArgs) -> anyhow::Result<u8> {
    answer(
        client
            .resolve_workflow_by_id()
            .workflow_id(&args.id)
            .send()
            .await,
    )?;
    out.message(&format!("resolved {}", args.id));
    Ok(0)
}
