//! The real binary on its AWS backends, against the emulators `scripts/test` installs:
//! `--store dynamodb://` on moto's DynamoDB, and `--executor sfn` on LocalStack's Step
//! Functions with `wfm-worker` processes polling LocalStack. Endpoints reach the service only
//! through the AWS SDK's standard environment (`AWS_ENDPOINT_URL_*`), as in production.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use wfm_e2e::{Api, Server, WorkerProcess};
use wfm_emulators::{http_get, Emulator};

const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port")
}

fn order(input: Value) -> Value {
    json!({"workflowDefinition": {"name": "order-check"}, "input": input.to_string(), "namespace": "default", "queue": "default"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_its_state_in_dynamodb_and_reports_readiness() {
    let Some(mut moto) = Emulator::moto() else {
        return;
    };
    let mut env = AWS_ENV.to_vec();
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint));
    let server = Server::start_with_env(
        tempfile::tempdir().expect("dir"),
        "127.0.0.1:0",
        &["--store", "dynamodb://e2e-wfm", "--log-format", "json"],
        &env,
    );
    let api = Api::new(&server.url);
    let started = api
        .start_workflow(&order(json!({"sku": "a-1", "quantity": 3})))
        .await;
    let id = started["id"].as_str().expect("id").to_string();
    let done = api.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["jobs"].as_array().map(Vec::len), Some(4), "{done}");
    let (status, listed) = api
        .call(
            Method::GET,
            "/workflows?workflowDefinitionName=order-check",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed[0]["id"],
        id.as_str(),
        "listed from the DynamoDB index"
    );

    let port = port_of(&server.url);
    let (status, ready) = http_get(port, "/_ready").expect("answers");
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("\"background\":\"ok\""), "{ready}");
    let metrics = http_get(port, "/metrics").expect("answers").1;
    for expected in [
        "wfm_background_task_running{task=\"status-sync\"} 1",
        "wfm_workflows_started_total{definition=\"order-check\"} 1",
        "wfm_workflows_finished_total{definition=\"order-check\",status=\"succeeded\"} 1",
        "wfm_http_request_duration_seconds_count{method=\"POST\",route=\"/workflows\",status=\"200\"} 1",
        "wfm_state_transitions_total 4",
        "wfm_activity_dispatch_seconds_count 2",
        "wfm_activity_tasks_waiting 0",
        "wfm_aws_calls_total{service=\"dynamodb\",operation=\"PutItem\"}",
        "wfm_aws_calls_total{service=\"dynamodb\",operation=\"Query\"}",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }
    // JSON logs: one object per line, the sync's lines naming their workflow.
    let log = server.log();
    let json_lines = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON log line"))
        .collect::<Vec<_>>();
    assert!(
        json_lines
            .iter()
            .any(|l| l["message"] == "workflow-manager listening"),
        "{log}"
    );

    // DynamoDB goes away: not ready, and the answer names the store.
    moto.stop();
    let (status, body) = http_get(port, "/_ready").expect("answers");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("store")),
        "{body}"
    );
    let (status, _) = api.call(Method::GET, "/_health", None).await;
    assert_eq!(status, 200, "still alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sfn_executor_runs_workflows_on_localstack_step_functions() {
    let Some(localstack) = Emulator::localstack() else {
        return;
    };
    let mut env = AWS_ENV.to_vec();
    env.push(("AWS_ENDPOINT_URL_SFN", &localstack.endpoint));
    // No --account: the service learns LocalStack's from its STS.
    env.push(("AWS_ENDPOINT_URL_STS", &localstack.endpoint));
    let server = Server::start_with_env(
        tempfile::tempdir().expect("dir"),
        "127.0.0.1:0",
        &[
            "--executor",
            "sfn",
            "--role-arn",
            "arn:aws:iam::000000000000:role/workflow-manager",
        ],
        &env,
    );
    let port = port_of(&server.url);
    let (status, ready) = http_get(port, "/_ready").expect("answers");
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("stepfunctions"), "{ready}");
    assert!(ready.contains("\"background\":\"ok\""), "{ready}");
    let metrics = http_get(port, "/metrics").expect("answers").1;
    assert!(
        metrics.contains("wfm_background_task_running{task=\"reconcile\"} 1"),
        "{metrics}"
    );
    assert!(
        server.log().contains("learned the AWS account"),
        "the account came from STS"
    );

    let api = Api::new(&server.url);
    // Started before any worker polls: the service creates the activities with the state
    // machine, as Step Functions needs them to exist.
    let ok = api
        .start_workflow(&order(json!({"sku": "a-1", "quantity": 2})))
        .await;
    let rejected = api
        .start_workflow(&order(json!({"sku": "a-1", "quantity": 500})))
        .await;
    let broken = api.start_workflow(&order(json!({"quantity": 1}))).await;

    let _validate = WorkerProcess::start(
        &localstack.endpoint,
        "default--validate-order",
        &["python3", "bin/validate-order.py"],
        &[],
    );
    let _fulfil = WorkerProcess::start(
        &localstack.endpoint,
        "default--fulfil-order",
        &["python3", "bin/fulfil-order.py"],
        &[],
    );
    let wait = Duration::from_secs(90);
    let ok = api
        .wait_finished(ok["id"].as_str().expect("id"), wait)
        .await;
    assert_eq!(ok["status"], "succeeded", "{ok}\n{}", server.log());
    let states: Vec<(&str, &str)> = ok["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["state"].as_str().unwrap_or(""),
                j["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("Validate", "succeeded"),
            ("Decide", "succeeded"),
            ("Fulfil", "succeeded"),
            ("Done", "succeeded")
        ],
        "history → jobs from LocalStack's history"
    );
    let validate_output: Value =
        serde_json::from_str(ok["jobs"][0]["output"].as_str().unwrap_or("null")).expect("json");
    assert_eq!(
        validate_output["validation"]["valid"], true,
        "{validate_output}"
    );

    let rejected = api
        .wait_finished(rejected["id"].as_str().expect("id"), wait)
        .await;
    assert_eq!(rejected["status"], "failed");
    assert!(
        rejected["statusReason"]
            .as_str()
            .is_some_and(|r| r.contains("OrderRejected")),
        "{rejected}"
    );
    let broken = api
        .wait_finished(broken["id"].as_str().expect("id"), wait)
        .await;
    assert_eq!(broken["status"], "failed", "{broken}");
    assert_eq!(broken["jobs"][0]["status"], "failed", "{broken}");

    // The state machine carries its tags.
    let sfn = wfm_e2e::sfn_client(&localstack.endpoint).await;
    let arn =
        "arn:aws:states:us-east-1:000000000000:stateMachine:default--order-check--0--Validate";
    let tags = sfn
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("tags");
    let tags: Vec<(&str, &str)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert!(tags.contains(&("team", "examples")), "{tags:?}");
    assert!(
        tags.contains(&("workflow-manager:definition", "order-check")),
        "{tags:?}"
    );
}

/// Calls moto's REST-JSON APIs as a signed client would (moto reads the service from the
/// credential scope and does not check the signature).
async fn moto_call(endpoint: &str, service: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .json(&body)
        .send()
        .await
        .expect("moto");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_states_run_on_aws_batch_from_the_embedded_engine() {
    let Some(moto) = Emulator::moto() else {
        return;
    };
    let m = &moto.endpoint;
    let http = reqwest::Client::new();
    http.post(format!("{m}/moto-api/config"))
        .json(&json!({"batch": {"use_docker": false}}))
        .send()
        .await
        .expect("moto config");
    http.post(m.as_str())
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .form(&[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", "batch-service"), ("AssumeRolePolicyDocument", "{}")])
        .send()
        .await
        .expect("role");
    moto_call(m, "batch", "/v1/createcomputeenvironment", json!({"computeEnvironmentName": "env", "type": "UNMANAGED", "state": "ENABLED", "serviceRole": "arn:aws:iam::123456789012:role/batch-service"})).await;
    moto_call(m, "batch", "/v1/createjobqueue", json!({"jobQueueName": "renders", "priority": 1, "state": "ENABLED", "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "env"}]})).await;
    let definition = moto_call(m, "batch", "/v1/registerjobdefinition", json!({"jobDefinitionName": "render", "type": "container", "containerProperties": {"image": "busybox", "command": ["echo"], "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]}})).await;
    let definition_arn = definition["jobDefinitionArn"]
        .as_str()
        .expect("arn")
        .to_string();

    let mut env = AWS_ENV.to_vec();
    env.push(("AWS_ENDPOINT_URL_BATCH", m));
    let server = Server::start_with_env(
        tempfile::tempdir().expect("dir"),
        "127.0.0.1:0",
        &["--no-local-workers"],
        &env,
    );
    let api = Api::new(&server.url);
    let (status, body) = api
        .call(
            Method::POST,
            "/workflow-definitions",
            Some(&json!({"name": "render-frames", "stateMachine": {"StartAt": "Render", "States": {
                "Render": {"Type": "Task", "Resource": "batch:render", "ResultSelector": {"job.$": "$.JobId", "status.$": "$.Status"}, "End": true}}}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let start = json!({"workflowDefinition": {"name": "render-frames"}, "input": "{\"frame\": 1}", "namespace": "default", "queue": "renders"});
    // Without the state resource that names its job definition, the start is refused.
    let (status, body) = api.call(Method::POST, "/workflows", Some(&start)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("batch:render")),
        "{body}"
    );

    let (status, body) = api
        .call(
            Method::PUT,
            "/state-resources/default/render",
            Some(&json!({"uri": definition_arn})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let wf = api.start_workflow(&start).await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
    let output: Value =
        serde_json::from_str(done["output"].as_str().unwrap_or("null")).expect("json");
    assert_eq!(output["status"], "SUCCEEDED", "{output}");
    let job = &done["jobs"][0];
    assert_eq!(job["state"], "Render");
    assert_eq!(job["status"], "succeeded");
    assert!(
        job["container"]
            .as_str()
            .is_some_and(|c| c.contains(":job/")),
        "the Batch job's ARN: {job}"
    );
    // The job ran on the workflow's queue, named after the workflow.
    let jobs = moto_call(
        m,
        "batch",
        "/v1/listjobs",
        json!({"jobQueue": "renders", "jobStatus": "SUCCEEDED"}),
    )
    .await;
    let names: Vec<&str> = jobs["jobSummaryList"]
        .as_array()
        .map(|l| l.iter().filter_map(|j| j["jobName"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, [wf["id"].as_str().expect("id")]);
}

#[test]
fn an_incomplete_aws_configuration_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        std::process::Command::new(wfm_e2e::binaries().join("workflow-manager"))
            .current_dir(wfm_e2e::workspace())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-local-workers",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(args)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("no-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run workflow-manager")
    };
    let out = run(&["--executor", "sfn"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no AWS region") && err.contains("AWS_REGION"),
        "{err}"
    );

    let out = run(&["--store", "postgres://db"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store") && err.contains("dynamodb://TABLE_PREFIX"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_url_puts_the_database_where_it_says() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("elsewhere").join("wfm.db");
    let url = format!("sqlite://{}", db.display());
    let server = Server::start_with_env(
        tempfile::tempdir().expect("dir"),
        "127.0.0.1:0",
        &["--store", &url, "--no-local-workers"],
        &[],
    );
    let (status, _) = Api::new(&server.url)
        .call(Method::GET, "/workflow-definitions", None)
        .await;
    assert_eq!(status, 200);
    assert!(db.exists(), "{} was not created", db.display());
    assert!(!server.data.path().join("workflow-manager.db").exists());
}
