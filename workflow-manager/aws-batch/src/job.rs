//! A Batch job's description in the JSON shape Step Functions gives the result of
//! `batch:submitJob.sync` (the SDK's types have no serde): PascalCase fields of DescribeJobs.

use aws_sdk_batch::types::JobDetail;
use serde_json::{json, Map, Value};

fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        other => other,
    }
}

/// The description of one job.
pub fn describe(j: &JobDetail) -> Value {
    let attempts: Vec<Value> = j
        .attempts()
        .iter()
        .map(|a| {
            let c = a.container();
            json!({
                "Container": c.map(|c| json!({
                    "ContainerInstanceArn": c.container_instance_arn(),
                    "ExitCode": c.exit_code(),
                    "LogStreamName": c.log_stream_name(),
                    "Reason": c.reason(),
                    "TaskArn": c.task_arn(),
                })),
                "StartedAt": a.started_at(),
                "StatusReason": a.status_reason(),
                "StoppedAt": a.stopped_at(),
            })
        })
        .collect();
    let container = j.container().map(|c| {
        json!({
            "Command": c.command(),
            "Environment": c.environment().iter().map(|kv| json!({"Name": kv.name(), "Value": kv.value()})).collect::<Vec<_>>(),
            "ExitCode": c.exit_code(),
            "Image": c.image(),
            "LogStreamName": c.log_stream_name(),
            "Reason": c.reason(),
            "TaskArn": c.task_arn(),
        })
    });
    compact(json!({
        "Attempts": attempts,
        "Container": container,
        "CreatedAt": j.created_at(),
        "JobArn": j.job_arn(),
        "JobDefinition": j.job_definition(),
        "JobId": j.job_id(),
        "JobName": j.job_name(),
        "JobQueue": j.job_queue(),
        "Parameters": j.parameters(),
        "StartedAt": j.started_at(),
        "Status": j.status().map(|s| s.as_str()),
        "StatusReason": j.status_reason(),
        "StoppedAt": j.stopped_at(),
        "Tags": j.tags(),
    }))
}
