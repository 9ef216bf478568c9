//! The figures of the integrations issue, in the embedded engine over a SQLite file (every
//! round committed) with moto's server for SQS:
//!
//! - callback round trip: from TaskScheduled of a `sqs:sendMessage.waitForTaskToken` Task,
//!   through the token's message on SQS, a worker's ReceiveMessage and SendTaskSuccess, to the
//!   next state entered (p50 / p99 over sequential runs, from the history's timestamps);
//! - the overhead of a nested `.sync:2` child: a Map of N children against a Map of N inline
//!   Pass states, per child;
//! - a Lambda function through `functions.yaml`: per call, for a `sh` command and a Python one.
//!
//! `cargo bench -p wfm-aws-integrations --bench integrations [-- RUNS]` (default 200 callback
//! runs, 200 children, 50 function calls). Needs moto (`WFM_MOTO_SERVER`, or scripts/test's
//! `.venv-test`).

mod common;

use std::time::Instant;

use common::{aws_at, finish};
use serde_json::{json, Value};
use wfm_aws_integrations::{register, Api, Aws, HttpPolicy, LocalFunctions};
use wfm_emulators::Emulator;
use wfm_engine::{Engine, EngineConfig};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn callbacks(e: &Engine, aws: &Aws, runs: usize) {
    let (q, _) = Api::Sqs
        .call(aws, "CreateQueue", &json!({"QueueName": "bench"}))
        .await
        .expect("queue");
    let url = q["QueueUrl"].as_str().expect("url").to_string();
    let def = json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "Next": "After"},
        "After": {"Type": "Pass", "End": true}}})
    .to_string();
    let sm = e
        .create_state_machine("callback", &def, "r", "STANDARD")
        .expect("sm");
    let mut trips = Vec::with_capacity(runs);
    for _ in 0..runs {
        let ex = e.start_execution(&sm.arn, None, None).await.expect("start");
        let token = loop {
            let (got, _) = Api::Sqs
                .call(
                    aws,
                    "ReceiveMessage",
                    &json!({"QueueUrl": url, "WaitTimeSeconds": 1}),
                )
                .await
                .expect("receive");
            if let Some(m) = got["Messages"].get(0) {
                Api::Sqs
                    .call(
                        aws,
                        "DeleteMessage",
                        &json!({"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]}),
                    )
                    .await
                    .expect("delete");
                let body: Value =
                    serde_json::from_str(m["Body"].as_str().unwrap_or("{}")).expect("body");
                break body["token"].as_str().unwrap_or_default().to_string();
            }
        };
        e.send_task_success(&token, "{}").await.expect("answer");
        finish(e, &ex.execution_arn).await;
        let events = e
            .get_execution_history(&ex.execution_arn, Some(100), None, false)
            .await
            .expect("history")
            .events;
        let at = |t: &str| {
            events
                .iter()
                .find(|ev| ev.event_type == t)
                .map(|ev| ev.timestamp.timestamp_micros())
        };
        if let (Some(a), Some(b)) = (at("TaskScheduled"), at("PassStateEntered")) {
            trips.push((b - a) as f64 / 1000.0);
        }
    }
    trips.sort_by(|a, b| a.total_cmp(b));
    println!(
        "callback round trip (TaskScheduled -> SQS -> worker -> SendTaskSuccess -> next state), {} runs: p50 {:.1} ms, p99 {:.1} ms",
        trips.len(),
        percentile(&trips, 0.5),
        percentile(&trips, 0.99)
    );
}

async fn timed_map(e: &Engine, name: &str, item: Value, n: usize, concurrency: usize) -> f64 {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items",
        "MaxConcurrency": concurrency, "ItemProcessor": {"StartAt": "I", "States": {"I": item}},
        "End": true}}})
    .to_string();
    let sm = e
        .create_state_machine(name, &def, "r", "STANDARD")
        .expect("sm");
    let items: Vec<usize> = (0..n).collect();
    let started = Instant::now();
    let ex = e
        .start_execution(&sm.arn, None, Some(&json!({"items": items}).to_string()))
        .await
        .expect("start");
    let done = finish(e, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{name}: {done:?}");
    started.elapsed().as_secs_f64() * 1000.0
}

async fn nested(e: &Engine, n: usize) {
    let child = e
        .create_state_machine(
            "leaf",
            r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
            "r",
            "STANDARD",
        )
        .expect("child");
    for concurrency in [1, 40] {
        let inline = timed_map(
            e,
            &format!("inline-{concurrency}"),
            json!({"Type": "Pass", "End": true}),
            n,
            concurrency,
        )
        .await;
        let children = timed_map(
            e,
            &format!("nested-{concurrency}"),
            json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                   "Parameters": {"StateMachineArn": child.arn, "Input.$": "$"}, "End": true}),
            n,
            concurrency,
        )
        .await;
        println!(
            "nested .sync:2, {n} children, MaxConcurrency {concurrency}: {children:.0} ms against {inline:.0} ms inline: {:.2} ms per child",
            (children - inline) / n as f64
        );
    }
}

async fn functions(e: &Engine, n: usize) {
    for (name, label) in [("sh-echo", "sh"), ("py-echo", "python3")] {
        let ms = timed_map(
            e,
            &format!("fn-{name}"),
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Parameters": {"FunctionName": name, "Payload.$": "$"}, "End": true}),
            n,
            1,
        )
        .await;
        println!(
            "Lambda through functions.yaml ({label} command), {n} sequential calls: {:.1} ms per call",
            ms / n as f64
        );
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let Some(moto) = Emulator::moto() else {
        eprintln!("moto is needed (set WFM_MOTO_SERVER)");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let e =
        Engine::open(&dir.path().join("engine.db"), EngineConfig::default(), None).expect("engine");
    let aws = aws_at(&moto.endpoint);
    // The interpreter itself, not a version manager's shim (pyenv's adds ~170 ms a start).
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into());
    let functions_list = LocalFunctions::new(
        dir.path(),
        [
            (
                "sh-echo".to_string(),
                vec!["sh".into(), "-c".into(), "echo \"$0\"".into()],
            ),
            (
                "py-echo".to_string(),
                vec![
                    python,
                    "-c".into(),
                    "import sys; print(sys.argv[-1])".into(),
                ],
            ),
        ],
    );
    register(&e, aws.clone(), functions_list, HttpPolicy::default());
    callbacks(&e, &aws, runs).await;
    nested(&e, runs).await;
    functions(&e, (runs / 4).max(10)).await;
}
