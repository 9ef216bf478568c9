//! The context object (`$$`) a state sees, in two parts: the execution's (built once per
//! execution, in [`Meta`](super::execution::Meta)) and the state's, built here: its name and
//! entered time, for Task states the token and retry count, for a Map's ItemSelector the item.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The state's part of the context object.
pub fn state_part(
    name: &str,
    entered_ms: i64,
    task: Option<(&str, u32)>,
    map_item: Option<Value>,
) -> Value {
    let entered = DateTime::<Utc>::from_timestamp_millis(entered_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
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
