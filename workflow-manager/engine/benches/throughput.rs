//! State transitions per second of the embedded engine, in memory and durable (SQLite file),
//! for three machines: a chain of 100 Pass states, a Map over 1,000 items with a Choice
//! inside, and a Parallel of 10 branches. Prints numbers; asserts nothing.
//!
//! `cargo bench -p wfm-engine --bench throughput`

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wfm_engine::{Engine, EngineConfig};

fn chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let s = if i + 1 == n {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states})
}

fn map_with_choice() -> Value {
    json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 500, "Next": "Big"}], "Default": "Small"},
            "Big": {"Type": "Pass", "Result": "big", "End": true},
            "Small": {"Type": "Pass", "Result": "small", "End": true}}}}}})
}

fn parallel(n: usize) -> Value {
    let branches: Vec<Value> = (0..n)
        .map(|i| json!({"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": i, "End": true}}}))
        .collect();
    json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": branches, "End": true}}})
}

async fn run(
    engine: &Engine,
    name: &str,
    definition: &Value,
    input: &Value,
    executions: usize,
) -> Duration {
    let sm = engine
        .create_state_machine(name, &definition.to_string(), "arn:role", "STANDARD")
        .expect("sm");
    let input = input.to_string();
    let start = Instant::now();
    // All started at once: on a file database each start waits for its group commit.
    let arns: Vec<String> = futures::future::join_all(
        (0..executions).map(|_| engine.start_execution(&sm.arn, None, Some(&input))),
    )
    .await
    .into_iter()
    .map(|started| started.expect("start").execution_arn)
    .collect();
    for arn in &arns {
        loop {
            let d = engine.describe_execution(arn).await.expect("describe");
            if d.status != "RUNNING" {
                assert_eq!(d.status, "SUCCEEDED", "{d:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    start.elapsed()
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Resident memory per execution waiting on an activity task, measured over `n` of them.
async fn memory_per_waiting_execution(n: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let engine =
        Engine::open(&dir.path().join("wait.db"), EngineConfig::default(), None).expect("engine");
    let (activity, _) = engine.create_activity("never-answered").expect("activity");
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = engine
        .create_state_machine("waiting", &def.to_string(), "arn:role", "STANDARD")
        .expect("sm");
    let before = rss_bytes();
    for i in 0..n {
        engine
            .start_execution(&sm.arn, Some(&format!("w{i}")), Some(r#"{"k": "v"}"#))
            .await
            .expect("start");
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    while engine.outstanding_tasks() < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (rss_bytes().saturating_sub(before)) as f64 / n as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let items: Vec<u32> = (0..1000).collect();
    let cases: Vec<(&str, Value, Value, usize, usize)> = vec![
        // name, definition, input, executions, transitions per execution
        ("chain-100-pass", chain(100), json!({}), 50, 100),
        (
            "map-1000-choice",
            map_with_choice(),
            json!({"items": items}),
            3,
            1 + 1000 * 2,
        ),
        ("parallel-10", parallel(10), json!({}), 200, 11),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    println!(
        "{:<18} {:<10} {:>12} {:>14}",
        "machine", "mode", "executions", "transitions/s"
    );
    for (mode, durable) in [("memory", false), ("durable", true)] {
        for (name, def, input, executions, per) in &cases {
            let engine = if durable {
                Engine::open(
                    &dir.path().join(format!("{name}.db")),
                    EngineConfig::default(),
                    None,
                )
                .expect("engine")
            } else {
                Engine::in_memory(EngineConfig::default(), None).expect("engine")
            };
            let took = run(&engine, name, def, input, *executions).await;
            let rate = (executions * per) as f64 / took.as_secs_f64();
            println!("{name:<18} {mode:<10} {executions:>12} {rate:>14.0}");
        }
    }
    let n = 100_000;
    let per = memory_per_waiting_execution(n).await;
    println!("memory per execution waiting on an activity ({n} of them): {per:.0} bytes");
}
