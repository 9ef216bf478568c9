//! Structural validation of a parsed state machine: the rules Step Functions applies at
//! CreateStateMachine and the ones Clever's handler applied to new definitions. Every error names
//! the JSON path of the offending field.

use std::collections::{HashSet, VecDeque};

use crate::definition::{ChoiceRule, ChoiceState, State, StateMachine, WaitState};
use crate::parse::{child_path, DefinitionError};

/// Validates a whole state machine, nested branches and processors included.
pub fn validate(machine: &StateMachine) -> Result<(), DefinitionError> {
    validate_machine(machine, "$")
}

fn validate_machine(machine: &StateMachine, path: &str) -> Result<(), DefinitionError> {
    let states_path = child_path(path, "States");
    if machine.states.is_empty() {
        return Err(DefinitionError::new(
            states_path,
            "a state machine needs at least one state",
        ));
    }
    if machine.start_at.is_empty() {
        return Err(DefinitionError::new(
            child_path(path, "StartAt"),
            "StartAt must not be empty",
        ));
    }
    if !machine.states.contains_key(&machine.start_at) {
        return Err(DefinitionError::new(
            child_path(path, "StartAt"),
            format!(
                "StartAt names a state that does not exist: `{}`",
                machine.start_at
            ),
        ));
    }
    for (name, state) in &machine.states {
        let state_path = child_path(&states_path, name);
        validate_state(machine, state, &state_path)?;
    }
    check_reachability(machine, path)
}

fn target_exists(
    machine: &StateMachine,
    target: &str,
    path: String,
    what: &str,
) -> Result<(), DefinitionError> {
    if machine.states.contains_key(target) {
        Ok(())
    } else {
        Err(DefinitionError::new(
            path,
            format!("{what} names a state that does not exist: `{target}`"),
        ))
    }
}

fn validate_state(
    machine: &StateMachine,
    state: &State,
    path: &str,
) -> Result<(), DefinitionError> {
    // Transitions.
    match state {
        State::Succeed(_) | State::Fail(_) => {
            if state.next().is_some() {
                return Err(DefinitionError::new(
                    child_path(path, "Next"),
                    "a terminal state (Succeed or Fail) must not have Next",
                ));
            }
            if state.is_end() {
                return Err(DefinitionError::new(
                    child_path(path, "End"),
                    "a terminal state (Succeed or Fail) must not have End",
                ));
            }
        }
        State::Choice(choice) => validate_choice(machine, choice, path)?,
        _ => match (state.next(), state.is_end()) {
            (Some(_), true) => {
                return Err(DefinitionError::new(
                    path,
                    "a state cannot have both Next and End",
                ))
            }
            (None, false) => {
                return Err(DefinitionError::new(
                    path,
                    "a non-terminal state must specify next state (Next) or End: true",
                ))
            }
            (Some(next), false) => {
                target_exists(machine, next, child_path(path, "Next"), "Next")?;
            }
            (None, true) => {}
        },
    }

    // Type-specific rules.
    match state {
        State::Task(task) => {
            if task.resource.as_deref().unwrap_or("").trim().is_empty() {
                return Err(DefinitionError::new(
                    child_path(path, "Resource"),
                    "a Task state must specify resource",
                ));
            }
            if let Some(c) = &task.credentials {
                validate_credentials(c, &child_path(path, "Credentials"))?;
            }
            validate_catchers(machine, task.catch.as_deref(), path)?;
            validate_retriers(task.retry.as_deref(), path)?;
        }
        State::Wait(wait) => validate_wait(wait, path)?,
        State::Parallel(parallel) => {
            let branches_path = child_path(path, "Branches");
            let branches = parallel.branches.as_deref().unwrap_or(&[]);
            if branches.is_empty() {
                return Err(DefinitionError::new(
                    branches_path,
                    "a Parallel state needs at least one branch",
                ));
            }
            for (i, branch) in branches.iter().enumerate() {
                validate_machine(branch, &format!("{branches_path}[{i}]"))?;
            }
            validate_catchers(machine, parallel.catch.as_deref(), path)?;
            validate_retriers(parallel.retry.as_deref(), path)?;
        }
        State::Map(map) => {
            match (&map.item_processor, &map.iterator) {
                (Some(p), None) => validate_machine(p, &child_path(path, "ItemProcessor"))?,
                (None, Some(p)) => validate_machine(p, &child_path(path, "Iterator"))?,
                (Some(_), Some(_)) => {
                    return Err(DefinitionError::new(
                        path,
                        "a Map state takes ItemProcessor or Iterator, not both",
                    ))
                }
                (None, None) => {
                    return Err(DefinitionError::new(
                        path,
                        "a Map state needs an Iterator (or ItemProcessor)",
                    ))
                }
            }
            if let Some(label) = &map.label {
                validate_label(label, &child_path(path, "Label"))?;
            }
            validate_catchers(machine, map.catch.as_deref(), path)?;
            validate_retriers(map.retry.as_deref(), path)?;
        }
        State::Fail(fail) => {
            if fail.error.is_some() && fail.error_path.is_some() {
                return Err(DefinitionError::new(
                    path,
                    "a Fail state takes Error or ErrorPath, not both",
                ));
            }
            if fail.cause.is_some() && fail.cause_path.is_some() {
                return Err(DefinitionError::new(
                    path,
                    "a Fail state takes Cause or CausePath, not both",
                ));
            }
        }
        State::Pass(_) | State::Choice(_) | State::Succeed(_) => {}
    }
    Ok(())
}

/// A Task's `Credentials`: an object with a `RoleArn` (a string, or a JSONata expression) or a
/// `RoleArn.$` path, and nothing else.
fn validate_credentials(c: &serde_json::Value, path: &str) -> Result<(), DefinitionError> {
    let Some(fields) = c.as_object() else {
        return Err(DefinitionError::new(path, "Credentials must be an object"));
    };
    let role = fields.get("RoleArn").map(|v| (v, "RoleArn"));
    let role_path = fields.get("RoleArn.$").map(|v| (v, "RoleArn.$"));
    let (value, name) = match (role, role_path) {
        (Some(r), None) => r,
        (None, Some(r)) => r,
        (Some(_), Some(_)) => {
            return Err(DefinitionError::new(
                path,
                "Credentials takes RoleArn or RoleArn.$, not both",
            ))
        }
        (None, None) => {
            return Err(DefinitionError::new(
                path,
                "Credentials must have a RoleArn (or RoleArn.$)",
            ))
        }
    };
    if value.as_str().is_none_or(|s| s.trim().is_empty()) {
        return Err(DefinitionError::new(
            child_path(path, name),
            format!("{name} must be a non-empty string"),
        ));
    }
    if let Some(other) = fields.keys().find(|k| *k != "RoleArn" && *k != "RoleArn.$") {
        return Err(DefinitionError::new(
            child_path(path, other),
            format!("Credentials has no field '{other}'"),
        ));
    }
    Ok(())
}

/// A Map's `Label`: 1 to 40 characters, none of whitespace, brackets, wildcards,
/// punctuation Step Functions reserves, or control characters.
fn validate_label(label: &str, path: &str) -> Result<(), DefinitionError> {
    if label.is_empty() {
        return Err(DefinitionError::new(path, "Label cannot be empty"));
    }
    if let Some(c) = label.chars().find(|c| {
        c.is_whitespace()
            || "{}[]?*\"#%\\^|~`$&,;:/<>".contains(*c)
            || ('\u{0}'..='\u{1f}').contains(c)
            || ('\u{7f}'..='\u{9f}').contains(c)
    }) {
        return Err(DefinitionError::new(
            path,
            format!("Label contains invalid character: {c:?}"),
        ));
    }
    if label.chars().count() > 40 {
        return Err(DefinitionError::new(
            path,
            "Label cannot exceed 40 characters",
        ));
    }
    Ok(())
}

fn validate_wait(wait: &WaitState, path: &str) -> Result<(), DefinitionError> {
    let given = [
        wait.seconds.is_some(),
        wait.seconds_path.is_some(),
        wait.timestamp.is_some(),
        wait.timestamp_path.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(DefinitionError::new(
            path,
            "a Wait state needs exactly one of the seconds parameters: Seconds, SecondsPath, \
             Timestamp or TimestampPath",
        ));
    }
    if let Some(s) = &wait.seconds {
        if s.is_number() && s.as_u64().is_none() {
            return Err(DefinitionError::new(
                child_path(path, "Seconds"),
                "Seconds must be a non-negative integer",
            ));
        }
    }
    Ok(())
}

fn validate_catchers(
    machine: &StateMachine,
    catchers: Option<&[crate::definition::Catcher]>,
    path: &str,
) -> Result<(), DefinitionError> {
    let catch_path = child_path(path, "Catch");
    for (i, c) in catchers.unwrap_or(&[]).iter().enumerate() {
        let p = format!("{catch_path}[{i}]");
        if c.error_equals.is_empty() {
            return Err(DefinitionError::new(
                child_path(&p, "ErrorEquals"),
                "must not be empty",
            ));
        }
        target_exists(machine, &c.next, child_path(&p, "Next"), "Next")?;
    }
    Ok(())
}

fn validate_retriers(
    retriers: Option<&[crate::definition::Retrier]>,
    path: &str,
) -> Result<(), DefinitionError> {
    let retry_path = child_path(path, "Retry");
    for (i, r) in retriers.unwrap_or(&[]).iter().enumerate() {
        let p = format!("{retry_path}[{i}]");
        if r.error_equals.is_empty() {
            return Err(DefinitionError::new(
                child_path(&p, "ErrorEquals"),
                "must not be empty",
            ));
        }
        if let Some(rate) = r.backoff_rate {
            if rate < 1.0 {
                return Err(DefinitionError::new(
                    child_path(&p, "BackoffRate"),
                    "BackoffRate must be at least 1.0",
                ));
            }
        }
    }
    Ok(())
}

/// Keys of a choice rule that are not comparisons.
const RULE_META_KEYS: &[&str] = &["Variable", "Next", "Comment", "Assign", "Output"];

fn validate_choice(
    machine: &StateMachine,
    choice: &ChoiceState,
    path: &str,
) -> Result<(), DefinitionError> {
    let choices_path = child_path(path, "Choices");
    let rules = choice.choices.as_deref().unwrap_or(&[]);
    if rules.is_empty() {
        return Err(DefinitionError::new(
            choices_path,
            "a Choice state needs at least one choice",
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let p = format!("{choices_path}[{i}]");
        match &rule.next {
            None => {
                return Err(DefinitionError::new(
                    p,
                    "every choice must specify next state (Next)",
                ))
            }
            Some(next) => target_exists(machine, next, child_path(&p, "Next"), "Next")?,
        }
        validate_rule(rule, &p)?;
    }
    if let Some(default) = &choice.default {
        target_exists(machine, default, child_path(path, "Default"), "Default")?;
    }
    Ok(())
}

fn validate_rule(rule: &ChoiceRule, path: &str) -> Result<(), DefinitionError> {
    let value = serde_json::to_value(rule)
        .map_err(|e| DefinitionError::new(path, format!("cannot read rule: {e}")))?;
    let operators: Vec<String> = value
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !RULE_META_KEYS.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if operators.len() != 1 {
        return Err(DefinitionError::new(
            path,
            format!(
                "a choice rule needs exactly one comparison operator (or And, Or, Not, Condition), \
                 found {}",
                if operators.is_empty() { "none".to_string() } else { operators.join(", ") }
            ),
        ));
    }
    let op = operators[0].as_str();
    let combinator = matches!(op, "And" | "Or" | "Not" | "Condition");
    if !combinator && rule.variable.is_none() {
        return Err(DefinitionError::new(
            path,
            format!("the comparison {op} needs a Variable"),
        ));
    }
    for (key, nested) in [("And", &rule.and), ("Or", &rule.or)] {
        if let Some(list) = nested {
            if list.is_empty() {
                return Err(DefinitionError::new(
                    child_path(path, key),
                    "must not be empty",
                ));
            }
            for (i, r) in list.iter().enumerate() {
                validate_nested_rule(r, &format!("{}[{i}]", child_path(path, key)))?;
            }
        }
    }
    if let Some(n) = &rule.not {
        validate_nested_rule(n, &child_path(path, "Not"))?;
    }
    Ok(())
}

fn validate_nested_rule(rule: &ChoiceRule, path: &str) -> Result<(), DefinitionError> {
    if rule.next.is_some() {
        return Err(DefinitionError::new(
            child_path(path, "Next"),
            "only top-level choice rules may have Next",
        ));
    }
    validate_rule(rule, path)
}

/// Every state must be reachable from StartAt, and an end must be reachable.
fn check_reachability(machine: &StateMachine, path: &str) -> Result<(), DefinitionError> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue: VecDeque<&str> = VecDeque::from([machine.start_at.as_str()]);
    let mut end_reachable = false;
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name) {
            continue;
        }
        let Some(state) = machine.states.get(name) else {
            continue;
        };
        if state.is_end() || state.is_terminal_type() {
            end_reachable = true;
        }
        queue.extend(state.successors());
    }
    if let Some((name, _)) = machine
        .states
        .iter()
        .find(|(n, _)| !seen.contains(n.as_str()))
    {
        return Err(DefinitionError::new(
            child_path(&child_path(path, "States"), name),
            format!("state `{name}` is not reachable from StartAt"),
        ));
    }
    if !end_reachable {
        return Err(DefinitionError::new(
            path,
            "no end state is reachable: some state must have End: true or be a Succeed or Fail state",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_definition_value;
    use serde_json::{json, Value};

    fn check(v: Value) -> Result<(), DefinitionError> {
        validate(&parse_definition_value(&v)?)
    }

    #[test]
    fn accepts_task_parallel_map_and_end_states() {
        let v = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "echo", "Next": "P"},
            "P": {"Type": "Parallel", "Next": "M", "Branches": [
                {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "x", "End": true}}}
            ]},
            "M": {"Type": "Map", "Next": "C", "Iterator":
                {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}},
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.x", "NumericEquals": 1, "Next": "S"}
            ], "Default": "F"},
            "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "Error": "E"}
        }});
        check(v).expect("valid");
    }

    #[test]
    fn each_rule_names_its_path() {
        let cases = [
            (
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true}}}),
                "$.States.T.Resource",
                "specify resource",
            ),
            (
                json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}),
                "$.States.M",
                "Iterator",
            ),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "B", "States": {"B": {"Type": "Task", "End": true}}}]}}}),
                "$.States.P.Branches[0].States.B.Resource",
                "specify resource",
            ),
            (
                json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": []}}}),
                "$.States.C.Choices",
                "at least one choice",
            ),
            (
                json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
                {"Variable": "$.a", "BooleanEquals": true}]}, "S": {"Type": "Succeed"}}}),
                "$.States.C.Choices[0]",
                "Next",
            ),
            (
                json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "End": true}}}),
                "$.States.W",
                "seconds parameter",
            ),
            (
                json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1,
                "SecondsPath": "$.s", "End": true}}}),
                "$.States.W",
                "seconds parameter",
            ),
            (
                json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "Next": "S"}}}),
                "$.States.S.Next",
                "terminal",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
                "$.States.A",
                "must specify next state",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}}),
                "$.States.A.Next",
                "does not exist",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Pass", "Next": "A"}}}),
                "$",
                "end state",
            ),
            (
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true},
                "B": {"Type": "Pass", "End": true}}}),
                "$.States.B",
                "not reachable",
            ),
            (
                json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}}),
                "$.StartAt",
                "does not exist",
            ),
        ];
        for (v, path, text) in cases {
            let err = check(v.clone()).expect_err(&v.to_string());
            assert_eq!(err.path, path, "{v}: {err}");
            assert!(err.message.contains(text), "{v}: {err}");
        }
    }
}

#[cfg(test)]
mod credentials_and_label_tests {
    use super::*;
    use crate::parse::parse_definition_value;
    use serde_json::{json, Value};

    fn task_with(credentials: Value) -> Result<(), DefinitionError> {
        validate(&parse_definition_value(
            &json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Credentials": credentials, "End": true}}}),
        )?)
    }

    fn map_labelled(label: &str) -> Result<(), DefinitionError> {
        validate(&parse_definition_value(
            &json!({"StartAt": "M", "States": {
            "M": {"Type": "Map", "Label": label, "End": true, "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}),
        )?)
    }

    #[test]
    fn credentials_name_one_role() {
        task_with(json!({"RoleArn": "arn:aws:iam::1:role/r"})).expect("a role");
        task_with(json!({"RoleArn.$": "$.role"})).expect("a role from the input");
        for (bad, at) in [
            (json!("arn:aws:iam::1:role/r"), "$.States.T.Credentials"),
            (json!({}), "$.States.T.Credentials"),
            (json!({"RoleArn": 3}), "$.States.T.Credentials.RoleArn"),
            (
                json!({"RoleArn": "r", "RoleArn.$": "$.r"}),
                "$.States.T.Credentials",
            ),
            (
                json!({"RoleArn": "r", "Other": 1}),
                "$.States.T.Credentials.Other",
            ),
        ] {
            let e = task_with(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(e.path, at, "{bad}: {e}");
        }
    }

    #[test]
    fn labels_are_one_to_forty_plain_characters() {
        map_labelled("Files").expect("a label");
        for bad in ["", "has space", "a:b", &"x".repeat(41)] {
            let e = map_labelled(bad).expect_err(bad);
            assert_eq!(e.path, "$.States.M.Label", "{bad}: {e}");
        }
    }
}
