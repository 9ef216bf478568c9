//! What one round of one execution writes, as one unit: the new execution (on its start), its
//! events, its frames, a Map's items, its tasks and timers, its counters, and its end. The
//! writer applies each unit inside a savepoint of the group's transaction, so a unit that is
//! refused or fails leaves the others of the group untouched.

use rusqlite::{params, Connection};

use super::history::{self, Chunk};

/// A new execution's row.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Its number.
    pub id: i64,
    /// ARN (unique: a second start of the same name is refused).
    pub arn: String,
    /// Its state machine.
    pub state_machine_arn: String,
    /// Name.
    pub name: String,
    /// Input JSON text.
    pub input: String,
    /// Start, epoch ms.
    pub start_ms: i64,
    /// The definition it runs.
    pub revision: i64,
    /// The Task that started it (a nested execution).
    pub parent: Option<Parent>,
    /// The version and alias it was started through (`None`: the state machine itself).
    pub qualifier: Option<Qualifier>,
}

/// The version (and alias) of a state machine an execution was started through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Qualifier {
    /// `arn:...:stateMachine:NAME:VERSION`.
    pub version_arn: Option<String>,
    /// `arn:...:stateMachine:NAME:ALIAS`.
    pub alias_arn: Option<String>,
}

/// The Task call that started a nested execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    /// The parent execution's ARN.
    pub execution_arn: String,
    /// The call's key (unique to the call, the same after a restart).
    pub call_key: String,
}

/// A task or call to record.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Its number.
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
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct EndRow {
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: &'static str,
    /// Output.
    pub output: Option<String>,
    /// Error.
    pub error: Option<String>,
    /// Cause.
    pub cause: Option<String>,
    /// Stop, epoch ms.
    pub stop_ms: i64,
}

/// The step machine's counters after the round.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Next event id.
    pub next_event: i64,
    /// Next task or timer number.
    pub next_seq: u32,
    /// Next frame number.
    pub next_frame: u32,
    /// Frames left waiting to run (a restart moves them on).
    pub runnable: bool,
    /// The execution's time-out timer: (number, due).
    pub timeout: Option<(u32, i64)>,
}

/// One round's writes.
#[derive(Debug, Default)]
pub struct WriteSet {
    /// The execution.
    pub execution: i64,
    /// Its row, when the round starts it.
    pub insert: Option<NewExecution>,
    /// History rows.
    pub history: Vec<Chunk>,
    /// Frame rows: (parent or -1, frame, body).
    pub frames: Vec<(i64, u32, String)>,
    /// Fanouts that ended: their rows go.
    pub fanouts_ended: Vec<u32>,
    /// Map items: (frame, body).
    pub items: Vec<(u32, String)>,
    /// Tasks and calls out.
    pub tasks: Vec<TaskRow>,
    /// Tasks handed out (to be handed out again with another token after a restart).
    pub handed_out: Vec<u32>,
    /// Tasks and calls over.
    pub tasks_done: Vec<u32>,
    /// Timers: (number, due).
    pub timers: Vec<(u32, i64)>,
    /// Timers over.
    pub timers_done: Vec<u32>,
    /// Counters.
    pub counters: Counters,
    /// The end.
    pub end: Option<EndRow>,
}

/// A unit the writer did not apply because it conflicts (its execution exists).
pub const EXECUTION_EXISTS: &str = "execution already exists";

/// Applies one unit. `Ok(Some(reason))` when it was refused.
pub fn apply(conn: &Connection, w: &WriteSet) -> rusqlite::Result<Option<&'static str>> {
    let x = w.execution;
    if x == 0 {
        // A flush: nothing to write.
        return Ok(None);
    }
    if let Some(n) = &w.insert {
        let inserted = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO executions
                    (id, arn, state_machine_arn, name, status, input, start_ms, revision,
                     next_event, next_seq, next_frame)
                 VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, ?6, ?7, 1, 1, 1)",
            )?
            .execute(params![
                n.id,
                n.arn,
                n.state_machine_arn,
                n.name,
                n.input,
                n.start_ms,
                n.revision
            ])?;
        if inserted == 0 {
            return Ok(Some(EXECUTION_EXISTS));
        }
        if let Some(p) = &n.parent {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO parents (child, parent_arn, call_key) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![n.id, p.execution_arn, p.call_key])?;
        }
        if let Some(q) = &n.qualifier {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO qualifiers (execution, version_arn, alias_arn) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![n.id, q.version_arn, q.alias_arn])?;
        }
    }
    history::write(conn, x, &w.history)?;
    if let Some(end) = &w.end {
        conn.prepare_cached(
            "UPDATE executions SET status = ?2, output = ?3, error = ?4, cause = ?5, stop_ms = ?6,
                next_event = ?7, runnable = 0, timeout_timer = NULL, timeout_due = NULL
             WHERE id = ?1",
        )?
        .execute(params![
            x,
            end.status,
            end.output,
            end.error,
            end.cause,
            end.stop_ms,
            w.counters.next_event
        ])?;
        for table in ["frames", "map_items", "tasks", "timers"] {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE execution = ?1"))?
                .execute(params![x])?;
        }
        return Ok(None);
    }
    for parent in &w.fanouts_ended {
        conn.prepare_cached("DELETE FROM frames WHERE execution = ?1 AND parent = ?2")?
            .execute(params![x, i64::from(*parent)])?;
        conn.prepare_cached("DELETE FROM map_items WHERE execution = ?1 AND frame = ?2")?
            .execute(params![x, i64::from(*parent)])?;
    }
    {
        let mut put = conn.prepare_cached(
            "INSERT OR REPLACE INTO frames (execution, parent, frame, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (parent, frame, body) in &w.frames {
            put.execute(params![x, parent, frame, body])?;
        }
    }
    for (frame, body) in &w.items {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO map_items (execution, frame, body) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![x, frame, body])?;
    }
    {
        let mut put = conn.prepare_cached(
            "INSERT OR REPLACE INTO tasks
                (execution, seq, kind, activity, input, secret, heartbeat, scheduled_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for t in &w.tasks {
            put.execute(params![
                x,
                t.seq,
                t.kind,
                t.activity,
                t.input,
                t.secret,
                t.heartbeat.map(|h| h as i64),
                t.scheduled_ms
            ])?;
        }
    }
    for seq in &w.handed_out {
        conn.prepare_cached("UPDATE tasks SET handed_out = 1 WHERE execution = ?1 AND seq = ?2")?
            .execute(params![x, seq])?;
    }
    for seq in &w.tasks_done {
        conn.prepare_cached("DELETE FROM tasks WHERE execution = ?1 AND seq = ?2")?
            .execute(params![x, seq])?;
    }
    {
        let mut put = conn.prepare_cached(
            "INSERT OR REPLACE INTO timers (execution, seq, due_ms) VALUES (?1, ?2, ?3)",
        )?;
        for (seq, due) in &w.timers {
            put.execute(params![x, seq, due])?;
        }
    }
    for seq in &w.timers_done {
        conn.prepare_cached("DELETE FROM timers WHERE execution = ?1 AND seq = ?2")?
            .execute(params![x, seq])?;
    }
    let c = &w.counters;
    conn.prepare_cached(
        "UPDATE executions SET next_event = ?2, next_seq = ?3, next_frame = ?4, runnable = ?5,
            timeout_timer = ?6, timeout_due = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        x,
        c.next_event,
        c.next_seq,
        c.next_frame,
        c.runnable,
        c.timeout.map(|t| t.0),
        c.timeout.map(|t| t.1)
    ])?;
    Ok(None)
}
