//! `/tokens`, `/access-keys` and `/audit-log`: issuing and revoking credentials (admin), and
//! reading the audit log. A secret is shown once, in the answer that creates it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use wfm_core::access::{AccessKey, ApiToken, AuditEntry, AuditQuery, Role};

use super::body::{JsonBody, QueryPairs};
use super::error::ApiError;
use crate::app::AppState;
use crate::auth::audit::AuditTarget;
use crate::auth::{secrets, Principal};

/// The longest name of a token or access key.
pub const MAX_NAME: usize = 128;
/// Default and largest page of the audit log.
const AUDIT_LIMIT: (usize, usize) = (100, 1000);

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "name: between 1 and {MAX_NAME} characters are required"
        )));
    }
    Ok(())
}

/// Body of POST /tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    role: String,
    #[serde(default, rename = "expiresAt")]
    expires_at: Option<String>,
}

/// POST /tokens: issues a token; its secret is in this answer only.
pub async fn create_token(
    State(app): State<AppState>,
    Extension(by): Extension<Principal>,
    JsonBody(req): JsonBody<NewToken>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<Value>), ApiError> {
    check_name(&req.name)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role: '{}' is not a role (reader, submitter, operator, admin)",
            req.role
        ))
    })?;
    let now = chrono::Utc::now();
    let expires_at = match &req.expires_at {
        None => None,
        Some(text) => {
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "expiresAt: '{text}' is not an RFC 3339 timestamp"
                    ))
                })?
                .with_timezone(&chrono::Utc);
            if at <= now {
                return Err(ApiError::bad_request(format!(
                    "expiresAt: {text} is not in the future"
                )));
            }
            Some(at)
        }
    };
    let secret = secrets::new_token();
    let token = ApiToken {
        id: secrets::new_id(),
        name: req.name,
        role,
        created_at: now,
        created_by: by.actor().to_string(),
        revoked_at: None,
        expires_at,
    };
    app.auth
        .store
        .save_token(&token, &secrets::hash(&secret))
        .await?;
    let target = AuditTarget(token.id.clone());
    let mut body =
        serde_json::to_value(&token).map_err(|e| ApiError::bad_request(e.to_string()))?;
    body["token"] = json!(secret);
    Ok((StatusCode::CREATED, Extension(target), Json(body)))
}

/// GET /tokens: every token (no secrets), revoked ones included.
pub async fn list_tokens(State(app): State<AppState>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(app.auth.store.list_tokens().await?))
}

/// DELETE /tokens/{tokenID}: revokes a token and ends its sessions, at once.
pub async fn revoke_token(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ApiToken>, ApiError> {
    Ok(Json(
        app.auth.store.revoke_token(&id, chrono::Utc::now()).await?,
    ))
}

/// Body of POST /access-keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccessKey {
    name: String,
    namespaces: Vec<String>,
}

fn check_namespace(ns: &str) -> Result<(), ApiError> {
    let ok = ns == "*"
        || (!ns.is_empty()
            && ns.len() <= 80
            && !ns.contains("--")
            && ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "namespaces: '{ns}' is neither '*' nor a namespace (letters, digits, - and _, no '--', at most 80)"
        )))
    }
}

/// POST /access-keys: issues a SigV4 access key for workers of some namespaces.
pub async fn create_access_key(
    State(app): State<AppState>,
    Extension(by): Extension<Principal>,
    JsonBody(req): JsonBody<NewAccessKey>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<Value>), ApiError> {
    check_name(&req.name)?;
    if req.namespaces.is_empty() {
        return Err(ApiError::bad_request(
            "namespaces: at least one namespace (or '*') is required",
        ));
    }
    for ns in &req.namespaces {
        check_namespace(ns)?;
    }
    let (id, secret) = secrets::new_access_key();
    let key = AccessKey {
        access_key_id: id,
        secret_access_key: secret.clone(),
        name: req.name,
        namespaces: req.namespaces,
        created_at: chrono::Utc::now(),
        created_by: by.actor().to_string(),
        revoked_at: None,
    };
    app.auth.store.save_access_key(&key).await?;
    let mut body = serde_json::to_value(&key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    body["secretAccessKey"] = json!(secret);
    let target = AuditTarget(key.access_key_id.clone());
    Ok((StatusCode::CREATED, Extension(target), Json(body)))
}

/// GET /access-keys: every access key (no secrets).
pub async fn list_access_keys(
    State(app): State<AppState>,
) -> Result<Json<Vec<AccessKey>>, ApiError> {
    Ok(Json(app.auth.store.list_access_keys().await?))
}

/// DELETE /access-keys/{accessKeyID}: revokes an access key, at once.
pub async fn revoke_access_key(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccessKey>, ApiError> {
    Ok(Json(
        app.auth
            .store
            .revoke_access_key(&id, chrono::Utc::now())
            .await?,
    ))
}

/// GET /audit-log: newest first, `actor` filter, `limit`, paged by `X-Next-Page-Path`.
pub async fn audit_log(
    State(app): State<AppState>,
    pairs: QueryPairs,
) -> Result<(HeaderMap, Json<Vec<AuditEntry>>), ApiError> {
    let limit = match pairs.int("limit")? {
        None => AUDIT_LIMIT.0,
        Some(n) if n >= 1 && n as usize <= AUDIT_LIMIT.1 => n as usize,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "limit: {n} is not between 1 and {}",
                AUDIT_LIMIT.1
            )))
        }
    };
    let actor = pairs
        .get("actor")
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    let entries = app
        .auth
        .store
        .list_audit(&AuditQuery {
            actor: actor.clone(),
            before_seq: pairs.int("before")?,
            limit,
        })
        .await?;
    let mut headers = HeaderMap::new();
    if let (true, Some(last)) = (entries.len() == limit, entries.last()) {
        let mut next: Vec<(String, String)> = vec![
            ("before".into(), last.seq.to_string()),
            ("limit".into(), limit.to_string()),
        ];
        if let Some(a) = actor {
            next.push(("actor".into(), a));
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        if let Ok(v) = HeaderValue::from_str(&format!("/audit-log?{query}")) {
            headers.insert("x-next-page-path", v);
        }
    }
    Ok((headers, Json(entries)))
}
