//! The context object (`$$`) a state sees, in two parts: the execution's (built once per
//! execution, in [`Meta`](super::execution::Meta)) and the state's, built here: its name and
//! entered time, for Task states the token and retry count, for a Map's ItemSelector the item.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Epoch milliseconds as the context object and the API write times
/// (`2024-01-01T00:00:00.000Z`).
pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The state's part of the context object.
pub fn state_part(
    name: &str,
    entered_ms: i64,
    task: Option<(&str, u32)>,
    map_item: Option<Value>,
) -> Value {
    let entered = iso_ms(entered_ms);
    let mut part = json!({"State": {"EnteredTime": entered, "Name": name}});
    if let Some((token, retries)) = task {
        // Task states also know their token and how often they were retried.
        part["Task"] = json!({"Token": token});
        part["State"]["RetryCount"] = json!(retries);
    }
    if let Some(item) = map_item {
        part["Map"] = json!({ "Item": item });
    }
    part
}

/// Step Functions' wording for an error in a state.
pub fn message(state: &str, entered_event: i64, err: impl std::fmt::Display) -> String {
    format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{entered_event}). {err}"
    )
}
