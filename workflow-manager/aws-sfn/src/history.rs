//! The SDK's history events (typed, without serde) in the Step Functions JSON shape that
//! `wfm_asl::HistoryEvent` reads: the same shape the embedded engine writes, so one
//! history → jobs conversion serves both backends.

use aws_sdk_sfn::types::{HistoryEvent as SdkEvent, HistoryEventExecutionDataDetails};
use serde_json::{json, Map, Value};
use wfm_asl::HistoryEvent;
use wfm_core::sfn::SfnError;

fn payload(details: Option<&HistoryEventExecutionDataDetails>) -> Value {
    match details {
        Some(d) => json!({"truncated": d.truncated()}),
        None => Value::Null,
    }
}

fn error(error: Option<&str>, cause: Option<&str>) -> Value {
    json!({"error": error, "cause": cause})
}

/// Drops null fields, as the wire format leaves absent fields out.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// The details of an event, under their wire name.
fn details(e: &SdkEvent) -> Option<(&'static str, Value)> {
    if let Some(d) = e.execution_started_event_details() {
        return Some((
            "executionStartedEventDetails",
            json!({"input": d.input(), "inputDetails": payload(d.input_details()), "roleArn": d.role_arn()}),
        ));
    }
    if let Some(d) = e.execution_succeeded_event_details() {
        return Some((
            "executionSucceededEventDetails",
            json!({"output": d.output(), "outputDetails": payload(d.output_details())}),
        ));
    }
    if let Some(d) = e.execution_failed_event_details() {
        return Some(("executionFailedEventDetails", error(d.error(), d.cause())));
    }
    if let Some(d) = e.execution_aborted_event_details() {
        return Some(("executionAbortedEventDetails", error(d.error(), d.cause())));
    }
    if let Some(d) = e.execution_timed_out_event_details() {
        return Some(("executionTimedOutEventDetails", error(d.error(), d.cause())));
    }
    if let Some(d) = e.state_entered_event_details() {
        return Some((
            "stateEnteredEventDetails",
            json!({"name": d.name(), "input": d.input(), "inputDetails": payload(d.input_details())}),
        ));
    }
    if let Some(d) = e.state_exited_event_details() {
        return Some((
            "stateExitedEventDetails",
            json!({"name": d.name(), "output": d.output(), "outputDetails": payload(d.output_details())}),
        ));
    }
    if let Some(d) = e.activity_scheduled_event_details() {
        return Some((
            "activityScheduledEventDetails",
            json!({
                "resource": d.resource(), "input": d.input(),
                "inputDetails": payload(d.input_details()),
                "timeoutInSeconds": d.timeout_in_seconds(),
                "heartbeatInSeconds": d.heartbeat_in_seconds(),
            }),
        ));
    }
    if let Some(d) = e.activity_schedule_failed_event_details() {
        return Some((
            "activityScheduleFailedEventDetails",
            error(d.error(), d.cause()),
        ));
    }
    if let Some(d) = e.activity_started_event_details() {
        return Some((
            "activityStartedEventDetails",
            json!({"workerName": d.worker_name()}),
        ));
    }
    if let Some(d) = e.activity_succeeded_event_details() {
        return Some((
            "activitySucceededEventDetails",
            json!({"output": d.output(), "outputDetails": payload(d.output_details())}),
        ));
    }
    if let Some(d) = e.activity_failed_event_details() {
        return Some(("activityFailedEventDetails", error(d.error(), d.cause())));
    }
    if let Some(d) = e.activity_timed_out_event_details() {
        return Some(("activityTimedOutEventDetails", error(d.error(), d.cause())));
    }
    if let Some(d) = e.task_scheduled_event_details() {
        return Some((
            "taskScheduledEventDetails",
            json!({
                "resourceType": d.resource_type(), "resource": d.resource(), "region": d.region(),
                "parameters": d.parameters(), "timeoutInSeconds": d.timeout_in_seconds(),
                "heartbeatInSeconds": d.heartbeat_in_seconds(),
            }),
        ));
    }
    if let Some(d) = e.task_started_event_details() {
        return Some((
            "taskStartedEventDetails",
            json!({"resourceType": d.resource_type(), "resource": d.resource()}),
        ));
    }
    if let Some(d) = e.task_submitted_event_details() {
        return Some((
            "taskSubmittedEventDetails",
            json!({"resourceType": d.resource_type(), "resource": d.resource(),
                   "output": d.output(), "outputDetails": payload(d.output_details())}),
        ));
    }
    if let Some(d) = e.task_succeeded_event_details() {
        return Some((
            "taskSucceededEventDetails",
            json!({"resourceType": d.resource_type(), "resource": d.resource(),
                   "output": d.output(), "outputDetails": payload(d.output_details())}),
        ));
    }
    for (name, d) in [
        (
            "taskFailedEventDetails",
            e.task_failed_event_details()
                .map(|d| (d.resource_type(), d.resource(), d.error(), d.cause())),
        ),
        (
            "taskSubmitFailedEventDetails",
            e.task_submit_failed_event_details()
                .map(|d| (d.resource_type(), d.resource(), d.error(), d.cause())),
        ),
        (
            "taskTimedOutEventDetails",
            e.task_timed_out_event_details()
                .map(|d| (d.resource_type(), d.resource(), d.error(), d.cause())),
        ),
    ] {
        if let Some((rt, r, err, cause)) = d {
            return Some((
                name,
                json!({"resourceType": rt, "resource": r, "error": err, "cause": cause}),
            ));
        }
    }
    if let Some(d) = e.map_state_started_event_details() {
        return Some(("mapStateStartedEventDetails", json!({"length": d.length()})));
    }
    for (name, d) in [
        (
            "mapIterationStartedEventDetails",
            e.map_iteration_started_event_details(),
        ),
        (
            "mapIterationSucceededEventDetails",
            e.map_iteration_succeeded_event_details(),
        ),
        (
            "mapIterationFailedEventDetails",
            e.map_iteration_failed_event_details(),
        ),
    ] {
        if let Some(d) = d {
            return Some((name, json!({"name": d.name(), "index": d.index()})));
        }
    }
    None
}

/// One SDK event in the wire shape. Events whose details this service does not read keep
/// their type, id and time.
pub fn convert(e: &SdkEvent) -> Result<HistoryEvent, SfnError> {
    let t = e.timestamp();
    let mut event = json!({
        "timestamp": t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9,
        "type": e.r#type().as_str(),
        "id": e.id(),
        "previousEventId": e.previous_event_id(),
    });
    if let (Some((key, value)), Some(obj)) = (details(e), event.as_object_mut()) {
        obj.insert(key.to_string(), compact(value));
    }
    match serde_json::from_value(event.clone()) {
        Ok(converted) => Ok(converted),
        Err(err) => {
            tracing::warn!(event = %event, error = %err, "history event details not understood; keeping type and time");
            let bare = json!({"timestamp": event["timestamp"], "type": event["type"], "id": e.id(), "previousEventId": e.previous_event_id()});
            serde_json::from_value(bare)
                .map_err(|e| SfnError::Other(format!("history event not understood: {e}")))
        }
    }
}
