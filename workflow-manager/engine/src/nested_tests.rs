//! Nested executions run by the engine itself: the result shapes of request-response,
//! `.sync` and `.sync:2`, a failing child caught by its parent, `.waitForTaskToken` answered
//! by the child through `aws-sdk:sfn:sendTaskSuccess`, a parent stopped while its child
//! runs, parent and child links, a restart while a child runs, and a run cut after every
//! commit that must start exactly one child.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

const PASS_CHILD: &str = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"Arg1": "argument1"}, "End": true}}}"#;
const FAIL_CHILD: &str = r#"{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "SomeFailure", "Cause": "it failed"}}}"#;

fn parent(resource: &str, child_arn: &str, extra: Value) -> String {
    let mut task = json!({"Type": "Task", "Resource": resource,
        "Parameters": {"StateMachineArn": child_arn, "Input.$": "$.in", "Name.$": "$.name"},
        "End": true});
    if let (Some(t), Some(e)) = (task.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    let mut m = json!({"StartAt": "Child", "States": {"Child": task}});
    if task_catches(&m) {
        m["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    }
    m.to_string()
}

fn task_catches(m: &Value) -> bool {
    m["States"]["Child"].get("Catch").is_some()
}

fn output(info: &ExecutionInfo) -> Value {
    serde_json::from_str(info.output.as_deref().unwrap_or("null")).expect("json output")
}

async fn run_parent(e: &Engine, name: &str, def: &str, input: Value) -> ExecutionInfo {
    let sm = e
        .create_state_machine(name, def, "r", "STANDARD")
        .expect("parent");
    let ex = e
        .start_execution(&sm.arn, Some(name), Some(&input.to_string()))
        .await
        .expect("start");
    tests_support_wait(e, &ex.execution_arn).await
}

#[tokio::test]
async fn sync_and_sync2_give_the_childs_description() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let child = e
        .create_state_machine("child", PASS_CHILD, "r", "STANDARD")
        .expect("child");

    let sync2 = parent(
        "arn:aws:states:::states:startExecution.sync:2",
        &child.arn,
        json!({}),
    );
    let done = run_parent(&e, "p2", &sync2, json!({"in": {"x": 1}, "name": "c2"})).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let out = output(&done);
    assert_eq!(out["Output"], json!({"Arg1": "argument1"}));
    assert_eq!(out["Input"], json!({"x": 1}));
    assert_eq!(out["Status"], json!("SUCCEEDED"));
    assert_eq!(out["Name"], json!("c2"));
    assert_eq!(out["StateMachineArn"], json!(child.arn));
    assert_eq!(out["RedriveStatus"], json!("NOT_REDRIVABLE"));
    assert!(
        out["StartDate"].is_i64() && out["StopDate"].is_i64(),
        "{out}"
    );
    let child_arn = out["ExecutionArn"].as_str().expect("arn").to_string();
    assert_eq!(
        e.parent_execution(&child_arn).await.expect("parent"),
        Some(done.execution_arn.clone())
    );
    assert_eq!(
        e.child_executions(&done.execution_arn)
            .await
            .expect("children"),
        [child_arn]
    );
    let t: Vec<String> = e
        .get_execution_history(&done.execution_arn, Some(100), None, false)
        .await
        .expect("history")
        .events
        .into_iter()
        .map(|ev| ev.event_type)
        .collect();
    assert_eq!(
        t,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );

    let sync = parent(
        "arn:aws:states:::states:startExecution.sync",
        &child.arn,
        json!({}),
    );
    let done = run_parent(&e, "p1", &sync, json!({"in": null, "name": "c1"})).await;
    let out = output(&done);
    assert_eq!(out["Output"], json!(r#"{"Arg1":"argument1"}"#), "as text");
    assert_eq!(out["Input"], json!("{}"), "no input is an empty object");

    let plain = parent(
        "arn:aws:states:::states:startExecution",
        &child.arn,
        json!({}),
    );
    let done = run_parent(&e, "p0", &plain, json!({"in": "{\"s\": 2}", "name": "c0"})).await;
    let out = output(&done);
    assert!(out["ExecutionArn"]
        .as_str()
        .is_some_and(|a| a.ends_with(":execution:child:c0")));
    assert!(out["StartDate"].is_i64());
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], json!(200));
    let started = e
        .describe_execution(out["ExecutionArn"].as_str().unwrap_or_default())
        .await
        .expect("child");
    assert_eq!(started.input, r#"{"s": 2}"#, "JSON text is passed as it is");
    assert_eq!(e.rt.waiting_for_ends(), 0, "no waiter is left behind");
}

#[tokio::test]
async fn a_failed_child_fails_the_task_and_the_parent_can_catch_it() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let child = e
        .create_state_machine("failing", FAIL_CHILD, "r", "STANDARD")
        .expect("child");
    let def = parent(
        "arn:aws:states:::states:startExecution.sync:2",
        &child.arn,
        json!({"Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.caught", "Next": "Caught"}]}),
    );
    let done = run_parent(&e, "catcher", &def, json!({"in": {}, "name": "f1"})).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let caught = &output(&done)["caught"];
    assert_eq!(caught["Error"], json!("States.TaskFailed"));
    let cause: Value =
        serde_json::from_str(caught["Cause"].as_str().unwrap_or("null")).expect("cause is JSON");
    assert_eq!(cause["Status"], json!("FAILED"));
    assert_eq!(cause["Error"], json!("SomeFailure"));
    assert_eq!(cause["Cause"], json!("it failed"));

    let uncaught = parent(
        "arn:aws:states:::states:startExecution.sync",
        &child.arn,
        json!({}),
    );
    let done = run_parent(&e, "plain", &uncaught, json!({"in": {}, "name": "f2"})).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("States.TaskFailed"));

    // Starting the same name again is refused, as Step Functions refuses it.
    let again = run_parent(&e, "again", &uncaught, json!({"in": {}, "name": "f2"})).await;
    assert_eq!(
        again.error.as_deref(),
        Some("StepFunctions.ExecutionAlreadyExistsException"),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_child_answers_its_parents_token_through_the_sdk_integration() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let child = e
        .create_state_machine(
            "answering",
            &json!({"StartAt": "Answer", "States": {"Answer": {"Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
                "Parameters": {"TaskToken.$": "$.token", "Output": {"from": "child"}}, "End": true}}})
            .to_string(),
            "r",
            "STANDARD",
        )
        .expect("child");
    let def = json!({"StartAt": "Child", "States": {"Child": {"Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.waitForTaskToken",
        "Parameters": {"StateMachineArn": child.arn, "Input": {"token.$": "$$.Task.Token"}},
        "End": true}}})
    .to_string();
    let done = run_parent(&e, "waiting", &def, json!({})).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(output(&done), json!({"from": "child"}));

    let bogus = json!({"StartAt": "Send", "States": {"Send": {"Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
        "Parameters": {"Output": "ParameterOutput", "TaskToken": "NoSuchTaskToken"}, "End": true}}})
    .to_string();
    let done = run_parent(&e, "bogus", &bogus, json!({})).await;
    assert_eq!(done.error.as_deref(), Some("Sfn.InvalidTokenException"));
    assert!(done.cause.as_deref().is_some_and(
        |c| c.starts_with("Invalid Token: 'Invalid token' (Service: Sfn, Status Code: 400")
    ));
}

async fn child_of(e: &Engine, parent_arn: &str) -> String {
    for _ in 0..2000 {
        if let Some(c) = e
            .child_executions(parent_arn)
            .await
            .expect("children")
            .into_iter()
            .next()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no child started");
}

fn waiting_child(activity: &str) -> String {
    json!({"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": activity, "End": true}}})
        .to_string()
}

#[tokio::test]
async fn stopping_the_parent_stops_a_sync_child() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (activity, _) = e.create_activity("never").expect("activity");
    let child = e
        .create_state_machine("slow", &waiting_child(&activity), "r", "STANDARD")
        .expect("child");
    let def = parent(
        "arn:aws:states:::states:startExecution.sync:2",
        &child.arn,
        json!({}),
    );
    let sm = e
        .create_state_machine("stopped", &def, "r", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(&sm.arn, None, Some(r#"{"in": {}, "name": "runs"}"#))
        .await
        .expect("start");
    let child_arn = child_of(&e, &ex.execution_arn).await;
    e.stop_execution(&ex.execution_arn, Some("Stop"), Some("operator"))
        .await
        .expect("stop");
    let c = tests_support_wait(&e, &child_arn).await;
    assert_eq!(c.status, "ABORTED");
    assert_eq!(e.rt.waiting_for_ends(), 0, "no waiter is left behind");
}

#[tokio::test]
async fn a_running_child_is_waited_for_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    let (activity, _) = first.create_activity("work").expect("activity");
    let child = first
        .create_state_machine("worker", &waiting_child(&activity), "r", "STANDARD")
        .expect("child");
    let def = parent(
        "arn:aws:states:::states:startExecution.sync:2",
        &child.arn,
        json!({}),
    );
    let sm = first
        .create_state_machine("outer", &def, "r", "STANDARD")
        .expect("sm");
    let ex = first
        .start_execution(&sm.arn, None, Some(r#"{"in": {"v": 3}, "name": "inner"}"#))
        .await
        .expect("start");
    child_of(&first, &ex.execution_arn).await;
    first.halt();
    drop(first);

    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    assert_eq!(second.recover().await.expect("recover"), 2);
    let task = second
        .get_activity_task(&activity, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("the child's task");
    second
        .send_task_success(&task.task_token, r#"{"worked": true}"#)
        .await
        .expect("answer");
    let done = tests_support_wait(&second, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(output(&done)["Output"], json!({"worked": true}));
    assert_eq!(
        second
            .child_executions(&ex.execution_arn)
            .await
            .expect("children")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_run_cut_after_any_commit_starts_exactly_one_child() {
    for cut in 1..=8 {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("engine.db");
        let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
        let child = first
            .create_state_machine("leaf", PASS_CHILD, "r", "STANDARD")
            .expect("child");
        // No Name: the child's name comes from the call, so a second start finds the first.
        let def = json!({"StartAt": "Child", "States": {"Child": {"Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child.arn, "Input": {"cut": cut}},
            "Next": "After"}, "After": {"Type": "Pass", "End": true}}})
        .to_string();
        let sm = first
            .create_state_machine("root", &def, "r", "STANDARD")
            .expect("sm");
        first.set_round_events(1);
        first.crash_after_commits(cut);
        let started = first.start_execution(&sm.arn, Some("run"), None).await;
        for _ in 0..400 {
            if first.halted() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let halted = first.halted();
        first.halt();
        drop(first);

        let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
        second.recover().await.expect("recover");
        let arn = match started {
            Ok(s) => s.execution_arn,
            Err(_) => {
                second
                    .state_machine_arn("root")
                    .replace(":stateMachine:", ":execution:")
                    + ":run"
            }
        };
        if second.describe_execution(&arn).await.is_err() {
            assert!(halted, "cut {cut}: the start was not committed");
            continue;
        }
        let done = tests_support_wait(&second, &arn).await;
        assert_eq!(done.status, "SUCCEEDED", "cut {cut}: {done:?}");
        let children = second.child_executions(&arn).await.expect("children");
        assert_eq!(children.len(), 1, "cut {cut}: {children:?}");
        let (leaf, _) = second
            .list_executions(&child.arn, None, Some(10), None)
            .await
            .expect("list");
        assert_eq!(leaf.len(), 1, "cut {cut}: one child execution");
    }
}
