//! The SQLite implementation of the [`Store`] trait (rusqlite, WAL). Each record is kept as its
//! JSON body beside the columns that are queried, so the stored shape is exactly the API's.
//!
//! Workflow listings page by keyset on `(created_ns, id)`: the page token carries the last row's
//! key, so a page never skips or repeats a row, also when creation times tie, and rows inserted
//! meanwhile do not shift it. This crate owns only storage; it knows nothing of HTTP or engines.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use wfm_core::model::{StateResource, Workflow, WorkflowDefinition, WorkflowStatus};
use wfm_core::store::{Store, StoreError, WorkflowPage, WorkflowQuery};

mod access;
mod writer;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS workflow_definitions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state_resources (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    definition_name TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflows_by_definition
    ON workflows (definition_name, created_ns, id);
CREATE INDEX IF NOT EXISTS workflows_by_status
    ON workflows (status, created_ns, id);
CREATE TABLE IF NOT EXISTS workflow_tags (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    workflow_id TEXT NOT NULL,
    PRIMARY KEY (key, value, created_ns, workflow_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflow_tags_by_workflow ON workflow_tags (workflow_id, key, value);
"#;

/// Schema changes after the first, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // Namespace and queue as columns, and the indexes every listing filter uses: each filter
    // (or pair that operators combine) leads an index ending in (created_ns, id), so a page is
    // read in order from an index whatever the filters.
    "ALTER TABLE workflows ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
     ALTER TABLE workflows ADD COLUMN queue TEXT NOT NULL DEFAULT '';
     UPDATE workflows SET namespace = json_extract(body, '$.namespace'), queue = json_extract(body, '$.queue');
     INSERT OR IGNORE INTO workflow_tags (key, value, created_ns, workflow_id)
        SELECT t.key, t.value, w.created_ns, w.id FROM workflows w, json_each(w.body, '$.tags') t;
     CREATE INDEX IF NOT EXISTS workflows_by_created ON workflows (created_ns, id);
     CREATE INDEX IF NOT EXISTS workflows_by_definition_status ON workflows (definition_name, status, created_ns, id);
     CREATE INDEX IF NOT EXISTS workflows_by_status_resolved ON workflows (status, resolved, created_ns, id);
     CREATE INDEX IF NOT EXISTS workflows_by_resolved ON workflows (resolved, created_ns, id);
     CREATE INDEX IF NOT EXISTS workflows_by_namespace ON workflows (namespace, created_ns, id);
     CREATE INDEX IF NOT EXISTS workflows_by_queue ON workflows (queue, created_ns, id);",
    // Access control: API tokens (by the hash of their secret), access keys, UI sessions (by
    // the hash of their cookie) and the audit log.
    "CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        revoked INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL
     );
     CREATE TABLE access_keys (
        id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL
     );
     CREATE TABLE ui_sessions (
        session_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        expires_ns INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id);
     CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        actor TEXT NOT NULL,
        body TEXT NOT NULL
     );
     CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);",
];

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let applied: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(backend)?;
    }
    Ok(())
}

/// The SQL and arguments of a workflow listing's filters (without paging and order). With tag
/// filters the first tag drives the query through `workflow_tags` (`t`); the others must exist.
fn filter_sql(q: &WorkflowQuery) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let (from, order_table) = match q.tags.first() {
        Some((k, v)) => {
            args.push(k.clone().into());
            args.push(v.clone().into());
            ("FROM workflow_tags t JOIN workflows w ON w.id = t.workflow_id WHERE t.key = ? AND t.value = ?", "t")
        }
        None => ("FROM workflows w WHERE 1 = 1", "w"),
    };
    sql.push_str(from);
    let created = if order_table == "t" {
        "t.created_ns"
    } else {
        "w.created_ns"
    };
    for (k, v) in q.tags.iter().skip(1) {
        sql.push_str(" AND EXISTS (SELECT 1 FROM workflow_tags x WHERE x.workflow_id = w.id AND x.key = ? AND x.value = ?)");
        args.push(k.clone().into());
        args.push(v.clone().into());
    }
    if !q.definition_name.is_empty() {
        sql.push_str(" AND w.definition_name = ?");
        args.push(q.definition_name.clone().into());
    }
    match q.statuses.as_slice() {
        [] => {}
        [one] => {
            sql.push_str(" AND w.status = ?");
            args.push(one.as_str().to_string().into());
        }
        many => {
            // `+` keeps SQLite from reading several status ranges and sorting them: the page is
            // read in order from another index and the statuses checked on the way.
            sql.push_str(" AND +w.status IN (");
            sql.push_str(&vec!["?"; many.len()].join(", "));
            sql.push(')');
            args.extend(many.iter().map(|s| s.as_str().to_string().into()));
        }
    }
    if let Some(resolved) = q.resolved_by_user {
        sql.push_str(" AND w.resolved = ?");
        args.push((resolved as i64).into());
    }
    if let Some(ns) = &q.namespace {
        sql.push_str(" AND w.namespace = ?");
        args.push(ns.clone().into());
    }
    if let Some(queue) = &q.queue {
        sql.push_str(" AND w.queue = ?");
        args.push(queue.clone().into());
    }
    if let Some(after) = q.created_after {
        sql.push_str(&format!(" AND {created} >= ?"));
        args.push(nanos(after).into());
    }
    if let Some(before) = q.created_before {
        sql.push_str(&format!(" AND {created} < ?"));
        args.push(nanos(before).into());
    }
    (sql, args)
}

/// The full listing query of a page (also used by the query-plan test).
pub fn list_sql(q: &WorkflowQuery) -> Result<(String, Vec<rusqlite::types::Value>), StoreError> {
    let (filters, mut args) = filter_sql(q);
    let key = if q.tags.is_empty() {
        ("w.created_ns", "w.id")
    } else {
        ("t.created_ns", "t.workflow_id")
    };
    let mut sql = format!("SELECT w.created_ns, w.id, w.body {filters}");
    if let Some(token) = &q.page_token {
        let page = decode_token(token)?;
        let op = if q.oldest_first { ">" } else { "<" };
        sql.push_str(&format!(" AND ({}, {}) {op} (?, ?)", key.0, key.1));
        args.push(page.c.into());
        args.push(page.i.into());
    }
    let dir = if q.oldest_first { "ASC" } else { "DESC" };
    sql.push_str(&format!(
        " ORDER BY {} {dir}, {} {dir} LIMIT ?",
        key.0, key.1
    ));
    args.push(((q.limit.max(1) + 1) as i64).into());
    Ok((sql, args))
}

/// Inserts a new workflow, stored as `body` (its JSON, made by the caller: the writer thread
/// is the one thing every write waits for), and its tags; `Conflict` if the id is taken.
fn insert_workflow(conn: &Connection, wf: &Workflow, body: &str) -> Result<(), StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO workflows
                (id, definition_name, created_ns, status, resolved, namespace, queue, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(backend)?
        .execute(params![
            wf.id,
            wf.workflow_definition.name,
            nanos(wf.created_at),
            wf.status.as_str(),
            wf.resolved_by_user,
            wf.namespace,
            wf.queue,
            body
        ])
        .map_err(backend)?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "workflow {} already exists",
            wf.id
        )));
    }
    for (key, value) in &wf.tags {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO workflow_tags (key, value, created_ns, workflow_id)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(backend)?
        .execute(params![key, value, nanos(wf.created_at), wf.id])
        .map_err(backend)?;
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn from_json<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

/// The key of the last row of a page.
#[derive(Serialize, Deserialize)]
struct PageKey {
    c: i64,
    i: String,
}

fn encode_token(key: &PageKey) -> Result<String, StoreError> {
    Ok(URL_SAFE_NO_PAD.encode(to_json(key)?))
}

fn decode_token(token: &str) -> Result<PageKey, StoreError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            StoreError::InvalidPageToken(format!("'{token}' was not issued by this store"))
        })
}

/// The SQLite store: one writer thread (group commit, see [`writer`]) and a few reading
/// connections, which WAL lets read while the writer writes. In memory there is only the
/// writer's connection, and reads go through it too.
pub struct SqliteStore {
    writer: writer::Writer,
    readers: Option<wfm_sqlite::ReaderPool>,
    /// Definition versions never change once stored: parsed bodies by (name, version).
    definitions: Mutex<HashMap<(String, i64), WorkflowDefinition>>,
    /// The latest version of each definition name read or saved (every save goes through here).
    latest_versions: Mutex<HashMap<String, i64>>,
    /// Unrevoked tokens found by the hash of their secret (see [`access`]).
    tokens: access::TokenCache,
}

impl SqliteStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Self::init(Connection::open(path).map_err(backend)?)?;
        let readers = wfm_sqlite::ReaderPool::open(path).map_err(backend)?;
        let wal =
            wfm_sqlite::spawn_checkpointer(path, "wfm-store-checkpointer").map_err(backend)?;
        Self::with(conn, Some(readers), Some(wal))
    }

    /// A store in memory, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Self::init(Connection::open_in_memory().map_err(backend)?)?;
        Self::with(conn, None, None)
    }

    fn init(conn: Connection) -> Result<Connection, StoreError> {
        wfm_sqlite::tune(&conn).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        migrate(&conn)?;
        Ok(conn)
    }

    fn with(
        writer_conn: Connection,
        readers: Option<wfm_sqlite::ReaderPool>,
        wal: Option<wfm_sqlite::WalRestart>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            writer: writer::Writer::start(writer_conn, wal)?,
            readers,
            definitions: Mutex::new(HashMap::new()),
            latest_versions: Mutex::new(HashMap::new()),
            tokens: Default::default(),
        })
    }

    /// Saves many new workflows in one transaction (generators and benchmarks).
    pub async fn save_many(&self, workflows: Vec<Workflow>) -> Result<(), StoreError> {
        let bodies = workflows
            .iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()?;
        self.writer
            .run(move |conn| {
                for (wf, body) in workflows.iter().zip(&bodies) {
                    insert_workflow(conn, wf, body)?;
                }
                Ok(())
            })
            .await
    }

    /// A reading connection (file databases).
    fn reader(&self) -> Option<MutexGuard<'_, Connection>> {
        self.readers.as_ref().map(|pool| pool.get())
    }

    /// Runs a read: on a reading connection where there is one, else on the writer's.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(conn) = self.reader() {
            return f(&conn);
        }
        self.writer.run(f).await
    }

    /// Runs a write in the writer's next group commit.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.run(f).await
    }

    async fn definition_bodies(
        &self,
        sql: &'static str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        let bodies: Vec<String> = self
            .read(move |conn| access::bodies(conn, sql, params_from_iter(args)))
            .await?;
        bodies.iter().map(|b| from_json(b)).collect()
    }

    fn cached_definition(&self, name: &str, version: i64) -> Option<WorkflowDefinition> {
        self.definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(name.to_string(), version))
            .cloned()
    }

    fn cache_definition(&self, def: &WorkflowDefinition) {
        self.definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((def.name.clone(), def.version), def.clone());
    }

    fn latest_versions(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.latest_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `version` of `name` exists; returns the latest version known.
    fn note_latest(&self, name: &str, version: i64) -> i64 {
        let mut latest = self.latest_versions();
        let known = latest.entry(name.to_string()).or_insert(version);
        *known = (*known).max(version);
        *known
    }
}

/// Replaces a workflow (refusing terminal to non-terminal), if `expected` is given only when
/// the stored `lastUpdated` equals it. Returns whether it was replaced.
fn replace_workflow(
    conn: &Connection,
    wf: &Workflow,
    body: &str,
    expected: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let current: Option<(String, String)> = conn
        .prepare_cached("SELECT status, body FROM workflows WHERE id = ?1")
        .map_err(backend)?
        .query_row(params![wf.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?;
    let Some((status, stored_body)) = current else {
        return Err(StoreError::NotFound(format!(
            "workflow not found: {}",
            wf.id
        )));
    };
    if let Some(expected) = expected {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stamp {
            last_updated: DateTime<Utc>,
        }
        let stored: Stamp = from_json(&stored_body)?;
        if stored.last_updated != expected {
            return Ok(false);
        }
    }
    let status = WorkflowStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("corrupt status '{status}'")))?;
    if status.is_terminal() && !wf.status.is_terminal() {
        return Err(StoreError::TerminalToNonTerminal {
            id: wf.id.clone(),
            from: status.as_str(),
            to: wf.status.as_str(),
        });
    }
    conn.prepare_cached("UPDATE workflows SET status = ?2, resolved = ?3, body = ?4 WHERE id = ?1")
        .map_err(backend)?
        .execute(params![
            wf.id,
            wf.status.as_str(),
            wf.resolved_by_user,
            body
        ])
        .map_err(backend)?;
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_workflow_definition(&self, def: &WorkflowDefinition) -> Result<(), StoreError> {
        let body = to_json(def)?;
        let (name, version) = (def.name.clone(), def.version);
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO workflow_definitions (name, version, body) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?
                .execute(params![name, version, body])
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "workflow definition {name} version {version} already exists"
                )));
            }
            Ok(())
        })
        .await?;
        self.cache_definition(def);
        self.note_latest(&def.name, def.version);
        Ok(())
    }

    async fn get_workflow_definition(
        &self,
        name: &str,
        version: i64,
    ) -> Result<WorkflowDefinition, StoreError> {
        if let Some(def) = self.cached_definition(name, version) {
            return Ok(def);
        }
        let def = self
            .definition_bodies(
                "SELECT body FROM workflow_definitions WHERE name = ?1 AND version = ?2",
                vec![name.to_string().into(), version.into()],
            )
            .await?
            .pop()
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "workflow definition not found: {name} version {version}"
                ))
            })?;
        self.cache_definition(&def);
        Ok(def)
    }

    async fn latest_workflow_definition(
        &self,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError> {
        let cached = self.latest_versions().get(name).copied();
        if let Some(v) = cached {
            return self.get_workflow_definition(name, v).await;
        }
        let owned = name.to_string();
        let version: Option<i64> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT version FROM workflow_definitions WHERE name = ?1
                     ORDER BY version DESC LIMIT 1",
                )
                .map_err(backend)?
                .query_row(params![owned], |r| r.get(0))
                .optional()
                .map_err(backend)
            })
            .await?;
        match version {
            Some(v) => {
                let v = self.note_latest(name, v);
                self.get_workflow_definition(name, v).await
            }
            None => Err(StoreError::NotFound(format!(
                "workflow definition not found: {name}"
            ))),
        }
    }

    async fn workflow_definition_versions(
        &self,
        name: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        let defs = self
            .definition_bodies(
                "SELECT body FROM workflow_definitions WHERE name = ?1 ORDER BY version DESC",
                vec![name.to_string().into()],
            )
            .await?;
        if defs.is_empty() {
            return Err(StoreError::NotFound(format!(
                "workflow definition not found: {name}"
            )));
        }
        Ok(defs)
    }

    async fn latest_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError> {
        self.definition_bodies(
            "SELECT d.body FROM workflow_definitions d
             JOIN (SELECT name, MAX(version) AS v FROM workflow_definitions GROUP BY name) l
               ON d.name = l.name AND d.version = l.v
             ORDER BY d.name",
            Vec::new(),
        )
        .await
    }

    async fn save_state_resource(&self, resource: &StateResource) -> Result<(), StoreError> {
        let body = to_json(resource)?;
        let (namespace, name) = (resource.namespace.clone(), resource.name.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO state_resources (namespace, name, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, name) DO UPDATE SET body = excluded.body",
                params![namespace, name, body],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_state_resource(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<StateResource, StoreError> {
        let (ns, n) = (namespace.to_string(), name.to_string());
        let body: Option<String> = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT body FROM state_resources WHERE namespace = ?1 AND name = ?2",
                    params![ns, n],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)
            })
            .await?;
        match body {
            Some(b) => from_json(&b),
            None => Err(StoreError::NotFound(format!(
                "state resource not found: {namespace}/{name}"
            ))),
        }
    }

    async fn list_state_resources(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<StateResource>, StoreError> {
        let ns = namespace.map(str::to_string);
        let rows: Vec<String> = self
            .read(move |conn| {
                let (sql, args): (&str, Vec<rusqlite::types::Value>) = match ns {
                    Some(ns) => (
                        "SELECT body FROM state_resources WHERE namespace = ?1 ORDER BY name",
                        vec![ns.into()],
                    ),
                    None => (
                        "SELECT body FROM state_resources ORDER BY namespace, name",
                        vec![],
                    ),
                };
                access::bodies(conn, sql, params_from_iter(args))
            })
            .await?;
        rows.iter().map(|b| from_json(b)).collect()
    }

    async fn delete_state_resource(&self, namespace: &str, name: &str) -> Result<(), StoreError> {
        let (ns, n) = (namespace.to_string(), name.to_string());
        self.write(move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM state_resources WHERE namespace = ?1 AND name = ?2",
                    params![ns, n],
                )
                .map_err(backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound(format!(
                    "state resource not found: {ns}/{n}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn save_workflow(&self, wf: &Workflow) -> Result<(), StoreError> {
        let body = to_json(wf)?;
        let wf = wf.clone();
        self.write(move |conn| insert_workflow(conn, &wf, &body))
            .await
    }

    async fn update_workflow(&self, wf: &Workflow) -> Result<(), StoreError> {
        let body = to_json(wf)?;
        let wf = wf.clone();
        self.write(move |conn| replace_workflow(conn, &wf, &body, None).map(|_| ()))
            .await
    }

    async fn update_workflow_if(
        &self,
        wf: &Workflow,
        expected: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let body = to_json(wf)?;
        let wf = wf.clone();
        self.write(move |conn| replace_workflow(conn, &wf, &body, Some(expected)))
            .await
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow, StoreError> {
        let owned = id.to_string();
        let body: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM workflows WHERE id = ?1")
                    .map_err(backend)?
                    .query_row(params![owned], |r| r.get(0))
                    .optional()
                    .map_err(backend)
            })
            .await?;
        match body {
            Some(b) => from_json(&b),
            None => Err(StoreError::NotFound(format!("workflow not found: {id}"))),
        }
    }

    async fn delete_workflow(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM workflow_tags WHERE workflow_id = ?1",
                params![id],
            )
            .map_err(backend)?;
            let n = conn
                .execute("DELETE FROM workflows WHERE id = ?1", params![id])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("workflow not found: {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn count_workflows(
        &self,
        q: &WorkflowQuery,
    ) -> Result<std::collections::BTreeMap<WorkflowStatus, u64>, StoreError> {
        let (filters, args) = filter_sql(q);
        let sql = format!("SELECT w.status, COUNT(*) {filters} GROUP BY w.status");
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
                let rows = stmt
                    .query_map(params_from_iter(args), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend);
                rows
            })
            .await?;
        let mut counts = std::collections::BTreeMap::new();
        for (status, n) in rows {
            if let Some(s) = WorkflowStatus::parse(&status) {
                counts.insert(s, n.max(0) as u64);
            }
        }
        Ok(counts)
    }

    async fn unfinished_workflow_ids(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM workflows WHERE status IN ('queued', 'running')
                     ORDER BY created_ns, id LIMIT ?1",
                )
                .map_err(backend)?;
            let ids = stmt
                .query_map(params![limit as i64], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(backend);
            ids
        })
        .await
    }

    async fn unfinished_workflows_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let since_ns = nanos(since);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, created_ns FROM workflows
                     WHERE status IN ('queued', 'running') AND created_ns >= ?2
                     ORDER BY created_ns, id LIMIT ?1",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![limit as i64, since_ns], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?
                .map(|row| row.map(|(id, ns)| (id, DateTime::from_timestamp_nanos(ns))))
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend);
            rows
        })
        .await
    }

    async fn list_workflows(&self, q: &WorkflowQuery) -> Result<WorkflowPage, StoreError> {
        let limit = q.limit.max(1);
        let (sql, args) = list_sql(q)?;
        let rows: Vec<(i64, String, String)> = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
                let rows = stmt
                    .query_map(params_from_iter(args), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend);
                rows
            })
            .await?;
        let more = rows.len() > limit;
        let page = &rows[..rows.len().min(limit)];
        let next_page_token = match (more, page.last()) {
            (true, Some((c, i, _))) => Some(encode_token(&PageKey {
                c: *c,
                i: i.clone(),
            })?),
            _ => None,
        };
        let workflows = page
            .iter()
            .map(|(_, _, b)| from_json(b))
            .collect::<Result<Vec<Workflow>, _>>()?;
        Ok(WorkflowPage {
            workflows,
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests;
