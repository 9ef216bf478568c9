//! Step Functions' execution status events, pushed into the reconciliation loop: an EventBridge
//! rule on `aws.states` "Step Functions Execution Status Change" events targets an SQS queue,
//! and this consumer long-polls that queue (`--events-queue-url`) and nudges the loop for each
//! event's execution name, so a status change is synced within about a second instead of when
//! the loop would next look. The loop's own checks stay on as the safety net, so a lost or
//! late event only costs time.
//!
//! Messages are deleted once read, whatever they hold: one that is not such an event is logged
//! and dropped rather than retried for ever.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::Value;
use tokio::sync::watch;

use crate::reconcile::Reconciler;

/// The execution name of an EventBridge execution status event (the body of an SQS message),
/// if it is one.
pub fn execution_name(body: &str) -> Option<String> {
    let event: Value = serde_json::from_str(body).ok()?;
    if event["source"] != "aws.states" {
        return None;
    }
    let detail = &event["detail"];
    detail["name"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            // `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`
            detail["executionArn"]
                .as_str()
                .and_then(|arn| arn.rsplit(':').next())
                .map(str::to_string)
        })
        .filter(|n| !n.is_empty())
}

/// Consumes the queue until `shutdown` turns true, as a task of its own.
pub fn spawn(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    reconciler: Reconciler,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(consume(client, queue_url, reconciler, shutdown))
}

/// Consumes the queue until `shutdown` turns true (under the background driver).
pub async fn consume(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    reconciler: Reconciler,
    mut shutdown: watch::Receiver<bool>,
) {
    {
        let mut backoff = Duration::from_secs(1);
        loop {
            let receive = client
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(20)
                .send();
            let out = tokio::select! {
                out = receive => out,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let messages = match out {
                Ok(out) => {
                    backoff = Duration::from_secs(1);
                    out.messages.unwrap_or_default()
                }
                Err(e) => {
                    tracing::warn!(queue = %queue_url, error = ?e, "cannot read execution events; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            let mut done = Vec::new();
            for (i, m) in messages.iter().enumerate() {
                match m.body().and_then(execution_name) {
                    Some(name) => {
                        metrics::counter!("wfm_execution_events_total").increment(1);
                        reconciler.nudge(&name);
                    }
                    None => {
                        tracing::warn!(queue = %queue_url, body = ?m.body(), "not a Step Functions execution status event; dropped")
                    }
                }
                if let Some(handle) = m.receipt_handle() {
                    if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                    {
                        done.push(entry);
                    }
                }
            }
            if !done.is_empty() {
                if let Err(e) = client
                    .delete_message_batch()
                    .queue_url(&queue_url)
                    .set_entries(Some(done))
                    .send()
                    .await
                {
                    // They come back after the visibility timeout: a second nudge, no harm.
                    tracing::warn!(queue = %queue_url, error = ?e, "cannot delete read events");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_come_from_status_change_events_only() {
        let event = r#"{"version":"0","detail-type":"Step Functions Execution Status Change","source":"aws.states",
            "detail":{"executionArn":"arn:aws:states:us-east-1:1:execution:m:wf-1","name":"wf-1","status":"SUCCEEDED"}}"#;
        assert_eq!(execution_name(event).as_deref(), Some("wf-1"));
        let arn_only = r#"{"source":"aws.states","detail":{"executionArn":"arn:aws:states:us-east-1:1:execution:m:wf-2"}}"#;
        assert_eq!(execution_name(arn_only).as_deref(), Some("wf-2"));
        assert_eq!(
            execution_name(r#"{"source":"aws.ec2","detail":{"name":"x"}}"#),
            None
        );
        assert_eq!(execution_name("not json"), None);
        assert_eq!(
            execution_name(r#"{"source":"aws.states","detail":{}}"#),
            None
        );
    }
}
