//! History in chunks: the events one round wrote are one row, keyed by the execution and the
//! first event's id, encoded with postcard (ids implied by position, links and timestamps as
//! small deltas). Reading a page decodes only the chunks it overlaps.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::machine::event::{Event, Recorded};

/// At most this many events per row (a page read decodes little more than it returns).
const CHUNK_EVENTS: usize = 256;

#[derive(Serialize, Deserialize)]
struct Stored {
    /// `id - previous`.
    back: i64,
    /// `at_ms - base_ms`.
    at: i64,
    event: Event,
}

/// One row to write: (first id, last id, base time, body).
pub type Chunk = (i64, i64, i64, Vec<u8>);

/// Encodes a round's events (in id order, ids consecutive) into rows.
pub fn encode(events: &[Recorded]) -> Result<Vec<Chunk>, EngineError> {
    let mut out = Vec::with_capacity(events.len() / CHUNK_EVENTS + 1);
    for part in events.chunks(CHUNK_EVENTS) {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let base = first.at_ms;
        let stored: Vec<Stored> = part
            .iter()
            .map(|e| Stored {
                back: e.id - e.previous,
                at: e.at_ms - base,
                event: e.event.clone(),
            })
            .collect();
        let body = postcard::to_stdvec(&stored)
            .map_err(|e| EngineError::Storage(format!("cannot encode history: {e}")))?;
        out.push((first.id, last.id, base, body));
    }
    Ok(out)
}

fn decode(first_id: i64, base_ms: i64, body: &[u8]) -> Result<Vec<Recorded>, EngineError> {
    let stored: Vec<Stored> = postcard::from_bytes(body)
        .map_err(|e| EngineError::Storage(format!("corrupt history chunk: {e}")))?;
    Ok(stored
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let id = first_id + i as i64;
            Recorded {
                id,
                previous: id - s.back,
                at_ms: base_ms + s.at,
                event: s.event,
            }
        })
        .collect())
}

/// Writes chunks of an execution's history.
pub fn write(conn: &Connection, execution: i64, chunks: &[Chunk]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO history (execution, first_id, last_id, base_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (first, last, base, body) in chunks {
        stmt.execute(params![execution, first, last, base, body])?;
    }
    Ok(())
}

/// Events of an execution with ids in `[from, to]`, ascending or descending, at most `limit`.
pub fn read(
    conn: &Connection,
    execution: i64,
    from: i64,
    to: i64,
    reverse: bool,
    limit: usize,
) -> Result<Vec<Recorded>, EngineError> {
    // The chunk holding `from` starts at or before it.
    let start: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(first_id), 0) FROM history WHERE execution = ?1 AND first_id <= ?2",
        )?
        .query_row(params![execution, from], |r| r.get(0))?;
    let sql = if reverse {
        "SELECT first_id, base_ms, body FROM history
         WHERE execution = ?1 AND first_id >= ?2 AND first_id <= ?3 ORDER BY first_id DESC"
    } else {
        "SELECT first_id, base_ms, body FROM history
         WHERE execution = ?1 AND first_id >= ?2 AND first_id <= ?3 ORDER BY first_id ASC"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![execution, start, to])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let (first, base, body): (i64, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let mut events = decode(first, base, &body)?;
        if reverse {
            events.reverse();
        }
        for e in events {
            if e.id < from || e.id > to {
                continue;
            }
            out.push(e);
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The id of an execution's last event (0 for none).
pub fn last_id(conn: &Connection, execution: i64) -> Result<i64, EngineError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(last_id), 0) FROM history WHERE execution = ?1")?
        .query_row(params![execution], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::event::StateKind;

    #[test]
    fn chunks_round_trip_and_pages_cut_across_them() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE history (execution INTEGER, first_id INTEGER, last_id INTEGER,
             base_ms INTEGER, body BLOB, PRIMARY KEY (execution, first_id)) WITHOUT ROWID;",
        )
        .expect("table");
        let events: Vec<Recorded> = (1..=600)
            .map(|id| Recorded {
                id,
                previous: if id % 7 == 0 { id - 3 } else { id - 1 },
                at_ms: 1_700_000_000_000 + id * 5,
                event: Event::StateEntered {
                    kind: StateKind::Pass,
                    name: format!("S{id}"),
                    input: "{}".into(),
                },
            })
            .collect();
        // Two rounds: 1..=400 and 401..=600.
        write(&conn, 9, &encode(&events[..400]).expect("encode")).expect("write");
        write(&conn, 9, &encode(&events[400..]).expect("encode")).expect("write");
        let all = read(&conn, 9, 1, i64::MAX, false, 10_000).expect("read");
        assert_eq!(all, events);
        let page = read(&conn, 9, 250, i64::MAX, false, 300).expect("page");
        assert_eq!(page.first().map(|e| e.id), Some(250));
        assert_eq!(page.last().map(|e| e.id), Some(549));
        let back = read(&conn, 9, 1, 410, true, 20).expect("reverse");
        assert_eq!(back.first().map(|e| e.id), Some(410));
        assert_eq!(back.last().map(|e| e.id), Some(391));
        assert_eq!(last_id(&conn, 9).expect("last"), 600);
        assert!(read(&conn, 8, 1, i64::MAX, false, 10)
            .expect("other")
            .is_empty());
    }
}
