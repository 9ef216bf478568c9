//! A state machine prepared for running: every (sub-)machine of a definition (the top level,
//! each Parallel branch, each Map processor) numbered, every state numbered within its machine,
//! transitions resolved to numbers, resources parsed once. Frames of an execution name their
//! place as (machine, state) numbers, which are the same for the same definition text.

use std::collections::HashMap;
use std::sync::Arc;

use wfm_asl::definition::{Catcher, QueryLanguage, Retrier};
use wfm_asl::{State, StateMachine};

use super::event::StateKind;

/// A machine's number within its definition (0 is the top level).
pub type MachineId = u32;
/// A state's number within its machine.
pub type StateId = u32;

/// How a service integration's Task waits (the resource's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// No suffix: the call's answer is the result.
    RequestResponse,
    /// `.sync`: the work's end is the result.
    Sync,
    /// `.sync:2`: the same, with JSON outputs kept as JSON.
    Sync2,
    /// `.waitForTaskToken`: a `SendTaskSuccess` with the task's token is the result.
    WaitForTaskToken,
}

/// What a Task state's `Resource` names, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// An activity ARN (`arn:aws:states:REGION:ACCOUNT:activity:NAME`).
    Activity(String),
    /// A service integration (`arn:aws:states:::SERVICE:ACTION[.sync|.sync:2|.waitForTaskToken]`).
    Service {
        /// The whole ARN, as integrations are handed it.
        arn: String,
        /// `batch`, `lambda`, `sqs`...
        service: String,
        /// `submitJob`, `invoke`...
        action: String,
        /// How the Task waits.
        pattern: Pattern,
    },
    /// Anything else (a Lambda function's ARN, ...): looked up in the registry as it is.
    Other(String),
}

impl Resource {
    /// Parses a Task state's `Resource`.
    pub fn parse(resource: &str) -> Resource {
        let parts: Vec<&str> = resource.splitn(7, ':').collect();
        if parts.len() == 7 && parts[0] == "arn" && parts[2] == "states" && parts[5] == "activity" {
            return Resource::Activity(resource.to_string());
        }
        let service_part = (parts.len() >= 6 && parts[0] == "arn" && parts[2] == "states")
            .then(|| resource.splitn(6, ':').nth(5))
            .flatten();
        let Some((service, operation)) = service_part.and_then(|p| p.split_once(':')) else {
            return Resource::Other(resource.to_string());
        };
        let (action, pattern) = if let Some(a) = operation.strip_suffix(".waitForTaskToken") {
            (a, Pattern::WaitForTaskToken)
        } else if let Some(a) = operation.strip_suffix(".sync:2") {
            (a, Pattern::Sync2)
        } else if let Some(a) = operation.strip_suffix(".sync") {
            (a, Pattern::Sync)
        } else {
            (operation, Pattern::RequestResponse)
        };
        Resource::Service {
            arn: resource.to_string(),
            service: service.to_string(),
            action: action.to_string(),
            pattern,
        }
    }

    /// The resource as written.
    pub fn arn(&self) -> &str {
        match self {
            Resource::Activity(a) | Resource::Other(a) => a,
            Resource::Service { arn, .. } => arn,
        }
    }

    /// Whether the Task waits for the work to end (`.sync`, `.sync:2`).
    pub fn waits_for_work(&self) -> bool {
        matches!(
            self,
            Resource::Service {
                pattern: Pattern::Sync | Pattern::Sync2,
                ..
            }
        )
    }
}

/// One state of a machine.
#[derive(Debug)]
pub struct Node {
    /// The state's name.
    pub name: String,
    /// The state as defined.
    pub state: State,
    /// Its type.
    pub kind: StateKind,
    /// Whether it uses JSONata (its own query language, else its machine's).
    pub jsonata: bool,
    /// `Next`, resolved (`None`: the state ends its machine, or is a Choice).
    pub next: Option<StateId>,
    /// Parallel branches, or the Map processor.
    pub children: Vec<MachineId>,
    /// A Task state's resource.
    pub resource: Option<Resource>,
}

impl Node {
    /// The state's retriers (Task, Parallel, Map).
    pub fn retriers(&self) -> &[Retrier] {
        match &self.state {
            State::Task(s) => s.retry.as_deref().unwrap_or(&[]),
            State::Parallel(s) => s.retry.as_deref().unwrap_or(&[]),
            State::Map(s) => s.retry.as_deref().unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The state's catchers (Task, Parallel, Map).
    pub fn catchers(&self) -> &[Catcher] {
        match &self.state {
            State::Task(s) => s.catch.as_deref().unwrap_or(&[]),
            State::Parallel(s) => s.catch.as_deref().unwrap_or(&[]),
            State::Map(s) => s.catch.as_deref().unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// One machine: the top level, a branch or a processor.
#[derive(Debug)]
pub struct Machine {
    /// `StartAt`, resolved.
    pub start: StateId,
    /// The states, in definition order.
    pub nodes: Vec<Node>,
    by_name: HashMap<String, StateId>,
}

impl Machine {
    /// The state of this name.
    pub fn find(&self, name: &str) -> Option<StateId> {
        self.by_name.get(name).copied()
    }
}

/// A whole definition, prepared.
#[derive(Debug)]
pub struct Compiled {
    /// The definition as parsed.
    pub definition: Arc<StateMachine>,
    /// Every machine; 0 is the top level.
    pub machines: Vec<Machine>,
}

/// A definition that cannot be run (it passed validation, so this means a broken invariant).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

impl Compiled {
    /// Prepares `definition`.
    pub fn new(definition: Arc<StateMachine>) -> Result<Compiled, CompileError> {
        let mut machines = Vec::new();
        compile(&definition, QueryLanguage::JsonPath, &mut machines)?;
        Ok(Compiled {
            definition,
            machines,
        })
    }

    /// A machine by number.
    pub fn machine(&self, id: MachineId) -> &Machine {
        &self.machines[id as usize]
    }

    /// A state by place.
    pub fn node(&self, machine: MachineId, state: StateId) -> &Node {
        &self.machines[machine as usize].nodes[state as usize]
    }

    /// Whether a place exists (a stored frame points into this definition).
    pub fn has(&self, machine: MachineId, state: StateId) -> bool {
        self.machines
            .get(machine as usize)
            .is_some_and(|m| (state as usize) < m.nodes.len())
    }
}

fn own_language(state: &State) -> Option<QueryLanguage> {
    match state {
        State::Pass(s) => s.query_language,
        State::Task(s) => s.query_language,
        State::Choice(s) => s.query_language,
        State::Wait(s) => s.query_language,
        State::Succeed(s) => s.query_language,
        State::Fail(s) => s.query_language,
        State::Parallel(s) => s.query_language,
        State::Map(s) => s.query_language,
    }
}

fn kind_of(state: &State) -> StateKind {
    match state {
        State::Pass(_) => StateKind::Pass,
        State::Task(_) => StateKind::Task,
        State::Choice(_) => StateKind::Choice,
        State::Wait(_) => StateKind::Wait,
        State::Succeed(_) => StateKind::Succeed,
        State::Fail(_) => StateKind::Fail,
        State::Parallel(_) => StateKind::Parallel,
        State::Map(_) => StateKind::Map,
    }
}

/// Compiles `machine` (and, depth first, the machines inside it) into `out`; returns its id.
fn compile(
    machine: &StateMachine,
    inherited: QueryLanguage,
    out: &mut Vec<Machine>,
) -> Result<MachineId, CompileError> {
    let id = out.len() as MachineId;
    let language = machine.query_language.unwrap_or(inherited);
    let by_name: HashMap<String, StateId> = machine
        .states
        .keys()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as StateId))
        .collect();
    let start = *by_name.get(&machine.start_at).ok_or_else(|| {
        CompileError(format!(
            "StartAt '{}' is not a state of the machine",
            machine.start_at
        ))
    })?;
    out.push(Machine {
        start,
        nodes: Vec::new(),
        by_name,
    });
    let mut nodes = Vec::with_capacity(machine.states.len());
    for (name, state) in &machine.states {
        let state_language = own_language(state).unwrap_or(language);
        let next = match state.next() {
            Some(n) => Some(*out[id as usize].by_name.get(n).ok_or_else(|| {
                CompileError(format!(
                    "state '{name}' goes to '{n}', which does not exist"
                ))
            })?),
            None => None,
        };
        let children = match state {
            State::Parallel(p) => p
                .branches
                .iter()
                .flatten()
                .map(|b| compile(b, state_language, out))
                .collect::<Result<Vec<_>, _>>()?,
            State::Map(m) => match m.processor() {
                Some(p) => vec![compile(p, state_language, out)?],
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        let resource = match state {
            State::Task(t) => Some(Resource::parse(t.resource.as_deref().unwrap_or(""))),
            _ => None,
        };
        nodes.push(Node {
            name: name.clone(),
            state: state.clone(),
            kind: kind_of(state),
            jsonata: state_language == QueryLanguage::Jsonata,
            next,
            children,
            resource,
        });
    }
    out[id as usize].nodes = nodes;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn machines_are_numbered_depth_first_and_transitions_resolved() {
        let def: StateMachine = serde_json::from_value(json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Next": "M", "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                {"StartAt": "B", "QueryLanguage": "JSONata", "States": {"B": {"Type": "Pass", "End": true}}}]},
            "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "arn:aws:states:us-east-1:1:activity:x", "End": true}}}}}}))
        .expect("definition");
        let c = Compiled::new(Arc::new(def)).expect("compiled");
        assert_eq!(c.machines.len(), 4);
        let top = c.machine(0);
        assert_eq!(top.nodes[0].children, vec![1, 2]);
        assert_eq!(top.nodes[0].next, Some(1));
        assert_eq!(top.nodes[1].children, vec![3]);
        assert!(c.node(2, 0).jsonata);
        assert!(!c.node(1, 0).jsonata);
        assert_eq!(
            c.node(3, 0).resource,
            Some(Resource::Activity(
                "arn:aws:states:us-east-1:1:activity:x".into()
            ))
        );
        assert!(c.has(3, 0) && !c.has(3, 1) && !c.has(4, 0));
    }

    #[test]
    fn resources_are_parsed_into_service_action_and_pattern() {
        let r = Resource::parse("arn:aws:states:::batch:submitJob.sync");
        assert_eq!(
            r,
            Resource::Service {
                arn: "arn:aws:states:::batch:submitJob.sync".into(),
                service: "batch".into(),
                action: "submitJob".into(),
                pattern: Pattern::Sync,
            }
        );
        assert!(r.waits_for_work());
        assert!(matches!(
            Resource::parse("arn:aws:states:::states:startExecution.sync:2"),
            Resource::Service {
                pattern: Pattern::Sync2,
                ..
            }
        ));
        assert!(matches!(
            Resource::parse("arn:aws:states:::sqs:sendMessage.waitForTaskToken"),
            Resource::Service { pattern: Pattern::WaitForTaskToken, ref action, .. } if action == "sendMessage"
        ));
        assert!(matches!(
            Resource::parse("arn:aws:states:::lambda:invoke"),
            Resource::Service {
                pattern: Pattern::RequestResponse,
                ..
            }
        ));
        assert!(matches!(
            Resource::parse("arn:aws:states:us-east-1:1:activity:a"),
            Resource::Activity(_)
        ));
        assert!(matches!(
            Resource::parse("arn:aws:lambda:us-east-1:1:function:f"),
            Resource::Other(_)
        ));
        assert!(!Resource::parse("arn:aws:states:::sqs:sendMessage").waits_for_work());
    }
}
