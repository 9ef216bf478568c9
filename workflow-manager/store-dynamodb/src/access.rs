//! Tokens, access keys, sessions (the `access` table) and the audit log (the `audit` table).
//!
//! Items of `access` are keyed by `pk`: `token#ID`, `tokenhash#HASH` (the guard that makes a
//! secret hash belong to one token, and the lookup by hash), `key#ID`, `session#HASH`. Tokens
//! and keys carry `kind` and `created`, so the `by-kind` index lists them oldest first.
//! Lookups are strongly consistent reads, with no cache: a token revoked through any instance
//! is refused by every instance at its next request.
//!
//! Audit entries get their `seq` from an atomic counter item, and live in one partition
//! (`log = "audit"`) sorted by `seq`; `by-actor` serves the per-actor listing.

use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use wfm_core::access::{AccessKey, ApiToken, AuditEntry, AuditQuery};
use wfm_core::StoreError;

use crate::attrs::{all_items, get_n, get_s, instant, json, n, opt_s, s, time_key, to_json, Item};
use crate::error::{backend, corrupt, is_condition_failed};
use crate::tables::index;
use crate::DynamoStore;

/// The `kind` of token items.
pub const TOKEN: &str = "token";
/// The `kind` of access key items.
pub const KEY: &str = "key";

async fn get(store: &DynamoStore, pk: &str) -> Result<Option<Item>, StoreError> {
    let out = store
        .client
        .get_item()
        .table_name(&store.tables.access)
        .key("pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    Ok(out.item)
}

fn put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Saves a token and its hash guard in one transaction; `Conflict` if either exists.
pub async fn save_token(
    store: &DynamoStore,
    token: &ApiToken,
    secret_hash: &str,
) -> Result<(), StoreError> {
    let record: Item = [
        ("pk".to_string(), s(format!("token#{}", token.id))),
        ("kind".to_string(), s(TOKEN)),
        (
            "created".to_string(),
            s(time_key(token.created_at, &token.id)),
        ),
        ("body".to_string(), s(to_json(token)?)),
    ]
    .into();
    let guard: Item = [
        ("pk".to_string(), s(format!("tokenhash#{secret_hash}"))),
        ("tokenId".to_string(), s(&token.id)),
    ]
    .into();
    let out = store
        .client
        .transact_write_items()
        .transact_items(put(&store.tables.access, record)?)
        .transact_items(put(&store.tables.access, guard)?)
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict(format!(
            "token {} (or its secret) already exists",
            token.id
        ))),
        Err(e) => Err(backend(e)),
    }
}

async fn token(store: &DynamoStore, id: &str) -> Result<Option<ApiToken>, StoreError> {
    match get(store, &format!("token#{id}")).await? {
        Some(item) => json(&item, "body").map(Some),
        None => Ok(None),
    }
}

fn usable(token: ApiToken, now: DateTime<Utc>) -> Option<ApiToken> {
    (token.revoked_at.is_none() && !token.is_expired(now)).then_some(token)
}

/// The usable token of a secret hash.
pub async fn token_by_hash(
    store: &DynamoStore,
    secret_hash: &str,
) -> Result<Option<ApiToken>, StoreError> {
    let Some(guard) = get(store, &format!("tokenhash#{secret_hash}")).await? else {
        return Ok(None);
    };
    let id = get_s(&guard, "tokenId")?;
    Ok(token(store, id).await?.and_then(|t| usable(t, Utc::now())))
}

/// Every token or access key (by `kind`), oldest first.
pub async fn list_kind<T: serde::de::DeserializeOwned + WithSecret>(
    store: &DynamoStore,
    kind: &str,
) -> Result<Vec<T>, StoreError> {
    let items = all_items(
        store
            .client
            .query()
            .table_name(&store.tables.access)
            .index_name(index::BY_KIND)
            .key_condition_expression("kind = :k")
            .expression_attribute_values(":k", s(kind)),
    )
    .await?;
    items.iter().map(decode).collect()
}

/// Records whose secret is kept beside their JSON (the JSON never carries it).
pub trait WithSecret: Sized {
    /// Puts the stored secret back.
    fn with_secret(self, _secret: Option<&str>) -> Self {
        self
    }
    /// The item prefix of its kind.
    fn prefix() -> &'static str;
    /// When it was revoked.
    fn set_revoked(&mut self, at: DateTime<Utc>);
}

impl WithSecret for ApiToken {
    fn prefix() -> &'static str {
        "token#"
    }
    fn set_revoked(&mut self, at: DateTime<Utc>) {
        self.revoked_at = Some(at);
    }
}

impl WithSecret for AccessKey {
    fn with_secret(mut self, secret: Option<&str>) -> Self {
        self.secret_access_key = secret.unwrap_or_default().to_string();
        self
    }
    fn prefix() -> &'static str {
        "key#"
    }
    fn set_revoked(&mut self, at: DateTime<Utc>) {
        self.revoked_at = Some(at);
    }
}

fn decode<T: serde::de::DeserializeOwned + WithSecret>(item: &Item) -> Result<T, StoreError> {
    let value: T = json(item, "body")?;
    Ok(value.with_secret(opt_s(item, "secret")))
}

/// Marks a token or key revoked (keeping the first revocation time); `NotFound` if absent.
pub async fn revoke<T: serde::de::DeserializeOwned + serde::Serialize + WithSecret>(
    store: &DynamoStore,
    id: &str,
    at: DateTime<Utc>,
) -> Result<T, StoreError> {
    let pk = format!("{}{id}", T::prefix());
    let Some(item) = get(store, &pk).await? else {
        return Err(StoreError::NotFound(format!("{id} not found")));
    };
    let mut record: T = decode(&item)?;
    let body = get_s(&item, "body")?;
    let already: serde_json::Value =
        serde_json::from_str(body).map_err(|e| corrupt("access", e))?;
    if already.get("revokedAt").is_some() {
        return Ok(record);
    }
    record.set_revoked(at);
    let new_body = to_json(&record)?;
    // Conditional on the body read, so a concurrent revocation keeps its own time.
    let out = store
        .client
        .update_item()
        .table_name(&store.tables.access)
        .key("pk", s(&pk))
        .update_expression("SET body = :new")
        .condition_expression("body = :old")
        .expression_attribute_values(":new", s(new_body))
        .expression_attribute_values(":old", s(body))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match out {
        Ok(_) => Ok(record),
        Err(e) if is_condition_failed(&e) => match get(store, &pk).await? {
            Some(item) => decode(&item),
            None => Err(StoreError::NotFound(format!("{id} not found"))),
        },
        Err(e) => Err(backend(e)),
    }
}

/// Saves an access key (its secret beside the JSON); `Conflict` if the id exists.
pub async fn save_access_key(store: &DynamoStore, key: &AccessKey) -> Result<(), StoreError> {
    let out = store
        .client
        .put_item()
        .table_name(&store.tables.access)
        .item("pk", s(format!("key#{}", key.access_key_id)))
        .item("kind", s(KEY))
        .item("created", s(time_key(key.created_at, &key.access_key_id)))
        .item("body", s(to_json(key)?))
        .item("secret", s(&key.secret_access_key))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict(format!(
            "access key {} already exists",
            key.access_key_id
        ))),
        Err(e) => Err(backend(e)),
    }
}

/// The unrevoked access key with this id.
pub async fn access_key(store: &DynamoStore, id: &str) -> Result<Option<AccessKey>, StoreError> {
    match get(store, &format!("key#{id}")).await? {
        Some(item) => {
            let key: AccessKey = decode(&item)?;
            Ok(key.revoked_at.is_none().then_some(key))
        }
        None => Ok(None),
    }
}

/// Saves a session. `expiresAt` doubles as the table's TTL attribute (epoch seconds in
/// `ttl`), so DynamoDB removes ended sessions by itself once TTL is enabled on the table.
pub async fn save_session(
    store: &DynamoStore,
    session_hash: &str,
    token_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    store
        .client
        .put_item()
        .table_name(&store.tables.access)
        .item("pk", s(format!("session#{session_hash}")))
        .item("tokenId", s(token_id))
        .item("expiresAt", s(instant(expires_at)))
        .item("ttl", n(expires_at.timestamp()))
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

/// The token of an unexpired session, if the token is usable.
pub async fn session_token(
    store: &DynamoStore,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiToken>, StoreError> {
    let Some(item) = get(store, &format!("session#{session_hash}")).await? else {
        return Ok(None);
    };
    if get_s(&item, "expiresAt")? <= instant(now).as_str() {
        return Ok(None);
    }
    let id = get_s(&item, "tokenId")?;
    Ok(token(store, id).await?.and_then(|t| usable(t, now)))
}

/// Ends a session.
pub async fn delete_session(store: &DynamoStore, session_hash: &str) -> Result<(), StoreError> {
    store
        .client
        .delete_item()
        .table_name(&store.tables.access)
        .key("pk", s(format!("session#{session_hash}")))
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

/// Appends an entry with the next `seq` of the counter.
pub async fn append_audit(store: &DynamoStore, entry: &AuditEntry) -> Result<(), StoreError> {
    let out = store
        .client
        .update_item()
        .table_name(&store.tables.access)
        .key("pk", s("audit-seq"))
        .update_expression("ADD seq :one")
        .expression_attribute_values(":one", n(1))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(backend)?;
    let seq = get_n(
        out.attributes()
            .ok_or_else(|| corrupt("audit counter", "no value"))?,
        "seq",
    )?;
    let mut entry = entry.clone();
    entry.seq = seq;
    store
        .client
        .put_item()
        .table_name(&store.tables.audit)
        .item("log", s("audit"))
        .item("seq", n(seq))
        .item("actor", s(&entry.actor))
        .item("body", s(to_json(&entry)?))
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

/// A page of the audit log, newest first.
pub async fn list_audit(
    store: &DynamoStore,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = q.limit.max(1);
    let mut request = store.client.query().table_name(&store.tables.audit);
    let mut key = match &q.actor {
        Some(actor) => {
            request = request
                .index_name(index::BY_ACTOR)
                .expression_attribute_values(":h", s(actor));
            "actor = :h".to_string()
        }
        None => {
            request = request
                .consistent_read(true)
                .expression_attribute_names("#l", "log")
                .expression_attribute_values(":h", s("audit"));
            "#l = :h".to_string()
        }
    };
    if let Some(before) = q.before_seq {
        key.push_str(" AND seq < :before");
        request = request.expression_attribute_values(":before", n(before));
    }
    let request = request
        .key_condition_expression(key)
        .scan_index_forward(false);
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = request
            .clone()
            .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        for item in page.items() {
            out.push(json(item, "body")?);
        }
        start = page.last_evaluated_key.clone();
        if start.is_none() || out.len() >= limit {
            return Ok(out);
        }
    }
}
