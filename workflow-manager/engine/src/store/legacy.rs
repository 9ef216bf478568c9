//! Moving a database of the first layout (the interpreter's: executions by ARN, one row per
//! event) to the step machine's, in the upgrade's transaction. Finished executions and every
//! history move over unchanged. An execution that was running continues from its last
//! top-level state: a state it had left goes on to its successor, a state it was in is run
//! again (its task is scheduled anew); what ran inside a Parallel or Map that was running is run
//! again, as the first layout did after any restart.

use rusqlite::{params, Connection};
use serde_json::Value;
use wfm_asl::HistoryEvent;

use super::history;
use crate::error::EngineError;
use crate::machine::event::{Event, Recorded};
use crate::machine::execution::{Frame, FrameRow, Stage};

/// Where a running execution of the old layout continues.
struct ResumePoint {
    state: String,
    input: Value,
    entered: Option<(i64, i64)>,
    exited: bool,
}

fn resume_point(events: &[Recorded], start_at: &str, input: &Value) -> ResumePoint {
    let mut point = ResumePoint {
        state: start_at.to_string(),
        input: input.clone(),
        entered: None,
        exited: false,
    };
    let mut depth = 0usize;
    for e in events {
        match &e.event {
            Event::MapStateStarted { .. } | Event::ParallelStateStarted => depth += 1,
            Event::MapStateSucceeded
            | Event::MapStateFailed
            | Event::ParallelStateSucceeded
            | Event::ParallelStateFailed => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Event::StateEntered { name, input, .. } => {
                point = ResumePoint {
                    state: name.clone(),
                    input: serde_json::from_str(input).unwrap_or(Value::Null),
                    entered: Some((e.id, e.at_ms)),
                    exited: false,
                };
            }
            Event::StateExited { output, .. } => {
                point.exited = true;
                point.input = serde_json::from_str(output).unwrap_or(Value::Null);
            }
            _ => {}
        }
    }
    point
}

/// The top-level frame a running execution continues with.
fn root_frame(definition: &str, events: &[Recorded], input: &Value) -> Option<Frame> {
    let machine = wfm_asl::parse_definition(definition).ok()?;
    let point = resume_point(events, &machine.start_at, input);
    let index = |name: &str| machine.states.get_index_of(name).map(|i| i as u32);
    let last = events.last().map(|e| e.id).unwrap_or(0);
    let mut frame = Frame::new(
        None,
        0,
        index(&point.state)?,
        point.input,
        Default::default(),
        last,
    );
    match point.entered {
        None => {}
        Some((id, at)) => {
            frame.entered_event = id;
            frame.entered_ms = at;
            let state = machine.states.get(&point.state)?;
            match (point.exited, state.next()) {
                (true, Some(next)) => frame.state = index(next)?,
                // In the state, or past a state without a plain successor: run it again.
                _ => frame.stage = Stage::Run,
            }
        }
    }
    Some(frame)
}

/// Moves `executions_v1` and `events` into the new tables.
pub fn move_over(tx: &Connection) -> Result<(), EngineError> {
    let machines: Vec<(String, String)> = tx
        .prepare("SELECT arn, definition FROM state_machines")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (arn, definition) in &machines {
        tx.execute(
            "INSERT INTO revisions (state_machine_arn, definition) VALUES (?1, ?2)",
            params![arn, definition],
        )?;
        let revision = tx.last_insert_rowid();
        tx.execute(
            "UPDATE state_machines SET revision = ?2 WHERE arn = ?1",
            params![arn, revision],
        )?;
    }
    type Old = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
    );
    let old: Vec<Old> = tx
        .prepare(
            "SELECT arn, state_machine_arn, name, status, input, output, error, cause, start_ms, stop_ms
             FROM executions_v1 ORDER BY start_ms, arn",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (i, (arn, machine, name, status, input, output, error, cause, start, stop)) in
        old.into_iter().enumerate()
    {
        let id = i as i64 + 1;
        let bodies: Vec<String> = tx
            .prepare("SELECT body FROM events WHERE execution_arn = ?1 ORDER BY id")?
            .query_map(params![arn], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut events: Vec<Recorded> = Vec::with_capacity(bodies.len());
        for body in bodies {
            let Ok(wire) = serde_json::from_str::<HistoryEvent>(&body) else {
                continue;
            };
            let Some(event) = Event::from_wire(&wire) else {
                continue;
            };
            events.push(Recorded {
                id: events.len() as i64 + 1,
                previous: wire.previous_event_id,
                at_ms: wire.timestamp.timestamp_millis(),
                event,
            });
        }
        let (revision, definition): (i64, String) = tx
            .query_row(
                "SELECT COALESCE(revision, 0), definition FROM state_machines WHERE arn = ?1",
                params![machine],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or((0, String::new()));
        let next_event = events.len() as i64 + 1;
        let frame = (status == "RUNNING")
            .then(|| {
                let input_value = serde_json::from_str(&input).unwrap_or(Value::Null);
                root_frame(&definition, &events, &input_value)
            })
            .flatten();
        // A running execution whose definition cannot be read any more ends failed.
        let (status, error, cause, stop) = match (&frame, status.as_str()) {
            (None, "RUNNING") => (
                "FAILED".to_string(),
                Some("States.Runtime".to_string()),
                Some("the engine was upgraded and cannot continue this execution".to_string()),
                Some(start),
            ),
            _ => (status, error, cause, stop),
        };
        tx.execute(
            "INSERT INTO executions (id, arn, state_machine_arn, name, status, input, output, error,
                cause, start_ms, stop_ms, revision, next_event, next_seq, next_frame, runnable)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1, 1, ?14)",
            params![
                id,
                arn,
                machine,
                name,
                status,
                input,
                output,
                error,
                cause,
                start,
                stop,
                revision,
                next_event,
                frame.is_some()
            ],
        )?;
        history::write(tx, id, &history::encode(&events)?)?;
        if let Some(frame) = frame {
            let body = serde_json::to_string(&FrameRow::Live(frame))
                .map_err(|e| EngineError::Storage(format!("cannot encode a frame: {e}")))?;
            tx.execute(
                "INSERT INTO frames (execution, parent, frame, body) VALUES (?1, -1, 0, ?2)",
                params![id, body],
            )?;
        }
    }
    Ok(())
}
