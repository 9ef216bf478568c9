//! An execution's state to and from the store's rows: what a round changed becomes one write
//! unit (only the frames it touched, results of finished children, a Map's items once, the
//! tasks and timers its commands start and end), and a loaded execution is rebuilt from its
//! rows, never by running anything again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::error::EngineError;
use crate::machine::execution::{Deadline, Ending, Execution, FrameRow, MapItems, Meta, Stage};
use crate::machine::{Command, Completion, Reject, Round};
use crate::store::write::{Counters, EndRow, NewExecution, TaskRow, WriteSet};
use crate::store::{history, Loaded};

fn json<T: serde::Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v).map_err(|e| EngineError::Storage(format!("cannot encode state: {e}")))
}

/// The write unit of a round. `completions` are the ones the round applied, with their
/// replies in `round.replies`. Returns the unit and the frames it stores.
pub fn write_set(
    exec: &Execution,
    round: &Round,
    completions: &[Completion],
    insert: Option<NewExecution>,
) -> Result<(WriteSet, Vec<u32>), EngineError> {
    let mut w = WriteSet {
        execution: exec.id,
        insert,
        history: history::encode(&round.events)?,
        ..WriteSet::default()
    };
    w.counters = Counters {
        next_event: exec.next_event,
        next_seq: exec.next_seq,
        next_frame: exec.next_frame,
        runnable: round.more,
        timeout: exec.timeout.map(|t| (t.timer, t.due_ms)),
    };
    if let Some(ending) = &exec.ended {
        let stop_ms = round.events.last().map(|e| e.at_ms).unwrap_or(0);
        w.end = Some(match ending {
            Ending::Succeeded(output) => EndRow {
                status: "SUCCEEDED",
                output: Some(output.clone()),
                error: None,
                cause: None,
                stop_ms,
            },
            Ending::Failed { error, cause } => EndRow {
                status: "FAILED",
                output: None,
                error: Some(error.clone()),
                cause: Some(cause.clone()),
                stop_ms,
            },
            Ending::Aborted { error, cause } => EndRow {
                status: "ABORTED",
                output: None,
                error: error.clone(),
                cause: cause.clone(),
                stop_ms,
            },
            // DescribeExecution shows no error for a timed-out execution; the
            // ExecutionTimedOut event carries States.Timeout.
            Ending::TimedOut => EndRow {
                status: "TIMED_OUT",
                output: None,
                error: None,
                cause: None,
                stop_ms,
            },
        });
        return Ok((w, Vec::new()));
    }
    let changes = &exec.changes;
    let mut stored = Vec::new();
    for id in &changes.frames {
        if let Some(f) = exec.frames.get(id) {
            let parent = f.parent.map_or(-1, |p| i64::from(p.frame));
            w.frames
                .push((parent, *id, json(&FrameRow::Live(f.clone()))?));
            stored.push(*id);
        }
    }
    // Only what belongs to a fanout still running is kept (a Map retried within the round
    // leaves its first try's results and items behind).
    let running_fanout = |parent: u32| -> Option<&crate::machine::execution::Fanout> {
        match exec.frames.get(&parent).map(|f| &f.stage) {
            Some(Stage::Fanout(fan)) => Some(fan),
            _ => None,
        }
    };
    for (parent, key, slot, value, generation) in &changes.results {
        if running_fanout(*parent).is_some_and(|f| f.started_event == *generation) {
            let row = FrameRow::Result {
                slot: *slot,
                value: value.clone(),
            };
            w.frames.push((i64::from(*parent), *key, json(&row)?));
        }
    }
    w.fanouts_ended = changes.fanouts_ended.clone();
    for (frame, items) in &changes.items {
        let current = running_fanout(*frame)
            .and_then(|f| f.items.as_ref())
            .is_some_and(|i| Arc::ptr_eq(i, items));
        if current {
            w.items.push((*frame, json(items.as_ref())?));
        }
    }
    for c in &round.commands {
        match c {
            Command::Schedule(t) => w.tasks.push(TaskRow {
                seq: t.seq,
                kind: 0,
                activity: Some(t.activity.clone()),
                input: Some(t.input.clone()),
                secret: Some(t.secret.clone()),
                heartbeat: t.heartbeat,
                scheduled_ms: t.scheduled_ms,
            }),
            Command::Submit {
                seq, resource, key, ..
            } => w.tasks.push(TaskRow {
                seq: *seq,
                kind: 1,
                activity: Some(resource.clone()),
                input: None,
                // A callback's token secret (heartbeats check it before the restarted
                // engine holds the callback again).
                secret: Some(key.clone()),
                heartbeat: None,
                scheduled_ms: round.events.last().map(|e| e.at_ms).unwrap_or(0),
            }),
            Command::Unschedule { seq, .. } | Command::EndCall { seq, .. } => {
                w.tasks_done.push(*seq)
            }
            Command::StartTimer(d) => w.timers.push((d.timer, d.due_ms)),
            Command::CancelTimer(d) => w.timers_done.push(d.timer),
            Command::AwaitCall { .. } | Command::Hold { .. } => {}
        }
    }
    for (c, reply) in completions.iter().zip(&round.replies) {
        match (c, reply) {
            (Completion::Timer { seq }, _) => w.timers_done.push(*seq),
            (Completion::Handout { seq, .. }, Ok(())) => w.handed_out.push(*seq),
            _ => {}
        }
    }
    Ok((w, stored))
}

/// The facts an execution is rebuilt with besides its rows.
pub struct MachineFacts {
    /// The state machine's name.
    pub name: String,
    /// Its role.
    pub role_arn: String,
    /// EXPRESS.
    pub express: bool,
}

/// Rebuilds an execution from its rows.
pub fn rebuild(loaded: Loaded, facts: &MachineFacts) -> Result<Execution, EngineError> {
    let row = loaded.row;
    let input: Value = serde_json::from_str(&row.input).unwrap_or(Value::Null);
    let meta = Arc::new(Meta::new(
        row.arn.clone(),
        row.name.clone(),
        row.state_machine_arn.clone(),
        facts.name.clone(),
        facts.role_arn.clone(),
        facts.express,
        row.start.timestamp_millis(),
        input,
    ));
    let mut exec = Execution::new(row.id, meta, 0);
    exec.frames.clear();
    exec.next_event = row.next_event;
    exec.next_seq = row.next_seq;
    exec.next_frame = row.next_frame;
    exec.timeout = row
        .timeout
        .map(|(timer, due_ms)| Deadline { timer, due_ms });
    let corrupt = |e: serde_json::Error| EngineError::Storage(format!("corrupt frame: {e}"));
    let mut results: HashMap<u32, Vec<(u32, Value)>> = HashMap::new();
    for (parent, id, body) in loaded.frames {
        match serde_json::from_str::<FrameRow>(&body).map_err(corrupt)? {
            FrameRow::Live(mut f) => {
                f.stored = true;
                exec.frames.insert(id, f);
            }
            FrameRow::Result { slot, value } => {
                if let Ok(parent) = u32::try_from(parent) {
                    results.entry(parent).or_default().push((slot, value));
                }
            }
        }
    }
    let mut items: HashMap<u32, Arc<MapItems>> = HashMap::new();
    for (frame, body) in loaded.items {
        items.insert(
            frame,
            Arc::new(serde_json::from_str(&body).map_err(corrupt)?),
        );
    }
    let mut seen: HashSet<u32> = HashSet::new();
    for (id, f) in exec.frames.iter_mut() {
        if let Stage::Fanout(fan) = &mut f.stage {
            seen.insert(*id);
            fan.results = vec![None; fan.total as usize];
            for (slot, value) in results.remove(id).unwrap_or_default() {
                if let Some(r) = fan.results.get_mut(slot as usize) {
                    *r = Some(value);
                }
            }
            fan.items = items.remove(id);
        }
    }
    exec.reindex();
    Ok(exec)
}

/// The error a caller gets for a refused completion.
pub fn rejection(r: Reject) -> EngineError {
    match r {
        Reject::InvalidToken(m) => EngineError::InvalidToken(m),
        Reject::TaskTimedOut(m) => EngineError::TaskTimedOut(m),
    }
}
