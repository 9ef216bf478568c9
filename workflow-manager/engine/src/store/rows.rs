//! Reading and writing the rows of state machines, revisions, activities and executions, and
//! what a restart or a load reads: an execution's frames and Map items, the tasks and timers
//! that are out, the executions left with frames to run.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::EngineDb;
use crate::error::EngineError;

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
    /// The current definition's revision.
    pub revision: i64,
}

/// A stored execution.
#[derive(Debug, Clone)]
pub struct ExecutionRow {
    /// Its number.
    pub id: i64,
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
    /// The definition it runs.
    pub revision: i64,
    /// Next event id.
    pub next_event: i64,
    /// Next task or timer number.
    pub next_seq: u32,
    /// Next frame number.
    pub next_frame: u32,
    /// Its time-out timer: (number, due).
    pub timeout: Option<(u32, i64)>,
}

/// An execution's state as stored: its row, its frame rows and its Map items.
#[derive(Debug)]
pub struct Loaded {
    /// The execution.
    pub row: ExecutionRow,
    /// (parent or -1, frame, body).
    pub frames: Vec<(i64, u32, String)>,
    /// (Map frame, body).
    pub items: Vec<(u32, String)>,
}

/// An activity task or service call that is out.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// The execution.
    pub execution: i64,
    /// The task's number.
    pub seq: u32,
    /// 0: activity task, 1: service call.
    pub kind: i64,
    /// The activity.
    pub activity: Option<String>,
    /// The task input.
    pub input: Option<String>,
    /// Its token's secret.
    pub secret: Option<String>,
    /// `HeartbeatSeconds`.
    pub heartbeat: Option<u64>,
    /// Scheduled, epoch ms.
    pub scheduled_ms: i64,
    /// Whether a worker was handed it before.
    pub handed_out: bool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Epoch milliseconds as a time.
pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

const MACHINE_COLUMNS: &str =
    "arn, name, definition, role_arn, type, created_ms, deleted, COALESCE(revision, 0)";

fn state_machine_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StateMachineRow> {
    Ok(StateMachineRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        definition: r.get(2)?,
        role_arn: r.get(3)?,
        machine_type: r.get(4)?,
        created: from_ms(r.get(5)?),
        deleted: r.get::<_, i64>(6)? != 0,
        revision: r.get(7)?,
    })
}

const EXECUTION_COLUMNS: &str = "id, arn, state_machine_arn, name, status, input, output, error, \
     cause, start_ms, stop_ms, revision, next_event, next_seq, next_frame, timeout_timer, timeout_due";

fn execution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    let timer: Option<u32> = r.get(15)?;
    let due: Option<i64> = r.get(16)?;
    Ok(ExecutionRow {
        id: r.get(0)?,
        arn: r.get(1)?,
        state_machine_arn: r.get(2)?,
        name: r.get(3)?,
        status: r.get(4)?,
        input: r.get(5)?,
        output: r.get(6)?,
        error: r.get(7)?,
        cause: r.get(8)?,
        start: from_ms(r.get(9)?),
        stop: r.get::<_, Option<i64>>(10)?.map(from_ms),
        revision: r.get(11)?,
        next_event: r.get(12)?,
        next_seq: r.get(13)?,
        next_frame: r.get(14)?,
        timeout: timer.zip(due),
    })
}

fn task_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRecord> {
    Ok(TaskRecord {
        execution: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        activity: r.get(3)?,
        input: r.get(4)?,
        secret: r.get(5)?,
        heartbeat: r.get::<_, Option<i64>>(6)?.map(|h| h.max(0) as u64),
        scheduled_ms: r.get(7)?,
        handed_out: r.get::<_, i64>(8)? != 0,
    })
}

const TASK_COLUMNS: &str =
    "execution, seq, kind, activity, input, secret, heartbeat, scheduled_ms, handed_out";

/// Adds a revision of a state machine's definition; returns its number.
fn add_revision(conn: &Connection, arn: &str, definition: &str) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO revisions (state_machine_arn, definition) VALUES (?1, ?2)",
        params![arn, definition],
    )?;
    Ok(conn.last_insert_rowid())
}

impl EngineDb {
    /// Inserts a state machine (and its first revision).
    pub fn insert_state_machine(&self, row: &StateMachineRow) -> Result<i64, EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let revision = add_revision(&tx, &row.arn, &row.definition)?;
        tx.execute(
            "INSERT INTO state_machines (arn, name, definition, role_arn, type, created_ms, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.arn,
                row.name,
                row.definition,
                row.role_arn,
                row.machine_type,
                ms(row.created),
                revision
            ],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// A state machine by ARN (deleted ones too).
    pub fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {MACHINE_COLUMNS} FROM state_machines WHERE arn = ?1"
            ))?
            .query_row(params![arn], state_machine_row)
            .optional()?)
    }

    /// Every state machine (deleted ones too), to cache at start.
    pub fn all_state_machines(&self) -> Result<Vec<StateMachineRow>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {MACHINE_COLUMNS} FROM state_machines"))?;
        let rows = stmt.query_map([], state_machine_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// State machines not deleted, by name, after `after` (exclusive).
    pub fn state_machines(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<StateMachineRow>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MACHINE_COLUMNS} FROM state_machines
             WHERE deleted = 0 AND name > ?1 ORDER BY name LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], state_machine_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Replaces a state machine's definition (as a new revision) and role.
    pub fn update_state_machine(
        &self,
        arn: &str,
        definition: &str,
        role_arn: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let revision = add_revision(&tx, arn, definition)?;
        tx.execute(
            "UPDATE state_machines SET definition = ?2, role_arn = ?3, updated_ms = ?4, revision = ?5
             WHERE arn = ?1",
            params![arn, definition, role_arn, ms(now), revision],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// Marks a state machine deleted (its running executions go on).
    /// Its versions, aliases and tags go with it (its version numbers stay used).
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE state_machines SET deleted = 1 WHERE arn = ?1",
            params![arn],
        )?;
        for table in ["versions", "aliases"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE state_machine_arn = ?1"),
                params![arn],
            )?;
        }
        tx.execute("DELETE FROM tags WHERE resource_arn = ?1", params![arn])?;
        tx.commit()?;
        Ok(())
    }

    /// The definition text of a revision.
    pub fn revision(&self, id: i64) -> Result<Option<String>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT definition FROM revisions WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    /// Activities by name after `after` (exclusive): (arn, name, created).
    pub fn activities(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT arn, name, created_ms FROM activities WHERE name > ?1 ORDER BY name LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, from_ms(r.get(2)?)))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every activity's ARN.
    pub fn activity_arns(&self) -> Result<Vec<String>, EngineError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT arn FROM activities")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
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
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM activities WHERE arn = ?1", params![arn])?;
        tx.execute("DELETE FROM tags WHERE resource_arn = ?1", params![arn])?;
        tx.commit()?;
        Ok(())
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

    /// An execution by ARN.
    pub fn execution(&self, arn: &str) -> Result<Option<ExecutionRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE arn = ?1"
            ))?
            .query_row(params![arn], execution_row)
            .optional()?)
    }

    /// An execution by number.
    pub fn execution_by_id(&self, id: i64) -> Result<Option<ExecutionRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"
            ))?
            .query_row(params![id], execution_row)
            .optional()?)
    }

    /// The Task call that started an execution, if one did.
    pub fn parent(&self, child: i64) -> Result<Option<super::write::Parent>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT parent_arn, call_key FROM parents WHERE child = ?1")?
            .query_row(params![child], |r| {
                Ok(super::write::Parent {
                    execution_arn: r.get(0)?,
                    call_key: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// The ARNs of the executions an execution's Tasks started, oldest first.
    pub fn children(&self, parent_arn: &str) -> Result<Vec<String>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT e.arn FROM parents p JOIN executions e ON e.id = p.child
             WHERE p.parent_arn = ?1 ORDER BY p.child",
        )?;
        let rows = stmt.query_map(params![parent_arn], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Executions of a state machine, newest first, before the key `(start_ms, arn)`.
    /// With `through`, only those started through that version or alias ARN.
    pub fn executions(
        &self,
        state_machine_arn: &str,
        status: Option<&str>,
        through: Option<&str>,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<ExecutionRow>, EngineError> {
        let (start, arn) = before.unwrap_or((i64::MAX, String::new()));
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions
             WHERE state_machine_arn = ?1 AND (?2 IS NULL OR status = ?2)
               AND (start_ms < ?3 OR (start_ms = ?3 AND arn < ?4))
               AND (?6 IS NULL OR id IN (SELECT execution FROM qualifiers
                                         WHERE version_arn = ?6 OR alias_arn = ?6))
             ORDER BY start_ms DESC, arn DESC LIMIT ?5"
        ))?;
        let rows = stmt.query_map(
            params![state_machine_arn, status, start, arn, limit as i64, through],
            execution_row,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The highest execution number used.
    pub fn max_execution_id(&self) -> Result<i64, EngineError> {
        Ok(self
            .conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM executions", [], |r| {
                r.get(0)
            })?)
    }

    /// How many executions run.
    pub fn running_count(&self) -> Result<usize, EngineError> {
        let n: i64 = self.reader().query_row(
            "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'",
            [],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Running executions that were left with frames to move on.
    pub fn runnable_executions(&self) -> Result<Vec<i64>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id FROM executions WHERE status = 'RUNNING' AND runnable = 1 ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// An execution's stored state.
    pub fn load(&self, id: i64) -> Result<Option<Loaded>, EngineError> {
        let conn = self.reader();
        let Some(row) = conn
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"
            ))?
            .query_row(params![id], execution_row)
            .optional()?
        else {
            return Ok(None);
        };
        let frames = conn
            .prepare_cached("SELECT parent, frame, body FROM frames WHERE execution = ?1")?
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let items = conn
            .prepare_cached("SELECT frame, body FROM map_items WHERE execution = ?1")?
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Loaded { row, frames, items }))
    }

    /// One task or call that is out.
    pub fn task(&self, execution: i64, seq: u32) -> Result<Option<TaskRecord>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE execution = ?1 AND seq = ?2"
            ))?
            .query_row(params![execution, seq], task_record)
            .optional()?)
    }

    /// Hands every task and call that is out to `each` as (execution, number, kind, activity
    /// or resource, scheduled epoch ms), streaming (a restart reads millions of them).
    pub fn each_task_ref(
        &self,
        mut each: impl FnMut(i64, u32, i64, Option<&str>, i64),
    ) -> Result<(), EngineError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare("SELECT execution, seq, kind, activity, scheduled_ms FROM tasks")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let activity = match r.get_ref(3)? {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok(),
                _ => None,
            };
            each(r.get(0)?, r.get(1)?, r.get(2)?, activity, r.get(4)?);
        }
        Ok(())
    }

    /// Hands every timer to `each` as (execution, number, due), streaming.
    pub fn each_timer(&self, mut each: impl FnMut(i64, u32, i64)) -> Result<(), EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT execution, seq, due_ms FROM timers")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(r.get(0)?, r.get(1)?, r.get(2)?);
        }
        Ok(())
    }

    /// Events of an execution with ids in `[from, to]`.
    pub fn events(
        &self,
        execution: i64,
        from: i64,
        to: i64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<crate::machine::event::Recorded>, EngineError> {
        super::history::read(&self.reader(), execution, from, to, reverse, limit)
    }
}
