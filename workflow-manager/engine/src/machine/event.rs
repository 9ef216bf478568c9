//! History events as the step machine writes them: one typed variant per Step Functions event
//! type, with the fields that event carries. [`Event::to_wire`] gives the Step Functions API's
//! shape ([`HistoryEvent`]); the store keeps the compact typed form. A new event type is one
//! variant here and one arm in each conversion.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use wfm_asl::history::{
    ActivityScheduledDetails, ActivityStartedDetails, ErrorDetails, ExecutionStartedDetails,
    MapIterationDetails, MapRunStartedDetails, MapStateStartedDetails, OutputDetails,
    PayloadDetails, StateEnteredDetails, StateExitedDetails, TaskDetails,
};
use wfm_asl::HistoryEvent;

/// The type of a state, as it prefixes `StateEntered` and `StateExited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateKind {
    /// `Pass`.
    Pass,
    /// `Task`.
    Task,
    /// `Choice`.
    Choice,
    /// `Wait`.
    Wait,
    /// `Succeed`.
    Succeed,
    /// `Fail`.
    Fail,
    /// `Parallel`.
    Parallel,
    /// `Map`.
    Map,
}

impl StateKind {
    /// The ASL type name.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Pass => "Pass",
            StateKind::Task => "Task",
            StateKind::Choice => "Choice",
            StateKind::Wait => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail => "Fail",
            StateKind::Parallel => "Parallel",
            StateKind::Map => "Map",
        }
    }

    fn parse(name: &str) -> Option<StateKind> {
        Some(match name {
            "Pass" => StateKind::Pass,
            "Task" => StateKind::Task,
            "Choice" => StateKind::Choice,
            "Wait" => StateKind::Wait,
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail,
            "Parallel" => StateKind::Parallel,
            "Map" => StateKind::Map,
            _ => return None,
        })
    }
}

/// Which service integration a `Task*` event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRef {
    /// The service (`batch`).
    pub resource_type: String,
    /// The operation (`submitJob.sync`).
    pub resource: String,
}

/// One history event's type and details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ExecutionStarted {
        input: String,
        role_arn: String,
    },
    ExecutionSucceeded {
        output: String,
    },
    ExecutionFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    ExecutionAborted {
        error: Option<String>,
        cause: Option<String>,
    },
    ExecutionTimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
    StateEntered {
        kind: StateKind,
        name: String,
        input: String,
    },
    StateExited {
        kind: StateKind,
        name: String,
        output: String,
        assigned: Option<BTreeMap<String, String>>,
    },
    ActivityScheduled {
        resource: String,
        input: String,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    },
    ActivityScheduleFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    ActivityStarted {
        worker: Option<String>,
    },
    ActivitySucceeded {
        output: String,
    },
    ActivityFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    ActivityTimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
    TaskScheduled {
        task: TaskRef,
        region: String,
        parameters: String,
        timeout: Option<u64>,
    },
    TaskStarted {
        task: TaskRef,
    },
    TaskSubmitted {
        task: TaskRef,
        output: String,
    },
    TaskSucceeded {
        task: TaskRef,
        output: String,
    },
    TaskFailed {
        task: TaskRef,
        error: String,
        cause: String,
    },
    TaskTimedOut {
        task: TaskRef,
        error: String,
        cause: String,
    },
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    MapStateStarted {
        length: usize,
    },
    MapStateSucceeded,
    MapStateFailed,
    MapIterationStarted {
        name: String,
        index: usize,
    },
    MapIterationSucceeded {
        name: String,
        index: usize,
    },
    MapIterationFailed {
        name: String,
        index: usize,
    },
    MapRunStarted {
        map_run_arn: String,
    },
    MapRunSucceeded,
    MapRunFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    MapRunAborted,
}

fn payload() -> Option<PayloadDetails> {
    Some(PayloadDetails { truncated: false })
}

fn errors(error: &Option<String>, cause: &Option<String>) -> Option<ErrorDetails> {
    Some(ErrorDetails {
        error: error.clone(),
        cause: cause.clone(),
    })
}

fn task_details(task: &TaskRef) -> TaskDetails {
    TaskDetails {
        resource_type: task.resource_type.clone(),
        resource: task.resource.clone(),
        ..TaskDetails::default()
    }
}

impl Event {
    /// The Step Functions event type (`PassStateEntered`, `ActivityScheduled`, ...).
    pub fn type_name(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match self {
            Event::ExecutionStarted { .. } => Borrowed("ExecutionStarted"),
            Event::ExecutionSucceeded { .. } => Borrowed("ExecutionSucceeded"),
            Event::ExecutionFailed { .. } => Borrowed("ExecutionFailed"),
            Event::ExecutionAborted { .. } => Borrowed("ExecutionAborted"),
            Event::ExecutionTimedOut { .. } => Borrowed("ExecutionTimedOut"),
            Event::StateEntered { kind, .. } => Owned(format!("{}StateEntered", kind.name())),
            Event::StateExited { kind, .. } => Owned(format!("{}StateExited", kind.name())),
            Event::ActivityScheduled { .. } => Borrowed("ActivityScheduled"),
            Event::ActivityScheduleFailed { .. } => Borrowed("ActivityScheduleFailed"),
            Event::ActivityStarted { .. } => Borrowed("ActivityStarted"),
            Event::ActivitySucceeded { .. } => Borrowed("ActivitySucceeded"),
            Event::ActivityFailed { .. } => Borrowed("ActivityFailed"),
            Event::ActivityTimedOut { .. } => Borrowed("ActivityTimedOut"),
            Event::TaskScheduled { .. } => Borrowed("TaskScheduled"),
            Event::TaskStarted { .. } => Borrowed("TaskStarted"),
            Event::TaskSubmitted { .. } => Borrowed("TaskSubmitted"),
            Event::TaskSucceeded { .. } => Borrowed("TaskSucceeded"),
            Event::TaskFailed { .. } => Borrowed("TaskFailed"),
            Event::TaskTimedOut { .. } => Borrowed("TaskTimedOut"),
            Event::ParallelStateStarted => Borrowed("ParallelStateStarted"),
            Event::ParallelStateSucceeded => Borrowed("ParallelStateSucceeded"),
            Event::ParallelStateFailed => Borrowed("ParallelStateFailed"),
            Event::MapStateStarted { .. } => Borrowed("MapStateStarted"),
            Event::MapStateSucceeded => Borrowed("MapStateSucceeded"),
            Event::MapStateFailed => Borrowed("MapStateFailed"),
            Event::MapIterationStarted { .. } => Borrowed("MapIterationStarted"),
            Event::MapIterationSucceeded { .. } => Borrowed("MapIterationSucceeded"),
            Event::MapIterationFailed { .. } => Borrowed("MapIterationFailed"),
            Event::MapRunStarted { .. } => Borrowed("MapRunStarted"),
            Event::MapRunSucceeded => Borrowed("MapRunSucceeded"),
            Event::MapRunFailed { .. } => Borrowed("MapRunFailed"),
            Event::MapRunAborted => Borrowed("MapRunAborted"),
        }
    }

    /// The event in the Step Functions API's shape.
    pub fn to_wire(&self, id: i64, previous: i64, timestamp: DateTime<Utc>) -> HistoryEvent {
        let mut e = HistoryEvent::new(id, previous, &self.type_name(), timestamp);
        match self {
            Event::ExecutionStarted { input, role_arn } => {
                e.execution_started_event_details = Some(ExecutionStartedDetails {
                    input: Some(input.clone()),
                    input_details: payload(),
                    role_arn: Some(role_arn.clone()),
                })
            }
            Event::ExecutionSucceeded { output } => {
                e.execution_succeeded_event_details = Some(OutputDetails {
                    output: Some(output.clone()),
                    output_details: payload(),
                })
            }
            Event::ExecutionFailed { error, cause } => {
                e.execution_failed_event_details = errors(error, cause)
            }
            Event::ExecutionAborted { error, cause } => {
                e.execution_aborted_event_details = errors(error, cause)
            }
            Event::ExecutionTimedOut { error, cause } => {
                e.execution_timed_out_event_details = errors(error, cause)
            }
            Event::StateEntered { name, input, .. } => {
                e.state_entered_event_details = Some(StateEnteredDetails {
                    name: name.clone(),
                    input: Some(input.clone()),
                    input_details: payload(),
                })
            }
            Event::StateExited {
                name,
                output,
                assigned,
                ..
            } => {
                e.state_exited_event_details = Some(StateExitedDetails {
                    name: name.clone(),
                    output: Some(output.clone()),
                    output_details: payload(),
                    assigned_variables: assigned.clone(),
                })
            }
            Event::ActivityScheduled {
                resource,
                input,
                timeout,
                heartbeat,
            } => {
                e.activity_scheduled_event_details = Some(ActivityScheduledDetails {
                    resource: resource.clone(),
                    input: Some(input.clone()),
                    input_details: payload(),
                    timeout_in_seconds: *timeout,
                    heartbeat_in_seconds: *heartbeat,
                })
            }
            Event::ActivityScheduleFailed { error, cause } => {
                e.activity_schedule_failed_event_details = errors(error, cause)
            }
            Event::ActivityStarted { worker } => {
                e.activity_started_event_details = Some(ActivityStartedDetails {
                    worker_name: worker.clone(),
                })
            }
            Event::ActivitySucceeded { output } => {
                e.activity_succeeded_event_details = Some(OutputDetails {
                    output: Some(output.clone()),
                    output_details: payload(),
                })
            }
            Event::ActivityFailed { error, cause } => {
                e.activity_failed_event_details = errors(error, cause)
            }
            Event::ActivityTimedOut { error, cause } => {
                e.activity_timed_out_event_details = errors(error, cause)
            }
            Event::TaskScheduled {
                task,
                region,
                parameters,
                timeout,
            } => {
                e.task_scheduled_event_details = Some(TaskDetails {
                    region: Some(region.clone()),
                    parameters: Some(parameters.clone()),
                    timeout_in_seconds: *timeout,
                    ..task_details(task)
                })
            }
            Event::TaskStarted { task } => e.task_started_event_details = Some(task_details(task)),
            Event::TaskSubmitted { task, output } => {
                e.task_submitted_event_details = Some(TaskDetails {
                    output: Some(output.clone()),
                    output_details: payload(),
                    ..task_details(task)
                })
            }
            Event::TaskSucceeded { task, output } => {
                e.task_succeeded_event_details = Some(TaskDetails {
                    output: Some(output.clone()),
                    output_details: payload(),
                    ..task_details(task)
                })
            }
            Event::TaskFailed { task, error, cause } => {
                e.task_failed_event_details = Some(TaskDetails {
                    error: Some(error.clone()),
                    cause: Some(cause.clone()),
                    ..task_details(task)
                })
            }
            Event::TaskTimedOut { task, error, cause } => {
                e.task_timed_out_event_details = Some(TaskDetails {
                    error: Some(error.clone()),
                    cause: Some(cause.clone()),
                    ..task_details(task)
                })
            }
            Event::MapStateStarted { length } => {
                e.map_state_started_event_details = Some(MapStateStartedDetails { length: *length })
            }
            Event::MapRunStarted { map_run_arn } => {
                e.map_run_started_event_details = Some(MapRunStartedDetails {
                    map_run_arn: map_run_arn.clone(),
                })
            }
            Event::MapRunFailed { error, cause } => {
                e.map_run_failed_event_details = errors(error, cause)
            }
            Event::MapIterationStarted { name, index } => {
                e.map_iteration_started_event_details = Some(MapIterationDetails {
                    name: name.clone(),
                    index: *index,
                })
            }
            Event::MapIterationSucceeded { name, index } => {
                e.map_iteration_succeeded_event_details = Some(MapIterationDetails {
                    name: name.clone(),
                    index: *index,
                })
            }
            Event::MapIterationFailed { name, index } => {
                e.map_iteration_failed_event_details = Some(MapIterationDetails {
                    name: name.clone(),
                    index: *index,
                })
            }
            Event::ParallelStateStarted
            | Event::ParallelStateSucceeded
            | Event::ParallelStateFailed
            | Event::MapStateSucceeded
            | Event::MapStateFailed
            | Event::MapRunSucceeded
            | Event::MapRunAborted => {}
        }
        e
    }

    /// The typed form of an event in the API's shape (reading histories an older engine
    /// stored); `None` for a type this engine does not write.
    pub fn from_wire(e: &HistoryEvent) -> Option<Event> {
        let text = |t: &Option<String>| t.clone().unwrap_or_default();
        let err = |d: &Option<ErrorDetails>| {
            let d = d.clone().unwrap_or_default();
            (d.error, d.cause)
        };
        let task = |d: &Option<TaskDetails>| {
            let d = d.clone().unwrap_or_default();
            (
                TaskRef {
                    resource_type: d.resource_type.clone(),
                    resource: d.resource.clone(),
                },
                d,
            )
        };
        let t = e.event_type.as_str();
        if let Some(kind) = t.strip_suffix("StateEntered").and_then(StateKind::parse) {
            let d = e.state_entered_event_details.clone().unwrap_or_default();
            return Some(Event::StateEntered {
                kind,
                name: d.name,
                input: text(&d.input),
            });
        }
        if let Some(kind) = t.strip_suffix("StateExited").and_then(StateKind::parse) {
            let d = e.state_exited_event_details.clone().unwrap_or_default();
            return Some(Event::StateExited {
                kind,
                name: d.name,
                output: text(&d.output),
                assigned: d.assigned_variables,
            });
        }
        Some(match t {
            "ExecutionStarted" => {
                let d = e
                    .execution_started_event_details
                    .clone()
                    .unwrap_or_default();
                Event::ExecutionStarted {
                    input: text(&d.input),
                    role_arn: text(&d.role_arn),
                }
            }
            "ExecutionSucceeded" => Event::ExecutionSucceeded {
                output: text(
                    &e.execution_succeeded_event_details
                        .clone()
                        .unwrap_or_default()
                        .output,
                ),
            },
            "ExecutionFailed" => {
                let (error, cause) = err(&e.execution_failed_event_details);
                Event::ExecutionFailed { error, cause }
            }
            "ExecutionAborted" => {
                let (error, cause) = err(&e.execution_aborted_event_details);
                Event::ExecutionAborted { error, cause }
            }
            "ExecutionTimedOut" => {
                let (error, cause) = err(&e.execution_timed_out_event_details);
                Event::ExecutionTimedOut { error, cause }
            }
            "ActivityScheduled" => {
                let d = e
                    .activity_scheduled_event_details
                    .clone()
                    .unwrap_or_default();
                Event::ActivityScheduled {
                    resource: d.resource,
                    input: text(&d.input),
                    timeout: d.timeout_in_seconds,
                    heartbeat: d.heartbeat_in_seconds,
                }
            }
            "ActivityScheduleFailed" => {
                let (error, cause) = err(&e.activity_schedule_failed_event_details);
                Event::ActivityScheduleFailed { error, cause }
            }
            "ActivityStarted" => Event::ActivityStarted {
                worker: e
                    .activity_started_event_details
                    .clone()
                    .and_then(|d| d.worker_name),
            },
            "ActivitySucceeded" => Event::ActivitySucceeded {
                output: text(
                    &e.activity_succeeded_event_details
                        .clone()
                        .unwrap_or_default()
                        .output,
                ),
            },
            "ActivityFailed" => {
                let (error, cause) = err(&e.activity_failed_event_details);
                Event::ActivityFailed { error, cause }
            }
            "ActivityTimedOut" => {
                let (error, cause) = err(&e.activity_timed_out_event_details);
                Event::ActivityTimedOut { error, cause }
            }
            "TaskScheduled" => {
                let (task, d) = task(&e.task_scheduled_event_details);
                Event::TaskScheduled {
                    task,
                    region: text(&d.region),
                    parameters: text(&d.parameters),
                    timeout: d.timeout_in_seconds,
                }
            }
            "TaskStarted" => Event::TaskStarted {
                task: task(&e.task_started_event_details).0,
            },
            "TaskSubmitted" => {
                let (task, d) = task(&e.task_submitted_event_details);
                Event::TaskSubmitted {
                    task,
                    output: text(&d.output),
                }
            }
            "TaskSucceeded" => {
                let (task, d) = task(&e.task_succeeded_event_details);
                Event::TaskSucceeded {
                    task,
                    output: text(&d.output),
                }
            }
            "TaskFailed" | "TaskSubmitFailed" => {
                let details = e
                    .task_failed_event_details
                    .clone()
                    .or(e.task_submit_failed_event_details.clone());
                let (task, d) = task(&details);
                Event::TaskFailed {
                    task,
                    error: text(&d.error),
                    cause: text(&d.cause),
                }
            }
            "TaskTimedOut" => {
                let (task, d) = task(&e.task_timed_out_event_details);
                Event::TaskTimedOut {
                    task,
                    error: text(&d.error),
                    cause: text(&d.cause),
                }
            }
            "ParallelStateStarted" => Event::ParallelStateStarted,
            "ParallelStateSucceeded" => Event::ParallelStateSucceeded,
            "ParallelStateFailed" => Event::ParallelStateFailed,
            "MapStateStarted" => Event::MapStateStarted {
                length: e
                    .map_state_started_event_details
                    .clone()
                    .unwrap_or_default()
                    .length,
            },
            "MapStateSucceeded" => Event::MapStateSucceeded,
            "MapRunStarted" => Event::MapRunStarted {
                map_run_arn: e
                    .map_run_started_event_details
                    .clone()
                    .unwrap_or_default()
                    .map_run_arn,
            },
            "MapRunSucceeded" => Event::MapRunSucceeded,
            "MapRunAborted" => Event::MapRunAborted,
            "MapRunFailed" => {
                let d = e.map_run_failed_event_details.clone().unwrap_or_default();
                Event::MapRunFailed {
                    error: d.error,
                    cause: d.cause,
                }
            }
            "MapStateFailed" => Event::MapStateFailed,
            "MapIterationStarted" | "MapIterationSucceeded" | "MapIterationFailed" => {
                let d = e
                    .map_iteration_started_event_details
                    .clone()
                    .or(e.map_iteration_succeeded_event_details.clone())
                    .or(e.map_iteration_failed_event_details.clone())
                    .unwrap_or_default();
                let (name, index) = (d.name, d.index);
                match t {
                    "MapIterationStarted" => Event::MapIterationStarted { name, index },
                    "MapIterationSucceeded" => Event::MapIterationSucceeded { name, index },
                    _ => Event::MapIterationFailed { name, index },
                }
            }
            _ => return None,
        })
    }
}

/// An event with its place in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// 1-based id in the execution's history.
    pub id: i64,
    /// The event it follows from.
    pub previous: i64,
    /// When it happened, in epoch milliseconds.
    pub at_ms: i64,
    /// What happened.
    pub event: Event,
}

impl Recorded {
    /// In the API's shape.
    pub fn to_wire(&self) -> HistoryEvent {
        let at = Utc
            .timestamp_millis_opt(self.at_ms)
            .single()
            .unwrap_or_default();
        self.event.to_wire(self.id, self.previous, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_the_round_trip_through_the_wire_shape() {
        let task = TaskRef {
            resource_type: "batch".into(),
            resource: "submitJob.sync".into(),
        };
        let events = vec![
            Event::ExecutionStarted {
                input: "{}".into(),
                role_arn: "r".into(),
            },
            Event::StateEntered {
                kind: StateKind::Map,
                name: "M".into(),
                input: "[1]".into(),
            },
            Event::StateExited {
                kind: StateKind::Pass,
                name: "P".into(),
                output: "1".into(),
                assigned: Some([("x".to_string(), "2".to_string())].into()),
            },
            Event::ActivityScheduled {
                resource: "arn".into(),
                input: "{}".into(),
                timeout: Some(3),
                heartbeat: None,
            },
            Event::ActivityStarted {
                worker: Some("w".into()),
            },
            Event::ActivityTimedOut {
                error: Some("States.Timeout".into()),
                cause: None,
            },
            Event::TaskScheduled {
                task: task.clone(),
                region: "us-east-1".into(),
                parameters: "{}".into(),
                timeout: None,
            },
            Event::TaskFailed {
                task,
                error: "E".into(),
                cause: "C".into(),
            },
            Event::MapStateStarted { length: 4 },
            Event::MapIterationFailed {
                name: "M".into(),
                index: 2,
            },
            Event::ParallelStateSucceeded,
            Event::ExecutionAborted {
                error: None,
                cause: Some("stop".into()),
            },
        ];
        for (i, e) in events.into_iter().enumerate() {
            let wire = e.to_wire(i as i64 + 1, i as i64, Utc::now());
            assert_eq!(wire.event_type, e.type_name());
            assert_eq!(Event::from_wire(&wire), Some(e));
        }
    }
}
