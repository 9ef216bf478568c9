//! What the integration tests share: an AWS configuration at one endpoint, and running a
//! machine of given states on an engine to its end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wfm_aws_integrations::Aws;
use wfm_engine::{Engine, ExecutionInfo};

/// Every service at `endpoint`, with test credentials.
pub fn aws_at(endpoint: &str) -> Arc<Aws> {
    Arc::new(Aws::at_endpoint(endpoint, "us-east-1", "test", "test"))
}

/// Runs a machine of `states` (the first is its StartAt) named `name` to its end.
pub async fn run(e: &Engine, name: &str, states: Value, input: Value) -> ExecutionInfo {
    let first = states
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a state");
    let def = json!({"StartAt": first, "States": states}).to_string();
    let sm = e
        .create_state_machine(name, &def, "arn:aws:iam::123456789012:role/r", "STANDARD")
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    let ex = e
        .start_execution(&sm.arn, Some(name), Some(&input.to_string()))
        .await
        .expect("start");
    for _ in 0..2000 {
        let d = e
            .describe_execution(&ex.execution_arn)
            .await
            .expect("describe");
        if d.status != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{name} did not finish");
}

/// A succeeded execution's output.
pub fn output(d: &ExecutionInfo) -> Value {
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    serde_json::from_str(d.output.as_deref().unwrap_or("null")).expect("json")
}
