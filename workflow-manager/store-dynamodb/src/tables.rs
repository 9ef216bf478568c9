//! Table names, their key schemas and indexes, and creating them on first start.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus,
};
use wfm_core::StoreError;

use crate::error::backend;

/// The names of the store's tables.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Definition versions, and one `latest` pointer per name.
    pub definitions: String,
    /// State resources.
    pub state_resources: String,
    /// Workflows.
    pub workflows: String,
    /// Pieces of workflow bodies too large for one item.
    pub workflow_parts: String,
    /// Tokens, access keys, sessions.
    pub access: String,
    /// The audit log.
    pub audit: String,
}

impl Tables {
    /// The tables named `prefix-...`.
    pub fn new(prefix: &str) -> Self {
        Self {
            definitions: format!("{prefix}-definitions"),
            state_resources: format!("{prefix}-state-resources"),
            workflows: format!("{prefix}-workflows"),
            workflow_parts: format!("{prefix}-workflow-parts"),
            access: format!("{prefix}-access"),
            audit: format!("{prefix}-audit"),
        }
    }
}

/// Index names and the attributes they are keyed on.
pub mod index {
    /// Definitions: one pointer item per name (`latestOf` = "all"), sorted by name.
    pub const LATEST: &str = "latest";
    /// State resources: every resource (`all` = "all"), sorted by `namespace`+`name`.
    pub const ALL_RESOURCES: &str = "all";
    /// Workflows of one definition, by creation.
    pub const BY_DEFINITION: &str = "by-definition";
    /// Workflows of one status, by creation.
    pub const BY_STATUS: &str = "by-status";
    /// Every workflow (`all` = "all"), by creation.
    pub const ALL_WORKFLOWS: &str = "all";
    /// Workflows not in a terminal status (sparse: `open` is removed at the end), by creation.
    pub const UNFINISHED: &str = "unfinished";
    /// Tokens and access keys by kind, oldest first.
    pub const BY_KIND: &str = "by-kind";
    /// Audit entries of one actor, newest first.
    pub const BY_ACTOR: &str = "by-actor";
}

struct TableSpec<'a> {
    name: &'a str,
    hash: (&'a str, ScalarAttributeType),
    range: Option<(&'a str, ScalarAttributeType)>,
    /// (index name, hash attribute, range attribute); every attribute used is a string unless
    /// declared in `hash`/`range` or `numbers`.
    indexes: Vec<(&'a str, &'a str, &'a str)>,
    numbers: &'a [&'a str],
}

fn specs(t: &Tables) -> Vec<TableSpec<'_>> {
    use ScalarAttributeType::{N, S};
    vec![
        TableSpec {
            name: &t.definitions,
            hash: ("name", S),
            range: Some(("version", N)),
            indexes: vec![(index::LATEST, "latestOf", "name")],
            numbers: &[],
        },
        TableSpec {
            name: &t.state_resources,
            hash: ("namespace", S),
            range: Some(("name", S)),
            indexes: vec![(index::ALL_RESOURCES, "all", "sortKey")],
            numbers: &[],
        },
        TableSpec {
            name: &t.workflows,
            hash: ("id", S),
            range: None,
            indexes: vec![
                (index::BY_DEFINITION, "definitionName", "created"),
                (index::BY_STATUS, "status", "created"),
                (index::ALL_WORKFLOWS, "all", "created"),
                (index::UNFINISHED, "open", "created"),
            ],
            numbers: &[],
        },
        TableSpec {
            name: &t.workflow_parts,
            hash: ("workflowId", S),
            range: Some(("part", S)),
            indexes: vec![],
            numbers: &[],
        },
        TableSpec {
            name: &t.access,
            hash: ("pk", S),
            range: None,
            indexes: vec![(index::BY_KIND, "kind", "created")],
            numbers: &[],
        },
        TableSpec {
            name: &t.audit,
            hash: ("log", S),
            range: Some(("seq", N)),
            indexes: vec![(index::BY_ACTOR, "actor", "seq")],
            numbers: &["seq"],
        },
    ]
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn attribute(name: &str, t: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

async fn create(client: &aws_sdk_dynamodb::Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    let mut attributes: Vec<(String, ScalarAttributeType)> =
        vec![(spec.hash.0.into(), spec.hash.1.clone())];
    let mut keys = vec![key(spec.hash.0, KeyType::Hash)?];
    if let Some((name, t)) = &spec.range {
        attributes.push(((*name).into(), t.clone()));
        keys.push(key(name, KeyType::Range)?);
    }
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(keys));
    for (index_name, hash, range) in &spec.indexes {
        for a in [hash, range] {
            if !attributes.iter().any(|(n, _)| n == a) {
                let t = if spec.numbers.contains(a) {
                    ScalarAttributeType::N
                } else {
                    ScalarAttributeType::S
                };
                attributes.push(((*a).to_string(), t));
            }
        }
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index_name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        // The reconciliation loop reads ids from `unfinished` often: keys only.
                        .projection_type(if *index_name == index::UNFINISHED {
                            ProjectionType::KeysOnly
                        } else {
                            ProjectionType::All
                        })
                        .build(),
                )
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        );
    }
    for (name, t) in attributes {
        request = request.attribute_definitions(attribute(&name, t)?);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        // Created meanwhile by another instance.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(backend(e)),
    }
}

/// Creates the missing tables, waits until every table is active, and checks that the indexes
/// this version queries exist (a table made by hand without them is an error, not a Scan).
pub async fn ensure(client: &aws_sdk_dynamodb::Client, tables: &Tables) -> Result<(), StoreError> {
    for spec in specs(tables) {
        let described = client.describe_table().table_name(spec.name).send().await;
        match described {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                tracing::info!(table = spec.name, "creating DynamoDB table");
                create(client, &spec).await?;
                if spec.name == tables.access {
                    wait_active(client, &spec).await?;
                    enable_session_expiry(client, spec.name).await?;
                }
            }
            Err(e) => return Err(backend(e)),
        }
        wait_active(client, &spec).await?;
    }
    Ok(())
}

async fn wait_active(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec<'_>,
) -> Result<(), StoreError> {
    for _ in 0..600 {
        let out = client
            .describe_table()
            .table_name(spec.name)
            .send()
            .await
            .map_err(backend)?;
        let Some(table) = out.table() else {
            return Err(StoreError::Backend(format!(
                "table {} not described",
                spec.name
            )));
        };
        let indexes = table.global_secondary_indexes();
        for (wanted, _, _) in &spec.indexes {
            if !indexes.iter().any(|i| i.index_name() == Some(*wanted)) {
                return Err(StoreError::Backend(format!(
                    "table {} exists without its index {wanted}: delete it, or add the index, \
                     and restart",
                    spec.name
                )));
            }
        }
        let active = table.table_status() == Some(&TableStatus::Active)
            && indexes.iter().all(|i| {
                i.index_status()
                    .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
            });
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Backend(format!(
        "table {} did not become active within 5 minutes",
        spec.name
    )))
}

/// Lets DynamoDB delete ended sessions by their `ttl` attribute.
async fn enable_session_expiry(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), StoreError> {
    let spec = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .attribute_name("ttl")
        .enabled(true)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}
