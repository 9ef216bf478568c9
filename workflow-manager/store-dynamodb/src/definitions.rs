//! Definition versions and state resources.
//!
//! A definition version is an item keyed by (`name`, `version`), written only if absent. Each
//! name also has a pointer item at version -1 holding the latest version; it carries
//! `latestOf = "all"`, so the sparse `latest` index lists the latest version of every name
//! without a Scan. The version and its pointer are written in one transaction, conditional on
//! the pointer still being what was read, so two instances saving at once cannot leave the
//! pointer behind.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use wfm_core::model::{StateResource, WorkflowDefinition};
use wfm_core::StoreError;

use crate::attrs::{all_items, get_n, json, n, s, to_json, Item};
use crate::bodies;
use crate::error::{backend, is_condition_failed};
use crate::tables::index;
use crate::DynamoStore;

const POINTER: i64 = -1;

async fn pointer(store: &DynamoStore, name: &str) -> Result<Option<Item>, StoreError> {
    let out = store
        .client
        .get_item()
        .table_name(&store.tables.definitions)
        .key("name", s(name))
        .key("version", n(POINTER))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    Ok(out.item().cloned())
}

fn put(
    table: &str,
    item: Item,
    condition: &str,
    current: Option<i64>,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    if let Some(v) = current {
        put = put.expression_attribute_values(":current", n(v));
    }
    let put = put
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Saves a new version; `Conflict` if it exists.
pub async fn save(store: &DynamoStore, def: &WorkflowDefinition) -> Result<(), StoreError> {
    let owner = format!("definition#{}#{}", def.name, def.version);
    let stored = bodies::store(store, &owner, to_json(def)?).await?;
    let (body_attr, body_value) = stored.attributes();
    let item: Item = [
        ("name".to_string(), s(&def.name)),
        ("version".to_string(), n(def.version)),
        (body_attr.to_string(), body_value.clone()),
    ]
    .into();
    let conflict = || {
        StoreError::Conflict(format!(
            "workflow definition {} version {} already exists",
            def.name, def.version
        ))
    };
    for _ in 0..20 {
        let current = pointer(store, &def.name).await?;
        let current_version = match &current {
            Some(p) => Some(get_n(p, "latestVersion")?),
            None => None,
        };
        let mut writes = vec![put(
            &store.tables.definitions,
            item.clone(),
            "attribute_not_exists(version)",
            None,
        )?];
        if current_version.is_none_or(|v| v < def.version) {
            let pointer_item: Item = [
                ("name".to_string(), s(&def.name)),
                ("version".to_string(), n(POINTER)),
                ("latestOf".to_string(), s("all")),
                ("latestVersion".to_string(), n(def.version)),
                (body_attr.to_string(), body_value.clone()),
            ]
            .into();
            let condition = match current_version {
                None => "attribute_not_exists(version)",
                Some(_) => "latestVersion = :current",
            };
            let p = put(
                &store.tables.definitions,
                pointer_item,
                condition,
                current_version,
            )?;
            writes.push(p);
        }
        match store
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_condition_failed(&e) => {
                // Either the version exists (a conflict) or the pointer moved (read it again).
                let exists = store
                    .client
                    .get_item()
                    .table_name(&store.tables.definitions)
                    .key("name", s(&def.name))
                    .key("version", n(def.version))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(backend)?;
                if exists.item().is_some() {
                    return Err(conflict());
                }
            }
            Err(e) => return Err(backend(e)),
        }
    }
    Err(StoreError::Backend(format!(
        "definition {} kept changing under concurrent saves",
        def.name
    )))
}

/// One version.
pub async fn get(
    store: &DynamoStore,
    name: &str,
    version: i64,
) -> Result<WorkflowDefinition, StoreError> {
    let missing = || {
        StoreError::NotFound(format!(
            "workflow definition {name} version {version} not found"
        ))
    };
    if version < 0 {
        return Err(missing());
    }
    let out = store
        .client
        .get_item()
        .table_name(&store.tables.definitions)
        .key("name", s(name))
        .key("version", n(version))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    match out.item() {
        Some(item) => bodies::load_json(store, item, "definition").await,
        None => Err(missing()),
    }
}

/// The latest version.
pub async fn latest(store: &DynamoStore, name: &str) -> Result<WorkflowDefinition, StoreError> {
    match pointer(store, name).await? {
        Some(item) => bodies::load_json(store, &item, "definition").await,
        None => Err(StoreError::NotFound(format!(
            "workflow definition {name} not found"
        ))),
    }
}

/// Every version, newest first.
pub async fn versions(
    store: &DynamoStore,
    name: &str,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    let items = all_items(
        store
            .client
            .query()
            .table_name(&store.tables.definitions)
            .key_condition_expression("#n = :n AND version >= :zero")
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":n", s(name))
            .expression_attribute_values(":zero", n(0))
            .scan_index_forward(false)
            .consistent_read(true),
    )
    .await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(bodies::load_json(store, item, "definition").await?);
    }
    if out.is_empty() {
        return Err(StoreError::NotFound(format!(
            "workflow definition {name} not found"
        )));
    }
    Ok(out)
}

/// The latest version of every definition, by name.
pub async fn latest_of_each(store: &DynamoStore) -> Result<Vec<WorkflowDefinition>, StoreError> {
    let items = query_all(
        store,
        &store.tables.definitions,
        index::LATEST,
        "latestOf",
        "all",
    )
    .await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(bodies::load_json(store, item, "definition").await?);
    }
    Ok(out)
}

/// Every item of one partition of an index, in index order.
async fn query_all(
    store: &DynamoStore,
    table: &str,
    index_name: &str,
    hash: &str,
    value: &str,
) -> Result<Vec<Item>, StoreError> {
    all_items(
        store
            .client
            .query()
            .table_name(table)
            .index_name(index_name)
            .key_condition_expression("#h = :h")
            .expression_attribute_names("#h", hash)
            .expression_attribute_values(":h", s(value)),
    )
    .await
}

fn resource_item(r: &StateResource) -> Result<Item, StoreError> {
    Ok([
        ("namespace".to_string(), s(&r.namespace)),
        ("name".to_string(), s(&r.name)),
        ("all".to_string(), s("all")),
        // \u{1} sorts before every character a name can hold: (namespace, name) order.
        (
            "sortKey".to_string(),
            s(format!("{}\u{1}{}", r.namespace, r.name)),
        ),
        ("body".to_string(), s(to_json(r)?)),
    ]
    .into())
}

fn decode_resource(item: &Item) -> Result<StateResource, StoreError> {
    json(item, "body")
}

/// Creates or replaces a state resource.
pub async fn save_resource(store: &DynamoStore, r: &StateResource) -> Result<(), StoreError> {
    store
        .client
        .put_item()
        .table_name(&store.tables.state_resources)
        .set_item(Some(resource_item(r)?))
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

/// One state resource.
pub async fn get_resource(
    store: &DynamoStore,
    namespace: &str,
    name: &str,
) -> Result<StateResource, StoreError> {
    let out = store
        .client
        .get_item()
        .table_name(&store.tables.state_resources)
        .key("namespace", s(namespace))
        .key("name", s(name))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    match out.item() {
        Some(item) => decode_resource(item),
        None => Err(StoreError::NotFound(format!(
            "state resource {namespace}/{name} not found"
        ))),
    }
}

/// The resources of a namespace (a Query on the table) or of all (a Query on `all`).
pub async fn list_resources(
    store: &DynamoStore,
    namespace: Option<&str>,
) -> Result<Vec<StateResource>, StoreError> {
    let items = match namespace {
        Some(ns) => {
            all_items(
                store
                    .client
                    .query()
                    .table_name(&store.tables.state_resources)
                    .key_condition_expression("#ns = :ns")
                    .expression_attribute_names("#ns", "namespace")
                    .expression_attribute_values(":ns", s(ns))
                    .consistent_read(true),
            )
            .await?
        }
        None => {
            query_all(
                store,
                &store.tables.state_resources,
                index::ALL_RESOURCES,
                "all",
                "all",
            )
            .await?
        }
    };
    items.iter().map(decode_resource).collect()
}

/// Deletes a state resource; `NotFound` if absent.
pub async fn delete_resource(
    store: &DynamoStore,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let out = store
        .client
        .delete_item()
        .table_name(&store.tables.state_resources)
        .key("namespace", s(namespace))
        .key("name", s(name))
        .condition_expression("attribute_exists(#n)")
        .expression_attribute_names("#n", "name")
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound(format!(
            "state resource {namespace}/{name} not found"
        ))),
        Err(e) => Err(backend(e)),
    }
}
