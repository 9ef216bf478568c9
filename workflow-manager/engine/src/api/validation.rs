//! `ValidateStateMachineDefinition`: a definition's problems as diagnostics (severity, code,
//! message, location as a JSON pointer such as `/States/Work/Resource`), found by the same
//! checks `CreateStateMachine` makes. The checks stop at the first problem, so at most one
//! diagnostic is given.

use serde::Serialize;
use serde_json::Value;

use super::machines::check_tasks;
use crate::machine::compiled::Compiled;
use crate::Engine;

/// One problem of a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// `ERROR` (the engine reports no warnings).
    pub severity: &'static str,
    /// `INVALID_JSON_DESCRIPTION`, `MISSING_TRANSITION_TARGET` or `SCHEMA_VALIDATION_FAILED`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Where, as a JSON pointer (`/` for the whole definition).
    pub location: String,
}

/// A JSON pointer's segment (`~` and `/` escaped).
fn escaped(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `/States/P/Branches[0]/Resource` (the Task checks' locations) →
/// `/States/P/Branches/0/Resource`.
fn indexed(location: &str) -> String {
    location.replace('[', "/").replace(']', "")
}

/// `$.States.Work['a b'].Resource` → `/States/Work/a b/Resource`.
fn pointer(path: &str) -> String {
    let rest = path.strip_prefix('$').unwrap_or(path);
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.push('/'),
            '[' => {
                out.push('/');
                let quoted = chars.peek() == Some(&'\'');
                if quoted {
                    chars.next();
                }
                let mut segment = String::new();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    match n {
                        '\\' if quoted => {
                            if let Some(e) = chars.next() {
                                segment.push(e);
                            }
                        }
                        '\'' if quoted => {}
                        ']' => break,
                        other => segment.push(other),
                    }
                }
                out.push_str(&escaped(&segment));
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}

fn error(code: &'static str, message: impl Into<String>, location: String) -> Diagnostic {
    Diagnostic {
        severity: "ERROR",
        code,
        message: message.into(),
        location,
    }
}

/// The code of a problem, from its wording.
fn code_of(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("does not exist") || m.contains("no such state") || m.contains("missing state") {
        "MISSING_TRANSITION_TARGET"
    } else {
        "SCHEMA_VALIDATION_FAILED"
    }
}

impl Engine {
    /// The problems of `definition` for a machine of `machine_type` (none: it is valid).
    pub fn validate_state_machine_definition(
        &self,
        definition: &str,
        machine_type: &str,
    ) -> Vec<Diagnostic> {
        if let Err(e) = serde_json::from_str::<Value>(definition) {
            return vec![error(
                "INVALID_JSON_DESCRIPTION",
                format!("The definition is not valid JSON: {e}"),
                "/".into(),
            )];
        }
        let machine = match wfm_asl::parse_definition(definition)
            .and_then(|m| wfm_asl::validate(&m).map(|()| m))
        {
            Ok(m) => m,
            Err(e) => return vec![error(code_of(&e.message), e.message, pointer(&e.path))],
        };
        if let Err(e) = Compiled::new(std::sync::Arc::new(machine.clone())) {
            return vec![error("SCHEMA_VALIDATION_FAILED", e.to_string(), "/".into())];
        }
        if let Err(e) = check_tasks(&machine, "", machine_type == "EXPRESS") {
            // "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: M at /L'".
            let text = e.to_string();
            let inner = text
                .split_once("SCHEMA_VALIDATION_FAILED: ")
                .map(|(_, m)| m.trim_end_matches('\''))
                .unwrap_or(&text);
            let (message, location) = match inner.rsplit_once(" at /") {
                Some((m, l)) => (m.trim_end().to_string(), indexed(&format!("/{l}"))),
                None => (inner.to_string(), "/".into()),
            };
            return vec![error("SCHEMA_VALIDATION_FAILED", message, location)];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(pointer("$.States['a/b~c']"), "/States/a~1b~0c");
        assert_eq!(
            indexed("/States/P/Branches[1]/States/T/Resource"),
            "/States/P/Branches/1/States/T/Resource"
        );
        assert_eq!(pointer("$"), "/");
        assert_eq!(pointer("$.States.Work.Resource"), "/States/Work/Resource");
        assert_eq!(pointer("$.States['a b'].Next"), "/States/a b/Next");
        assert_eq!(
            pointer("$.States.P.Branches[0].StartAt"),
            "/States/P/Branches/0/StartAt"
        );
    }

    #[test]
    fn a_definition_is_valid_or_has_its_problem_located() {
        let e = Engine::in_memory(crate::EngineConfig::default(), None).expect("engine");
        assert!(e
            .validate_state_machine_definition(
                r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#,
                "STANDARD"
            )
            .is_empty());
        let bad_json = e.validate_state_machine_definition("{", "STANDARD");
        assert_eq!(bad_json[0].code, "INVALID_JSON_DESCRIPTION");
        let missing = e.validate_state_machine_definition(
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#,
            "STANDARD",
        );
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].location.starts_with("/States/A"), "{missing:?}");
        let express = e.validate_state_machine_definition(
            r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}}}"#,
            "EXPRESS",
        );
        assert_eq!(express[0].code, "SCHEMA_VALIDATION_FAILED");
        assert_eq!(express[0].location, "/States/A/Resource");
    }
}
