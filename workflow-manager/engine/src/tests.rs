//! Engine tests over an in-memory database.

use std::time::Duration;

use super::*;
use serde_json::{json, Value};

fn engine() -> Engine {
    Engine::in_memory(EngineConfig::default(), None).expect("engine")
}

async fn wait_done(e: &Engine, arn: &str) -> ExecutionInfo {
    for _ in 0..500 {
        let d = e.describe_execution(arn).await.expect("describe");
        if d.status != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("execution {arn} did not finish");
}

pub(crate) async fn history_types(e: &Engine, arn: &str) -> Vec<String> {
    e.get_execution_history(arn, Some(1000), None, false)
        .await
        .expect("history")
        .events
        .into_iter()
        .map(|ev| ev.event_type)
        .collect()
}

#[tokio::test]
async fn pass_and_choice_run_with_data_flow() {
    let e = engine();
    let def = json!({"StartAt": "Shape", "States": {
        "Shape": {"Type": "Pass", "InputPath": "$.order",
                  "Parameters": {"amount.$": "$.amount", "exec.$": "$$.Execution.Name"},
                  "ResultPath": "$.shaped", "Next": "Decide"},
        "Decide": {"Type": "Choice", "Choices": [
            {"Variable": "$.shaped.amount", "NumericGreaterThan": 100, "Next": "Big"}],
            "Default": "Small"},
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "OutputPath": "$.size",
                "End": true},
        "Small": {"Type": "Succeed"}
    }});
    let sm = e
        .create_state_machine("m1", &def.to_string(), "arn:role", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(
            &sm.arn,
            Some("run-1"),
            Some(r#"{"order": {"amount": 150}}"#),
        )
        .await
        .expect("start");
    let done = wait_done(&e, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(done.output.as_deref(), Some(r#""big""#));
    assert_eq!(
        history_types(&e, &ex.execution_arn).await,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    let events = e
        .get_execution_history(&ex.execution_arn, None, None, false)
        .await
        .expect("h")
        .events;
    let shaped: Value = serde_json::from_str(
        events[2]
            .state_exited_event_details
            .as_ref()
            .and_then(|d| d.output.as_deref())
            .expect("out"),
    )
    .expect("json");
    assert_eq!(shaped["shaped"], json!({"amount": 150, "exec": "run-1"}));
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.id, i as i64 + 1);
        assert_eq!(ev.previous_event_id, i as i64);
    }
}

#[tokio::test]
async fn fail_state_fails_with_error_and_cause() {
    let e = engine();
    let def =
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}});
    let sm = e
        .create_state_machine("m2", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = e.start_execution(&sm.arn, None, None).await.expect("start");
    let done = wait_done(&e, &ex.execution_arn).await;
    assert_eq!(
        (
            done.status.as_str(),
            done.error.as_deref(),
            done.cause.as_deref()
        ),
        ("FAILED", Some("Bad"), Some("why"))
    );
}

#[tokio::test]
async fn activity_round_trip_success_and_failure() {
    let e = engine();
    let (activity, _) = e.create_activity("work").expect("activity");
    let (again, _) = e.create_activity("work").expect("idempotent");
    assert_eq!(activity, again);
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": activity, "ResultPath": "$.r", "End": true}}});
    let sm = e
        .create_state_machine("m3", &def.to_string(), "r", "STANDARD")
        .expect("sm");

    // A poller waiting before the task exists gets it as soon as it is scheduled.
    let poller = {
        let e = e.clone();
        let a = activity.clone();
        tokio::spawn(async move {
            e.get_activity_task(&a, Some("w1"), Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ex = e
        .start_execution(&sm.arn, Some("ok"), Some(r#"{"x": 1}"#))
        .await
        .expect("start");
    let task = poller.await.expect("join").expect("poll").expect("a task");
    assert_eq!(
        serde_json::from_str::<Value>(&task.input).expect("json"),
        json!({"x": 1})
    );
    e.send_task_heartbeat(&task.task_token)
        .await
        .expect("heartbeat");
    assert!(matches!(
        e.send_task_success(&task.task_token, "not json").await,
        Err(EngineError::InvalidOutput(_))
    ));
    e.send_task_success(&task.task_token, r#"{"y": 2}"#)
        .await
        .expect("success");
    let done = wait_done(&e, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(done.output.as_deref().expect("out")).expect("json"),
        json!({"x": 1, "r": {"y": 2}})
    );
    assert!(matches!(
        e.send_task_success(&task.task_token, "{}").await,
        Err(EngineError::TaskTimedOut(_))
    ));
    assert!(matches!(
        e.send_task_success("bogus", "{}").await,
        Err(EngineError::InvalidToken(_))
    ));

    let ex2 = e
        .start_execution(&sm.arn, Some("bad"), None)
        .await
        .expect("start");
    let task = e
        .get_activity_task(&activity, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    e.send_task_failure(&task.task_token, Some("Boom"), Some("line1\nline2"))
        .await
        .expect("failure");
    let done = wait_done(&e, &ex2.execution_arn).await;
    assert_eq!(
        (done.error.as_deref(), done.cause.as_deref()),
        (Some("Boom"), Some("line1\nline2"))
    );
    assert_eq!(
        history_types(&e, &ex2.execution_arn).await,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityFailed",
            "ExecutionFailed"
        ]
    );
}

#[tokio::test]
async fn an_empty_poll_returns_none_after_the_wait() {
    let e = engine();
    let (activity, _) = e.create_activity("idle").expect("activity");
    let got = e
        .get_activity_task(&activity, None, Duration::from_millis(50))
        .await
        .expect("poll");
    assert!(got.is_none());
    let missing = e
        .get_activity_task(&e.activity_arn("nope"), None, Duration::from_millis(1))
        .await;
    assert!(matches!(missing, Err(EngineError::ActivityDoesNotExist(_))));
}

#[tokio::test]
async fn stop_aborts_a_run_waiting_on_an_activity() {
    let e = engine();
    let (activity, _) = e.create_activity("slow").expect("activity");
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = e
        .create_state_machine("m4", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(&sm.arn, Some("s"), None)
        .await
        .expect("start");
    let task = e
        .get_activity_task(&activity, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    e.stop_execution(&ex.execution_arn, Some("E"), Some("stopped by test"))
        .await
        .expect("stop");
    let d = e
        .describe_execution(&ex.execution_arn)
        .await
        .expect("describe");
    assert_eq!(d.status, "ABORTED");
    // A late answer for a stopped execution's task: the task is over, as in Step Functions.
    assert!(matches!(
        e.send_task_success(&task.task_token, "{}").await,
        Err(EngineError::TaskTimedOut(_))
    ));
    assert_eq!(
        history_types(&e, &ex.execution_arn)
            .await
            .last()
            .map(String::as_str),
        Some("ExecutionAborted")
    );
}

#[tokio::test]
async fn heartbeat_timeout_fails_the_task() {
    let e = engine();
    let (activity, _) = e.create_activity("hb").expect("activity");
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity,
        "HeartbeatSeconds": 1, "End": true}}});
    let sm = e
        .create_state_machine("m5", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = e.start_execution(&sm.arn, None, None).await.expect("start");
    let _task = e
        .get_activity_task(&activity, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    let mut done = e.describe_execution(&ex.execution_arn).await.expect("d");
    for _ in 0..100 {
        if done.status != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        done = e.describe_execution(&ex.execution_arn).await.expect("d");
    }
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn names_inputs_and_definitions_are_checked() {
    let e = engine();
    let bad = e.create_state_machine("m", r#"{"StartAt": "A", "States": {}}"#, "r", "STANDARD");
    assert!(matches!(bad, Err(EngineError::InvalidDefinition(_))));
    assert!(matches!(
        e.create_state_machine("bad name", "{}", "r", "STANDARD"),
        Err(EngineError::InvalidName(_))
    ));
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}).to_string();
    let sm = e
        .create_state_machine("ok", &def, "r", "STANDARD")
        .expect("sm");
    assert_eq!(
        e.create_state_machine("ok", &def, "r", "STANDARD")
            .expect("same")
            .arn,
        sm.arn
    );
    assert!(matches!(
        e.start_execution(&sm.arn, None, Some("{")).await,
        Err(EngineError::InvalidExecutionInput(_))
    ));
    e.start_execution(&sm.arn, Some("x"), Some("{}"))
        .await
        .expect("start");
    wait_done(&e, &e.arn("execution", "ok:x")).await;
    assert!(matches!(
        e.start_execution(&sm.arn, Some("x"), Some(r#"{"a":1}"#))
            .await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
}

#[tokio::test]
async fn history_pages_forward_and_backward_without_gaps() {
    let e = engine();
    let mut states = serde_json::Map::new();
    for i in 0..20 {
        let next = if i == 19 {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), next);
    }
    let def = json!({"StartAt": "S0", "States": states});
    let sm = e
        .create_state_machine("long", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = e.start_execution(&sm.arn, None, None).await.expect("start");
    wait_done(&e, &ex.execution_arn).await;
    for reverse in [false, true] {
        let mut ids = Vec::new();
        let mut token = None;
        loop {
            let page = e
                .get_execution_history(&ex.execution_arn, Some(7), token.as_deref(), reverse)
                .await
                .expect("page");
            ids.extend(page.events.iter().map(|e| e.id));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let mut expected: Vec<i64> = (1..=42).collect();
        if reverse {
            expected.reverse();
        }
        assert_eq!(ids, expected);
    }
}

#[tokio::test]
async fn a_second_engine_on_the_same_file_resumes_where_the_first_stopped() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    let (activity, _) = first.create_activity("resumable").expect("activity");
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": {"step": "a"}, "ResultPath": "$.a", "Next": "T"},
        "T": {"Type": "Task", "Resource": activity, "ResultPath": "$.t", "Next": "B"},
        "B": {"Type": "Pass", "Result": "b", "ResultPath": "$.b", "End": true}}});
    let sm = first
        .create_state_machine("resume", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = first
        .start_execution(&sm.arn, Some("r1"), Some(r#"{"in": 1}"#))
        .await
        .expect("start");
    let task = first
        .get_activity_task(&activity, Some("old"), Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");

    // The first process "dies" with the task handed out; a new one opens the same file.
    first.halt();
    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    assert_eq!(second.recover().await.expect("recover"), 1);
    let again = second
        .get_activity_task(&activity, Some("new"), Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task again");
    assert_eq!(again.input, task.input);
    assert_ne!(again.task_token, task.task_token);
    second
        .send_task_success(&again.task_token, r#"{"ok": 1}"#)
        .await
        .expect("success");
    let done = wait_done(&second, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(done.output.as_deref().expect("output")).expect("json"),
        json!({"in": 1, "a": {"step": "a"}, "t": {"ok": 1}, "b": "b"})
    );
    assert_eq!(
        history_types(&second, &ex.execution_arn).await,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        second.recover().await.expect("recover"),
        0,
        "a finished execution was resumed"
    );
}

// Real time: under paused time every wait on the file database lets tokio jump its clock.
#[tokio::test]
async fn a_resumed_task_keeps_its_timeout_deadline() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    let (activity, _) = first.create_activity("deadline").expect("activity");
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": activity, "TimeoutSeconds": 3, "End": true}}});
    let sm = first
        .create_state_machine("deadline", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = first
        .start_execution(&sm.arn, Some("d1"), None)
        .await
        .expect("start");
    // The task is scheduled (committed with the start).
    first.halt();
    // Down for 2 s; after the restart only 1 s of the 3 s is left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    assert_eq!(second.recover().await.expect("recover"), 1);
    let done = wait_done(&second, &ex.execution_arn).await;
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    let events = second
        .get_execution_history(&ex.execution_arn, None, None, false)
        .await
        .expect("history")
        .events;
    let at = |t: &str| {
        events
            .iter()
            .find(|e| e.event_type == t)
            .map(|e| e.timestamp)
            .expect(t)
    };
    // 3 s after it was scheduled, not 3 s after the restart (5 s).
    let waited = at("ActivityTimedOut") - at("ActivityScheduled");
    assert!(
        (3_000..4_500).contains(&waited.num_milliseconds()),
        "timed out after {waited}"
    );
}

#[tokio::test]
async fn a_seeded_engine_draws_the_same_random_values() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "n.$": "States.MathRandom(0, 1000000)"}, "Next": "J"},
        "J": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"id": "{% $states.input.id %}", "n": "{% $states.input.n %}", "r": "{% $random() %}", "u": "{% $uuid() %}"}, "End": true}}});
    let run = |seed: u64| {
        let def = def.clone();
        async move {
            let e = engine();
            e.set_entropy(Arc::new(wfm_asl::entropy::SeededEntropy::new(seed)));
            let sm = e
                .create_state_machine("seeded", &def.to_string(), "r", "STANDARD")
                .expect("sm");
            let ex = e
                .start_execution(&sm.arn, Some("x"), None)
                .await
                .expect("start");
            let done = wait_done(&e, &ex.execution_arn).await;
            let text = done.output.clone().unwrap_or_else(|| panic!("{done:?}"));
            serde_json::from_str::<Value>(&text).expect("json")
        }
    };
    let (a, b, c) = (run(42).await, run(42).await, run(43).await);
    assert_eq!(a, b, "the same seed gives the same values");
    assert_ne!(a["id"], c["id"]);
    assert_ne!(a["u"], c["u"]);
    assert_eq!(a["id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn stop_aborts_at_once_inside_map_and_parallel() {
    let e = engine();
    let (activity, _) = e.create_activity("inner").expect("activity");
    let task = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    let machines = [
        (
            "in-map",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": task}}}),
            "[1, 2, 3]",
        ),
        (
            "in-parallel",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [task, task]}}}),
            "{}",
        ),
    ];
    for (name, def, input) in machines {
        let sm = e
            .create_state_machine(name, &def.to_string(), "r", "STANDARD")
            .expect("sm");
        let ex = e
            .start_execution(&sm.arn, None, Some(input))
            .await
            .expect("start");
        let taken = e
            .get_activity_task(&activity, None, Duration::from_secs(5))
            .await
            .expect("poll")
            .expect("a task");
        e.stop_execution(&ex.execution_arn, Some("Stop"), Some("by the test"))
            .await
            .expect("stop");
        assert_eq!(
            e.describe_execution(&ex.execution_arn)
                .await
                .expect("d")
                .status,
            "ABORTED",
            "{name}"
        );
        assert!(
            matches!(
                e.send_task_success(&taken.task_token, "{}").await,
                Err(EngineError::TaskTimedOut(_))
            ),
            "{name}: a late answer finds its task over"
        );
        // The other tasks of the stopped execution are withdrawn too.
        let left = e
            .get_activity_task(&activity, None, Duration::from_millis(20))
            .await
            .expect("poll");
        assert!(
            left.is_none(),
            "{name}: a task of the stopped execution was still handed out"
        );
        assert_eq!(
            history_types(&e, &ex.execution_arn)
                .await
                .last()
                .map(String::as_str),
            Some("ExecutionAborted")
        );
    }
}

#[tokio::test]
async fn start_execution_with_a_used_name_is_idempotent_only_while_running_with_the_same_input() {
    let e = engine();
    let (activity, _) = e.create_activity("idem").expect("activity");
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = e
        .create_state_machine("idem", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let first = e
        .start_execution(&sm.arn, Some("same"), Some(r#"{"a": 1}"#))
        .await
        .expect("start");
    let again = e
        .start_execution(&sm.arn, Some("same"), Some(r#"{ "a" : 1 }"#))
        .await
        .expect("same input");
    assert_eq!(first.execution_arn, again.execution_arn);
    assert_eq!(first.start_date, again.start_date);
    assert!(matches!(
        e.start_execution(&sm.arn, Some("same"), Some(r#"{"a": 2}"#))
            .await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
    let task = e
        .get_activity_task(&activity, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    assert!(
        e.get_activity_task(&activity, None, Duration::from_millis(10))
            .await
            .expect("poll")
            .is_none(),
        "started twice"
    );
    e.send_task_success(&task.task_token, "{}")
        .await
        .expect("answer");
    wait_done(&e, &first.execution_arn).await;
    assert!(matches!(
        e.start_execution(&sm.arn, Some("same"), Some(r#"{"a": 1}"#))
            .await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
}

/// On a file database starts are group-committed: racing starts of one name start it once (the
/// others get the same execution or ExecutionAlreadyExists), and the other executions committed
/// in the same batches are not harmed by the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_starts_on_a_file_database_start_each_name_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let e =
        Engine::open(&dir.path().join("engine.db"), EngineConfig::default(), None).expect("engine");
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let sm = e
        .create_state_machine("race", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let mut starts = Vec::new();
    for i in 0..60 {
        let (e, arn) = (e.clone(), sm.arn.clone());
        starts.push(tokio::spawn(async move {
            // Names 0..20 three times each: same input twice, another input once.
            let name = format!("n{}", i % 20);
            let input = if i / 20 == 2 {
                r#"{"v": 2}"#
            } else {
                r#"{"v": 1}"#
            };
            let result = e.start_execution(&arn, Some(&name), Some(input)).await;
            (name, result)
        }));
    }
    let mut started: std::collections::HashMap<String, Vec<String>> = Default::default();
    for s in starts {
        let (name, result) = s.await.expect("join");
        match result {
            Ok(info) => started.entry(name).or_default().push(info.execution_arn),
            Err(EngineError::ExecutionAlreadyExists(_)) => {}
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert_eq!(started.len(), 20, "every name started");
    for (name, arns) in &started {
        assert!(arns.iter().all(|a| a == &arns[0]), "{name}: {arns:?}");
        let done = wait_done(&e, &arns[0]).await;
        assert_eq!(done.status, "SUCCEEDED", "{name}");
        let types = history_types(&e, &arns[0]).await;
        assert_eq!(
            types.iter().filter(|t| *t == "ExecutionStarted").count(),
            1,
            "{name}: {types:?}"
        );
    }
}

#[tokio::test]
async fn a_waiting_worker_gets_its_task_in_the_commit_that_schedules_it() {
    let e = engine();
    let (a, _) = e.create_activity("direct").expect("activity");
    let def =
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": a, "End": true}}});
    let sm = e
        .create_state_machine("direct", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let poll = {
        let (e, a) = (e.clone(), a.clone());
        tokio::spawn(async move {
            e.get_activity_task(&a, Some("waiting"), Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = e.commits();
    let ex = e
        .start_execution(&sm.arn, None, Some(r#"{"x": 1}"#))
        .await
        .expect("start");
    let task = poll.await.expect("join").expect("poll").expect("a task");
    assert_eq!(
        e.commits() - before,
        1,
        "scheduled and handed out in one commit"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&task.input).expect("json"),
        json!({"x": 1})
    );
    let page = e
        .get_execution_history(&ex.execution_arn, None, None, false)
        .await
        .expect("history");
    let started = page
        .events
        .iter()
        .find(|ev| ev.event_type == "ActivityStarted")
        .and_then(|ev| ev.activity_started_event_details.clone())
        .and_then(|d| d.worker_name);
    assert_eq!(started.as_deref(), Some("waiting"));
    e.send_task_success(&task.task_token, "{}")
        .await
        .expect("answer");
    assert_eq!(wait_done(&e, &ex.execution_arn).await.status, "SUCCEEDED");
}

#[tokio::test]
async fn a_poll_dropped_while_waiting_loses_no_task() {
    let e = engine();
    let (a, _) = e.create_activity("dropped").expect("activity");
    let def =
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": a, "End": true}}});
    let sm = e
        .create_state_machine("dropped", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    // A worker whose request goes away (its client disconnected) while it waits.
    let gone = {
        let (e, a) = (e.clone(), a.clone());
        tokio::spawn(async move { e.get_activity_task(&a, None, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    gone.abort();
    let _ = gone.await;
    let ex = e.start_execution(&sm.arn, None, None).await.expect("start");
    let task = e
        .get_activity_task(&a, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("the task is still there");
    e.send_task_success(&task.task_token, "{}")
        .await
        .expect("answer");
    assert_eq!(wait_done(&e, &ex.execution_arn).await.status, "SUCCEEDED");
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_database() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    let second = Engine::open(&path, EngineConfig::default(), None);
    let Err(EngineError::Storage(message)) = second else {
        panic!("a second engine opened the same database");
    };
    assert!(message.contains("in use by another process"), "{message}");
    // Once the first stops (halts, or its process ends), another may open it.
    first.halt();
    Engine::open(&path, EngineConfig::default(), None).expect("engine after the first halted");
}
