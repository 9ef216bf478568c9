//! The aws-sdk-sfn backend end to end against the embedded engine's `/sfn` endpoint: a second
//! manager, with its own store, runs workflows through `AwsStepFunctions` on a running service
//! whose local workers do the tasks, and the reconciliation loop brings status and history
//! back: start, succeed, fail (a Fail state and a failing task), cancel, history → jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::{Credentials, Region};
use serde_json::json;
use wfm_core::model::{JobStatus, StartWorkflowRequest, Workflow, WorkflowStatus};
use wfm_core::{ManagerConfig, WorkflowManager};

use crate::reconcile::{self, ReconcileConfig};

fn request(name: &str, input: serde_json::Value) -> StartWorkflowRequest {
    serde_json::from_value(json!({
        "workflowDefinition": {"name": name, "version": -1},
        "input": input.to_string(),
        "namespace": "default",
        "queue": "default",
    }))
    .expect("request")
}

/// Saves a definition of one Task state running `resource`.
async fn save_one_task_definition(manager: &WorkflowManager, name: &str, resource: &str) {
    manager
        .new_workflow_definition(
            &serde_json::from_value(json!({
                "name": name, "stateMachine": {"StartAt": "W", "States": {
                    "W": {"Type": "Task", "Resource": resource, "End": true}}}
            }))
            .expect("definition"),
        )
        .await
        .expect("save");
}

async fn until_terminal(manager: &WorkflowManager, id: &str) -> Workflow {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let wf = manager.store().get_workflow(id).await.expect("get");
        if wf.status.is_terminal() {
            return wf;
        }
        assert!(Instant::now() < deadline, "{id} still {:?}", wf.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// aws-sdk-sfn pointed at a running service's `/sfn` endpoint.
fn sfn_config(service: &crate::Running) -> aws_sdk_sfn::Config {
    aws_sdk_sfn::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{}/sfn", service.addr.port()))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .timeout_config(
            aws_sdk_sfn::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(90))
                .build(),
        )
        .build()
}

/// The reconciliation loop of `manager`, tuned to bring changes back within a fraction of a
/// second: the sender that stops it, its handle (keep it: dropped, the loop's queue closes)
/// and its task.
fn fast_reconcile(
    manager: &WorkflowManager,
) -> (
    tokio::sync::watch::Sender<bool>,
    reconcile::Reconciler,
    tokio::task::JoinHandle<reconcile::ReconcileStats>,
) {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (nudge, sync) = reconcile::spawn(
        manager.clone(),
        ReconcileConfig {
            min_interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(400),
            refresh_interval: Duration::from_millis(100),
            rate: 200.0,
            burst: 20.0,
            list_interval: Duration::from_millis(100),
            ..Default::default()
        },
        stop_rx,
    );
    (stop, nudge, sync)
}

/// A second manager, with its own store, running workflows on `service` through
/// `AwsStepFunctions` (the production backend) over the service's `/sfn` endpoint.
fn remote_manager(service: &crate::Running, config: &crate::Config) -> WorkflowManager {
    let aws = Arc::new(wfm_aws_sfn::AwsStepFunctions::new(
        aws_sdk_sfn::Client::from_conf(sfn_config(service)),
        "us-east-1",
        config.account_for_arns(),
        config.role_arn.clone(),
    ));
    let store = Arc::new(wfm_store_sqlite::SqliteStore::in_memory().expect("store"));
    WorkflowManager::new(store, aws, ManagerConfig::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_backend_runs_workflows_through_an_sfn_endpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::Config::isolated(dir.path());
    let definitions =
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../definitions"));
    config.definitions = definitions.clone();
    config.no_local_workers = false;
    let service = crate::start(&config).await.expect("start");

    let sdk = sfn_config(&service);
    wfm_aws_sfn::AwsStepFunctions::new(
        aws_sdk_sfn::Client::from_conf(sdk.clone()),
        "us-east-1",
        config.account_for_arns(),
        config.role_arn.clone(),
    )
    .ping()
    .await
    .expect("the endpoint answers");
    let manager = remote_manager(&service, &config);
    crate::loader::load_definitions(&manager, &definitions)
        .await
        .expect("definitions");
    let (stop, _nudge, sync) = fast_reconcile(&manager);

    let ok = manager
        .create_workflow(&request(
            "order-check",
            json!({"sku": "a-1", "quantity": 2}),
        ))
        .await
        .expect("start");
    let rejected = manager
        .create_workflow(&request(
            "order-check",
            json!({"sku": "a-1", "quantity": 500}),
        ))
        .await
        .expect("start");
    let broken = manager
        .create_workflow(&request("order-check", json!({"quantity": 1})))
        .await
        .expect("start");

    let ok = until_terminal(&manager, &ok.id).await;
    assert_eq!(ok.status, WorkflowStatus::Succeeded, "{ok:?}");
    let states: Vec<(&str, JobStatus)> = ok
        .jobs
        .iter()
        .map(|j| (j.state.as_str(), j.status))
        .collect();
    assert_eq!(
        states,
        [
            ("Validate", JobStatus::Succeeded),
            ("Decide", JobStatus::Succeeded),
            ("Fulfil", JobStatus::Succeeded),
            ("Done", JobStatus::Succeeded)
        ],
        "history → jobs through the SDK's typed events"
    );
    assert!(
        ok.jobs[0].output.contains("\"valid\":true"),
        "{}",
        ok.jobs[0].output
    );
    assert!(ok.output.contains("shipment"), "{}", ok.output);

    let rejected = until_terminal(&manager, &rejected.id).await;
    assert_eq!(rejected.status, WorkflowStatus::Failed);
    assert!(
        rejected.status_reason.contains("OrderRejected"),
        "{}",
        rejected.status_reason
    );

    let broken = until_terminal(&manager, &broken.id).await;
    assert_eq!(broken.status, WorkflowStatus::Failed);
    let job = broken.jobs.first().expect("a job");
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.status_reason.contains("InvalidOrder") || broken.status_reason.contains("InvalidOrder"),
        "{broken:?}"
    );

    // Cancel one that waits for a worker that never comes: StopExecution, then ABORTED.
    save_one_task_definition(&manager, "waits", "nobody-polls-this").await;
    let waiting = manager
        .create_workflow(&request("waits", json!({})))
        .await
        .expect("start");
    manager
        .cancel_workflow(&waiting.id, "not needed")
        .await
        .expect("cancel");
    let cancelled = until_terminal(&manager, &waiting.id).await;
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);

    // The state machines were created through the SDK, named and tagged by convention, with
    // the default retrier on every Task state.
    let client = aws_sdk_sfn::Client::from_conf(sdk);
    let arn = format!(
        "arn:aws:states:us-east-1:{}:stateMachine:default--order-check--0--Validate",
        config.account_for_arns()
    );
    let described = client
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .expect("the state machine exists");
    let definition: serde_json::Value = serde_json::from_str(described.definition()).expect("json");
    assert_eq!(
        definition["States"]["Validate"]["Retry"][0]["ErrorEquals"],
        json!(["sfncli.CommandTerminated"])
    );
    assert!(definition["States"]["Validate"]["Resource"]
        .as_str()
        .is_some_and(|r| r.ends_with(":activity:default--validate-order")));

    let _ = stop.send(true);
    let stats = sync.await.expect("loop ends");
    assert!(stats.syncs > 0);
    assert!(
        stats.lists > 0,
        "ListExecutions through the SDK was used: {stats:?}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_requests_in_flight() {
    let dir = tempfile::tempdir().expect("dir");
    let config = crate::Config::isolated(dir.path());
    let service = crate::start(&config).await.expect("start");
    let client = aws_sdk_sfn::Client::from_conf(sfn_config(&service));
    let activity = client
        .create_activity()
        .name("default--idle")
        .send()
        .await
        .expect("activity");
    let arn = activity.activity_arn().to_string();
    // A worker's long poll (up to 60 s) is in flight when the service is told to stop.
    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.get_activity_task().activity_arn(arn).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll waits for a task");
    assert!(
        service.stop().await,
        "every request in flight (the long poll included) answered within the grace period"
    );
    let answer = poll
        .await
        .expect("poll task")
        .expect("the poll got an answer, not a dropped connection");
    assert!(answer.task_token().is_none(), "no task: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_status_events_from_sqs_get_a_workflow_synced_at_once() {
    let Some(moto) = wfm_emulators::Emulator::moto() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let config = crate::Config::isolated(dir.path());
    let service = crate::start(&config).await.expect("start");
    let sfn = aws_sdk_sfn::Client::from_conf(sfn_config(&service));
    let manager = remote_manager(&service, &config);
    save_one_task_definition(&manager, "manual", "by-hand").await;
    // Slow checks and no listing: only an event can make the loop look again soon.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (nudge, _loop) = reconcile::spawn(
        manager.clone(),
        ReconcileConfig {
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(120),
            refresh_interval: Duration::from_millis(100),
            list_interval: Duration::from_secs(3600),
            ..Default::default()
        },
        stop_rx.clone(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(&moto.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build(),
    );
    let queue = sqs
        .create_queue()
        .queue_name("wfm-execution-events")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();
    let _events = crate::events::spawn(sqs.clone(), queue.clone(), nudge, stop_rx);

    let wf = manager
        .create_workflow(&request("manual", json!({})))
        .await
        .expect("start");
    // The loop's first look finds it running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while manager
        .store()
        .get_workflow(&wf.id)
        .await
        .expect("get")
        .status
        != WorkflowStatus::Running
    {
        assert!(Instant::now() < deadline, "never seen running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The task is done by hand; the execution ends, and the loop would not look for a minute.
    let task = sfn
        .get_activity_task()
        .activity_arn(format!(
            "arn:aws:states:us-east-1:{}:activity:default--by-hand",
            config.account_for_arns()
        ))
        .send()
        .await
        .expect("poll");
    sfn.send_task_success()
        .task_token(task.task_token().expect("a task"))
        .output("{\"done\":true}")
        .send()
        .await
        .expect("answer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        manager
            .store()
            .get_workflow(&wf.id)
            .await
            .expect("get")
            .status,
        WorkflowStatus::Running,
        "not synced without the event"
    );
    // EventBridge delivers the status change to the queue.
    sqs.send_message()
        .queue_url(&queue)
        .message_body(
            json!({"version": "0", "source": "aws.states",
                   "detail-type": "Step Functions Execution Status Change",
                   "detail": {"name": wf.id, "status": "SUCCEEDED"}})
            .to_string(),
        )
        .send()
        .await
        .expect("send");
    let synced = until_terminal_within(&manager, &wf.id, Duration::from_secs(30)).await;
    assert_eq!(synced.status, WorkflowStatus::Succeeded);
    assert_eq!(synced.output, "{\"done\":true}");
    // The event was consumed.
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes");
    assert_eq!(
        left.attributes()
            .and_then(
                |a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            )
            .map(String::as_str),
        Some("0")
    );
    let _ = stop.send(true);
    service.stop().await;
}

/// Like `until_terminal`, within `limit` (the loop's own next look is further away).
async fn until_terminal_within(manager: &WorkflowManager, id: &str, limit: Duration) -> Workflow {
    let deadline = Instant::now() + limit;
    loop {
        let wf = manager.store().get_workflow(id).await.expect("get");
        if wf.status.is_terminal() {
            return wf;
        }
        assert!(Instant::now() < deadline, "{id} still {:?}", wf.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_workflows_are_learned_from_the_parents_history() {
    let dir = tempfile::tempdir().expect("dir");
    let config = crate::Config::isolated(dir.path());
    let service = crate::start(&config).await.expect("start");
    let manager = remote_manager(&service, &config);
    for (name, machine) in [
        (
            "leaf",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"leaf": true}, "End": true}}}),
        ),
        (
            "root",
            json!({"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "workflow:leaf",
                "ResultSelector": {"o.$": "$.Output"}, "End": true}}}),
        ),
    ] {
        manager
            .new_workflow_definition(
                &serde_json::from_value(json!({"name": name, "stateMachine": machine}))
                    .expect("definition"),
            )
            .await
            .expect("save");
    }
    let (stop, _nudge, sync) = fast_reconcile(&manager);
    let root = manager
        .create_workflow(&request("root", json!({})))
        .await
        .expect("start");
    let root = until_terminal(&manager, &root.id).await;
    assert_eq!(root.status, WorkflowStatus::Succeeded, "{root:?}");
    assert_eq!(root.output, r#"{"o":{"leaf":true}}"#);
    assert_eq!(root.child_workflow_ids.len(), 1, "{root:?}");
    let leaf = until_terminal(&manager, &root.child_workflow_ids[0]).await;
    assert_eq!(leaf.status, WorkflowStatus::Succeeded, "{leaf:?}");
    assert_eq!(leaf.parent_workflow_id.as_deref(), Some(root.id.as_str()));
    assert_eq!(leaf.workflow_definition.name, "leaf");
    let _ = stop.send(true);
    let _ = sync.await;
    service.stop().await;
}

/// Saves a definition of two Pass states, `First` then `SecondStep`.
async fn save_two_pass_definition(manager: &WorkflowManager, name: &str) {
    manager
        .new_workflow_definition(
            &serde_json::from_value(json!({
                "name": name, "stateMachine": {"StartAt": "First", "States": {
                    "First": {"Type": "Pass", "Result": {"from": "first"}, "Next": "SecondStep"},
                    "SecondStep": {"Type": "Pass", "End": true}}}
            }))
            .expect("definition"),
        )
        .await
        .expect("save");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_resume_the_right_state_and_foreign_state_machines_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let config = crate::Config::isolated(dir.path());
    let service = crate::start(&config).await.expect("start");
    let manager = remote_manager(&service, &config);
    let (stop, _nudge, sync) = fast_reconcile(&manager);

    // A 64-character name in `production`: its state machines' names pass 80 characters, and
    // the one that starts at SecondStep is not the one that starts at First.
    let long = format!("nightly-{}", "x".repeat(56));
    save_two_pass_definition(&manager, &long).await;
    let start = |name: &str| -> StartWorkflowRequest {
        serde_json::from_value(json!({
            "workflowDefinition": {"name": name, "version": -1}, "input": "{}",
            "namespace": "production", "queue": "default"}))
        .expect("request")
    };
    let first = manager.create_workflow(&start(&long)).await.expect("start");
    let first = until_terminal(&manager, &first.id).await;
    assert_eq!(first.status, WorkflowStatus::Succeeded, "{first:?}");
    let resumed = manager
        .retry_workflow(&first.id, "SecondStep", None)
        .await
        .expect("resume");
    let resumed = until_terminal(&manager, &resumed.id).await;
    assert_eq!(resumed.status, WorkflowStatus::Succeeded, "{resumed:?}");
    let states: Vec<&str> = resumed.jobs.iter().map(|j| j.state.as_str()).collect();
    assert_eq!(
        states,
        ["SecondStep"],
        "the resume ran from SecondStep only"
    );

    // A state machine made by hand under a wanted name, with another definition: refused,
    // naming it; the manager's own state machine with a changed definition: set right.
    let client = aws_sdk_sfn::Client::from_conf(sfn_config(&service));
    let wanted = wfm_core::conventions::state_machine_name("foreign", 0, "production", "First");
    client
        .create_state_machine()
        .name(&wanted)
        .definition(r#"{"StartAt": "Other", "States": {"Other": {"Type": "Succeed"}}}"#)
        .role_arn(&config.role_arn)
        .send()
        .await
        .expect("a hand-made state machine");
    save_two_pass_definition(&manager, "foreign").await;
    let refused = manager.create_workflow(&start("foreign")).await;
    let message = format!("{:?}", refused.err());
    assert!(
        message.contains(&wanted) && message.contains("not made by the workflow-manager"),
        "{message}"
    );
    let ours = wfm_core::conventions::state_machine_name(&long, 0, "production", "First");
    let ours_arn = format!(
        "arn:aws:states:us-east-1:{}:stateMachine:{ours}",
        config.account_for_arns()
    );
    client
        .update_state_machine()
        .state_machine_arn(&ours_arn)
        .definition(r#"{"StartAt": "Other", "States": {"Other": {"Type": "Succeed"}}}"#)
        .send()
        .await
        .expect("changed behind the manager's back");
    let fresh = remote_manager(&service, &config);
    save_two_pass_definition(&fresh, &long).await;
    let (stop_fresh, _nudge_fresh, sync_fresh) = fast_reconcile(&fresh);
    let again = fresh.create_workflow(&start(&long)).await.expect("start");
    let again = until_terminal(&fresh, &again.id).await;
    let states: Vec<&str> = again.jobs.iter().map(|j| j.state.as_str()).collect();
    assert_eq!(states, ["First", "SecondStep"], "{again:?}");

    let _ = stop.send(true);
    let _ = stop_fresh.send(true);
    let _ = sync.await;
    let _ = sync_fresh.await;
    service.stop().await;
}
