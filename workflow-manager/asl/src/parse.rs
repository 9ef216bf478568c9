//! Parsing a definition from JSON into the typed model, with errors that name the JSON path of
//! the problem (`$.States.Greet.Next: ...`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::definition::{
    ChoiceState, FailState, MapState, ParallelState, PassState, State, StateMachine, SucceedState,
    TaskState, WaitState,
};

/// A definition that is not valid ASL, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DefinitionError {
    /// JSON path of the offending value, `$` for the whole definition.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl DefinitionError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Appends a member name to a JSON path, in dot form where the name allows it.
pub fn child_path(parent: &str, name: &str) -> String {
    let simple = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if simple {
        format!("{parent}.{name}")
    } else {
        format!(
            "{parent}['{}']",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }
}

/// Parses a definition from JSON text.
pub fn parse_definition(text: &str) -> Result<StateMachine, DefinitionError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DefinitionError::new("$", format!("not valid JSON: {e}")))?;
    parse_definition_value(&value)
}

/// Parses a definition from a JSON value.
pub fn parse_definition_value(value: &Value) -> Result<StateMachine, DefinitionError> {
    if let Some(err) = locate_machine_error(value, "$") {
        return Err(err);
    }
    // Every state parsed on its own above; the whole can still fail on machine-level fields.
    deserialize_at::<StateMachine>(value.clone(), "$")
}

fn deserialize_at<T: DeserializeOwned>(value: Value, base: &str) -> Result<T, DefinitionError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = base.to_string();
        for segment in e.path().iter() {
            path = match segment {
                serde_path_to_error::Segment::Seq { index } => format!("{path}[{index}]"),
                serde_path_to_error::Segment::Map { key } => child_path(&path, key),
                serde_path_to_error::Segment::Enum { variant } => child_path(&path, variant),
                serde_path_to_error::Segment::Unknown => path,
            };
        }
        DefinitionError::new(path, e.into_inner().to_string())
    })
}

/// Finds the deepest error in a machine: nested machines first, then each state on its own,
/// so that the reported path points into the state rather than at `States`.
fn locate_machine_error(value: &Value, path: &str) -> Option<DefinitionError> {
    let Some(obj) = value.as_object() else {
        return Some(DefinitionError::new(
            path,
            "a state machine must be a JSON object",
        ));
    };
    let states_path = child_path(path, "States");
    match obj.get("States") {
        None => return Some(DefinitionError::new(path, "missing field `States`")),
        Some(Value::Object(states)) => {
            for (name, state) in states {
                if let Some(err) = locate_state_error(state, &child_path(&states_path, name)) {
                    return Some(err);
                }
            }
        }
        Some(_) => {
            return Some(DefinitionError::new(
                states_path,
                "`States` must be an object",
            ))
        }
    }
    None
}

fn locate_state_error(value: &Value, path: &str) -> Option<DefinitionError> {
    let Some(obj) = value.as_object() else {
        return Some(DefinitionError::new(path, "a state must be a JSON object"));
    };
    let type_name = match obj.get("Type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Some(DefinitionError::new(
                child_path(path, "Type"),
                "must be a string",
            ))
        }
        None => return Some(DefinitionError::new(path, "missing field `Type`")),
    };
    for key in ["Iterator", "ItemProcessor"] {
        if let Some(m) = obj.get(key) {
            if let Some(err) = locate_machine_error(m, &child_path(path, key)) {
                return Some(err);
            }
        }
    }
    if let Some(Value::Array(branches)) = obj.get("Branches") {
        let branches_path = child_path(path, "Branches");
        for (i, b) in branches.iter().enumerate() {
            if let Some(err) = locate_machine_error(b, &format!("{branches_path}[{i}]")) {
                return Some(err);
            }
        }
    }
    let mut rest: Map<String, Value> = obj.clone();
    rest.remove("Type");
    let rest = Value::Object(rest);
    let result = match type_name {
        "Pass" => deserialize_at::<PassState>(rest, path).map(State::Pass),
        "Task" => deserialize_at::<TaskState>(rest, path).map(State::Task),
        "Choice" => deserialize_at::<ChoiceState>(rest, path).map(State::Choice),
        "Wait" => deserialize_at::<WaitState>(rest, path).map(State::Wait),
        "Succeed" => deserialize_at::<SucceedState>(rest, path).map(State::Succeed),
        "Fail" => deserialize_at::<FailState>(rest, path).map(State::Fail),
        "Parallel" => deserialize_at::<ParallelState>(rest, path).map(State::Parallel),
        "Map" => deserialize_at::<MapState>(rest, path).map(State::Map),
        other => {
            return Some(DefinitionError::new(
                child_path(path, "Type"),
                format!(
                    "invalid state type `{other}`: expected one of Pass, Task, Choice, Wait, \
                     Succeed, Fail, Parallel, Map"
                ),
            ))
        }
    };
    result.err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_linear_machine_and_round_trips() {
        let v = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Result": {"x": 1}, "Next": "B"},
            "B": {"Type": "Task", "Resource": "echo", "End": true}
        }});
        let m = parse_definition_value(&v).expect("valid");
        assert_eq!(m.states.len(), 2);
        assert_eq!(serde_json::to_value(&m).expect("ser"), v);
    }

    #[test]
    fn names_the_path_of_an_unknown_field() {
        let v = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Nxt": "B"}
        }});
        let err = parse_definition_value(&v).expect_err("invalid");
        assert_eq!(err.path, "$.States.A.Nxt");
        assert!(err.message.contains("Nxt"), "{err}");
    }

    #[test]
    fn names_the_path_of_a_wrong_type_deep_in_a_branch() {
        let v = json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "X", "States": {"X": {"Type": "Pass", "End": "yes"}}}
            ]}
        }});
        let err = parse_definition_value(&v).expect_err("invalid");
        assert_eq!(err.path, "$.States.P.Branches[0].States.X.End");
    }

    #[test]
    fn rejects_an_unknown_state_type() {
        let v = json!({"StartAt": "A", "States": {"my state": {"Type": "Sleep"}}});
        let err = parse_definition_value(&v).expect_err("invalid");
        assert_eq!(err.path, "$.States['my state'].Type");
    }
}
