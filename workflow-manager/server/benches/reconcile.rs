//! The reconciliation loop of `--executor sfn` under Step Functions' read quota. N workflows
//! run on the embedded engine without its push path (as on AWS, the store learns only by
//! asking); a worker completes their tasks at a steady rate, and the loop syncs them through a
//! backend that counts DescribeExecution and GetExecutionHistory calls. Prints the busiest
//! second of each call (must stay within rate + burst), the calls per workflow, and the lag
//! from an execution's end to its workflow's update in the store. Asserts nothing.
//!
//! `cargo bench -p workflow-manager --bench reconcile [-- WORKFLOWS RATE WORK_RATE]`; with
//! `WFM_BENCH_NO_LIST=1` the backend cannot list executions (the per-workflow checks only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wfm_core::model::StartWorkflowRequest;
use wfm_core::sfn::{ExecutionDescription, HistoryPage, SfnError, StepFunctions};
use wfm_core::{ManagerConfig, WorkflowManager};
use wfm_engine::{Engine, EngineConfig};
use workflow_manager::embedded::EmbeddedStepFunctions;
use workflow_manager::reconcile::{self, ReconcileConfig};

/// The embedded backend, counting the two read operations by the second they happened in.
struct Counted {
    inner: EmbeddedStepFunctions,
    start: Instant,
    calls: Mutex<HashMap<(&'static str, u64), u64>>,
}

impl Counted {
    fn count(&self, op: &'static str) {
        let second = self.start.elapsed().as_secs();
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((op, second))
            .or_default() += 1;
    }
}

#[async_trait]
impl StepFunctions for Counted {
    fn activity_arn(&self, n: &str) -> String {
        self.inner.activity_arn(n)
    }
    fn state_machine_arn(&self, sm: &str) -> String {
        self.inner.state_machine_arn(sm)
    }
    fn execution_arn(&self, sm: &str, n: &str) -> String {
        self.inner.execution_arn(sm, n)
    }
    async fn ensure_state_machine(
        &self,
        name: &str,
        def: &wfm_asl::StateMachine,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, SfnError> {
        self.inner.ensure_state_machine(name, def, tags).await
    }
    async fn start_execution(&self, sm: &str, n: &str, i: &str) -> Result<String, SfnError> {
        self.inner.start_execution(sm, n, i).await
    }
    async fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription, SfnError> {
        self.count("DescribeExecution");
        self.inner.describe_execution(arn).await
    }
    async fn stop_execution(
        &self,
        arn: &str,
        e: Option<&str>,
        c: Option<&str>,
    ) -> Result<(), SfnError> {
        self.inner.stop_execution(arn, e, c).await
    }
    async fn running_executions(&self, sm: &str) -> Result<Option<Vec<String>>, SfnError> {
        if std::env::var("WFM_BENCH_NO_LIST").is_ok() {
            return Ok(None);
        }
        self.count("ListExecutions");
        self.inner.running_executions(sm).await
    }
    async fn execution_history_page(
        &self,
        arn: &str,
        token: Option<&str>,
    ) -> Result<HistoryPage, SfnError> {
        self.count("GetExecutionHistory");
        self.inner.execution_history_page(arn, token).await
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300);
    let rate: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    // Tasks completed per second (default: half the sync rate, so the loop can keep up).
    let work_rate: f64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(rate / 2.0);
    let dir = tempfile::tempdir().expect("tmp");
    let engine =
        Engine::open(&dir.path().join("engine.db"), EngineConfig::default(), None).expect("engine");
    let counted = Arc::new(Counted {
        inner: EmbeddedStepFunctions::new(engine.clone(), "arn:aws:iam::123456789012:role/r"),
        start: Instant::now(),
        calls: Mutex::new(HashMap::new()),
    });
    let store =
        Arc::new(wfm_store_sqlite::SqliteStore::open(&dir.path().join("wm.db")).expect("store"));
    let manager = WorkflowManager::new(store, counted.clone(), ManagerConfig::default());
    manager
        .new_workflow_definition(
            &serde_json::from_value(serde_json::json!({"name": "bench", "stateMachine": {
                "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "work", "End": true}}}}))
            .expect("definition"),
        )
        .await
        .expect("save");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (_nudge, handle) = reconcile::spawn(
        manager.clone(),
        ReconcileConfig {
            rate,
            burst: rate,
            ..Default::default()
        },
        stop_rx,
    );
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let wf = manager
            .create_workflow(
                &serde_json::from_value::<StartWorkflowRequest>(serde_json::json!({
                    "workflowDefinition": {"name": "bench", "version": -1},
                    "input": "{}", "namespace": "default", "queue": "default"}))
                .expect("request"),
            )
            .await
            .expect("start");
        ids.push(wf.id);
    }
    // The worker completes `work_rate` tasks per second.
    let activity = "arn:aws:states:us-east-1:123456789012:activity:default--work".to_string();
    let worker = {
        let engine = engine.clone();
        let gap = Duration::from_secs_f64(1.0 / work_rate);
        tokio::spawn(async move {
            for _ in 0..n {
                let task = engine
                    .get_activity_task(&activity, Some("bench"), Duration::from_secs(60))
                    .await
                    .expect("poll")
                    .expect("task");
                engine
                    .send_task_success(&task.task_token, "{}")
                    .await
                    .expect("answer");
                tokio::time::sleep(gap).await;
            }
        })
    };
    let began = Instant::now();
    worker.await.expect("worker");
    let work_done = began.elapsed();
    loop {
        let open = manager
            .store()
            .unfinished_workflow_ids(10)
            .await
            .expect("open");
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_synced = began.elapsed();
    let _ = stop.send(true);
    let stats = handle.await.expect("loop");

    let mut lags = Vec::with_capacity(n);
    for id in &ids {
        let wf = manager.store().get_workflow(id).await.expect("get");
        if let Some(stopped) = wf.stopped_at {
            lags.push((wf.last_updated - stopped).num_milliseconds().max(0) as f64 / 1000.0);
        }
    }
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags[((lags.len() as f64 - 1.0) * q) as usize];
    let calls = counted
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let busiest = |op: &str| {
        calls
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(0)
    };
    let total = |op: &str| {
        calls
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, c)| *c)
            .sum::<u64>()
    };
    println!(
        "reconcile: {n} workflows, sync rate {rate}/s (burst {rate}), tasks end at {work_rate}/s"
    );
    println!(
        "  work ended over {:.1} s; all synced after {:.1} s; {} syncs, {} throttled",
        work_done.as_secs_f64(),
        all_synced.as_secs_f64(),
        stats.syncs,
        stats.throttled
    );
    println!(
        "  {} ListExecutions rounds' calls, {} workflows looked at early because they left the RUNNING list",
        stats.lists, stats.listed_as_ended
    );
    for op in ["DescribeExecution", "GetExecutionHistory", "ListExecutions"] {
        println!(
            "  {op}: {} calls ({:.2} per workflow), busiest second {}",
            total(op),
            total(op) as f64 / n as f64,
            busiest(op)
        );
    }
    println!(
        "  end → store lag: p50 {:.2} s, p90 {:.2} s, p99 {:.2} s, max {:.2} s",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
