//! The engine's SQLite database: state machines, activities, executions and their history
//! events. Every event is written before the engine acts on it, so history read back is the
//! history that happened.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use wfm_asl::HistoryEvent;

use crate::error::EngineError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS state_machines (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    type TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS activities (
    arn TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
    state_machine_arn TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT,
    start_ms INTEGER NOT NULL,
    stop_ms INTEGER
);
CREATE INDEX IF NOT EXISTS executions_by_machine ON executions (state_machine_arn, start_ms);
CREATE TABLE IF NOT EXISTS events (
    execution_arn TEXT NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_arn, id)
) WITHOUT ROWID;
"#;

/// Schema changes after the first, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "ALTER TABLE state_machines ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE state_machines ADD COLUMN updated_ms INTEGER;",
];

fn migrate(conn: &Connection) -> Result<(), EngineError> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

/// A stored state machine.
#[derive(Debug, Clone)]
pub struct StateMachineRow {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// ASL JSON text.
    pub definition: String,
    /// Role.
    pub role_arn: String,
    /// STANDARD or EXPRESS.
    pub machine_type: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Deleted (kept for its running executions).
    pub deleted: bool,
}

/// A stored execution.
#[derive(Debug, Clone)]
pub struct ExecutionRow {
    /// ARN.
    pub arn: String,
    /// Its state machine.
    pub state_machine_arn: String,
    /// Name.
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    /// Input JSON text.
    pub input: String,
    /// Output JSON text once succeeded.
    pub output: Option<String>,
    /// Error once failed.
    pub error: Option<String>,
    /// Cause once failed.
    pub cause: Option<String>,
    /// Start.
    pub start: DateTime<Utc>,
    /// Stop.
    pub stop: Option<DateTime<Utc>>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// The engine's database handle: history goes through the writer thread (file databases),
/// reads of executions and events through a few reading connections, which WAL lets read
/// while the writer writes; state machines and activities through the main connection.
pub struct EngineDb {
    conn: Mutex<Connection>,
    /// Reading connections (file databases).
    readers: Option<wfm_sqlite::ReaderPool>,
    /// State machine rows by ARN, as last read.
    machines: Mutex<HashMap<String, StateMachineRow>>,
    /// The group-commit writer of a file database (`None` in memory: writes are direct).
    writer: Option<std::sync::mpsc::Sender<Queued>>,
}

/// Called once the write it was queued with is committed.
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// A history write: an event, or the closing event with the execution's terminal status.
enum Write {
    Event {
        arn: String,
        id: i64,
        body: String,
    },
    Finish {
        arn: String,
        id: i64,
        body: String,
        ending: [Option<String>; 4],
        stop_ms: i64,
    },
    /// A new RUNNING execution with its first event.
    Start {
        row: ExecutionRow,
        event_id: i64,
        body: String,
    },
    /// Nothing: waiting for it waits for everything queued before.
    Flush,
}

fn writer_stopped() -> EngineError {
    EngineError::Storage("the writer thread has stopped".into())
}

/// Who waits for a write's commit: a thread (blocking) or a task (awaiting).
enum Waiter {
    Thread(std::sync::mpsc::SyncSender<Result<(), String>>),
    Task(tokio::sync::oneshot::Sender<Result<(), String>>),
}

impl Waiter {
    fn answer(self, outcome: Result<(), String>) {
        // A waiter that went away (a dropped request) needs no answer.
        let _ = match self {
            Waiter::Thread(tx) => tx.send(outcome).map_err(|_| ()),
            Waiter::Task(tx) => tx.send(outcome).map_err(|_| ()),
        };
    }
}

struct Queued {
    write: Write,
    done: Option<Waiter>,
    after: Option<AfterCommit>,
}

/// The answer to a write that was refused (not failed): its execution already exists.
const EXECUTION_EXISTS: &str = "execution already exists";

/// Does one write. `Ok(Some(reason))` when the write was refused without failing its batch.
fn apply(conn: &Connection, write: &Write) -> rusqlite::Result<Option<&'static str>> {
    match write {
        Write::Event { arn, id, body } => {
            conn.prepare_cached(
                "INSERT INTO events (execution_arn, id, body) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![arn, id, body])?;
        }
        Write::Finish {
            arn,
            id,
            body,
            ending,
            stop_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO events (execution_arn, id, body) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![arn, id, body])?;
            let [status, output, error, cause] = ending;
            conn.prepare_cached(
                "UPDATE executions SET status = ?2, output = ?3, error = ?4, cause = ?5, stop_ms = ?6
                 WHERE arn = ?1",
            )?
            .execute(params![arn, status, output, error, cause, stop_ms])?;
        }
        Write::Start {
            row,
            event_id,
            body,
        } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO executions
                        (arn, state_machine_arn, name, status, input, start_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    row.arn,
                    row.state_machine_arn,
                    row.name,
                    row.status,
                    row.input,
                    ms(row.start)
                ])?;
            if inserted == 0 {
                return Ok(Some(EXECUTION_EXISTS));
            }
            conn.prepare_cached(
                "INSERT INTO events (execution_arn, id, body) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![row.arn, event_id, body])?;
        }
        Write::Flush => {}
    }
    Ok(None)
}

/// The writer thread: takes every queued write, commits them in one transaction (group
/// commit: one WAL append for many events), then acknowledges them in order; between groups
/// restarts the WAL when the checkpointer asks.
fn run_writer(
    mut conn: Connection,
    rx: std::sync::mpsc::Receiver<Queued>,
    wal: wfm_sqlite::WalRestart,
) {
    const MAX_BATCH: usize = 4096;
    while let Some(batch) = wfm_sqlite::next_batch(&rx, MAX_BATCH) {
        let result = (|| -> rusqlite::Result<Vec<Option<&'static str>>> {
            let tx = conn.transaction()?;
            let refused = batch
                .iter()
                .map(|q| apply(&tx, &q.write))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(refused)
        })()
        .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = batch.len(), "engine history write failed");
        }
        for (i, q) in batch.into_iter().enumerate() {
            let outcome = match &result {
                Ok(refused) => match refused.get(i).copied().flatten() {
                    Some(reason) => Err(reason.to_string()),
                    None => Ok(()),
                },
                Err(e) => Err(e.clone()),
            };
            let committed = outcome.is_ok();
            if let Some(done) = q.done {
                done.answer(outcome);
            }
            if committed {
                if let Some(after) = q.after {
                    after();
                }
            }
        }
        wal.run_if_asked(&conn);
    }
}

impl EngineDb {
    /// Opens (creating) the database at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let mut db = Self::init(Connection::open(path)?)?;
        let writer_conn = Connection::open(path)?;
        wfm_sqlite::tune(&writer_conn)?;
        let wal = wfm_sqlite::spawn_checkpointer(path, "wfm-engine-checkpointer").map_err(|e| {
            EngineError::Storage(format!("cannot start the checkpointer thread: {e}"))
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("wfm-engine-writer".into())
            .spawn(move || run_writer(writer_conn, rx, wal))
            .map_err(|e| EngineError::Storage(format!("cannot start the writer thread: {e}")))?;
        db.writer = Some(tx);
        db.readers = Some(wfm_sqlite::ReaderPool::open(path)?);
        Ok(db)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, EngineError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, EngineError> {
        wfm_sqlite::tune(&conn)?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            readers: None,
            machines: Mutex::new(HashMap::new()),
            writer: None,
        })
    }

    /// Queues a write (file database) or does it now (in memory). With `wait`, returns only
    /// once it is committed. `after` runs once it is committed.
    fn write(
        &self,
        write: Write,
        wait: bool,
        after: Option<AfterCommit>,
    ) -> Result<(), EngineError> {
        match &self.writer {
            Some(tx) => {
                let (done_tx, done_rx) = if wait {
                    let (t, r) = std::sync::mpsc::sync_channel(1);
                    (Some(Waiter::Thread(t)), Some(r))
                } else {
                    (None, None)
                };
                tx.send(Queued {
                    write,
                    done: done_tx,
                    after,
                })
                .map_err(|_| writer_stopped())?;
                if let Some(r) = done_rx {
                    r.recv()
                        .map_err(|_| writer_stopped())?
                        .map_err(EngineError::Storage)?;
                }
                Ok(())
            }
            None => {
                let refused = {
                    let mut conn = self.conn();
                    let tx = conn.transaction()?;
                    let refused = apply(&tx, &write)?;
                    tx.commit()?;
                    refused
                };
                if let Some(reason) = refused {
                    return Err(EngineError::Storage(reason.to_string()));
                }
                if let Some(after) = after {
                    after();
                }
                Ok(())
            }
        }
    }

    /// Queues a write (file database) and waits for its commit without blocking the thread;
    /// in memory does it now.
    async fn write_awaited(&self, write: Write) -> Result<(), EngineError> {
        let Some(tx) = &self.writer else {
            return self.write(write, false, None);
        };
        let (done, committed) = tokio::sync::oneshot::channel();
        tx.send(Queued {
            write,
            done: Some(Waiter::Task(done)),
            after: None,
        })
        .map_err(|_| writer_stopped())?;
        committed
            .await
            .map_err(|_| writer_stopped())?
            .map_err(EngineError::Storage)
    }

    /// A connection to read with: a free reading connection, else the next one in turn; the
    /// main connection in memory.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.readers {
            Some(pool) => pool.get(),
            None => self.conn(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: keep going.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a state machine.
    pub fn insert_state_machine(&self, row: &StateMachineRow) -> Result<(), EngineError> {
        self.conn().execute(
            "INSERT INTO state_machines (arn, name, definition, role_arn, type, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.arn,
                row.name,
                row.definition,
                row.role_arn,
                row.machine_type,
                ms(row.created)
            ],
        )?;
        Ok(())
    }

    /// Reads a state machine by ARN (deleted ones too). Rows are cached: every change of a
    /// state machine goes through this handle, which forgets the cached row.
    pub fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRow>, EngineError> {
        if let Some(row) = self.cached_machines().get(arn) {
            return Ok(Some(row.clone()));
        }
        let row = self
            .reader()
            .prepare_cached(
                "SELECT arn, name, definition, role_arn, type, created_ms, deleted
                 FROM state_machines WHERE arn = ?1",
            )?
            .query_row(params![arn], state_machine_row)
            .optional()?;
        if let Some(row) = &row {
            self.cached_machines().insert(arn.to_string(), row.clone());
        }
        Ok(row)
    }

    fn cached_machines(&self) -> std::sync::MutexGuard<'_, HashMap<String, StateMachineRow>> {
        self.machines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// State machines not deleted, by name, after `after` (exclusive).
    pub fn state_machines(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<StateMachineRow>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT arn, name, definition, role_arn, type, created_ms, deleted FROM state_machines
             WHERE deleted = 0 AND name > ?1 ORDER BY name LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], state_machine_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Replaces a state machine's definition and role.
    pub fn update_state_machine(
        &self,
        arn: &str,
        definition: &str,
        role_arn: &str,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.conn().execute(
            "UPDATE state_machines SET definition = ?2, role_arn = ?3, updated_ms = ?4 WHERE arn = ?1",
            params![arn, definition, role_arn, ms(now)],
        )?;
        self.cached_machines().remove(arn);
        Ok(())
    }

    /// Marks a state machine deleted (its running executions go on).
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        self.conn().execute(
            "UPDATE state_machines SET deleted = 1 WHERE arn = ?1",
            params![arn],
        )?;
        self.cached_machines().remove(arn);
        Ok(())
    }

    /// Activities by name after `after` (exclusive): (arn, name, created).
    pub fn activities(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT arn, name, created_ms FROM activities WHERE name > ?1 ORDER BY name LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, from_ms(r.get(2)?)))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One activity: (name, created).
    pub fn activity(&self, arn: &str) -> Result<Option<(String, DateTime<Utc>)>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT name, created_ms FROM activities WHERE arn = ?1")?
            .query_row(params![arn], |r| Ok((r.get(0)?, from_ms(r.get(1)?))))
            .optional()?)
    }

    /// Deletes an activity.
    pub fn delete_activity(&self, arn: &str) -> Result<(), EngineError> {
        self.conn()
            .execute("DELETE FROM activities WHERE arn = ?1", params![arn])?;
        Ok(())
    }

    /// Executions of a state machine, newest first, before the key `(start_ms, arn)`.
    pub fn executions(
        &self,
        state_machine_arn: &str,
        status: Option<&str>,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<ExecutionRow>, EngineError> {
        let (start, arn) = before.unwrap_or((i64::MAX, String::new()));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT arn, state_machine_arn, name, status, input, output, error, cause, start_ms, stop_ms
             FROM executions
             WHERE state_machine_arn = ?1 AND (?2 IS NULL OR status = ?2)
               AND (start_ms < ?3 OR (start_ms = ?3 AND arn < ?4))
             ORDER BY start_ms DESC, arn DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![state_machine_arn, status, start, arn, limit as i64],
            execution_row,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Inserts an activity unless it exists; returns its creation time.
    pub fn ensure_activity(
        &self,
        arn: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO activities (arn, name, created_ms) VALUES (?1, ?2, ?3)",
            params![arn, name, ms(now)],
        )?;
        let created: i64 = conn.query_row(
            "SELECT created_ms FROM activities WHERE arn = ?1",
            params![arn],
            |r| r.get(0),
        )?;
        Ok(from_ms(created))
    }

    /// Whether an activity exists.
    pub fn activity_exists(&self, arn: &str) -> Result<bool, EngineError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM activities WHERE arn = ?1")?
            .query_row(params![arn], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Inserts a new RUNNING execution together with its first event; returns once it is
    /// committed.
    pub async fn insert_execution(
        &self,
        row: &ExecutionRow,
        first_event: &HistoryEvent,
    ) -> Result<(), EngineError> {
        let body =
            serde_json::to_string(first_event).map_err(|e| EngineError::Storage(e.to_string()))?;
        self.write_awaited(Write::Start {
            row: row.clone(),
            event_id: first_event.id,
            body,
        })
        .await
        .map_err(|e| match e {
            EngineError::Storage(m) if m == EXECUTION_EXISTS => {
                EngineError::ExecutionAlreadyExists(format!(
                    "Execution Already Exists: '{}'",
                    row.arn
                ))
            }
            other => other,
        })
    }

    /// Reads an execution.
    pub fn execution(&self, arn: &str) -> Result<Option<ExecutionRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT arn, state_machine_arn, name, status, input, output, error, cause,
                        start_ms, stop_ms
                 FROM executions WHERE arn = ?1",
            )?
            .query_row(params![arn], execution_row)
            .optional()?)
    }

    /// Executions still RUNNING (after a restart: the ones to resume).
    pub fn running_executions(&self) -> Result<Vec<ExecutionRow>, EngineError> {
        let arns: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT arn FROM executions WHERE status = 'RUNNING'")?;
            let rows = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut out = Vec::with_capacity(arns.len());
        for arn in arns {
            if let Some(row) = self.execution(&arn)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Returns once everything queued so far is committed.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.write(Write::Flush, true, None)
    }

    /// Appends an event; with `wait`, returns once it is committed; `after` runs then.
    pub fn append_event(
        &self,
        execution_arn: &str,
        event: &HistoryEvent,
        wait: bool,
        after: Option<AfterCommit>,
    ) -> Result<(), EngineError> {
        let body = serde_json::to_string(event).map_err(|e| EngineError::Storage(e.to_string()))?;
        self.write(
            Write::Event {
                arn: execution_arn.to_string(),
                id: event.id,
                body,
            },
            wait,
            after,
        )
    }

    /// Appends the closing event and records the terminal status in one transaction; with
    /// `wait`, returns once it is committed; `after` runs then.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_execution(
        &self,
        execution_arn: &str,
        event: &HistoryEvent,
        status: &str,
        output: Option<&str>,
        error: Option<&str>,
        cause: Option<&str>,
        wait: bool,
        after: Option<AfterCommit>,
    ) -> Result<(), EngineError> {
        let body = serde_json::to_string(event).map_err(|e| EngineError::Storage(e.to_string()))?;
        let ending = [
            Some(status.to_string()),
            output.map(str::to_string),
            error.map(str::to_string),
            cause.map(str::to_string),
        ];
        self.write(
            Write::Finish {
                arn: execution_arn.to_string(),
                id: event.id,
                body,
                ending,
                stop_ms: ms(event.timestamp),
            },
            wait,
            after,
        )
    }

    /// Events of an execution with ids in `[from, to]`, ascending or descending.
    pub fn events(
        &self,
        execution_arn: &str,
        from: i64,
        to: i64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, EngineError> {
        let sql = if reverse {
            "SELECT body FROM events WHERE execution_arn = ?1 AND id BETWEEN ?2 AND ?3
             ORDER BY id DESC LIMIT ?4"
        } else {
            "SELECT body FROM events WHERE execution_arn = ?1 AND id BETWEEN ?2 AND ?3
             ORDER BY id ASC LIMIT ?4"
        };
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![execution_arn, from, to, limit as i64], |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for body in rows {
            let body = body?;
            out.push(
                serde_json::from_str(&body)
                    .map_err(|e| EngineError::Storage(format!("corrupt event: {e}")))?,
            );
        }
        Ok(out)
    }
}

fn state_machine_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StateMachineRow> {
    Ok(StateMachineRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        definition: r.get(2)?,
        role_arn: r.get(3)?,
        machine_type: r.get(4)?,
        created: from_ms(r.get(5)?),
        deleted: r.get::<_, i64>(6)? != 0,
    })
}

fn execution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        arn: r.get(0)?,
        state_machine_arn: r.get(1)?,
        name: r.get(2)?,
        status: r.get(3)?,
        input: r.get(4)?,
        output: r.get(5)?,
        error: r.get(6)?,
        cause: r.get(7)?,
        start: from_ms(r.get(8)?),
        stop: r.get::<_, Option<i64>>(9)?.map(from_ms),
    })
}
