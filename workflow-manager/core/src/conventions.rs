//! Naming conventions shared by every backend: the state machine per (definition, version,
//! namespace, StartAt), activity names per namespace, and the rewriting of a definition's
//! short `Resource` names into ARNs before it is sent to Step Functions.

use serde_json::{json, Value};
use wfm_asl::{State, StateMachine};

/// Replaces characters Step Functions rejects in names with `-`.
fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `namespace--name--version--startAt`, sanitised and cut to Step Functions' 80 characters.
pub fn state_machine_name(
    definition_name: &str,
    version: i64,
    namespace: &str,
    start_at: &str,
) -> String {
    let name = format!(
        "{}--{}--{}--{}",
        sanitize(namespace),
        sanitize(definition_name),
        version,
        sanitize(start_at)
    );
    name.chars().take(80).collect()
}

/// The activity name a short resource name stands for in a namespace: `namespace--resource`.
pub fn activity_name(namespace: &str, resource: &str) -> String {
    format!("{namespace}--{resource}")
}

/// Whether a `Resource` is a short name to expand (not an ARN, not an integration prefix).
pub fn is_short_resource(resource: &str) -> bool {
    !resource.starts_with("arn:") && !resource.contains(':')
}

/// Rewrites a definition for execution in `namespace`: short Task resources become activity
/// ARNs (through `activity_arn`), and every Map passes `_EXECUTION_NAME` on to its items.
/// Nested branches and processors are rewritten too.
pub fn expand_for_namespace(
    machine: &StateMachine,
    namespace: &str,
    activity_arn: &dyn Fn(&str) -> String,
) -> StateMachine {
    let mut out = machine.clone();
    for state in out.states.values_mut() {
        match state {
            State::Task(task) => {
                if let Some(r) = &task.resource {
                    if is_short_resource(r) {
                        task.resource = Some(activity_arn(&activity_name(namespace, r)));
                    }
                }
            }
            State::Parallel(p) => {
                for branch in p.branches.iter_mut().flatten() {
                    *branch = expand_for_namespace(branch, namespace, activity_arn);
                }
            }
            State::Map(m) => {
                if let Some(it) = &m.iterator {
                    m.iterator = Some(expand_for_namespace(it, namespace, activity_arn));
                }
                if let Some(it) = &m.item_processor {
                    m.item_processor = Some(expand_for_namespace(it, namespace, activity_arn));
                }
                let template = if m.item_selector.is_some() {
                    &mut m.item_selector
                } else {
                    &mut m.parameters
                };
                if let Some(Value::Object(fields)) = template {
                    fields
                        .entry("_EXECUTION_NAME.$")
                        .or_insert_with(|| json!("$._EXECUTION_NAME"));
                }
            }
            _ => {}
        }
    }
    out
}

/// The machine started at `start_at` instead, without the states that cannot be reached from
/// there (Step Functions rejects unreachable states). Errors name what is wrong.
pub fn start_at(machine: &StateMachine, start_at: &str) -> Result<StateMachine, String> {
    if !machine.states.contains_key(start_at) {
        return Err(format!(
            "'{start_at}' is not a state of the workflow definition"
        ));
    }
    let mut reached: Vec<&str> = Vec::new();
    let mut queue = vec![start_at];
    while let Some(name) = queue.pop() {
        if reached.contains(&name) {
            continue;
        }
        reached.push(name);
        if let Some(state) = machine.states.get(name) {
            queue.extend(state.successors());
        }
    }
    let mut out = machine.clone();
    out.start_at = start_at.to_string();
    out.states
        .retain(|name, _| reached.contains(&name.as_str()));
    Ok(out)
}

/// The short resource names a definition's Task states use (nested ones included).
pub fn short_resources(machine: &StateMachine) -> Vec<String> {
    let mut out = Vec::new();
    for state in machine.states.values() {
        match state {
            State::Task(t) => {
                if let Some(r) = &t.resource {
                    if is_short_resource(r) && !out.contains(r) {
                        out.push(r.clone());
                    }
                }
            }
            State::Parallel(p) => {
                for b in p.branches.iter().flatten() {
                    for r in short_resources(b) {
                        if !out.contains(&r) {
                            out.push(r);
                        }
                    }
                }
            }
            State::Map(m) => {
                if let Some(pr) = m.processor() {
                    for r in short_resources(pr) {
                        if !out.contains(&r) {
                            out.push(r);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_later_prunes_what_cannot_be_reached() {
        let m: StateMachine = serde_json::from_value(json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "C"}], "Default": "D"},
            "C": {"Type": "Succeed"},
            "D": {"Type": "Fail"}
        }}))
        .expect("machine");
        let from_b = start_at(&m, "B").expect("B exists");
        assert_eq!(from_b.start_at, "B");
        assert_eq!(from_b.states.keys().collect::<Vec<_>>(), ["B", "C", "D"]);
        wfm_asl::validate(&from_b).expect("still valid");
        assert_eq!(start_at(&m, "C").expect("C").states.len(), 1);
        assert!(start_at(&m, "Z").is_err());
    }

    #[test]
    fn names_follow_the_convention() {
        assert_eq!(
            state_machine_name("my:flow", 3, "prod", "Start Here"),
            "prod--my-flow--3--Start-Here"
        );
        assert_eq!(state_machine_name(&"x".repeat(100), 0, "n", "s").len(), 80);
    }

    #[test]
    fn expands_short_resources_and_map_parameters() {
        let m: StateMachine = serde_json::from_value(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "echo", "Next": "M"},
            "M": {"Type": "Map", "Parameters": {"v.$": "$$.Map.Item.Value"}, "Next": "A",
                  "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Task", "Resource": "inner", "End": true}}}},
            "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}
        }}))
        .expect("machine");
        let arn = |name: &str| format!("arn:aws:states:r:1:activity:{name}");
        let out = serde_json::to_value(expand_for_namespace(&m, "ns", &arn)).expect("json");
        assert_eq!(
            out["States"]["T"]["Resource"],
            "arn:aws:states:r:1:activity:ns--echo"
        );
        assert_eq!(
            out["States"]["M"]["Iterator"]["States"]["I"]["Resource"],
            "arn:aws:states:r:1:activity:ns--inner"
        );
        assert_eq!(
            out["States"]["M"]["Parameters"]["_EXECUTION_NAME.$"],
            "$._EXECUTION_NAME"
        );
        assert_eq!(
            out["States"]["A"]["Resource"],
            "arn:aws:states:::lambda:invoke"
        );
        assert_eq!(
            short_resources(&m),
            vec!["echo".to_string(), "inner".to_string()]
        );
    }
}
