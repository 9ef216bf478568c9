//! Naming conventions shared by every backend: the state machine per (definition, version,
//! namespace, StartAt), activity names per namespace, and the rewriting of a definition's
//! short `Resource` names into ARNs before it is sent to Step Functions:
//!
//! - `NAME` becomes the activity `arn:aws:states:REGION:ACCOUNT:activity:namespace--NAME`;
//! - `batch:NAME` becomes the `arn:aws:states:::batch:submitJob.sync` integration, with the
//!   JobDefinition of the state resource (namespace, NAME), the JobQueue of the workflow (the
//!   manager passes it in the execution input as [`JOB_QUEUE_FIELD`]) and the workflow id as
//!   JobName; the state's input reaches the container as `WORKFLOW_INPUT`;
//! - `lambda:NAME` becomes the Lambda function `arn:aws:lambda:REGION:ACCOUNT:function:namespace--NAME`
//!   (Clever's short form; the Task's input is the function's payload, its result the output);
//! - `workflow:NAME` (or `workflow:NAME:VERSION`) starts the workflow definition NAME (its
//!   latest version, or VERSION) as a child workflow in the same namespace and queue, through
//!   `arn:aws:states:::states:startExecution.sync:2` ([`workflow_resource`]): the child's name
//!   is the parent's execution name and a hash of the state's context object (the same when
//!   its parameters are evaluated once, another on each retry or Map item), and its input is
//!   the state's input (or Parameters) with `_EXECUTION_NAME`, the job queue and
//!   `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID`;
//! - every Task state gets the retrier of `sfncli.CommandTerminated` (a worker killed in the
//!   middle of a task, as on a deploy), as Clever's workflow-manager adds it
//!   ([`add_default_retriers`]; both backends apply it when they create a state machine, so
//!   a definition behaves the same on the embedded engine and on AWS).

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

/// The longest state machine name Step Functions takes.
pub const MAX_STATE_MACHINE_NAME: usize = 80;

/// `namespace--name--version--startAt`, sanitised. A name longer than Step Functions' 80
/// characters keeps its first 63 and ends in `-` and 16 hex digits of the full name's MD5, so
/// that different (namespace, name, version, StartAt) never share a state machine.
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
    // Sanitised names are ASCII: one byte per character.
    if name.len() <= MAX_STATE_MACHINE_NAME {
        return name;
    }
    use md5::Digest as _;
    let digest = md5::Md5::digest(name.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", &name[..MAX_STATE_MACHINE_NAME - 17])
}

/// The activity name a short resource name stands for in a namespace: `namespace--resource`.
pub fn activity_name(namespace: &str, resource: &str) -> String {
    format!("{namespace}--{resource}")
}

/// The execution input field that carries the workflow's queue to Batch states.
pub const JOB_QUEUE_FIELD: &str = "_JOB_QUEUE";

/// The error a worker reports when its command was killed (sfncli's name for it).
pub const COMMAND_TERMINATED: &str = "sfncli.CommandTerminated";

/// The retrier every Task state gets: ten attempts, ten seconds apart.
pub fn command_terminated_retrier() -> wfm_asl::definition::Retrier {
    wfm_asl::definition::Retrier {
        error_equals: vec![COMMAND_TERMINATED.to_string()],
        interval_seconds: Some(10),
        max_attempts: Some(10),
        backoff_rate: Some(1.0),
        max_delay_seconds: None,
        jitter_strategy: None,
        comment: None,
    }
}

/// The Batch job definition name of a `batch:NAME` resource, if it is one.
pub fn batch_resource(resource: &str) -> Option<&str> {
    resource.strip_prefix("batch:").filter(|n| !n.is_empty())
}

/// The function name of a `lambda:NAME` resource (Clever's short form), if it is one.
pub fn lambda_resource(resource: &str) -> Option<&str> {
    resource
        .strip_prefix("lambda:")
        .filter(|n| !n.is_empty() && !n.contains(':'))
}

/// The definition (name, version; `None` for the latest) a `workflow:NAME[:VERSION]`
/// resource starts, if it is one.
pub fn workflow_resource(resource: &str) -> Option<(&str, Option<i64>)> {
    let rest = resource.strip_prefix("workflow:")?;
    match rest.rsplit_once(':') {
        Some((name, v)) if !name.is_empty() => v.parse().ok().map(|v| (name, Some(v))),
        Some(_) => None,
        None => (!rest.is_empty()).then_some((rest, None)),
    }
}

/// The `workflow:` resources of a definition (nested ones included), each once.
pub fn workflow_resources(machine: &StateMachine) -> Vec<String> {
    let mut out = Vec::new();
    visit_tasks(machine, &mut |t| {
        if let Some(r) = t
            .resource
            .as_deref()
            .filter(|r| workflow_resource(r).is_some())
        {
            if !out.iter().any(|n| n == r) {
                out.push(r.to_string());
            }
        }
    });
    out
}

/// The name of a child workflow's execution (also its workflow id and `_EXECUTION_NAME`): a
/// hash of the state's context object (which holds the parent's execution, the state, its
/// retry count and Map item), 32 characters however deep children nest.
const CHILD_NAME: &str = "States.Hash(States.JsonToString($$), 'MD5')";

/// The Parameters of a `workflow:` state starting the state machine `child_arn`.
fn child_parameters(existing: Option<&Value>, child_arn: &str) -> Value {
    let extra = [
        ("_EXECUTION_NAME.$", json!(CHILD_NAME)),
        (
            &*format!("{JOB_QUEUE_FIELD}.$"),
            json!(format!("$$.Execution.Input.{JOB_QUEUE_FIELD}")),
        ),
        (
            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$",
            json!("$$.Execution.Id"),
        ),
    ];
    let mut params = serde_json::Map::new();
    params.insert("StateMachineArn".into(), json!(child_arn));
    params.insert("Name.$".into(), json!(CHILD_NAME));
    match existing {
        Some(Value::Object(m)) => {
            let mut input = m.clone();
            for (k, v) in extra {
                input.insert(k.to_string(), v);
            }
            params.insert("Input".into(), Value::Object(input));
        }
        _ => {
            // The state's whole input, with the fields merged in.
            // The name and the ARN are hex, letters, digits, '-' and ':'; the queue is quoted
            // and escaped by JsonToString.
            let fields = format!(
                "'\\{{\"_EXECUTION_NAME\":\"{{}}\",\"{JOB_QUEUE_FIELD}\":{{}},\"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID\":\"{{}}\"\\}}'"
            );
            params.insert(
                "Input.$".into(),
                json!(format!(
                    "States.JsonMerge($, States.StringToJson(States.Format({fields}, {CHILD_NAME}, States.JsonToString($$.Execution.Input.{JOB_QUEUE_FIELD}), $$.Execution.Id)), false)"
                )),
            );
        }
    }
    Value::Object(params)
}

/// The `batch:NAME` resources of a definition (nested ones included), each once.
pub fn batch_resources(machine: &StateMachine) -> Vec<String> {
    let mut out = Vec::new();
    visit_tasks(machine, &mut |t| {
        if let Some(name) = t.resource.as_deref().and_then(batch_resource) {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
    });
    out
}

/// The activity names (`namespace--resource`) of a machine's Task states whose resource is an
/// activity ARN, nested states included, each once: the activities to create with it.
pub fn activity_names(machine: &StateMachine) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    visit_tasks(machine, &mut |t| {
        if let Some((_, name)) = t
            .resource
            .as_deref()
            .and_then(|r| r.split_once(":activity:"))
        {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
    });
    out
}

fn visit_tasks(machine: &StateMachine, f: &mut dyn FnMut(&wfm_asl::definition::TaskState)) {
    for state in machine.states.values() {
        match state {
            State::Task(t) => f(t),
            State::Parallel(p) => p.branches.iter().flatten().for_each(|b| visit_tasks(b, f)),
            State::Map(m) => {
                if let Some(pr) = m.processor() {
                    visit_tasks(pr, f);
                }
            }
            _ => {}
        }
    }
}

/// The Parameters of a `batch:NAME` state: the state's own Parameters, completed with what
/// SubmitJob needs unless the state sets it itself.
fn batch_parameters(existing: Option<&Value>, job_definition: &str) -> Value {
    let mut fields = match existing {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let defaults = [
        ("JobDefinition", json!(job_definition)),
        ("JobName.$", json!("$$.Execution.Name")),
        (
            "JobQueue.$",
            json!(format!("$$.Execution.Input.{JOB_QUEUE_FIELD}")),
        ),
        (
            "ContainerOverrides",
            json!({"Environment": [{"Name": "WORKFLOW_INPUT", "Value.$": "States.JsonToString($)"}]}),
        ),
    ];
    for (key, value) in defaults {
        let plain = key.trim_end_matches(".$");
        if !fields.contains_key(plain) && !fields.contains_key(&format!("{plain}.$")) {
            fields.insert(key.to_string(), value);
        }
    }
    Value::Object(fields)
}

/// Rewrites a definition for Step Functions: [`expand_for_namespace`], then `batch:NAME`
/// states (with `job_definitions`: NAME → the state resource's URI). Errors name a `batch:`
/// resource without a state resource.
pub fn expand_for_execution(
    machine: &StateMachine,
    namespace: &str,
    activity_arn: &dyn Fn(&str) -> String,
    job_definitions: &std::collections::BTreeMap<String, String>,
    children: &std::collections::BTreeMap<String, String>,
) -> Result<StateMachine, String> {
    let mut out = expand_for_namespace(machine, namespace, activity_arn);
    finish_tasks(&mut out, namespace, job_definitions, children, false)?;
    Ok(out)
}

fn finish_tasks(
    machine: &mut StateMachine,
    namespace: &str,
    job_definitions: &std::collections::BTreeMap<String, String>,
    children: &std::collections::BTreeMap<String, String>,
    inherited_jsonata: bool,
) -> Result<(), String> {
    use wfm_asl::definition::QueryLanguage;
    let jsonata = match machine.query_language {
        Some(QueryLanguage::Jsonata) => true,
        Some(QueryLanguage::JsonPath) => false,
        None => inherited_jsonata,
    };
    for (state_name, state) in machine.states.iter_mut() {
        match state {
            State::Task(task) => {
                if let Some(r) = task
                    .resource
                    .clone()
                    .filter(|r| workflow_resource(r).is_some())
                {
                    let task_jsonata = match task.query_language {
                        Some(QueryLanguage::Jsonata) => true,
                        Some(QueryLanguage::JsonPath) => false,
                        None => jsonata,
                    };
                    if task_jsonata {
                        return Err(format!(
                            "state {state_name} runs {r}: workflow: resources are not supported in JSONata states yet (use JSONPath, or arn:aws:states:::states:startExecution.sync:2)"
                        ));
                    }
                    let Some(arn) = children.get(&r) else {
                        return Err(format!(
                            "state {state_name} runs {r}, but there is no such workflow definition"
                        ));
                    };
                    task.parameters = Some(child_parameters(task.parameters.as_ref(), arn));
                    task.resource = Some("arn:aws:states:::states:startExecution.sync:2".into());
                }
                if let Some(name) = task.resource.as_deref().and_then(batch_resource) {
                    let Some(uri) = job_definitions.get(name) else {
                        return Err(format!(
                            "state {state_name} runs batch:{name}, but namespace {namespace} has no state resource {name}: create it with PUT /state-resources/{namespace}/{name}"
                        ));
                    };
                    task.parameters = Some(batch_parameters(task.parameters.as_ref(), uri));
                    task.resource = Some("arn:aws:states:::batch:submitJob.sync".into());
                }
            }
            State::Parallel(p) => {
                for b in p.branches.iter_mut().flatten() {
                    finish_tasks(b, namespace, job_definitions, children, jsonata)?;
                }
            }
            State::Map(m) => {
                if let Some(it) = m.iterator.as_mut() {
                    finish_tasks(it, namespace, job_definitions, children, jsonata)?;
                }
                if let Some(it) = m.item_processor.as_mut() {
                    finish_tasks(it, namespace, job_definitions, children, jsonata)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Puts the [`command_terminated_retrier`] first on every Task state (nested ones included)
/// that does not name that error already.
pub fn add_default_retriers(machine: &mut StateMachine) {
    for state in machine.states.values_mut() {
        match state {
            State::Task(task) => {
                let retry = task.retry.get_or_insert_with(Vec::new);
                if !retry
                    .iter()
                    .any(|r| r.error_equals.iter().any(|e| e == COMMAND_TERMINATED))
                {
                    retry.insert(0, command_terminated_retrier());
                }
            }
            State::Parallel(p) => p
                .branches
                .iter_mut()
                .flatten()
                .for_each(add_default_retriers),
            State::Map(m) => {
                if let Some(it) = m.iterator.as_mut() {
                    add_default_retriers(it);
                }
                if let Some(it) = m.item_processor.as_mut() {
                    add_default_retriers(it);
                }
            }
            _ => {}
        }
    }
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
                    } else if let Some(name) = lambda_resource(r) {
                        // Clever's short form: the function `namespace--NAME` of the account
                        // and region activities are in.
                        task.resource = Some(
                            activity_arn(&activity_name(namespace, name))
                                .replacen(":states:", ":lambda:", 1)
                                .replacen(":activity:", ":function:", 1),
                        );
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
        // Names past 80 characters that differ only at their end (the StartAt of a resume)
        // stay different, and stable.
        let long = "d".repeat(64);
        let first = state_machine_name(&long, 1, "production", "Start");
        let second = state_machine_name(&long, 1, "production", "SecondStep");
        assert_eq!(first.len(), 80);
        assert_eq!(second.len(), 80);
        assert_ne!(first, second);
        assert_eq!(first, state_machine_name(&long, 1, "production", "Start"));
        assert!(first.starts_with("production--dddd"), "{first}");
    }

    #[test]
    fn a_lambda_short_resource_names_the_namespaced_function() {
        let m: StateMachine = serde_json::from_value(json!({"StartAt": "L", "States": {
            "L": {"Type": "Task", "Resource": "lambda:resize", "End": true}}}))
        .expect("machine");
        let arn = |n: &str| format!("arn:aws:states:us-west-2:111122223333:activity:{n}");
        let out = expand_for_namespace(&m, "media", &arn);
        let Some(State::Task(t)) = out.states.get("L") else {
            panic!("a task")
        };
        assert_eq!(
            t.resource.as_deref(),
            Some("arn:aws:lambda:us-west-2:111122223333:function:media--resize")
        );
        assert_eq!(lambda_resource("lambda:"), None);
        assert_eq!(lambda_resource("lambda:a:b"), None);
    }

    #[test]
    fn a_workflow_resource_starts_its_child_with_a_short_name_and_the_queue_escaped() {
        use wfm_asl::path::{evaluate_expression, Context};
        assert_eq!(workflow_resource("workflow:leaf"), Some(("leaf", None)));
        assert_eq!(
            workflow_resource("workflow:leaf:3"),
            Some(("leaf", Some(3)))
        );
        assert_eq!(workflow_resource("workflow:"), None);
        assert_eq!(workflow_resource("workflow:leaf:x"), None);
        let m: StateMachine = serde_json::from_value(json!({"StartAt": "C", "States": {
            "C": {"Type": "Task", "Resource": "workflow:leaf", "End": true}}}))
        .expect("machine");
        let children = [("workflow:leaf".to_string(), "arn:child".to_string())]
            .into_iter()
            .collect();
        let out =
            expand_for_execution(&m, "ns", &|n| n.to_string(), &Default::default(), &children)
                .expect("expands");
        let Some(State::Task(t)) = out.states.get("C") else {
            panic!("a task")
        };
        assert_eq!(
            t.resource.as_deref(),
            Some("arn:aws:states:::states:startExecution.sync:2")
        );
        let p = t.parameters.clone().expect("parameters");
        assert_eq!(p["StateMachineArn"], "arn:child");
        // Evaluated as the engine (and Step Functions) evaluate it, with a queue that needs
        // escaping.
        let execution = json!({"Execution": {"Id": "arn:aws:states:r:1:execution:m:parent",
            "Name": "parent", "Input": {"_JOB_QUEUE": "q\"1\\"}}});
        let state = json!({"State": {"Name": "C", "EnteredTime": "t", "RetryCount": 0}});
        let vars = serde_json::Map::new();
        let ctx = Context::new(&execution, &state, &vars);
        let input = json!({"order": 7});
        let name = evaluate_expression(p["Name.$"].as_str().expect("name"), &input, &ctx)
            .expect("name evaluates");
        assert_eq!(name.as_str().map(str::len), Some(32), "{name}");
        let child_input = evaluate_expression(p["Input.$"].as_str().expect("input"), &input, &ctx)
            .expect("input evaluates");
        assert_eq!(
            child_input,
            json!({"order": 7, "_EXECUTION_NAME": name, "_JOB_QUEUE": "q\"1\\",
                   "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:r:1:execution:m:parent"})
        );
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

    #[test]
    fn batch_states_become_submit_job_sync_with_their_job_definition() {
        let m: StateMachine = serde_json::from_value(json!({"StartAt": "B", "States": {
            "B": {"Type": "Task", "Resource": "batch:render", "Next": "P"},
            "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "C", "States": {
                "C": {"Type": "Task", "Resource": "batch:render",
                      "Parameters": {"JobQueue": "fixed-queue"}, "End": true}}}]}
        }}))
        .expect("machine");
        assert_eq!(batch_resources(&m), ["render"]);
        let arn = |name: &str| format!("arn:aws:states:r:1:activity:{name}");
        let defs: std::collections::BTreeMap<String, String> = [(
            "render".to_string(),
            "arn:aws:batch:r:1:job-definition/render:3".to_string(),
        )]
        .into();
        let out =
            expand_for_execution(&m, "ns", &arn, &defs, &Default::default()).expect("expands");
        let out = serde_json::to_value(out).expect("json");
        let b = &out["States"]["B"];
        assert_eq!(b["Resource"], "arn:aws:states:::batch:submitJob.sync");
        assert_eq!(
            b["Parameters"]["JobDefinition"],
            "arn:aws:batch:r:1:job-definition/render:3"
        );
        assert_eq!(b["Parameters"]["JobName.$"], "$$.Execution.Name");
        assert_eq!(
            b["Parameters"]["JobQueue.$"],
            "$$.Execution.Input._JOB_QUEUE"
        );
        assert_eq!(
            b["Parameters"]["ContainerOverrides"]["Environment"][0]["Value.$"],
            "States.JsonToString($)"
        );
        let c = &out["States"]["P"]["Branches"][0]["States"]["C"];
        assert_eq!(
            c["Parameters"]["JobQueue"], "fixed-queue",
            "the state's own value wins"
        );
        assert!(c["Parameters"].get("JobQueue.$").is_none());
        let err = expand_for_execution(&m, "ns", &arn, &Default::default(), &Default::default())
            .expect_err("missing");
        assert!(
            err.contains("batch:render") && err.contains("/state-resources/ns/render"),
            "{err}"
        );
    }

    #[test]
    fn default_retriers_go_first_once_on_every_task() {
        let mut m: StateMachine = serde_json::from_value(json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Next": "M",
                  "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]},
            "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {
                "I": {"Type": "Task", "Resource": "y", "End": true,
                      "Retry": [{"ErrorEquals": ["sfncli.CommandTerminated"], "MaxAttempts": 2}]}}}}
        }}))
        .expect("machine");
        add_default_retriers(&mut m);
        add_default_retriers(&mut m);
        let out = serde_json::to_value(&m).expect("json");
        let t = &out["States"]["T"]["Retry"];
        assert_eq!(t.as_array().map(Vec::len), Some(2), "added once: {t}");
        assert_eq!(t[0]["ErrorEquals"], json!(["sfncli.CommandTerminated"]));
        assert_eq!(t[0]["MaxAttempts"], 10);
        assert_eq!(
            t[1]["ErrorEquals"],
            json!(["States.ALL"]),
            "States.ALL stays last"
        );
        let i = &out["States"]["M"]["ItemProcessor"]["States"]["I"]["Retry"];
        assert_eq!(
            i.as_array().map(Vec::len),
            Some(1),
            "its own retrier is kept: {i}"
        );
        wfm_asl::validate(&m).expect("still valid");
    }
}
