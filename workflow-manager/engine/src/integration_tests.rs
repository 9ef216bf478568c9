//! Service integrations in the engine, with a scripted integration (the engine's side of the
//! contract; the Batch integration itself is tested against moto in `wfm-aws-batch`): the
//! `Task*` events Step Functions records, failures through Retry and Catch, TimeoutSeconds,
//! cancellation on stop, and recovery after a restart without a second submission.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::integrations::{IntegrationFailure, ServiceIntegration, Submitted};

const SYNC: &str = "arn:aws:states:::batch:submitJob.sync";

/// Submits instantly; `wait` ends when the test says so (or fails for job names starting
/// with "fail").
#[derive(Default)]
struct Scripted {
    submits: AtomicUsize,
    cancelled: StdMutex<Vec<String>>,
    release: tokio::sync::Notify,
    hold: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl ServiceIntegration for Scripted {
    fn resource_type(&self) -> &'static str {
        "batch"
    }
    fn handles(&self, resource: &str) -> bool {
        resource.starts_with("arn:aws:states:::batch:")
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn submit(&self, _: &str, parameters: &Value) -> Result<Submitted, IntegrationFailure> {
        let n = self.submits.fetch_add(1, Ordering::SeqCst);
        let name = parameters["JobName"].as_str().unwrap_or("job").to_string();
        if name == "refused" {
            return Err(IntegrationFailure {
                error: "Batch.ClientException".into(),
                cause: "no such job definition".into(),
            });
        }
        Ok(Submitted {
            handle: format!("{name}-{n}"),
            output: json!({"JobId": format!("{name}-{n}"), "JobName": name}),
        })
    }
    async fn wait(&self, _: &str, handle: &str) -> Result<Value, IntegrationFailure> {
        if self.hold.load(Ordering::SeqCst) {
            self.release.notified().await;
        }
        if handle.starts_with("fail") {
            return Err(IntegrationFailure {
                error: "States.TaskFailed".into(),
                cause: json!({"JobId": handle, "Status": "FAILED"}).to_string(),
            });
        }
        Ok(json!({"JobId": handle, "Status": "SUCCEEDED"}))
    }
    async fn cancel(&self, handle: &str, _: &str) -> Result<(), IntegrationFailure> {
        self.cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle.to_string());
        Ok(())
    }
}

fn machine(job_name: &str, extra: Value) -> String {
    let mut task = json!({"Type": "Task", "Resource": SYNC,
        "Parameters": {"JobName": job_name, "JobQueue": "q", "JobDefinition": "d"},
        "ResultSelector": {"id.$": "$.JobId", "status.$": "$.Status"}, "End": true});
    let catches = extra.get("Catch").is_some();
    if let (Some(t), Some(e)) = (task.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    let mut m = json!({"StartAt": "Job", "States": {"Job": task}});
    if catches {
        m["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    }
    m.to_string()
}

async fn run(e: &Engine, name: &str, def: &str) -> (ExecutionInfo, Vec<String>) {
    let sm = e
        .create_state_machine(name, def, "r", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(&sm.arn, Some(name), Some("{}"))
        .await
        .expect("start");
    let done = super::tests_support_wait(e, &ex.execution_arn).await;
    let types = e
        .get_execution_history(&ex.execution_arn, Some(1000), None, false)
        .await
        .expect("history")
        .events
        .into_iter()
        .map(|ev| ev.event_type)
        .collect();
    (done, types)
}

#[tokio::test]
async fn a_sync_integration_records_the_task_events_and_its_result() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let batch = Arc::new(Scripted::default());
    e.register_integration(batch.clone());
    let (done, types) = run(&e, "ok", &machine("render", json!({}))).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(
        serde_json::from_str::<Value>(done.output.as_deref().unwrap_or("null")).expect("json"),
        json!({"id": "render-0", "status": "SUCCEEDED"})
    );
    assert_eq!(
        types,
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
}

#[tokio::test]
async fn failures_go_through_retry_and_catch() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let batch = Arc::new(Scripted::default());
    e.register_integration(batch.clone());
    let retried = json!({"Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2, "IntervalSeconds": 0}],
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]});
    let (done, types) = run(&e, "fails", &machine("fail", retried)).await;
    assert_eq!(done.status, "SUCCEEDED", "caught: {done:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "TaskFailed").count(),
        3,
        "{types:?}"
    );
    assert_eq!(
        batch.submits.load(Ordering::SeqCst),
        3,
        "one submission per attempt"
    );

    let (done, types) = run(&e, "refused", &machine("refused", json!({}))).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("Batch.ClientException"));
    assert!(types.contains(&"TaskFailed".to_string()));
    assert!(!types.contains(&"TaskSubmitted".to_string()));
}

#[tokio::test]
async fn stopping_cancels_the_work_and_timeouts_cancel_it_too() {
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let batch = Arc::new(Scripted::default());
    batch.hold.store(true, Ordering::SeqCst);
    e.register_integration(batch.clone());
    let sm = e
        .create_state_machine("held", &machine("held", json!({})), "r", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(&sm.arn, Some("held"), Some("{}"))
        .await
        .expect("start");
    for _ in 0..200 {
        if batch.submits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    e.stop_execution(&ex.execution_arn, Some("Stop"), Some("not needed"))
        .await
        .expect("stop");
    for _ in 0..200 {
        if !batch
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        *batch.cancelled.lock().unwrap_or_else(|p| p.into_inner()),
        ["held-0"]
    );

    let (done, types) = run(&e, "slow", &machine("slow", json!({"TimeoutSeconds": 1}))).await;
    assert_eq!(done.status, "FAILED");
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert!(types.contains(&"TaskTimedOut".to_string()), "{types:?}");
    for _ in 0..200 {
        if batch
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        batch
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len(),
        2,
        "the timed-out job is cancelled"
    );
}

#[tokio::test]
async fn a_restarted_engine_waits_for_submitted_work_instead_of_submitting_it_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let batch = Arc::new(Scripted::default());
    batch.hold.store(true, Ordering::SeqCst);
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    first.register_integration(batch.clone());
    let sm = first
        .create_state_machine("restart", &machine("restart", json!({})), "r", "STANDARD")
        .expect("sm");
    let ex = first
        .start_execution(&sm.arn, Some("restart"), Some("{}"))
        .await
        .expect("start");
    for _ in 0..200 {
        let types: Vec<String> = first
            .get_execution_history(&ex.execution_arn, Some(1000), None, false)
            .await
            .expect("history")
            .events
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        if types.contains(&"TaskSubmitted".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.halt();
    batch.hold.store(false, Ordering::SeqCst);
    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    second.register_integration(batch.clone());
    assert_eq!(second.recover().await.expect("recover"), 1);
    let done = super::tests_support_wait(&second, &ex.execution_arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(batch.submits.load(Ordering::SeqCst), 1, "submitted once");
    assert!(done
        .output
        .as_deref()
        .is_some_and(|o| o.contains("restart-0")));
}
