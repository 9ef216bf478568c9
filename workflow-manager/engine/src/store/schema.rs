//! The engine database's tables, and the steps from each older layout to this one
//! (`PRAGMA user_version` counts the steps applied).
//!
//! - `state_machines`, `revisions` (every definition a machine has had: an execution runs the
//!   one it started with), `activities`;
//! - `executions` (status, and the counters of the step machine: next event, task/timer and
//!   frame numbers, whether frames were left waiting to run);
//! - `history`: events in chunks (one row per committed round), compactly encoded;
//! - `frames`: the state of each running frame, and the results of finished branches and
//!   iterations of a Parallel or Map still running; `map_items`: a running Map's items;
//! - `tasks`: activity tasks and service calls that are out; `timers`: what is due when.
//!   These two are what a restart reads to know what to wait for;
//! - `parents`: which execution's Task started an execution (a nested execution), and with
//!   which call, so that the call finds its child again after a restart;
//! - `versions` (a state machine's published versions, each a revision), `aliases` (names
//!   routing to one or two versions by weight), `tags` (of state machines and activities),
//!   `qualifiers` (the version and alias an execution was started through).

use rusqlite::Connection;

use crate::error::EngineError;

/// The first layout (the interpreter's: one row per event, executions by ARN).
const V1: &str = r#"
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

/// Version 1: deletable state machines.
const TO_V1: &str = "ALTER TABLE state_machines ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE state_machines ADD COLUMN updated_ms INTEGER;";

/// Version 2: the step machine's tables. The old executions and events are moved over by
/// [`super::legacy`] in the same transaction.
const TO_V2: &str = r#"
ALTER TABLE state_machines ADD COLUMN revision INTEGER;
CREATE TABLE revisions (
    id INTEGER PRIMARY KEY,
    state_machine_arn TEXT NOT NULL,
    definition TEXT NOT NULL
);
ALTER TABLE executions RENAME TO executions_v1;
DROP INDEX IF EXISTS executions_by_machine;
CREATE TABLE executions (
    id INTEGER PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    state_machine_arn TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT,
    start_ms INTEGER NOT NULL,
    stop_ms INTEGER,
    revision INTEGER NOT NULL,
    next_event INTEGER NOT NULL,
    next_seq INTEGER NOT NULL,
    next_frame INTEGER NOT NULL,
    timeout_timer INTEGER,
    timeout_due INTEGER,
    runnable INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_by_machine ON executions (state_machine_arn, start_ms);
CREATE INDEX executions_running ON executions (runnable) WHERE status = 'RUNNING';
CREATE TABLE history (
    execution INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    base_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (execution, first_id)
) WITHOUT ROWID;
CREATE TABLE frames (
    execution INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    frame INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution, parent, frame)
) WITHOUT ROWID;
CREATE TABLE map_items (
    execution INTEGER NOT NULL,
    frame INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution, frame)
) WITHOUT ROWID;
CREATE TABLE tasks (
    execution INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    activity TEXT,
    input TEXT,
    secret TEXT,
    heartbeat INTEGER,
    scheduled_ms INTEGER NOT NULL,
    handed_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution, seq)
) WITHOUT ROWID;
CREATE TABLE timers (
    execution INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    PRIMARY KEY (execution, seq)
) WITHOUT ROWID;
"#;

/// Step 3: nested executions know their parent.
const TO_V3: &str = r#"
CREATE TABLE parents (
    child INTEGER PRIMARY KEY,
    parent_arn TEXT NOT NULL,
    call_key TEXT NOT NULL
);
CREATE INDEX parents_by_parent ON parents (parent_arn);
PRAGMA user_version = 3;
"#;

/// Step 4: versions, aliases, tags, and the version an execution was started through.
const TO_V4: &str = r#"
CREATE TABLE versions (
    state_machine_arn TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    role_arn TEXT NOT NULL,
    description TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (state_machine_arn, version)
) WITHOUT ROWID;
CREATE TABLE version_counters (
    state_machine_arn TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE aliases (
    arn TEXT PRIMARY KEY,
    state_machine_arn TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    routing TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX aliases_by_machine ON aliases (state_machine_arn, name);
CREATE TABLE tags (
    resource_arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_arn, key)
) WITHOUT ROWID;
CREATE TABLE qualifiers (
    execution INTEGER PRIMARY KEY,
    version_arn TEXT,
    alias_arn TEXT
);
PRAGMA user_version = 4;
"#;

/// Creates or upgrades the schema.
pub fn migrate(conn: &mut Connection) -> Result<(), EngineError> {
    conn.execute_batch(V1)?;
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if applied < 1 {
        conn.execute_batch(&format!("BEGIN; {TO_V1} PRAGMA user_version = 1; COMMIT;"))?;
    }
    if applied < 2 {
        let tx = conn.transaction()?;
        tx.execute_batch(TO_V2)?;
        super::legacy::move_over(&tx)?;
        tx.execute_batch("DROP TABLE executions_v1; DROP TABLE events; PRAGMA user_version = 2;")?;
        tx.commit()?;
    }
    if applied < 3 {
        let tx = conn.transaction()?;
        tx.execute_batch(TO_V3)?;
        tx.commit()?;
    }
    if applied < 4 {
        let tx = conn.transaction()?;
        tx.execute_batch(TO_V4)?;
        tx.commit()?;
    }
    Ok(())
}
