//! The audit log: every mutation (REST and the `/sfn` operations that change something) is
//! recorded with who made it, with which credential, and how it was answered, once answered.
//! Refused mutations of a known principal (403) are recorded too; unauthenticated ones are not
//! (they would let anyone fill the log).

use axum::http::{Method, StatusCode};
use wfm_core::access::AuditEntry;

use super::{Auth, Principal};

/// What a mutation made, set by its handler as a response extension for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget(pub String);

/// Records one mutation. A failure to record is logged, not returned: the mutation is done.
pub async fn record(
    auth: &Auth,
    principal: &Principal,
    method: &Method,
    path: &str,
    status: StatusCode,
) {
    record_made(auth, principal, method, path, status, None).await;
}

/// Records one mutation and what it made.
pub async fn record_made(
    auth: &Auth,
    principal: &Principal,
    method: &Method,
    path: &str,
    status: StatusCode,
    target: Option<String>,
) {
    record_entry(
        auth,
        AuditEntry {
            seq: 0,
            at: chrono::Utc::now(),
            actor: principal.actor().to_string(),
            credential_id: principal.credential_id().map(str::to_string),
            method: method.to_string(),
            path: path.to_string(),
            status: status.as_u16(),
            target,
        },
    )
    .await;
}

/// Records an entry.
pub async fn record_entry(auth: &Auth, entry: AuditEntry) {
    if let Err(e) = auth.store.append_audit(&entry).await {
        tracing::error!(error = %e, actor = %entry.actor, path = %entry.path, "cannot write the audit log");
    }
}
