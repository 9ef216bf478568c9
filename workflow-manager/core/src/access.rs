//! Who may do what: the roles of API tokens, the access keys workers sign `/sfn` requests with,
//! UI sessions, the audit log, and the [`AccessStore`] trait that keeps them. Secrets never
//! appear here in clear: tokens and sessions are stored as hashes made by the caller. Access
//! keys are the exception SigV4 imposes (the verifier needs the secret itself).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything; changes nothing.
    Reader,
    /// Also starts workflows: what services use.
    Submitter,
    /// Also cancels, resumes and resolves workflows, runs bulk repairs, edits state resources.
    Operator,
    /// Also edits definitions, tokens and access keys, and reads the audit log.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Submitter, Role::Operator, Role::Admin];

    /// The role's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Submitter => "submitter",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role includes `required`.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    /// Stable id (used to revoke it and in the audit log).
    pub id: String,
    /// What it is for ("billing-service", "alice").
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it (a token name, or `bootstrap`).
    pub created_by: String,
    /// When it was revoked; a revoked token authenticates nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working on its own, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// An access key for SigV4-signed `/sfn` requests, limited to the activities of some namespaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    /// The `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// The `AWS_SECRET_ACCESS_KEY` (never listed by the API).
    #[serde(default, skip_serializing)]
    pub secret_access_key: String,
    /// What it is for.
    pub name: String,
    /// Namespaces whose activities it may poll and answer; `*` for every namespace, which also
    /// allows the execution and state machine operations of `/sfn`.
    pub namespaces: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AccessKey {
    /// Whether the key covers every namespace.
    pub fn is_unrestricted(&self) -> bool {
        self.namespaces.iter().any(|n| n == "*")
    }

    /// Whether the key may work the activities of `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.is_unrestricted() || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// One audited mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the log (assigned by the store, increasing).
    #[serde(default)]
    pub seq: i64,
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// Who: the token's or access key's name, or `anonymous` when the service runs open.
    pub actor: String,
    /// The token id or access key id, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// HTTP method, or `sfn` for a Step Functions operation.
    pub method: String,
    /// Request path, or the Step Functions operation.
    pub path: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// What the mutation made, when it made something with a new name (the id of a started
    /// or resumed workflow, a definition's version, a repair job, a token or access key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditQuery {
    /// Only entries of this actor.
    pub actor: Option<String>,
    /// Only entries before this position (the previous page's last `seq`).
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: usize,
}

/// Tokens, access keys, sessions and the audit log. Implemented by each store backend; the
/// behaviour is pinned by `store_suite::run_access_checks`.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Saves a new token under the hash of its secret; `Conflict` if the id or hash exists.
    async fn save_token(&self, token: &ApiToken, secret_hash: &str) -> Result<(), StoreError>;
    /// The unrevoked, unexpired token whose secret hashes to `secret_hash`.
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Every token, revoked ones included, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes a token and ends its sessions; `NotFound` if there is no such token.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken, StoreError>;

    /// Saves a new access key; `Conflict` if its id exists.
    async fn save_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    /// The unrevoked access key with this id, secret included.
    async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError>;
    /// Every access key, revoked ones included, oldest first.
    async fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError>;
    /// Revokes an access key; `NotFound` if there is none.
    async fn revoke_access_key(
        &self,
        access_key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<AccessKey, StoreError>;

    /// Saves a UI session (by the hash of its cookie) for a token, valid until `expires_at`.
    async fn save_session(
        &self,
        session_hash: &str,
        token_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The token of an unexpired session, if the token is neither revoked nor expired.
    async fn session_token(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiToken>, StoreError>;
    /// Ends a session (no error if there is none).
    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError>;

    /// Appends to the audit log. May return before the entry is durable (it is recorded
    /// after the mutation it describes, which is durable already), but a later `list_audit`
    /// of the same process must see it.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// A page of the audit log, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
}
