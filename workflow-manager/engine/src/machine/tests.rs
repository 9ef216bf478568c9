//! The step machine alone, as the pure function it is: no runtime, no database, no clock but
//! the one handed in. What each completion does to an execution, which events and commands it
//! gives, and what it refuses.

use std::sync::Arc;

use serde_json::{json, Value};

use super::compiled::Compiled;
use super::event::Event;
use super::execution::{Execution, Meta, Stage};
use super::*;

struct TestEnv {
    now: i64,
    secrets: u64,
}

impl Env for TestEnv {
    fn now_ms(&self) -> i64 {
        self.now
    }
    fn secret(&mut self) -> String {
        self.secrets += 1;
        format!("{:032x}", self.secrets)
    }
    fn activity_exists(&self, _: &str) -> bool {
        true
    }
    fn integration(&self, _: &str) -> Option<IntegrationInfo> {
        None
    }
}

const ACTIVITY: &str = "arn:aws:states:us-east-1:1:activity:a";

fn setup(definition: Value, input: Value) -> (Execution, Compiled, TestEnv) {
    let machine = wfm_asl::parse_definition(&definition.to_string()).expect("definition");
    let compiled = Compiled::new(Arc::new(machine)).expect("compiled");
    let meta = Arc::new(Meta::new(
        "arn:x".into(),
        "x".into(),
        "arn:m".into(),
        "m".into(),
        "role".into(),
        false,
        1_000,
        input,
    ));
    let exec = Execution::new(7, meta, compiled.machine(0).start);
    (
        exec,
        compiled,
        TestEnv {
            now: 1_000,
            secrets: 0,
        },
    )
}

fn types(round: &Round) -> Vec<String> {
    round
        .events
        .iter()
        .map(|e| e.event.type_name().into_owned())
        .collect()
}

fn scheduled(round: &Round) -> Vec<NewTask> {
    round
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Schedule(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_wait_is_a_timer_and_a_stale_or_foreign_timer_changes_nothing() {
    let (mut exec, c, mut env) = setup(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": true}}}),
        json!({"a": 1}),
    );
    let round = advance(&mut exec, &c, vec![Completion::Start], &mut env, 100);
    assert_eq!(types(&round), ["ExecutionStarted", "WaitStateEntered"]);
    let Some(Command::StartTimer(d)) = round.commands.first() else {
        panic!("no timer: {:?}", round.commands);
    };
    assert_eq!(d.due_ms, 6_000, "five seconds after the state was entered");
    assert!(!round.more);
    // Another timer number: nothing happens.
    let round = advance(
        &mut exec,
        &c,
        vec![Completion::Timer { seq: d.timer + 40 }],
        &mut env,
        100,
    );
    assert!(round.events.is_empty() && exec.ended.is_none());
    env.now = 6_000;
    let round = advance(
        &mut exec,
        &c,
        vec![Completion::Timer { seq: d.timer }],
        &mut env,
        100,
    );
    assert_eq!(types(&round), ["WaitStateExited", "ExecutionSucceeded"]);
    assert_eq!(
        exec.ended,
        Some(execution::Ending::Succeeded(r#"{"a":1}"#.into()))
    );
}

#[test]
fn an_answer_needs_the_tasks_current_secret_and_counts_once() {
    let (mut exec, c, mut env) = setup(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ACTIVITY, "End": true}}}),
        json!({}),
    );
    let round = advance(&mut exec, &c, vec![Completion::Start], &mut env, 100);
    let task = scheduled(&round).pop().expect("a task");
    let wrong = advance(
        &mut exec,
        &c,
        vec![Completion::Answer {
            seq: task.seq,
            secret: "00".into(),
            outcome: Outcome::Success("{}".into()),
        }],
        &mut env,
        100,
    );
    assert!(matches!(wrong.replies[0], Err(Reject::InvalidToken(_))));
    assert!(wrong.events.is_empty());
    let answer = Completion::Answer {
        seq: task.seq,
        secret: task.secret.clone(),
        outcome: Outcome::Success(r#"{"r": 2}"#.into()),
    };
    let round = advance(&mut exec, &c, vec![answer.clone()], &mut env, 100);
    assert_eq!(round.replies, [Ok(())]);
    assert_eq!(
        types(&round),
        ["ActivitySucceeded", "TaskStateExited", "ExecutionSucceeded"]
    );
    assert!(round
        .commands
        .iter()
        .any(|c| matches!(c, Command::Unschedule { seq, .. } if *seq == task.seq)));
    let again = advance(&mut exec, &c, vec![answer], &mut env, 100);
    assert!(matches!(again.replies[0], Err(Reject::TaskTimedOut(_))));
}

#[test]
fn a_handout_after_a_restart_changes_the_token_the_answer_must_carry() {
    let (mut exec, c, mut env) = setup(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ACTIVITY, "End": true}}}),
        json!({}),
    );
    let round = advance(&mut exec, &c, vec![Completion::Start], &mut env, 100);
    let task = scheduled(&round).pop().expect("a task");
    let round = advance(
        &mut exec,
        &c,
        vec![Completion::Handout {
            seq: task.seq,
            secret: "ff".repeat(16),
            worker: Some("w".into()),
        }],
        &mut env,
        100,
    );
    assert_eq!(types(&round), ["ActivityStarted"]);
    let old = Completion::Answer {
        seq: task.seq,
        secret: task.secret,
        outcome: Outcome::Success("{}".into()),
    };
    let round = advance(&mut exec, &c, vec![old], &mut env, 100);
    assert!(matches!(round.replies[0], Err(Reject::InvalidToken(_))));
}

#[test]
fn a_map_runs_depth_first_within_its_concurrency_and_keeps_results_by_slot() {
    let (mut exec, c, mut env) = setup(
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 2, "End": true,
            "ItemProcessor": {"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": ACTIVITY, "End": true}}}}}}),
        json!([10, 20, 30]),
    );
    let round = advance(&mut exec, &c, vec![Completion::Start], &mut env, 100);
    let tasks = scheduled(&round);
    assert_eq!(tasks.len(), 2, "two at a time");
    assert_eq!(tasks[0].input, "10");
    // The second iteration's answer first: its result stays in its slot.
    let answer = |t: &NewTask, out: &str| Completion::Answer {
        seq: t.seq,
        secret: t.secret.clone(),
        outcome: Outcome::Success(out.into()),
    };
    let round = advance(&mut exec, &c, vec![answer(&tasks[1], "2")], &mut env, 100);
    let third = scheduled(&round).pop().expect("the third item starts");
    assert_eq!(third.input, "30");
    advance(&mut exec, &c, vec![answer(&third, "3")], &mut env, 100);
    let round = advance(&mut exec, &c, vec![answer(&tasks[0], "1")], &mut env, 100);
    assert!(types(&round).contains(&"MapStateSucceeded".to_string()));
    assert_eq!(
        exec.ended,
        Some(execution::Ending::Succeeded("[1,2,3]".into()))
    );
}

#[test]
fn a_small_budget_splits_a_long_chain_into_rounds_that_resume_in_place() {
    let mut states = serde_json::Map::new();
    for i in 0..10 {
        let next = if i == 9 {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), next);
    }
    let (mut exec, c, mut env) = setup(json!({"StartAt": "S0", "States": states}), json!({}));
    let mut round = advance(&mut exec, &c, vec![Completion::Start], &mut env, 5);
    let mut rounds = 1;
    let mut events = round.events.len();
    while round.more {
        assert!(round.events.len() <= 6, "{:?}", types(&round));
        round = advance(&mut exec, &c, vec![Completion::Continue], &mut env, 5);
        rounds += 1;
        events += round.events.len();
    }
    assert!(rounds >= 4, "{rounds} rounds");
    assert_eq!(events, 1 + 20 + 1);
    assert!(exec.ended.is_some());
    assert!(matches!(
        round.events.last().map(|e| &e.event),
        Some(Event::ExecutionSucceeded { .. })
    ));
}

#[test]
fn a_stop_withdraws_every_task_and_timer_of_every_frame() {
    let (mut exec, c, mut env) = setup(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ACTIVITY, "TimeoutSeconds": 9, "End": true}}},
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 9, "End": true}}}]}}}),
        json!({}),
    );
    advance(&mut exec, &c, vec![Completion::Start], &mut env, 100);
    assert!(matches!(
        exec.frames.get(&0).map(|f| &f.stage),
        Some(Stage::Fanout(_))
    ));
    let round = advance(
        &mut exec,
        &c,
        vec![Completion::Stop {
            error: Some("E".into()),
            cause: None,
        }],
        &mut env,
        100,
    );
    assert_eq!(types(&round), ["ExecutionAborted"]);
    let cancelled_timers = round
        .commands
        .iter()
        .filter(|c| matches!(c, Command::CancelTimer(_)))
        .count();
    assert_eq!(cancelled_timers, 2, "{:?}", round.commands);
    assert!(round
        .commands
        .iter()
        .any(|c| matches!(c, Command::Unschedule { .. })));
    assert!(exec.frames.is_empty() && exec.waits.is_empty());
}

#[test]
fn task_events_name_the_operation_as_step_functions_does() {
    use super::frames::operation;
    for (resource, op) in [
        (
            "arn:aws:states:::states:startExecution.sync:2",
            "startExecution.sync:2",
        ),
        (
            "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "sendMessage.waitForTaskToken",
        ),
        ("arn:aws:states:::aws-sdk:dynamodb:getItem", "getItem"),
        ("arn:aws:states:::batch:submitJob.sync", "submitJob.sync"),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
    ] {
        assert_eq!(operation(resource), op, "{resource}");
    }
}
