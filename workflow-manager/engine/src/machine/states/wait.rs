//! `Wait`: until `Seconds` (or `SecondsPath`) after the state was entered, or until a
//! `Timestamp` (or `TimestampPath`). A wait that is already over ends at once; any other is a
//! timer the runtime keeps, so nothing waits in memory.

use chrono::{DateTime, Utc};
use serde_json::Value;
use wfm_asl::path::select;
use wfm_asl::State;

use super::{finish_step, View, Work};
use crate::machine::dataflow::{effective_input, Bindings, Fields};
use crate::machine::retry::Failure;

/// Longest Wait Step Functions accepts (one year).
const MAX_WAIT_SECONDS: i64 = 365 * 24 * 3600;

/// ISO-8601 extended format with the `T` separator (RFC 3339 would also allow a space).
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    (text.as_bytes().get(10) == Some(&b'T'))
        .then(|| DateTime::parse_from_rfc3339(text).ok())
        .flatten()
        .map(|t| t.with_timezone(&Utc))
}

fn shown(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// When the wait ends (epoch ms).
fn until_ms(v: &View<'_>) -> Result<i64, Failure> {
    let State::Wait(s) = &v.node.state else {
        return Err(v.runtime("not a Wait state"));
    };
    let raw = &v.frame.input;
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective = effective_input(&f, v.node.jsonata, raw, &ctx).map_err(|e| v.flow(e))?;
    let jsonata_value = |t: &Value, field: &str| -> Result<Value, Failure> {
        Bindings::new(raw, ctx)
            .eval(t, field)
            .map_err(|e| v.flow(e))
    };
    let entered = v.frame.entered_ms;
    if let Some(secs) = &s.seconds {
        let secs = if v.node.jsonata {
            jsonata_value(secs, "Seconds")?
        } else {
            secs.clone()
        };
        let n = secs.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            Failure::new(
                "States.QueryEvaluationError",
                v.message(format!(
                    "The Seconds field must be a non-negative integer, but was: {secs}"
                )),
            )
        })?;
        return Ok(entered.saturating_add(n.saturating_mul(1000)));
    }
    if let Some(p) = &s.seconds_path {
        let secs = select(p, &effective, &ctx).map_err(|_| {
            v.runtime(format!(
                "The SecondsPath parameter does not reference an input value: {p}"
            ))
        })?;
        let n = secs.as_i64().ok_or_else(|| {
            v.runtime(format!(
                "The SecondsPath parameter cannot be parsed as a long value: {p} == {secs}"
            ))
        })?;
        if n < 0 {
            return Err(v.runtime(format!(
                "The SecondsPath parameter references a negative value: {p} == {secs}"
            )));
        }
        return Ok(entered.saturating_add(n.saturating_mul(1000)));
    }
    if let Some(t) = &s.timestamp {
        let text = if v.node.jsonata {
            shown(&jsonata_value(&Value::String(t.clone()), "Timestamp")?)
        } else {
            t.clone()
        };
        return parse_timestamp(&text)
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| {
                let error = if v.node.jsonata {
                    "States.QueryEvaluationError"
                } else {
                    "States.Runtime"
                };
                Failure::new(
                    error,
                    v.message(format!(
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                    )),
                )
            });
    }
    if let Some(p) = &s.timestamp_path {
        let value = select(p, &effective, &ctx).map_err(|_| {
            v.runtime(format!(
                "The TimestampPath parameter does not reference an input value: {p}"
            ))
        })?;
        let text = shown(&value);
        return parse_timestamp(&text)
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| {
                v.runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {text}"
                ))
            });
    }
    Err(v.runtime("a Wait state needs Seconds, SecondsPath, Timestamp or TimestampPath"))
}

/// The Wait state at `now_ms`: done at once, or a timer.
pub fn run(v: &View<'_>, now_ms: i64) -> Result<Work, Failure> {
    let until = until_ms(v)?;
    let delay = until.saturating_sub(now_ms);
    if delay / 1000 > MAX_WAIT_SECONDS {
        return Err(v.runtime("Wait state delay is too long."));
    }
    if delay <= 0 {
        return finish(v);
    }
    Ok(Work::Sleep { until_ms: until })
}

/// The Wait state's output once its time has come.
pub fn finish(v: &View<'_>) -> Result<Work, Failure> {
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective =
        effective_input(&f, v.node.jsonata, &v.frame.input, &ctx).map_err(|e| v.flow(e))?;
    finish_step(v, &effective, None, &ctx, v.node.next)
}
