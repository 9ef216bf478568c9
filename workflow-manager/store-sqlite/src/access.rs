//! [`AccessStore`] on SQLite: tokens, access keys, UI sessions and the audit log, each row
//! kept as its JSON body beside the columns looked up.
//!
//! Every API request looks its token up, so unrevoked tokens found are cached by hash. This
//! store is the only writer of its file (as its writer thread already assumes), and a
//! revocation goes through it: the revoked token leaves the cache before the revocation
//! returns, so the next request is refused. Unknown hashes are not cached (they cost a read
//! each, and cannot fill memory).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use wfm_core::access::{AccessKey, AccessStore, ApiToken, AuditEntry, AuditQuery};
use wfm_core::store::StoreError;

use crate::{backend, from_json, nanos, to_json, SqliteStore};

/// The most tokens cached; past it the cache starts over.
const MAX_CACHED_TOKENS: usize = 10_000;

/// Unrevoked tokens by the hash of their secret, and a generation that every forgetting
/// moves on: a lookup that read its row before a revocation committed must not cache it after.
#[derive(Default)]
pub(crate) struct TokenCache(std::sync::Mutex<(std::collections::HashMap<String, ApiToken>, u64)>);

type TokenMap = (std::collections::HashMap<String, ApiToken>, u64);

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, TokenMap> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached token and, either way, the generation to pass to [`Self::put`].
    fn get(&self, hash: &str) -> (Option<ApiToken>, u64) {
        let cache = self.lock();
        (cache.0.get(hash).cloned(), cache.1)
    }

    /// Caches a token read at `generation`, unless a token was forgotten since.
    fn put(&self, hash: String, token: ApiToken, generation: u64) {
        let mut cache = self.lock();
        if cache.1 != generation {
            return;
        }
        if cache.0.len() >= MAX_CACHED_TOKENS {
            cache.0.clear();
        }
        cache.0.insert(hash, token);
    }

    fn forget(&self, token_id: &str) {
        let mut cache = self.lock();
        cache.0.retain(|_, t| t.id != token_id);
        cache.1 += 1;
    }
}

/// Whether an insert failed on a uniqueness constraint.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn insert(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    what: String,
) -> Result<(), StoreError> {
    match conn.prepare_cached(sql).map_err(backend)?.execute(args) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(what)),
        Err(e) => Err(backend(e)),
    }
}

/// The first column (a JSON body) of every row of a query.
pub(crate) fn bodies(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend);
    rows
}

fn one_body(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(backend)?
        .query_row(args, |r| r.get::<_, String>(0))
        .optional()
        .map_err(backend)
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn save_token(&self, token: &ApiToken, secret_hash: &str) -> Result<(), StoreError> {
        let body = to_json(token)?;
        let (id, hash, revoked) = (
            token.id.clone(),
            secret_hash.to_string(),
            token.revoked_at.is_some(),
        );
        self.write(move |conn| {
            insert(
                conn,
                "INSERT INTO api_tokens (id, secret_hash, revoked, body) VALUES (?1, ?2, ?3, ?4)",
                params![id, hash, revoked, body],
                format!("token {id} (or its secret) already exists"),
            )
        })
        .await
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let now = Utc::now();
        let (cached, generation) = self.tokens.get(secret_hash);
        if let Some(token) = cached {
            return Ok(Some(token).filter(|t| !t.is_expired(now)));
        }
        let hash = secret_hash.to_string();
        let body = self
            .read(move |conn| {
                one_body(
                    conn,
                    "SELECT body FROM api_tokens WHERE secret_hash = ?1 AND revoked = 0",
                    params![hash],
                )
            })
            .await?;
        let token: Option<ApiToken> = body.map(|b| from_json(&b)).transpose()?;
        if let Some(t) = &token {
            self.tokens
                .put(secret_hash.to_string(), t.clone(), generation);
        }
        Ok(token.filter(|t| !t.is_expired(now)))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self
            .read(|conn| bodies(conn, "SELECT body FROM api_tokens ORDER BY rowid", []))
            .await?;
        rows.iter().map(|b| from_json(b)).collect()
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken, StoreError> {
        let token_id = id.to_string();
        let id = token_id.clone();
        // Forgotten before and after the commit: a lookup racing the revocation cannot put the
        // token back once the revocation has returned.
        self.tokens.forget(&token_id);
        let revoked = self
            .write(move |conn| {
                let body = one_body(
                    conn,
                    "SELECT body FROM api_tokens WHERE id = ?1",
                    params![id],
                )?
                .ok_or_else(|| StoreError::NotFound(format!("token not found: {id}")))?;
                let mut token: ApiToken = from_json(&body)?;
                token.revoked_at.get_or_insert(at);
                conn.prepare_cached("UPDATE api_tokens SET revoked = 1, body = ?2 WHERE id = ?1")
                    .map_err(backend)?
                    .execute(params![id, to_json(&token)?])
                    .map_err(backend)?;
                conn.prepare_cached("DELETE FROM ui_sessions WHERE token_id = ?1")
                    .map_err(backend)?
                    .execute(params![id])
                    .map_err(backend)?;
                Ok(token)
            })
            .await;
        self.tokens.forget(&token_id);
        revoked
    }

    async fn save_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let body = to_json(key)?;
        let (id, secret, revoked) = (
            key.access_key_id.clone(),
            key.secret_access_key.clone(),
            key.revoked_at.is_some(),
        );
        self.write(move |conn| {
            insert(
                conn,
                "INSERT INTO access_keys (id, secret, revoked, body) VALUES (?1, ?2, ?3, ?4)",
                params![id, secret, revoked, body],
                format!("access key {id} already exists"),
            )
        })
        .await
    }

    async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError> {
        let id = access_key_id.to_string();
        let row: Option<(String, String)> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT body, secret FROM access_keys WHERE id = ?1 AND revoked = 0",
                )
                .map_err(backend)?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)
            })
            .await?;
        row.map(|(body, secret)| {
            let mut key: AccessKey = from_json(&body)?;
            key.secret_access_key = secret;
            Ok(key)
        })
        .transpose()
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError> {
        let rows = self
            .read(|conn| bodies(conn, "SELECT body FROM access_keys ORDER BY rowid", []))
            .await?;
        rows.iter().map(|b| from_json(b)).collect()
    }

    async fn revoke_access_key(
        &self,
        access_key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<AccessKey, StoreError> {
        let id = access_key_id.to_string();
        self.write(move |conn| {
            let body = one_body(
                conn,
                "SELECT body FROM access_keys WHERE id = ?1",
                params![id],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("access key not found: {id}")))?;
            let mut key: AccessKey = from_json(&body)?;
            key.revoked_at.get_or_insert(at);
            conn.prepare_cached("UPDATE access_keys SET revoked = 1, body = ?2 WHERE id = ?1")
                .map_err(backend)?
                .execute(params![id, to_json(&key)?])
                .map_err(backend)?;
            Ok(key)
        })
        .await
    }

    async fn save_session(
        &self,
        session_hash: &str,
        token_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (hash, token) = (session_hash.to_string(), token_id.to_string());
        let now = nanos(Utc::now());
        self.write(move |conn| {
            // Expired sessions go when a new one comes: logins are rare, the table stays small.
            conn.prepare_cached("DELETE FROM ui_sessions WHERE expires_ns < ?1")
                .map_err(backend)?
                .execute(params![now])
                .map_err(backend)?;
            insert(
                conn,
                "INSERT INTO ui_sessions (session_hash, token_id, expires_ns) VALUES (?1, ?2, ?3)",
                params![hash, token, nanos(expires_at)],
                "session already exists".into(),
            )
        })
        .await
    }

    async fn session_token(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiToken>, StoreError> {
        let hash = session_hash.to_string();
        let body = self
            .read(move |conn| {
                one_body(
                    conn,
                    "SELECT t.body FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id
                     WHERE s.session_hash = ?1 AND s.expires_ns > ?2 AND t.revoked = 0",
                    params![hash, nanos(now)],
                )
            })
            .await?;
        let token: Option<ApiToken> = body.map(|b| from_json(&b)).transpose()?;
        Ok(token.filter(|t| !t.is_expired(now)))
    }

    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        let hash = session_hash.to_string();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM ui_sessions WHERE session_hash = ?1")
                .map_err(backend)?
                .execute(params![hash])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let body = to_json(entry)?;
        let actor = entry.actor.clone();
        // Queued, not awaited: the entry joins the next group commit, so auditing adds no
        // commit wait to the mutation it records (which is already committed).
        self.writer.submit("an audit log entry", move |conn| {
            conn.prepare_cached("INSERT INTO audit_log (actor, body) VALUES (?1, ?2)")
                .map_err(backend)?
                .execute(params![actor, body])
                .map_err(backend)?;
            Ok(())
        })
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let q = query.clone();
        // Through the writer, behind any entry still queued: the log shows every mutation
        // answered before it was read. Audit reads are rare.
        let rows: Vec<(i64, String)> = self
            .write(move |conn| {
                let before = q.before_seq.unwrap_or(i64::MAX);
                let limit = q.limit.max(1) as i64;
                let (sql, args): (&str, Vec<rusqlite::types::Value>) = match q.actor {
                    Some(actor) => (
                        "SELECT seq, body FROM audit_log WHERE actor = ?1 AND seq < ?2
                         ORDER BY seq DESC LIMIT ?3",
                        vec![actor.into(), before.into(), limit.into()],
                    ),
                    None => (
                        "SELECT seq, body FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                        vec![before.into(), limit.into()],
                    ),
                };
                let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend);
                rows
            })
            .await?;
        rows.into_iter()
            .map(|(seq, body)| {
                let mut e: AuditEntry = from_json(&body)?;
                e.seq = seq;
                Ok(e)
            })
            .collect()
    }
}
