//! The service's size limits, with the errors that name them. Payloads follow Step Functions'
//! quotas (256 KiB of input or output, 1 MiB of definition); the rest keep one request from
//! costing more than its share.

use crate::api::error::ApiError;

/// The largest request body, by default (a definition of the largest size, as JSON, fits).
pub const MAX_BODY_BYTES: usize = 2 << 20;
/// The largest workflow input or task output: Step Functions' 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// The largest definition (its state machine as JSON): Step Functions' 1 MiB.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;
/// The most states in a definition, nested ones included.
pub const MAX_STATES: usize = 10_000;
/// The most tags on a workflow or definition, and the longest key and value: AWS's tag rules.
pub const MAX_TAGS: usize = 50;
/// The longest tag key.
pub const MAX_TAG_KEY: usize = 128;
/// The longest tag value.
pub const MAX_TAG_VALUE: usize = 256;

/// Checks a payload's size.
pub fn check_payload(field: &str, payload: &str) -> Result<(), ApiError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ApiError::bad_request(format!(
            "{field}: {} bytes is over the limit of {MAX_PAYLOAD_BYTES} bytes (256 KiB)",
            payload.len()
        )));
    }
    Ok(())
}

/// Checks tags against AWS's limits (values that are not strings are the manager's to refuse).
pub fn check_tags(
    field: &str,
    tags: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "{field}: {} tags is over the limit of {MAX_TAGS}",
            tags.len()
        )));
    }
    for (k, v) in tags {
        let v = v.as_str().unwrap_or("");
        if k.is_empty() || k.chars().count() > MAX_TAG_KEY {
            return Err(ApiError::bad_request(format!(
                "{field}: tag key '{}' must have 1 to {MAX_TAG_KEY} characters",
                k.chars().take(40).collect::<String>()
            )));
        }
        if v.chars().count() > MAX_TAG_VALUE {
            return Err(ApiError::bad_request(format!(
                "{field}.{k}: a tag value has at most {MAX_TAG_VALUE} characters"
            )));
        }
    }
    Ok(())
}

/// Checks a definition's state machine: its size as JSON and its number of states.
pub fn check_state_machine(field: &str, machine: &serde_json::Value) -> Result<(), ApiError> {
    let size = serde_json::to_string(machine).map(|s| s.len()).unwrap_or(0);
    if size > MAX_DEFINITION_BYTES {
        return Err(ApiError::bad_request(format!(
            "{field}: {size} bytes is over the limit of {MAX_DEFINITION_BYTES} bytes (1 MiB)"
        )));
    }
    let states = count_states(machine);
    if states > MAX_STATES {
        return Err(ApiError::bad_request(format!(
            "{field}: {states} states is over the limit of {MAX_STATES}"
        )));
    }
    Ok(())
}

/// States of a machine, counting those of Parallel branches and Map processors.
fn count_states(machine: &serde_json::Value) -> usize {
    let Some(states) = machine.get("States").and_then(|s| s.as_object()) else {
        return 0;
    };
    states
        .values()
        .map(|state| {
            let branches = state
                .get("Branches")
                .and_then(|b| b.as_array())
                .map(|b| b.iter().map(count_states).sum())
                .unwrap_or(0);
            let processor = ["ItemProcessor", "Iterator"]
                .iter()
                .filter_map(|k| state.get(*k))
                .map(count_states)
                .sum::<usize>();
            1 + branches + processor
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_states_count() {
        let m = json!({"States": {
            "P": {"Type": "Parallel", "Branches": [
                {"States": {"A": {}, "B": {}}},
                {"States": {"M": {"Type": "Map", "ItemProcessor": {"States": {"X": {}}}}}}
            ]},
            "E": {}
        }});
        assert_eq!(count_states(&m), 6);
    }
}
