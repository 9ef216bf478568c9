//! Activity dispatch latency over HTTP: from the moment a task is scheduled (an execution of a
//! one-Task machine is started in-process) to the moment a worker's waiting GetActivityTask
//! (aws-sdk-sfn, over HTTP to `/sfn`) returns it. Prints p50/p90/p99; asserts nothing.
//!
//! `cargo bench -p workflow-manager --bench dispatch`

use std::time::{Duration, Instant};

use workflow_manager::{start, Config};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let data = tempfile::tempdir().expect("tmp");
    let config = Config::isolated(data.path());
    let running = start(&config).await.expect("start");
    let engine = running.engine.clone();
    let (activity, _) = engine.create_activity("bench").expect("activity");
    let def = serde_json::json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = engine
        .create_state_machine("dispatch", &def.to_string(), "arn:role", "STANDARD")
        .expect("sm");
    let client = wfm_workers::sfn_client(
        Some(&format!("http://{}/sfn", running.addr)),
        Some("us-east-1"),
    )
    .await;

    let samples = 2000;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples + 100 {
        let poll = {
            let client = client.clone();
            let activity = activity.clone();
            tokio::spawn(async move {
                let out = client
                    .get_activity_task()
                    .activity_arn(activity)
                    .send()
                    .await
                    .expect("poll");
                (Instant::now(), out.task_token().map(str::to_string))
            })
        };
        // Let the poll reach the server and wait there.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let scheduled = Instant::now();
        engine
            .start_execution(&sm.arn, None, Some("{}"))
            .await
            .expect("start");
        let (returned, token) = poll.await.expect("join");
        let token = token.expect("a task");
        engine
            .send_task_success(&token, "{}")
            .await
            .expect("answer");
        if i >= 100 {
            latencies.push(returned.duration_since(scheduled));
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "activity dispatch over HTTP ({samples} tasks): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        at(0.50),
        at(0.90),
        at(0.99),
        latencies[latencies.len() - 1]
    );
    running.stop().await;
}
