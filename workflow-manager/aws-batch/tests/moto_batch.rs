//! The Batch integration in the embedded engine against moto's Batch: a `submitJob.sync` Task
//! gets the job's description as its result and records the Task events; `submitJob` answers
//! at submission; a job definition that does not exist fails the state with Batch's error.
//! (moto runs every job to SUCCEEDED inside SubmitJob, and its TerminateJob does nothing, so
//! waiting and cancelling are covered by the engine's own tests with a scripted integration.)

use std::time::Duration;

use aws_sdk_batch::config::{Credentials, Region};
use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JqState,
    ResourceRequirement, ResourceType,
};
use serde_json::{json, Value};
use wfm_aws_batch::BatchIntegration;
use wfm_emulators::Emulator;
use wfm_engine::{Engine, EngineConfig};

const ROLE: &str = "arn:aws:iam::123456789012:role/batch-service";

async fn setup(endpoint: &str) -> (aws_sdk_batch::Client, String, String) {
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{endpoint}/moto-api/config"))
        .json(&json!({"batch": {"use_docker": false}}))
        .send()
        .await
        .expect("moto config");
    assert!(ok.status().is_success());
    // IAM is only needed for the role the compute environment names.
    let role = http
        .post(endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", "batch-service"),
            ("AssumeRolePolicyDocument", "{}"),
        ])
        .send()
        .await
        .expect("create role");
    assert!(role.status().is_success(), "{:?}", role.text().await);

    let config = aws_sdk_batch::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    let client = aws_sdk_batch::Client::from_conf(config);
    client
        .create_compute_environment()
        .compute_environment_name("wfm-env")
        .r#type(CeType::Unmanaged)
        .state(CeState::Enabled)
        .service_role(ROLE)
        .send()
        .await
        .expect("compute environment");
    let queue = client
        .create_job_queue()
        .job_queue_name("wfm-queue")
        .priority(1)
        .state(JqState::Enabled)
        .compute_environment_order(
            ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment("wfm-env")
                .build(),
        )
        .send()
        .await
        .expect("queue");
    let definition = client
        .register_job_definition()
        .job_definition_name("render")
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("busybox")
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Vcpu)
                        .value("1")
                        .build(),
                )
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Memory)
                        .value("128")
                        .build(),
                )
                .command("echo")
                .build(),
        )
        .send()
        .await
        .expect("job definition");
    let queue = queue.job_queue_arn().unwrap_or_default().to_string();
    let definition = definition
        .job_definition_arn()
        .unwrap_or_default()
        .to_string();
    (client, queue, definition)
}

async fn run(
    engine: &Engine,
    name: &str,
    task: Value,
) -> (wfm_engine::ExecutionInfo, Vec<wfm_asl::HistoryEvent>) {
    let def = json!({"StartAt": "Job", "States": {"Job": task}});
    let sm = engine
        .create_state_machine(name, &def.to_string(), "r", "STANDARD")
        .expect("state machine");
    let ex = engine
        .start_execution(&sm.arn, Some(name), Some(r#"{"frame": 7}"#))
        .await
        .expect("start");
    for _ in 0..400 {
        let d = engine
            .describe_execution(&ex.execution_arn)
            .await
            .expect("describe");
        if d.status != "RUNNING" {
            let history = engine
                .get_execution_history(&ex.execution_arn, Some(1000), None, false)
                .await
                .expect("history")
                .events;
            return (d, history);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_jobs_run_from_the_embedded_engine_against_moto() {
    let Some(moto) = Emulator::moto() else {
        return;
    };
    let (client, queue, definition) = setup(&moto.endpoint).await;
    let dir = tempfile::tempdir().expect("dir");
    let engine =
        Engine::open(&dir.path().join("engine.db"), EngineConfig::default(), None).expect("engine");
    engine.register_integration(std::sync::Arc::new(
        BatchIntegration::new(client.clone()).with_poll_interval(Duration::from_millis(50)),
    ));

    let (done, history) = run(
        &engine,
        "sync",
        json!({"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", "End": true,
               "Parameters": {"JobName.$": "$$.Execution.Name", "JobQueue": queue, "JobDefinition": definition,
                              "ContainerOverrides": {"Environment": [{"Name": "WORKFLOW_INPUT", "Value.$": "States.JsonToString($)"}]}}}),
    )
    .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let output: Value =
        serde_json::from_str(done.output.as_deref().unwrap_or("null")).expect("json");
    assert_eq!(output["Status"], "SUCCEEDED", "{output}");
    assert_eq!(output["JobName"], "sync");
    assert_eq!(output["JobQueue"], queue.as_str());
    let job_id = output["JobId"].as_str().expect("JobId").to_string();
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
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
    let scheduled = history[2]
        .task_scheduled_event_details
        .as_ref()
        .expect("details");
    assert_eq!(
        (
            scheduled.resource_type.as_str(),
            scheduled.resource.as_str()
        ),
        ("batch", "submitJob.sync")
    );
    assert!(
        scheduled
            .parameters
            .as_deref()
            .is_some_and(|p| p.contains(r#"{\"frame\":7}"#)),
        "{scheduled:?}"
    );
    // The job Batch ran is the one the history names, with the state's input in its environment.
    let described = client
        .describe_jobs()
        .jobs(&job_id)
        .send()
        .await
        .expect("describe");
    let env: Vec<(String, String)> = described.jobs()[0]
        .container()
        .map(|c| {
            c.environment()
                .iter()
                .map(|kv| {
                    (
                        kv.name().unwrap_or("").into(),
                        kv.value().unwrap_or("").into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        env.contains(&("WORKFLOW_INPUT".to_string(), r#"{"frame":7}"#.to_string())),
        "{env:?}"
    );

    let (done, _) = run(
        &engine,
        "fire-and-forget",
        json!({"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob", "End": true,
               "Parameters": {"JobName": "once", "JobQueue": queue, "JobDefinition": definition}}),
    )
    .await;
    assert_eq!(done.status, "SUCCEEDED");
    let output: Value =
        serde_json::from_str(done.output.as_deref().unwrap_or("null")).expect("json");
    assert!(
        output["JobId"].is_string() && output["JobArn"].is_string(),
        "{output}"
    );
    assert!(
        output.get("Status").is_none(),
        "answers at submission: {output}"
    );

    let (done, history) = run(
        &engine,
        "missing",
        json!({"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", "End": true,
               "Parameters": {"JobName": "x", "JobQueue": queue, "JobDefinition": "no-such-definition"}}),
    )
    .await;
    assert_eq!(done.status, "FAILED");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.starts_with("Batch.")),
        "{done:?}"
    );
    assert!(history.iter().any(|e| e.event_type == "TaskFailed"));

    let (done, _) = run(
        &engine,
        "bad-parameter",
        json!({"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", "End": true,
               "Parameters": {"JobName": "x", "JobQueue": queue, "JobDefinition": definition, "Nonsense": 1}}),
    )
    .await;
    assert_eq!(done.status, "FAILED");
    assert!(
        done.cause
            .as_deref()
            .is_some_and(|c| c.contains("Nonsense")),
        "{done:?}"
    );
}
