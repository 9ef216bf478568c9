//! The figure of the Distributed Map issue, in the embedded engine over a SQLite file (every
//! round committed) with moto's server for S3: a Distributed Map over N CSV rows read from S3
//! with an `ItemBatcher` of 100 items and an inline Pass child, from the execution's start to
//! its end (items per second), and the process's peak resident memory.
//!
//! `cargo bench -p wfm-aws-integrations --bench distributed_map [-- ITEMS]` (default 100,000).
//! Needs moto (`WFM_MOTO_SERVER`, or scripts/test's `.venv-test`).

mod common;

use std::time::Instant;

use common::{aws_at, finish};
use serde_json::json;
use wfm_aws_integrations::{register, HttpPolicy, LocalFunctions, S3Integration};
use wfm_emulators::Emulator;
use wfm_engine::integrations::ServiceIntegration;
use wfm_engine::{Engine, EngineConfig};

/// The peak resident set of this process (Linux's `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let Some(moto) = Emulator::moto() else {
        eprintln!("moto is needed (set WFM_MOTO_SERVER)");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let e =
        Engine::open(&dir.path().join("engine.db"), EngineConfig::default(), None).expect("engine");
    let aws = aws_at(&moto.endpoint);
    register(
        &e,
        aws.clone(),
        LocalFunctions::default(),
        HttpPolicy::default(),
    );

    let mut csv = String::from("id,name,qty\n");
    for i in 0..items {
        csv.push_str(&format!("{i},item-{i},{}\n", i % 97));
    }
    // The object is put directly (it is larger than an execution's input may be).
    let s3 = S3Integration::new(aws);
    for (action, parameters) in [
        ("createBucket", json!({"Bucket": "bench"})),
        (
            "putObject",
            json!({"Bucket": "bench", "Key": "rows.csv", "Body": csv}),
        ),
    ] {
        s3.submit(
            &format!("arn:aws:states:::aws-sdk:s3:{action}"),
            &parameters,
        )
        .await
        .unwrap_or_else(|f| panic!("{action}: {}: {}", f.error, f.cause));
    }
    drop(csv);

    let def = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "End": true, "MaxConcurrency": 1000,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                       "Parameters": {"Bucket": "bench", "Key": "rows.csv"}},
        "ItemBatcher": {"MaxItemsPerBatch": 100},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Row", "States": {"Row": {"Type": "Pass", "End": true}}},
        "ResultSelector": {"batches.$": "States.ArrayLength($)"}}}});
    let sm = e
        .create_state_machine("fan", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let before = peak_rss_mib().unwrap_or(0.0);
    let t = Instant::now();
    let ex = e
        .start_execution(&sm.arn, None, Some("{}"))
        .await
        .expect("start");
    let done = finish(&e, &ex.execution_arn).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        done.status, "SUCCEEDED",
        "{:?}: {:?}",
        done.error, done.cause
    );
    println!(
        "distributed map: {items} items from S3 (moto) in batches of 100: {secs:.2} s, {:.0} items/s; output {}",
        items as f64 / secs,
        done.output.unwrap_or_default()
    );
    println!(
        "peak resident memory: {:.0} MiB (before the map: {before:.0} MiB)",
        peak_rss_mib().unwrap_or(0.0)
    );
}
