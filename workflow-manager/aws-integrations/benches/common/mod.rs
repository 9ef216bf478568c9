//! What the benchmarks share: an AWS configuration at one endpoint (moto), and waiting for an
//! execution's end.

use std::sync::Arc;
use std::time::Duration;

use wfm_aws_integrations::Aws;
use wfm_engine::Engine;

/// Every service at `endpoint`, with test credentials.
pub fn aws_at(endpoint: &str) -> Arc<Aws> {
    Arc::new(Aws::at_endpoint(endpoint, "us-east-1", "test", "test"))
}

/// Describes the execution every millisecond until it is no longer running.
pub async fn finish(e: &Engine, arn: &str) -> wfm_engine::ExecutionInfo {
    loop {
        let d = e.describe_execution(arn).await.expect("describe");
        if d.status != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
