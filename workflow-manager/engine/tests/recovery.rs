//! Recovery is loading, not re-running: a run of a machine that nests every state type inside
//! Map and Parallel at several depths is cut after every commit (each round is one commit, and
//! rounds are as small as the engine makes them), the engine is opened again on the same file
//! and the run finished. Every cut run must end as the uncut run did: the same output, the same
//! states entered (each as often), the same fanouts started, and no answered task answered
//! again. Random schedules of several cuts in one run are property-tested on top.
//!
//! Time is virtual (Wait states and retry intervals pass at once); the worker is a
//! deterministic loop in the test that answers tasks oldest first and fails the first attempt
//! of some of them.

#![recursion_limit = "512"]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use wfm_engine::{Clock, Engine, EngineConfig};

const ROLE: &str = "arn:aws:iam::123456789012:role/recovery";

fn definition(activity: &str) -> Value {
    json!({"StartAt": "Setup", "States": {
        "Setup": {"Type": "Pass", "Assign": {"factor": 2},
                  "Result": {"items": [1, 2, 3], "groups": [[1, 2], [3]]}, "Next": "Prepare"},
        "Prepare": {"Type": "Task", "Resource": activity,
                    "Parameters": {"step": "prepare", "retry.$": "$$.State.RetryCount"},
                    "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                    "ResultPath": "$.prepared", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Fan"},
        "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Route", "Branches": [
            {"StartAt": "Items", "States": {"Items": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": true,
                "ItemSelector": {"v.$": "$$.Map.Item.Value", "f.$": "$factor"},
                "ItemProcessor": {"StartAt": "Work", "States": {
                    "Work": {"Type": "Task", "Resource": activity,
                             "Parameters": {"step": "item", "v.$": "$.v", "retry.$": "$$.State.RetryCount"},
                             "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1}],
                             "ResultSelector": {"got.$": "$.echo.v"}, "Next": "Check"},
                    "Check": {"Type": "Choice", "Choices": [
                        {"Variable": "$.got", "NumericGreaterThan": 2, "Next": "Big"}],
                        "Default": "Small"},
                    "Big": {"Type": "Pass", "Result": "big", "End": true},
                    "Small": {"Type": "Wait", "Seconds": 1, "Next": "SmallDone"},
                    "SmallDone": {"Type": "Succeed"}}}}}},
            {"StartAt": "Groups", "States": {"Groups": {
                "Type": "Map", "ItemsPath": "$.groups", "End": true,
                "ItemProcessor": {"StartAt": "Inner", "States": {
                    "Inner": {"Type": "Parallel", "Next": "Recovered", "Branches": [
                        {"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": true,
                            "ItemProcessor": {"StartAt": "Leaf", "States": {
                                "Leaf": {"Type": "Task", "Resource": activity,
                                         "Parameters": {"step": "leaf", "v.$": "$"}, "End": true}}}}}},
                        {"StartAt": "Twice", "States": {"Twice": {"Type": "Map", "End": true,
                            "ItemProcessor": {"StartAt": "Double", "States": {
                                "Double": {"Type": "Task", "Resource": activity,
                                           "Parameters": {"step": "double", "v.$": "$"},
                                           "Next": "Doubled"},
                                "Doubled": {"Type": "Pass", "End": true}}}}}}],
                        "Catch": [{"ErrorEquals": ["Planned"], "ResultPath": "$.caught",
                                   "Next": "Recovered"}]},
                    "Recovered": {"Type": "Pass", "End": true}}}}}},
            {"StartAt": "Boom", "States": {
                "Boom": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "Slow", "States": {"Slow": {"Type": "Task", "Resource": activity,
                        "Parameters": {"step": "slow"}, "End": true}}},
                    {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "Planned", "Cause": "deep"}}}],
                    "Catch": [{"ErrorEquals": ["Planned"], "ResultPath": "$.caught", "Next": "Caught"}]},
                "Caught": {"Type": "Pass", "End": true}}}]},
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.prepared.echo.step", "StringEquals": "prepare", "Next": "Done"}],
            "Default": "Failed"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "Unexpected"}}})
}

/// What a run came to.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: String,
    output: Option<String>,
    /// (state, input) of every StateEntered, sorted: concurrent frames interleave differently
    /// once a run is cut, each frame's own order is checked by the engine's links.
    entered: Vec<(String, String)>,
    /// How many times each fanout event and task answer was written.
    counts: BTreeMap<String, usize>,
}

/// One engine over the file at `path`, with rounds as small as possible.
fn open(path: &Path, clock: Clock) -> Engine {
    let e = Engine::open_with_clock(path, EngineConfig::default(), None, clock).expect("engine");
    e.set_round_events(1);
    e
}

/// The deterministic worker: answers the oldest task, failing the first attempt of the prepare
/// step and of item 2, and never answering the slow step (its branch's sibling fails, which
/// withdraws it, sooner or later). Returns once the execution ended or the engine halted.
async fn work(e: &Engine, activity: &str, arn: &str) -> bool {
    loop {
        if e.halted() {
            return false;
        }
        match e.describe_execution(arn).await {
            Ok(d) if d.status != "RUNNING" => return true,
            Ok(_) => {}
            Err(_) if e.halted() => return false,
            Err(err) => panic!("describe: {err}"),
        }
        match e
            .get_activity_task(activity, Some("w"), Duration::ZERO)
            .await
        {
            Ok(Some(task)) => {
                let input: Value = serde_json::from_str(&task.input).expect("input");
                if input["step"] == "slow" {
                    continue;
                }
                let flaky = input["retry"] == 0
                    && (input["step"] == "prepare" || (input["step"] == "item" && input["v"] == 2));
                let sent = if flaky {
                    e.send_task_failure(&task.task_token, Some("Flaky"), Some("try again"))
                        .await
                } else {
                    e.send_task_success(&task.task_token, &json!({"echo": input}).to_string())
                        .await
                };
                // A refused answer (its task is over) is what a worker sees after a cut.
                drop(sent);
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) if e.halted() => return false,
            Err(err) => panic!("poll: {err}"),
        }
    }
}

async fn outcome(e: &Engine, arn: &str) -> Outcome {
    let d = e.describe_execution(arn).await.expect("describe");
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let page = e
            .get_execution_history(arn, Some(1000), token.as_deref(), false)
            .await
            .expect("history");
        events.extend(page.events);
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut entered: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| e.state_entered_event_details.as_ref())
        .map(|d| (d.name.clone(), d.input.clone().unwrap_or_default()))
        .collect();
    entered.sort();
    let mut counts = BTreeMap::new();
    for e in &events {
        let t = e.event_type.as_str();
        if t.ends_with("StateStarted")
            || t.starts_with("MapIteration")
            || matches!(
                t,
                "ActivitySucceeded" | "ActivityFailed" | "ActivityScheduled"
            )
        {
            *counts.entry(t.to_string()).or_default() += 1;
        }
    }
    Outcome {
        status: d.status,
        output: d.output,
        entered,
        counts,
    }
}

/// Runs the machine once, cutting it after each number of commits in `cuts` in turn (a new
/// engine on the same file each time); returns what it came to and how many commits it took.
async fn run(cuts: &[usize]) -> (Outcome, u64) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let clock = Clock::new();
    let mut e = open(&path, clock);
    let (activity, _) = e.create_activity("recovery").expect("activity");
    let sm = e
        .create_state_machine(
            "recovery",
            &definition(&activity).to_string(),
            ROLE,
            "STANDARD",
        )
        .expect("machine");
    let mut cuts = cuts.iter();
    if let Some(k) = cuts.next() {
        e.crash_after_commits(*k);
    }
    let arn = match e.start_execution(&sm.arn, Some("r"), None).await {
        Ok(x) => x.execution_arn,
        Err(_) => {
            e.state_machine_arn("recovery")
                .replace(":stateMachine:", ":execution:")
                + ":r"
        }
    };
    let mut commits = 0;
    loop {
        if work(&e, &activity, &arn).await {
            break;
        }
        commits += e.commits();
        e = open(&path, clock);
        if let Some(k) = cuts.next() {
            e.crash_after_commits(*k);
        }
        e.recover().await.expect("recover");
    }
    commits += e.commits();
    (outcome(&e, &arn).await, commits)
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_after_any_commit_ends_as_the_uncut_run() {
    let (uncut, commits) = run(&[]).await;
    assert_eq!(uncut.status, "SUCCEEDED", "{uncut:?}");
    assert!(
        commits > 30,
        "rounds are small enough to cut often: {commits}"
    );
    for k in 1..commits as usize {
        let (cut, _) = run(&[k]).await;
        assert_eq!(cut, uncut, "cut after commit {k} of {commits}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_run_cut_many_times_ends_as_the_uncut_run(cuts in prop::collection::vec(1usize..12, 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let (uncut, _) = rt.block_on(run(&[]));
        let (cut, _) = rt.block_on(run(&cuts));
        prop_assert_eq!(cut, uncut, "cuts {:?}", cuts);
    }
}
