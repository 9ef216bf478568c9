//! A restart with many executions waiting: the engine database of a data directory is filled
//! with N executions that wait for activity tasks (a third at the top level, a third inside a
//! Map of two tasks, a third with a Retry, a HeartbeatSeconds and a TimeoutSeconds, so with
//! timers), then the real service binary is started on it. Prints, per N: how fast the
//! executions were created, the time from the start of the process to `/_health` answering,
//! to the first task served to a worker (GetActivityTask over HTTP), and the resident memory
//! then. Asserts nothing.
//!
//! `cargo bench -p workflow-manager --bench restart` (N = 100,000), or
//! `cargo bench -p workflow-manager --bench restart -- 100000 1000000`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::json;
use wfm_engine::{Engine, EngineConfig};

const ACTIVITY: &str = "default--bench";

/// Fills `dir`'s engine database with `n` waiting executions; returns how long it took.
async fn fill(dir: &std::path::Path, n: usize) -> Duration {
    let engine =
        Engine::open(&dir.join("engine.db"), EngineConfig::default(), None).expect("engine");
    let (activity, _) = engine.create_activity(ACTIVITY).expect("activity");
    let task = json!({"Type": "Task", "Resource": activity, "End": true});
    let machines = [
        json!({"StartAt": "T", "States": {"T": task}}),
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "T", "States": {"T": task}}}}}),
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true,
            "TimeoutSeconds": 86400, "HeartbeatSeconds": 3600,
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]}}}),
    ];
    let arns: Vec<String> = machines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            engine
                .create_state_machine(
                    &format!("waiting-{i}"),
                    &m.to_string(),
                    "arn:role",
                    "STANDARD",
                )
                .expect("machine")
                .arn
        })
        .collect();
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let (engine, arn) = (engine.clone(), arns[i % 3].clone());
            async move {
                let input = if i % 3 == 1 { "[1, 2]" } else { "{}" };
                engine
                    .start_execution(&arn, None, Some(input))
                    .await
                    .expect("start");
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
    let took = started.elapsed();
    engine.halt();
    took
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn measure(n: usize) {
    let data = tempfile::tempdir().expect("tmp");
    let created = fill(data.path(), n).await;
    let definitions = data.path().join("definitions");
    std::fs::create_dir_all(&definitions).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_workflow-manager"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--no-local-workers",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--definitions")
        .arg(&definitions)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the service");
    let http = reqwest::Client::new();
    let health = loop {
        if let Ok(r) = http.get(format!("{url}/_health")).send().await {
            if r.status().is_success() {
                break started.elapsed();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no /_health");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let activity = format!("arn:aws:states:us-east-1:123456789012:activity:{ACTIVITY}");
    let first = http
        .post(format!("{url}/sfn"))
        .header("X-Amz-Target", "AWSStepFunctions.GetActivityTask")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(json!({"activityArn": activity, "workerName": "bench"}).to_string())
        .send()
        .await
        .expect("poll")
        .text()
        .await
        .expect("body");
    let first_task = started.elapsed();
    assert!(first.contains("taskToken"), "no task: {first}");
    let rss = rss_mb(child.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = rss_mb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "restart n={n:>8}  created {:>8.0}/s  /_health {:>7.0} ms  first task {:>7.0} ms  \
         RSS {rss:>6.0} MB ({settled:.0} MB 2 s later)",
        n as f64 / created.as_secs_f64(),
        health.as_secs_f64() * 1000.0,
        first_task.as_secs_f64() * 1000.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![100_000]
    } else {
        counts
    };
    for n in counts {
        measure(n).await;
    }
}
