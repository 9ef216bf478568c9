//! The DynamoDB [`Store`](wfm_core::Store) and [`AccessStore`](wfm_core::AccessStore): what the
//! service keeps when it runs on AWS. It passes the same `store_suite` as the SQLite store.
//!
//! Tables (all named `PREFIX-...`, created with their indexes on first start, idempotently, by
//! [`DynamoStore::ensure_tables`]):
//!
//! | table | key | indexes |
//! | --- | --- | --- |
//! | `definitions` | `name`, `version` | `latest` (sparse: one pointer item per name) |
//! | `state-resources` | `namespace`, `name` | `all` (every resource by namespace and name) |
//! | `workflows` | `id` | `by-definition`, `by-status`, `all`, `unfinished` (sparse), each sorted by creation |
//! | `workflow-parts` | `workflowId`, `part` | bodies too large for one item, in pieces |
//! | `access` | `pk` | `by-kind` (tokens and access keys, oldest first) |
//! | `audit` | `log`, `seq` | `by-actor` |
//!
//! Every listing is a Query on a table or an index, never a Scan. Versions and the terminal
//! status rule are conditional writes, so two service instances cannot overwrite each other.
//! A workflow whose JSON exceeds what fits in one item (DynamoDB's limit is 400 KB) is stored
//! in pieces in `workflow-parts`, written before the item that points at them, so no reader
//! ever sees a half-written body, and nothing is dropped.

mod access;
mod attrs;
mod bodies;
mod definitions;
mod error;
mod paging;
mod tables;
mod workflows;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use wfm_core::access::{AccessKey, AccessStore, ApiToken, AuditEntry, AuditQuery};
use wfm_core::model::{StateResource, Workflow, WorkflowDefinition, WorkflowStatus};
use wfm_core::{Store, StoreError, WorkflowPage, WorkflowQuery};

pub use tables::Tables;

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    tables: Tables,
    /// Bodies longer than this are stored in pieces of `piece` bytes.
    inline_limit: usize,
    piece: usize,
}

impl DynamoStore {
    /// A store over the tables named `prefix-...`. Call [`ensure_tables`](Self::ensure_tables)
    /// once before use.
    pub fn new(client: aws_sdk_dynamodb::Client, prefix: &str) -> Self {
        Self {
            // Every call counted for /metrics.
            client: aws_sdk_dynamodb::Client::from_conf(
                client
                    .config()
                    .to_builder()
                    .interceptor(wfm_aws_metrics::Metered)
                    .build(),
            ),
            tables: Tables::new(prefix),
            inline_limit: bodies::INLINE_LIMIT,
            piece: bodies::PIECE,
        }
    }

    /// Stores bodies longer than `inline_limit` bytes in pieces of `piece` bytes (defaults:
    /// 300 KB each, under DynamoDB's 400 KB item limit). Smaller values exercise the pieces
    /// in tests.
    pub fn with_body_limits(mut self, inline_limit: usize, piece: usize) -> Self {
        self.inline_limit = inline_limit;
        self.piece = piece.max(1);
        self
    }

    /// Creates the tables and indexes that do not exist yet and waits until they are active.
    /// Safe to call from several instances at once.
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        tables::ensure(&self.client, &self.tables).await
    }

    /// Whether DynamoDB answers (a DescribeTable of the workflows table): the readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.tables.workflows)
            .send()
            .await
            .map(|_| ())
            .map_err(error::backend)
    }

    /// The DynamoDB client (tests look at the tables directly).
    pub fn client_for_tests(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn save_workflow_definition(&self, def: &WorkflowDefinition) -> Result<(), StoreError> {
        definitions::save(self, def).await
    }

    async fn get_workflow_definition(
        &self,
        name: &str,
        version: i64,
    ) -> Result<WorkflowDefinition, StoreError> {
        definitions::get(self, name, version).await
    }

    async fn latest_workflow_definition(
        &self,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError> {
        definitions::latest(self, name).await
    }

    async fn workflow_definition_versions(
        &self,
        name: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        definitions::versions(self, name).await
    }

    async fn latest_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError> {
        definitions::latest_of_each(self).await
    }

    async fn save_state_resource(&self, resource: &StateResource) -> Result<(), StoreError> {
        definitions::save_resource(self, resource).await
    }

    async fn get_state_resource(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<StateResource, StoreError> {
        definitions::get_resource(self, namespace, name).await
    }

    async fn list_state_resources(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<StateResource>, StoreError> {
        definitions::list_resources(self, namespace).await
    }

    async fn delete_state_resource(&self, namespace: &str, name: &str) -> Result<(), StoreError> {
        definitions::delete_resource(self, namespace, name).await
    }

    async fn save_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        workflows::save(self, workflow).await
    }

    async fn update_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        workflows::replace(self, workflow, None).await.map(|_| ())
    }

    async fn update_workflow_if(
        &self,
        workflow: &Workflow,
        expected: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        workflows::replace(self, workflow, Some(expected)).await
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow, StoreError> {
        workflows::get(self, id).await
    }

    async fn delete_workflow(&self, id: &str) -> Result<(), StoreError> {
        workflows::delete(self, id).await
    }

    async fn list_workflows(&self, query: &WorkflowQuery) -> Result<WorkflowPage, StoreError> {
        workflows::list(self, query).await
    }

    async fn count_workflows(
        &self,
        query: &WorkflowQuery,
    ) -> Result<BTreeMap<WorkflowStatus, u64>, StoreError> {
        workflows::count(self, query).await
    }

    async fn unfinished_workflow_ids(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        workflows::unfinished(self, None, limit)
            .await
            .map(|rows| rows.into_iter().map(|(id, _)| id).collect())
    }

    async fn unfinished_workflows_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        workflows::unfinished(self, Some(since), limit).await
    }
}

#[async_trait]
impl AccessStore for DynamoStore {
    async fn save_token(&self, token: &ApiToken, secret_hash: &str) -> Result<(), StoreError> {
        access::save_token(self, token, secret_hash).await
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        access::token_by_hash(self, secret_hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        access::list_kind(self, access::TOKEN).await
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken, StoreError> {
        access::revoke(self, id, at).await
    }

    async fn save_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        access::save_access_key(self, key).await
    }

    async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError> {
        access::access_key(self, access_key_id).await
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError> {
        access::list_kind(self, access::KEY).await
    }

    async fn revoke_access_key(
        &self,
        access_key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<AccessKey, StoreError> {
        access::revoke(self, access_key_id, at).await
    }

    async fn save_session(
        &self,
        session_hash: &str,
        token_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        access::save_session(self, session_hash, token_id, expires_at).await
    }

    async fn session_token(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiToken>, StoreError> {
        access::session_token(self, session_hash, now).await
    }

    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        access::delete_session(self, session_hash).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        access::append_audit(self, entry).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        access::list_audit(self, query).await
    }
}
