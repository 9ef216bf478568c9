//! Step Functions execution history events, in the shape of the Step Functions API (JSON 1.0
//! wire format: camelCase fields, timestamps in epoch seconds). The embedded engine writes them,
//! the AWS backend converts the SDK's events into them, and the manager turns them into jobs.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serde for timestamps as epoch seconds with millisecond precision, as the AWS JSON protocols do.
pub mod epoch_seconds {
    use super::*;

    /// Serializes as a float of epoch seconds.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(t.timestamp_millis() as f64 / 1000.0)
    }

    /// Reads a float (or integer) of epoch seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let secs = f64::deserialize(d)?;
        let millis = (secs * 1000.0).round() as i64;
        Utc.timestamp_millis_opt(millis)
            .single()
            .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
    }

    /// The same for optional timestamps.
    pub mod option {
        use super::*;

        /// Serializes `Some` as epoch seconds.
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        /// Reads optional epoch seconds.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let secs = Option::<f64>::deserialize(d)?;
            Ok(secs.and_then(|s| {
                Utc.timestamp_millis_opt((s * 1000.0).round() as i64)
                    .single()
            }))
        }
    }
}

/// `{"truncated": false}`, as AWS attaches to inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PayloadDetails {
    /// Whether the payload was cut.
    pub truncated: bool,
}

/// Details of `ExecutionStarted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStartedDetails {
    /// The execution input (JSON text).
    pub input: Option<String>,
    /// Input truncation.
    pub input_details: Option<PayloadDetails>,
    /// The role the execution runs as.
    pub role_arn: Option<String>,
}

/// Details carrying an output: `ExecutionSucceeded`, `ActivitySucceeded`, `TaskSucceeded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OutputDetails {
    /// The output (JSON text).
    pub output: Option<String>,
    /// Output truncation.
    pub output_details: Option<PayloadDetails>,
}

/// Details carrying an error and a cause: failures, aborts, time-outs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorDetails {
    /// The error name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Details of a `*StateEntered` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StateEnteredDetails {
    /// The state's name.
    pub name: String,
    /// The state's raw input (JSON text).
    pub input: Option<String>,
    /// Input truncation.
    pub input_details: Option<PayloadDetails>,
}

/// Details of a `*StateExited` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StateExitedDetails {
    /// The state's name.
    pub name: String,
    /// The state's output (JSON text).
    pub output: Option<String>,
    /// Output truncation.
    pub output_details: Option<PayloadDetails>,
    /// Variables the state assigned: name to JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_variables: Option<std::collections::BTreeMap<String, String>>,
}

/// Details of `ActivityScheduled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActivityScheduledDetails {
    /// The activity ARN.
    pub resource: String,
    /// The task input (JSON text).
    pub input: Option<String>,
    /// Input truncation.
    pub input_details: Option<PayloadDetails>,
    /// Task timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// Heartbeat timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_in_seconds: Option<u64>,
}

/// Details of `ActivityStarted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActivityStartedDetails {
    /// The name the worker gave in GetActivityTask.
    pub worker_name: Option<String>,
}

/// The details of the `Task*` events of a service integration (Batch, Lambda, ...): which
/// integration, and what the event carries (parameters, output, or error and cause).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetails {
    /// The service (`batch`).
    pub resource_type: String,
    /// The operation (`submitJob.sync`).
    pub resource: String,
    /// Region of the call (TaskScheduled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The call's parameters as JSON text (TaskScheduled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// TimeoutSeconds of the state (TaskScheduled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// The answer as JSON text (TaskSubmitted, TaskSucceeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_details: Option<PayloadDetails>,
    /// Error name (TaskFailed, TaskSubmitFailed, TaskTimedOut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Details of `MapStateStarted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MapStateStartedDetails {
    /// Number of iterations.
    pub length: usize,
}

/// Details of `MapRunStarted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MapRunStartedDetails {
    /// The map run's ARN.
    pub map_run_arn: String,
}

/// Details of `MapIteration*` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MapIterationDetails {
    /// The Map state's name.
    pub name: String,
    /// The iteration's index.
    pub index: usize,
}

/// One history event. Exactly one of the detail fields is set, matching `event_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// When it happened.
    #[serde(with = "epoch_seconds")]
    pub timestamp: DateTime<Utc>,
    /// The event type (`ExecutionStarted`, `TaskStateEntered`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// 1-based, unique within the execution.
    pub id: i64,
    /// The event this one follows from (0 for none).
    pub previous_event_id: i64,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_started_event_details: Option<ExecutionStartedDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_succeeded_event_details: Option<OutputDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_failed_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_aborted_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timed_out_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_entered_event_details: Option<StateEnteredDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_exited_event_details: Option<StateExitedDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_scheduled_event_details: Option<ActivityScheduledDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_schedule_failed_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_started_event_details: Option<ActivityStartedDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_succeeded_event_details: Option<OutputDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_failed_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_timed_out_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_scheduled_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_started_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_submitted_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_succeeded_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_failed_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_submit_failed_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_timed_out_event_details: Option<TaskDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_state_started_event_details: Option<MapStateStartedDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run_started_event_details: Option<MapRunStartedDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run_failed_event_details: Option<ErrorDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_iteration_started_event_details: Option<MapIterationDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_iteration_succeeded_event_details: Option<MapIterationDetails>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_iteration_failed_event_details: Option<MapIterationDetails>,
}

impl HistoryEvent {
    /// An event with no details; set the one detail field that matches `event_type`.
    pub fn new(
        id: i64,
        previous_event_id: i64,
        event_type: &str,
        timestamp: DateTime<Utc>,
    ) -> Self {
        Self {
            timestamp,
            event_type: event_type.to_string(),
            id,
            previous_event_id,
            execution_started_event_details: None,
            execution_succeeded_event_details: None,
            execution_failed_event_details: None,
            execution_aborted_event_details: None,
            execution_timed_out_event_details: None,
            state_entered_event_details: None,
            state_exited_event_details: None,
            activity_scheduled_event_details: None,
            activity_schedule_failed_event_details: None,
            activity_started_event_details: None,
            activity_succeeded_event_details: None,
            activity_failed_event_details: None,
            activity_timed_out_event_details: None,
            task_scheduled_event_details: None,
            task_started_event_details: None,
            task_submitted_event_details: None,
            task_succeeded_event_details: None,
            task_failed_event_details: None,
            task_submit_failed_event_details: None,
            task_timed_out_event_details: None,
            map_state_started_event_details: None,
            map_run_started_event_details: None,
            map_run_failed_event_details: None,
            map_iteration_started_event_details: None,
            map_iteration_succeeded_event_details: None,
            map_iteration_failed_event_details: None,
        }
    }

    /// The error details of a failure-like event, whichever kind it is.
    pub fn error_details(&self) -> Option<ErrorDetails> {
        self.execution_failed_event_details
            .as_ref()
            .or(self.execution_aborted_event_details.as_ref())
            .or(self.execution_timed_out_event_details.as_ref())
            .or(self.activity_failed_event_details.as_ref())
            .or(self.activity_timed_out_event_details.as_ref())
            .or(self.activity_schedule_failed_event_details.as_ref())
            .cloned()
            .or_else(|| {
                self.task_failed_event_details
                    .as_ref()
                    .or(self.task_submit_failed_event_details.as_ref())
                    .or(self.task_timed_out_event_details.as_ref())
                    .map(|t| ErrorDetails {
                        error: t.error.clone(),
                        cause: t.cause.clone(),
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_the_wire_shape() {
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .expect("valid");
        let mut e = HistoryEvent::new(2, 1, "PassStateEntered", t);
        e.state_entered_event_details = Some(StateEnteredDetails {
            name: "A".into(),
            input: Some("{}".into()),
            input_details: Some(PayloadDetails { truncated: false }),
        });
        let v = serde_json::to_value(&e).expect("ser");
        assert_eq!(v["timestamp"], serde_json::json!(1_700_000_000.123));
        assert_eq!(v["type"], "PassStateEntered");
        assert_eq!(v["previousEventId"], 1);
        assert_eq!(
            v["stateEnteredEventDetails"]["inputDetails"]["truncated"],
            false
        );
        let back: HistoryEvent = serde_json::from_value(v).expect("de");
        assert_eq!(back, e);
    }
}
