//! Conformance of the service's Task integrations with AWS Step Functions, measured on the
//! executions recorded on real AWS that call SQS, SNS, DynamoDB, EventBridge, S3, nested
//! executions and Lambda (`shared/conformance/sfn-integration-executions.jsonl`), with the
//! reference runner beside the data (`runner/sfn_integration_conformance.py`): it creates each
//! case's fixtures in moto's server, runs its task-token workers, and runs the case through
//! the real binary's `/sfn` endpoint. The binary reaches moto through the standard AWS
//! configuration (`AWS_ENDPOINT_URL`); Lambda functions run as local commands from the
//! `functions.yaml` the runner writes.
//!
//! Fails on a failing case that is not in `integration-conformance-known-failures.txt` and on a
//! listed case that now passes (the list only shrinks); prints the pass rate per category.
//! Skips loudly when the data, moto or Python with boto3 is missing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use wfm_e2e::Server;
use wfm_emulators::Emulator;

const KNOWN_FAILURES: &str = include_str!("integration-conformance-known-failures.txt");

fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WFM_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => wfm_e2e::workspace().join("../shared/conformance"),
    };
    dir.join("sfn-integration-executions.jsonl")
        .exists()
        .then_some(dir)
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("WFM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| wfm_e2e::workspace().join(".venv-test/bin/python"));
    p.exists().then_some(p)
}

fn known_failures() -> BTreeSet<String> {
    KNOWN_FAILURES
        .lines()
        .map(|l| l.split("  # ").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn integrations_conform_to_recorded_aws_behaviour() {
    let (Some(data), Some(python)) = (data_dir(), python()) else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: the integration conformance data (set WFM_CONFORMANCE_DIR) or \
             Python with boto3 (WFM_TEST_PYTHON; scripts/test installs it) is missing !!!!!!!!\n"
        );
        return;
    };
    let Some(moto) = Emulator::moto() else { return };
    let runner = data.join("runner/sfn_integration_conformance.py");
    let cases = data.join("sfn-integration-executions.jsonl");
    let definitions = tempfile::tempdir().expect("tempdir");
    let wrote = Command::new(&python)
        .arg(&runner)
        .args([
            "http://unused",
            cases.to_str().unwrap_or_default(),
            "--aws",
            "http://unused",
        ])
        .args(["--lambda", "local", "--functions-dir"])
        .arg(definitions.path())
        .status()
        .expect("run the runner");
    assert!(wrote.success(), "the runner could not write functions.yaml");

    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let definitions_arg = definitions.path().to_string_lossy().to_string();
    let server = Server::start_with_env(
        tempfile::tempdir().expect("tempdir"),
        "127.0.0.1:0",
        &[
            "--definitions",
            &definitions_arg,
            "--account",
            "111111111111",
        ],
        &env,
    );
    let report = definitions.path().join("report.json");
    let out = Command::new(&python)
        .arg(&runner)
        .arg(server.sfn_endpoint())
        .arg(&cases)
        .args(["--aws", &moto.endpoint, "--lambda", "local", "--jobs", "4"])
        .arg("--report")
        .arg(&report)
        .envs(env)
        .output()
        .expect("run the runner");
    let summary = String::from_utf8_lossy(&out.stdout);
    println!("{summary}");
    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_else(|e| {
            panic!(
                "no report ({e}):\n{summary}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .expect("report JSON");
    let known = known_failures();
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    let mut failing = Vec::new();
    for r in &results {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let passed = r["result"] == "pass";
        if !passed {
            failing.push(format!("{id}  # {}", r["why"].as_str().unwrap_or_default()));
        }
        match (passed, known.contains(&id)) {
            (false, false) => {
                regressions.push(format!("{id}: {}", r["why"].as_str().unwrap_or_default()))
            }
            (true, true) => fixed.push(id),
            _ => {}
        }
    }
    if let Ok(path) = std::env::var("WFM_CONFORMANCE_UPDATE_KNOWN") {
        let mut text = String::from(
            "# Integration cases the service fails today, with why (regenerate with\n\
             # WFM_CONFORMANCE_UPDATE_KNOWN=$PWD/tests/tests/integration-conformance-known-failures.txt \\\n\
             #   cargo test -p wfm-e2e --test integration_conformance; review the diff).\n",
        );
        failing.sort();
        for f in failing {
            let cut: String = f.chars().take(400).collect();
            text.push_str(&cut.replace('\n', " "));
            text.push('\n');
        }
        std::fs::write(path, text).expect("write known failures");
        return;
    }
    assert!(
        regressions.is_empty() && fixed.is_empty(),
        "cases that fail and are not known failures:\n{}\n\nknown failures that pass now (remove them from the list):\n{}\n\nserver log:\n{}",
        regressions.join("\n"),
        fixed.join("\n"),
        server.log().chars().rev().take(4000).collect::<String>().chars().rev().collect::<String>()
    );
}
