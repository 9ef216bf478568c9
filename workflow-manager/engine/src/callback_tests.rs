//! Callbacks (`.waitForTaskToken`) through a scripted message integration whose "queue" is
//! a channel the test reads, as a worker reads an SQS queue: the token in `$$.Task.Token`,
//! answers by SendTaskSuccess / SendTaskFailure, heartbeats and their timeout,
//! TimeoutSeconds, what a token answers once its task is over, an answer that comes back
//! before the submission's, and a restart while the callback waits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::*;
use crate::integrations::{IntegrationFailure, ServiceIntegration, Submitted};

const SEND: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

/// "Sends" each message body to the test; answers after `delay_ms`.
struct Queue {
    sent: mpsc::UnboundedSender<Value>,
    submits: AtomicUsize,
    delay_ms: AtomicU64,
}

fn queue() -> (Arc<Queue>, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Arc::new(Queue {
            sent: tx,
            submits: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
        }),
        rx,
    )
}

#[async_trait]
impl ServiceIntegration for Queue {
    fn resource_type(&self) -> &'static str {
        "sqs"
    }
    fn handles(&self, resource: &str) -> bool {
        resource.starts_with("arn:aws:states:::sqs:")
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn submit(&self, _: &str, parameters: &Value) -> Result<Submitted, IntegrationFailure> {
        let n = self.submits.fetch_add(1, Ordering::SeqCst);
        let _ = self.sent.send(parameters["MessageBody"].clone());
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Ok(Submitted {
            handle: String::new(),
            output: json!({"MessageId": format!("m-{n}")}),
        })
    }
}

fn machine(extra: Value) -> String {
    let mut task = json!({"Type": "Task", "Resource": SEND,
        "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token", "n.$": "$.n"}},
        "ResultPath": "$.answer", "End": true});
    let catches = extra.get("Catch").is_some();
    if let (Some(t), Some(e)) = (task.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    let mut m = json!({"StartAt": "Ask", "States": {"Ask": task}});
    if catches {
        m["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    }
    m.to_string()
}

async fn start(e: &Engine, name: &str, def: &str) -> String {
    let sm = e
        .create_state_machine(name, def, "r", "STANDARD")
        .expect("sm");
    e.start_execution(&sm.arn, Some(name), Some(r#"{"n": 7}"#))
        .await
        .expect("start")
        .execution_arn
}

async fn types(e: &Engine, arn: &str) -> Vec<String> {
    e.get_execution_history(arn, Some(1000), None, false)
        .await
        .expect("history")
        .events
        .into_iter()
        .map(|ev| ev.event_type)
        .collect()
}

async fn next_token(rx: &mut mpsc::UnboundedReceiver<Value>) -> String {
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a message in time")
        .expect("a message");
    assert_eq!(body["n"], json!(7), "{body}");
    body["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn the_token_travels_in_the_message_and_its_answer_is_the_result() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (q, mut rx) = queue();
    e.register_integration(q.clone());
    let arn = start(&e, "ok", &machine(json!({}))).await;
    let token = next_token(&mut rx).await;
    assert!(
        e.task_activity(&token)
            .is_some_and(|scope| scope.ends_with(":activity:ok")),
        "the token is held, scoped by its state machine"
    );
    e.send_task_heartbeat(&token).await.expect("heartbeat");
    e.send_task_success(&token, r#"{"done": true}"#)
        .await
        .expect("success");
    let done = tests_support_wait(&e, &arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(
        serde_json::from_str::<Value>(done.output.as_deref().unwrap_or("null")).expect("json"),
        json!({"n": 7, "answer": {"done": true}})
    );
    assert_eq!(
        types(&e, &arn).await,
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
    // Once the task is over its token answers as Step Functions answers.
    for answer in [
        e.send_task_success(&token, "{}").await,
        e.send_task_failure(&token, None, None).await,
        e.send_task_heartbeat(&token).await,
    ] {
        assert!(
            matches!(answer, Err(EngineError::TaskTimedOut(ref m)) if m.contains("does not exist anymore")),
            "{answer:?}"
        );
    }
    assert!(matches!(
        e.send_task_success("wfm2.nonsense", "{}").await,
        Err(EngineError::InvalidToken(_))
    ));
    assert!(e.task_activity(&token).is_none(), "released");
}

#[tokio::test]
async fn a_failure_answer_goes_through_catch() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (q, mut rx) = queue();
    e.register_integration(q.clone());
    let def = machine(
        json!({"Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.caught", "Next": "Caught"}]}),
    );
    let arn = start(&e, "fails", &def).await;
    let token = next_token(&mut rx).await;
    e.send_task_failure(&token, Some("Boom"), Some("it broke"))
        .await
        .expect("failure");
    let done = tests_support_wait(&e, &arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let out: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null")).expect("json");
    assert_eq!(out["caught"], json!({"Error": "Boom", "Cause": "it broke"}));
    assert!(types(&e, &arn).await.contains(&"TaskFailed".to_string()));

    // A failure with the token only: no error and no cause, as Step Functions shows it.
    let def = machine(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Caught"}]}),
    );
    let arn = start(&e, "bare", &def).await;
    let token = next_token(&mut rx).await;
    e.send_task_failure(&token, None, None)
        .await
        .expect("failure");
    let done = tests_support_wait(&e, &arn).await;
    let out: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null")).expect("json");
    assert_eq!(out["caught"], json!({"Error": null, "Cause": null}));
}

#[tokio::test]
async fn heartbeats_keep_a_callback_alive_and_their_absence_times_it_out() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (q, mut rx) = queue();
    e.register_integration(q.clone());
    let def = machine(json!({"HeartbeatSeconds": 1}));

    let alive = start(&e, "beats", &def).await;
    let token = next_token(&mut rx).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        e.send_task_heartbeat(&token).await.expect("heartbeat");
    }
    e.send_task_success(&token, "1").await.expect("success");
    assert_eq!(tests_support_wait(&e, &alive).await.status, "SUCCEEDED");

    let lost = start(&e, "silent", &def).await;
    let token = next_token(&mut rx).await;
    let done = tests_support_wait(&e, &lost).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert!(types(&e, &lost).await.contains(&"TaskTimedOut".to_string()));
    assert!(matches!(
        e.send_task_success(&token, "{}").await,
        Err(EngineError::TaskTimedOut(_))
    ));
}

#[tokio::test]
async fn timeout_seconds_bounds_the_wait_for_the_token() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (q, mut rx) = queue();
    e.register_integration(q.clone());
    let arn = start(&e, "slow", &machine(json!({"TimeoutSeconds": 1}))).await;
    let _token = next_token(&mut rx).await;
    let done = tests_support_wait(&e, &arn).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn an_answer_may_come_back_before_the_submission_does() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let (q, mut rx) = queue();
    q.delay_ms.store(300, Ordering::SeqCst);
    e.register_integration(q.clone());
    let arn = start(&e, "early", &machine(json!({}))).await;
    let token = next_token(&mut rx).await;
    e.send_task_success(&token, r#""early""#)
        .await
        .expect("success while the submission is out");
    let done = tests_support_wait(&e, &arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert!(done.output.as_deref().is_some_and(|o| o.contains("early")));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let t = types(&e, &arn).await;
    assert_eq!(
        t.iter().filter(|t| *t == "TaskSucceeded").count(),
        1,
        "{t:?}"
    );
}

#[tokio::test]
async fn a_waiting_callback_survives_a_restart_and_is_answered_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let (q, mut rx) = queue();
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    first.register_integration(q.clone());
    let def = machine(json!({"HeartbeatSeconds": 30}));
    let arn = start(&first, "restart", &def).await;
    let token = next_token(&mut rx).await;
    for _ in 0..200 {
        if types(&first, &arn)
            .await
            .contains(&"TaskSubmitted".to_string())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.halt();
    drop(first);

    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    second.register_integration(q.clone());
    assert_eq!(second.recover().await.expect("recover"), 1);
    second
        .send_task_heartbeat(&token)
        .await
        .expect("the token is held again after the restart");
    second
        .send_task_success(&token, r#"{"after": "restart"}"#)
        .await
        .expect("success");
    let done = tests_support_wait(&second, &arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(q.submits.load(Ordering::SeqCst), 1, "the message went once");
    assert!(matches!(
        second.send_task_success(&token, "{}").await,
        Err(EngineError::TaskTimedOut(_))
    ));
}

#[tokio::test]
async fn definitions_with_patterns_step_functions_refuses_are_invalid() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let task = |resource: &str| {
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "End": true}}})
            .to_string()
    };
    for (resource, kind, fragment) in [
        (
            SEND,
            "EXPRESS",
            "'.waitForTaskToken' service integration  at /States/T/Resource",
        ),
        (
            "arn:aws:states:::states:startExecution.sync",
            "EXPRESS",
            "'.sync' service integration",
        ),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            "EXPRESS",
            "'.sync:2'",
        ),
        (
            "arn:aws:states:::sqs:sendMessage.sync",
            "STANDARD",
            "is not recognized",
        ),
        (
            "arn:aws:states:::dynamodb:putItem.waitForTaskToken",
            "STANDARD",
            "is not recognized",
        ),
        (
            "arn:aws:states:::lambda:invoke.later",
            "STANDARD",
            "is not recognized",
        ),
        (
            "arn:aws:states:::aws-sdk:sfn:startExecution.sync",
            "STANDARD",
            "is not recognized",
        ),
    ] {
        let refused = e.create_state_machine("refused", &task(resource), "r", kind);
        assert!(
            matches!(&refused, Err(EngineError::InvalidDefinition(m)) if m.contains(fragment)),
            "{resource} ({kind}): {refused:?}"
        );
    }
    for (i, (resource, kind)) in [
        ("arn:aws:states:::sqs:sendMessage", "EXPRESS"),
        (SEND, "STANDARD"),
        ("arn:aws:states:::states:startExecution.sync:2", "STANDARD"),
        ("arn:aws:states:::aws-sdk:dynamodb:getItem", "EXPRESS"),
    ]
    .into_iter()
    .enumerate()
    {
        let created = e.create_state_machine(&format!("ok-{i}"), &task(resource), "r", kind);
        assert!(created.is_ok(), "{resource} ({kind}): {created:?}");
    }
}
