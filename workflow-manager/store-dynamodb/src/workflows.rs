//! Workflows: one item per workflow (its JSON body, or a pointer to its pieces), plus the
//! attributes the indexes and filters read. Listings pick the narrowest index for the query
//! (definition, else a single status, else all), put the creation range in the key condition
//! and the other filters in a filter expression, and page by the creation key of the last row
//! returned.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use wfm_core::model::{Workflow, WorkflowStatus};
use wfm_core::{StoreError, WorkflowPage, WorkflowQuery};

use crate::attrs::{get_s, instant, opt_s, s, time_key, to_json, Item};
use crate::bodies::{self, Stored};
use crate::error::{backend, corrupt, is_condition_failed};
use crate::tables::index;
use crate::{paging, DynamoStore};

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("workflow {id} not found"))
}

async fn item_of(store: &DynamoStore, wf: &Workflow) -> Result<(Item, Stored), StoreError> {
    let stored = bodies::store(store, &format!("workflow#{}", wf.id), to_json(wf)?).await?;
    let (body_attr, body_value) = stored.attributes();
    let mut item: Item = [
        ("id".to_string(), s(&wf.id)),
        ("created".to_string(), s(time_key(wf.created_at, &wf.id))),
        (
            "definitionName".to_string(),
            s(&wf.workflow_definition.name),
        ),
        ("status".to_string(), s(wf.status.as_str())),
        ("all".to_string(), s("all")),
        ("lastUpdated".to_string(), s(instant(wf.last_updated))),
        ("namespace".to_string(), s(&wf.namespace)),
        ("queue".to_string(), s(&wf.queue)),
        (
            "resolved".to_string(),
            AttributeValue::Bool(wf.resolved_by_user),
        ),
        (
            "tags".to_string(),
            AttributeValue::M(wf.tags.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
        ),
        (body_attr.to_string(), body_value),
    ]
    .into();
    if !wf.status.is_terminal() {
        item.insert("open".into(), s("open"));
    }
    Ok((item, stored))
}

/// Deletes the pieces just written for a write that did not happen.
async fn discard(store: &DynamoStore, stored: &Stored) {
    if let Stored::Pieces(owner, generation, count) = stored {
        bodies::delete(store, owner, generation, *count).await;
    }
}

/// Deletes the pieces an item pointed at before it was replaced or deleted.
async fn release_old(store: &DynamoStore, old: Option<&Item>) {
    if let Some(Ok(Some((owner, generation, count)))) = old.map(bodies::pieces_of) {
        bodies::delete(store, &owner, &generation, count).await;
    }
}

/// Saves a new workflow; `Conflict` if the id exists.
pub async fn save(store: &DynamoStore, wf: &Workflow) -> Result<(), StoreError> {
    let (item, stored) = item_of(store, wf).await?;
    let out = store
        .client
        .put_item()
        .table_name(&store.tables.workflows)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(id)")
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) => {
            discard(store, &stored).await;
            if is_condition_failed(&e) {
                Err(StoreError::Conflict(format!(
                    "workflow {} already exists",
                    wf.id
                )))
            } else {
                Err(backend(e))
            }
        }
    }
}

/// Replaces a workflow, refusing terminal → non-terminal, and (with `expected`) only if its
/// stored `lastUpdated` is still `expected`. Returns false when `expected` did not match.
pub async fn replace(
    store: &DynamoStore,
    wf: &Workflow,
    expected: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let (item, stored) = item_of(store, wf).await?;
    let mut condition = "attribute_exists(id)".to_string();
    let mut request = store
        .client
        .put_item()
        .table_name(&store.tables.workflows)
        .set_item(Some(item))
        .return_values(ReturnValue::AllOld);
    if !wf.status.is_terminal() {
        condition.push_str(" AND NOT (#s IN (:failed, :succeeded, :cancelled))");
        request = request
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":succeeded", s("succeeded"))
            .expression_attribute_values(":cancelled", s("cancelled"));
    }
    if let Some(t) = expected {
        condition.push_str(" AND lastUpdated = :expected");
        request = request.expression_attribute_values(":expected", s(instant(t)));
    }
    match request.condition_expression(condition).send().await {
        Ok(out) => {
            release_old(store, out.attributes.as_ref()).await;
            Ok(true)
        }
        Err(e) if is_condition_failed(&e) => {
            discard(store, &stored).await;
            // Which condition failed decides the answer.
            let current = get_item(store, &wf.id)
                .await?
                .ok_or_else(|| not_found(&wf.id))?;
            let status = WorkflowStatus::parse(get_s(&current, "status")?)
                .ok_or_else(|| corrupt("workflow status", &wf.id))?;
            if status.is_terminal() && !wf.status.is_terminal() {
                return Err(StoreError::TerminalToNonTerminal {
                    id: wf.id.clone(),
                    from: status.as_str(),
                    to: wf.status.as_str(),
                });
            }
            match expected {
                Some(_) => Ok(false),
                // Changed between the write and the read: nothing else can fail.
                None => Err(StoreError::Backend(format!(
                    "workflow {} changed during its update",
                    wf.id
                ))),
            }
        }
        Err(e) => {
            discard(store, &stored).await;
            Err(backend(e))
        }
    }
}

async fn get_item(store: &DynamoStore, id: &str) -> Result<Option<Item>, StoreError> {
    let out = store
        .client
        .get_item()
        .table_name(&store.tables.workflows)
        .key("id", s(id))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    Ok(out.item)
}

/// One workflow.
pub async fn get(store: &DynamoStore, id: &str) -> Result<Workflow, StoreError> {
    match get_item(store, id).await? {
        Some(item) => bodies::load_json(store, &item, "workflow").await,
        None => Err(not_found(id)),
    }
}

/// Deletes a workflow (and its pieces).
pub async fn delete(store: &DynamoStore, id: &str) -> Result<(), StoreError> {
    let out = store
        .client
        .delete_item()
        .table_name(&store.tables.workflows)
        .key("id", s(id))
        .condition_expression("attribute_exists(id)")
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    match out {
        Ok(out) => {
            release_old(store, out.attributes.as_ref()).await;
            Ok(())
        }
        Err(e) if is_condition_failed(&e) => Err(not_found(id)),
        Err(e) => Err(backend(e)),
    }
}

/// The index a query reads, and the value of its partition key.
struct Plan {
    index: &'static str,
    hash_attr: &'static str,
    hash_value: String,
}

fn plan(q: &WorkflowQuery) -> Plan {
    if !q.definition_name.is_empty() {
        Plan {
            index: index::BY_DEFINITION,
            hash_attr: "definitionName",
            hash_value: q.definition_name.clone(),
        }
    } else if let [status] = q.statuses.as_slice() {
        Plan {
            index: index::BY_STATUS,
            hash_attr: "status",
            hash_value: status.as_str().to_string(),
        }
    } else {
        Plan {
            index: index::ALL_WORKFLOWS,
            hash_attr: "all",
            hash_value: "all".into(),
        }
    }
}

/// A Query for `q` on its planned index: key condition with the creation range, filter
/// expression with everything else. Returns whether a filter is applied.
fn query(store: &DynamoStore, q: &WorkflowQuery, p: &Plan) -> (QueryFluentBuilder, bool) {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut values: HashMap<String, AttributeValue> = HashMap::new();
    names.insert("#h".into(), p.hash_attr.into());
    values.insert(":h".into(), s(&p.hash_value));
    let mut key = "#h = :h".to_string();
    match (q.created_after, q.created_before) {
        (Some(a), Some(b)) => {
            key.push_str(" AND created BETWEEN :after AND :before");
            values.insert(":after".into(), s(instant(a)));
            values.insert(":before".into(), s(instant(b)));
        }
        (Some(a), None) => {
            key.push_str(" AND created >= :after");
            values.insert(":after".into(), s(instant(a)));
        }
        (None, Some(b)) => {
            key.push_str(" AND created < :before");
            values.insert(":before".into(), s(instant(b)));
        }
        (None, None) => {}
    }
    let mut filters: Vec<String> = Vec::new();
    let planned_status = p.index == index::BY_STATUS;
    if !q.statuses.is_empty() && !planned_status {
        names.insert("#s".into(), "status".into());
        let mut placeholders = Vec::new();
        for (i, status) in q.statuses.iter().enumerate() {
            placeholders.push(format!(":s{i}"));
            values.insert(format!(":s{i}"), s(status.as_str()));
        }
        filters.push(format!("#s IN ({})", placeholders.join(", ")));
    }
    if let Some(r) = q.resolved_by_user {
        values.insert(":resolved".into(), AttributeValue::Bool(r));
        filters.push("resolved = :resolved".into());
    }
    if let Some(ns) = &q.namespace {
        names.insert("#ns".into(), "namespace".into());
        values.insert(":ns".into(), s(ns));
        filters.push("#ns = :ns".into());
    }
    if let Some(queue) = &q.queue {
        names.insert("#q".into(), "queue".into());
        values.insert(":q".into(), s(queue));
        filters.push("#q = :q".into());
    }
    for (i, (k, v)) in q.tags.iter().enumerate() {
        names.insert("#tags".into(), "tags".into());
        names.insert(format!("#t{i}"), k.clone());
        values.insert(format!(":t{i}"), s(v));
        filters.push(format!("#tags.#t{i} = :t{i}"));
    }
    let filtered = !filters.is_empty();
    let mut builder = store
        .client
        .query()
        .table_name(&store.tables.workflows)
        .index_name(p.index)
        .key_condition_expression(key)
        .scan_index_forward(q.oldest_first)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values));
    if filtered {
        builder = builder.filter_expression(filters.join(" AND "));
    }
    (builder, filtered)
}

/// The key to start a Query after the row with creation key `created` on the planned index.
fn start_key(p: &Plan, created: &str) -> Result<Item, StoreError> {
    let (_, id) = created
        .split_once('#')
        .ok_or_else(|| StoreError::InvalidPageToken(created.to_string()))?;
    Ok([
        ("id".to_string(), s(id)),
        (p.hash_attr.to_string(), s(&p.hash_value)),
        ("created".to_string(), s(created)),
    ]
    .into())
}

/// A page of workflows.
pub async fn list(store: &DynamoStore, q: &WorkflowQuery) -> Result<WorkflowPage, StoreError> {
    let limit = q.limit.max(1);
    let p = plan(q);
    let mut start = match &q.page_token {
        Some(token) => Some(start_key(&p, &paging::decode(p.index, token)?)?),
        None => None,
    };
    // One row more than the page, to know whether there is a next page.
    let mut rows: Vec<Item> = Vec::new();
    loop {
        let (builder, filtered) = query(store, q, &p);
        let want = limit + 1 - rows.len();
        // With a filter, read ahead more: most rows read may be filtered out.
        let read = if filtered { want.max(100) } else { want };
        let out = builder
            .limit(i32::try_from(read).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let items = out.items.unwrap_or_default();
        rows.extend(items.into_iter().take(limit + 1 - rows.len()));
        start = out.last_evaluated_key;
        if rows.len() > limit || start.is_none() {
            break;
        }
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => Some(paging::encode(p.index, get_s(last, "created")?)),
        _ => None,
    };
    let mut workflows = Vec::with_capacity(rows.len());
    for item in &rows {
        workflows.push(bodies::load_json(store, item, "workflow").await?);
    }
    Ok(WorkflowPage {
        workflows,
        next_page_token,
    })
}

/// How many workflows match, per status (the same Query, reading only `status`).
pub async fn count(
    store: &DynamoStore,
    q: &WorkflowQuery,
) -> Result<BTreeMap<WorkflowStatus, u64>, StoreError> {
    let p = plan(q);
    let mut counts = BTreeMap::new();
    let mut start = None;
    loop {
        let (builder, _) = query(store, q, &p);
        let out = builder
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        for item in out.items() {
            if let Some(status) = opt_s(item, "status").and_then(WorkflowStatus::parse) {
                *counts.entry(status).or_insert(0) += 1;
            }
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(counts);
        }
    }
}

/// Unfinished workflows (created at or after `since`), oldest first, with their creation
/// time: a Query on the sparse, keys-only `unfinished` index.
pub async fn unfinished(
    store: &DynamoStore,
    since: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let mut rows = Vec::new();
    let mut start = None;
    while rows.len() < limit {
        let mut request = store
            .client
            .query()
            .table_name(&store.tables.workflows)
            .index_name(index::UNFINISHED)
            .expression_attribute_names("#o", "open")
            .expression_attribute_values(":o", s("open"));
        request = match since {
            Some(t) => request
                .key_condition_expression("#o = :o AND created >= :since")
                .expression_attribute_values(":since", s(instant(t))),
            None => request.key_condition_expression("#o = :o"),
        };
        let out = request
            .limit(i32::try_from(limit - rows.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        for item in out.items() {
            let created = get_s(item, "created")?;
            let at = created
                .split_once('#')
                .and_then(|(t, _)| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| corrupt("workflow creation key", created))?;
            rows.push((get_s(item, "id")?.to_string(), at));
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(rows)
}
