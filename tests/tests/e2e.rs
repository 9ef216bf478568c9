//! End to end: the real `workflow-manager` binary on a free port, real `wfm-worker` processes
//! and aws-sdk-sfn, over HTTP.

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use reqwest::Method;
use serde_json::{json, Value};
use wfm_e2e::{sfn_client, Api, Server, WorkerProcess};

const WAIT: Duration = Duration::from_secs(60);

fn job_states(wf: &Value) -> Vec<(String, String)> {
    wf["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["state"].as_str().unwrap_or("").to_string(),
                j["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_quick_start_runs_with_the_local_workers() {
    let server = Server::start(&[]);
    let api = Api::new(&server.url);
    // The README's curl line, as JSON.
    let wf = api
        .start_workflow(
            &json!({"workflowDefinition": {"name": "hello-world"}, "input": "{\"name\": \"Ada\"}"}),
        )
        .await;
    assert_eq!(wf["status"], "queued");
    assert_eq!(wf["tags"], json!({"team": "examples"}));
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json output");
    assert_eq!(output["message"], "HELLO, ADA!");
    assert_eq!(output["to"], "Ada");
    assert_eq!(
        job_states(&done),
        vec![
            pair("Greet", "succeeded"),
            pair("Decorate", "succeeded"),
            pair("Shout", "succeeded")
        ]
    );
    for job in done["jobs"].as_array().expect("jobs") {
        for field in [
            "id",
            "input",
            "output",
            "createdAt",
            "startedAt",
            "stoppedAt",
        ] {
            assert!(job[field].is_string(), "job lacks {field}: {job}");
        }
    }
    let greet_input: Value =
        serde_json::from_str(done["jobs"][0]["input"].as_str().expect("input")).expect("json");
    assert_eq!(
        greet_input,
        json!({"name": "Ada", "_EXECUTION_NAME": wf["id"]})
    );
    assert_eq!(done["jobs"][0]["stateResource"]["name"], "greet");
    assert!(done["stoppedAt"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_runs_on_real_worker_processes() {
    let server = Server::start(&["--no-local-workers"]);
    let endpoint = server.sfn_endpoint();
    let _greet = WorkerProcess::start(
        &endpoint,
        "default--greet",
        &["python3", "bin/greet.py"],
        &["--worker-name", "greeter"],
    );
    let _shout = WorkerProcess::start(
        &endpoint,
        "default--shout",
        &["python3", "bin/shout.py"],
        &[],
    );
    let api = Api::new(&server.url);
    let wf = api
        .start_workflow(
            &json!({"workflowDefinition": {"name": "hello-world", "version": 0},
            "input": "{\"name\": \"Grace\"}", "tags": {"who": "test"}}),
        )
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["tags"], json!({"team": "examples", "who": "test"}));
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    // Decorate's Parameters drop `_EXECUTION_NAME`, so Shout's output does not carry it.
    assert_eq!(output, json!({"message": "HELLO, GRACE!", "to": "Grace"}));
    assert_eq!(done["jobs"][0]["container"], "greeter");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_commands_fail_the_workflow_with_error_and_cause_in_last_job() {
    let server = Server::start(&["--no-local-workers"]);
    let endpoint = server.sfn_endpoint();
    let api = Api::new(&server.url);

    // The program names its own error on stdout.
    let _validate = WorkerProcess::start(
        &endpoint,
        "default--validate-order",
        &["python3", "bin/validate-order.py"],
        &[],
    );
    let wf = api
        .start_workflow(
            &json!({"workflowDefinition": {"name": "order-check"}, "input": "{\"quantity\": 3}"}),
        )
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["lastJob"]["state"], "Validate");
    assert_eq!(done["lastJob"]["status"], "failed");
    assert_eq!(
        done["lastJob"]["statusReason"],
        "the order has no sku\nInvalidOrder"
    );
    assert_eq!(done["resolvedByUser"], false);

    // A plain non-zero exit: sfncli's error name, the last stderr line as the cause.
    let _plain = WorkerProcess::start(
        &endpoint,
        "plain--validate-order",
        &[
            "bash",
            "-c",
            "echo 'checking' >&2; echo 'disk full' >&2; exit 3",
            "validate",
        ],
        &[],
    );
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "order-check"}, "namespace": "plain", "input": "{\"sku\": \"x\"}"}))
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["lastJob"]["statusReason"],
        "disk full\nsfncli.CommandExitedNonzero"
    );
    assert_eq!(done["namespace"], "plain");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_choice_sends_a_rejected_order_to_the_fail_state() {
    let server = Server::start(&[]);
    let api = Api::new(&server.url);
    let ok = api.start_workflow(&json!({"workflowDefinition": {"name": "order-check"}, "input": "{\"sku\": \"A1\", \"quantity\": 2}"})).await;
    let bad = api.start_workflow(&json!({"workflowDefinition": {"name": "order-check"}, "input": "{\"sku\": \"A1\", \"quantity\": 0}"})).await;
    let ok = api
        .wait_finished(ok["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_eq!(
        job_states(&ok),
        vec![
            pair("Validate", "succeeded"),
            pair("Decide", "succeeded"),
            pair("Fulfil", "succeeded"),
            pair("Done", "succeeded")
        ]
    );
    let out: Value = serde_json::from_str(ok["output"].as_str().expect("output")).expect("json");
    assert_eq!(out["shipment"]["trackingId"], "TRK-A1-2");
    let bad = api
        .wait_finished(bad["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["lastJob"]["state"], "Rejected");
    assert_eq!(
        bad["lastJob"]["statusReason"],
        "The order did not pass validation.\nOrderRejected"
    );
    assert_eq!(
        bad["statusReason"],
        "The order did not pass validation.\nOrderRejected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_to_the_worker_reports_command_terminated() {
    let server = Server::start(&["--no-local-workers"]);
    let api = Api::new(&server.url);
    let mut worker = WorkerProcess::start(
        &server.sfn_endpoint(),
        "term--greet",
        &["bash", "-c", "trap 'echo cleaning up >&2; exit 1' TERM; echo started >&2; while true; do sleep 0.1; done", "greet"],
        &["--grace-seconds", "5"],
    );
    let wf = api
        .start_workflow(
            &json!({"workflowDefinition": {"name": "hello-world"}, "namespace": "term",
                "input": "{\"name\": \"Ada\"}"}),
        )
        .await;
    let id = wf["id"].as_str().expect("id").to_string();
    // Wait until the worker has taken the task.
    for _ in 0..600 {
        let (_, v) = api
            .call(Method::GET, &format!("/workflows/{id}"), None)
            .await;
        if v["jobs"][0]["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &worker.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        worker.wait_exit(Duration::from_secs(20)).is_some(),
        "the worker did not exit after SIGTERM"
    );
    // As on AWS, every task retries sfncli.CommandTerminated (10 s later): a worker that
    // comes up meanwhile finishes the workflow.
    let endpoint = server.sfn_endpoint();
    let _greet = WorkerProcess::start(&endpoint, "term--greet", &["python3", "bin/greet.py"], &[]);
    let _shout = WorkerProcess::start(&endpoint, "term--shout", &["python3", "bin/shout.py"], &[]);
    let done = api.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["jobs"][0]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!attempts.is_empty(), "the task was retried: {done}");
    assert_eq!(
        attempts[0]["reason"], "cleaning up\nsfncli.CommandTerminated",
        "{done}"
    );
}

/// Describes an execution through aws-sdk-sfn until it is no longer RUNNING (4 s at most).
async fn wait_ended(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..200 {
        let described = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe");
        if described.status().as_str() != "RUNNING" {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("execution {arn} did not end");
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sdk_sfn_works_against_the_sfn_endpoint_as_a_worker_uses_it() {
    let server = Server::start(&["--no-local-workers", "--activity-poll-seconds", "2"]);
    let sfn = sfn_client(&server.sfn_endpoint()).await;

    let created = sfn
        .create_activity()
        .name("sdk-activity")
        .send()
        .await
        .expect("create activity");
    let again = sfn
        .create_activity()
        .name("sdk-activity")
        .send()
        .await
        .expect("create again");
    assert_eq!(created.activity_arn(), again.activity_arn());
    let activity = created.activity_arn().to_string();

    // An idle long poll ends without a task.
    let empty = sfn
        .get_activity_task()
        .activity_arn(&activity)
        .send()
        .await
        .expect("poll");
    assert!(empty.task_token().is_none());

    let definition = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30, "End": true}}});
    let machine = sfn
        .create_state_machine()
        .name("sdk-machine")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/test")
        .send()
        .await
        .expect("create state machine");

    // A poll waiting before the task exists gets it when it is scheduled.
    let poller = {
        let sfn = sfn.clone();
        let activity = activity.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                let out = sfn
                    .get_activity_task()
                    .activity_arn(&activity)
                    .worker_name("sdk-worker")
                    .send()
                    .await
                    .expect("poll");
                if out.task_token().is_some() {
                    return out;
                }
            }
            panic!("no task arrived");
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let exec = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("run-ok")
        .input(r#"{"n": 1}"#)
        .send()
        .await
        .expect("start");
    let task = poller.await.expect("join");
    assert_eq!(
        serde_json::from_str::<Value>(task.input().expect("input")).expect("json"),
        json!({"n": 1})
    );
    let token = task.task_token().expect("token").to_string();
    sfn.send_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .expect("heartbeat");
    sfn.send_task_success()
        .task_token(&token)
        .output(r#"{"ok": true}"#)
        .send()
        .await
        .expect("success");
    let described = wait_ended(&sfn, exec.execution_arn()).await;
    assert_eq!(described.status().as_str(), "SUCCEEDED");
    assert_eq!(described.output(), Some(r#"{"ok":true}"#));

    let history = sfn
        .get_execution_history()
        .execution_arn(exec.execution_arn())
        .send()
        .await
        .expect("history");
    let types: Vec<&str> = history
        .events()
        .iter()
        .map(|e| e.r#type().as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let started = history.events()[3]
        .activity_started_event_details()
        .expect("details");
    assert_eq!(started.worker_name(), Some("sdk-worker"));

    // Failure.
    let exec = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("run-bad")
        .send()
        .await
        .expect("start");
    let task = loop {
        let t = sfn
            .get_activity_task()
            .activity_arn(&activity)
            .send()
            .await
            .expect("poll");
        if t.task_token().is_some() {
            break t;
        }
    };
    sfn.send_task_failure()
        .task_token(task.task_token().expect("token"))
        .error("Broken")
        .cause("it broke")
        .send()
        .await
        .expect("failure");
    let described = wait_ended(&sfn, exec.execution_arn()).await;
    assert_eq!(described.status().as_str(), "FAILED");
    assert_eq!(
        (described.error(), described.cause()),
        (Some("Broken"), Some("it broke"))
    );

    // A token that was never issued.
    let err = sfn
        .send_task_success()
        .task_token("bogus")
        .output("{}")
        .send()
        .await
        .expect_err("bogus token");
    assert_eq!(err.code(), Some("InvalidToken"));
    let err = sfn
        .send_task_heartbeat()
        .task_token("bogus")
        .send()
        .await
        .expect_err("bogus token");
    assert_eq!(err.code(), Some("InvalidToken"));
    // A real token whose task is done.
    let err = sfn
        .send_task_success()
        .task_token(&token)
        .output("{}")
        .send()
        .await
        .expect_err("finished task");
    assert_eq!(err.code(), Some("TaskTimedOut"));
    // An unknown activity.
    let err = sfn
        .get_activity_task()
        .activity_arn("arn:aws:states:us-east-1:123456789012:activity:missing")
        .send()
        .await
        .expect_err("missing activity");
    assert_eq!(err.code(), Some("ActivityDoesNotExist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn definitions_are_loaded_once_and_survive_a_restart() {
    let server = Server::start(&["--no-local-workers"]);
    let api = Api::new(&server.url);
    let (status, defs) = api.call(Method::GET, "/workflow-definitions", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = defs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["approval", "hello-world", "order-batch", "order-check"]
    );
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "hello-world"}}))
        .await;
    let data = server.kill();
    let server = Server::start_in(data, &["--no-local-workers"]);
    let api = Api::new(&server.url);
    let (_, versions) = api
        .call(
            Method::GET,
            "/workflow-definitions/hello-world?latest=false",
            None,
        )
        .await;
    assert_eq!(
        versions.as_array().map(Vec::len),
        Some(1),
        "an unchanged definition got a new version"
    );
    let (status, got) = api
        .call(
            Method::GET,
            &format!("/workflows/{}", wf["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], wf["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_and_the_aws_cli_work_against_the_sfn_endpoint() {
    let Some(python) = wfm_e2e::test_python("boto3_works_against_the_sfn_endpoint") else {
        return;
    };
    let server = Server::start(&["--no-local-workers", "--activity-poll-seconds", "2"]);
    let script = wfm_e2e::workspace().join("tests/python/boto3_worker.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(server.sfn_endpoint())
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("boto3 ok"));

    // The AWS CLI, by endpoint URL alone.
    let cli = aws_cli_list_state_machines(&python, &server, "test", "test").await;
    assert!(
        cli.status.success(),
        "aws cli failed: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let listed: Value = serde_json::from_slice(&cli.stdout).expect("aws cli JSON");
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["boto3-machine"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auth_boto3_and_the_aws_cli_sign_with_issued_keys() {
    let Some(python) =
        wfm_e2e::test_python("with_auth_boto3_and_the_aws_cli_sign_with_issued_keys")
    else {
        return;
    };
    const ADMIN: &str = "e2e-admin-secret-0123456789";
    let server = Server::start(&[
        "--auth",
        "tokens",
        "--admin-token",
        ADMIN,
        "--activity-poll-seconds",
        "2",
    ]);
    let admin = Api::new(&server.url).with_token(ADMIN);
    let (status, key) = admin
        .call(
            Method::POST,
            "/access-keys",
            Some(&json!({"name": "python-worker", "namespaces": ["*"]})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let id = key["accessKeyId"].as_str().expect("id");
    let secret = key["secretAccessKey"].as_str().expect("secret");
    let script = wfm_e2e::workspace().join("tests/python/boto3_worker.py");
    let run = |id: &str, secret: &str| {
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg(server.sfn_endpoint())
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
    };
    let out = run(id, secret).await.expect("run python");
    assert!(
        out.status.success(),
        "boto3 with an issued key failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let forged = run(id, "wrong-secret").await.expect("run python");
    assert!(!forged.status.success());
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );

    let listed = aws_cli_list_state_machines(&python, &server, id, secret).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("boto3-machine"));
    let refused = aws_cli_list_state_machines(&python, &server, id, "nope").await;
    assert!(!refused.status.success());

    // The REST API wants a token; local workers still sign with the process's own key.
    let (status, _) = Api::new(&server.url)
        .call(Method::GET, "/workflows", None)
        .await;
    assert_eq!(status, 401);
    let wf = admin
        .start_workflow(
            &json!({"workflowDefinition": {"name": "hello-world"}, "input": "{\"name\": \"Kim\"}"}),
        )
        .await;
    let done = admin
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
}

/// `aws stepfunctions list-state-machines` against the server, signed with this key.
async fn aws_cli_list_state_machines(
    python: &std::ffi::OsStr,
    server: &Server,
    access_key_id: &str,
    secret: &str,
) -> std::process::Output {
    wfm_e2e::aws_cli_stepfunctions(
        python,
        &server.sfn_endpoint(),
        &["list-state-machines"],
        access_key_id,
        secret,
    )
    .await
}

#[test]
fn the_binary_refuses_to_listen_beyond_loopback_without_authentication() {
    let out = std::process::Command::new(wfm_e2e::binaries().join("workflow-manager"))
        .current_dir(wfm_e2e::workspace())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().expect("dir").path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn running_workflows_survive_a_kill_9_of_the_service() {
    // No workers: the workflow waits at its first task when the service is killed.
    let server = Server::start(&["--no-local-workers"]);
    let api = Api::new(&server.url);
    let wf = api
        .start_workflow(
            &json!({"workflowDefinition": {"name": "hello-world"}, "input": "{\"name\": \"Lin\"}"}),
        )
        .await;
    let id = wf["id"].as_str().expect("id").to_string();
    for _ in 0..200 {
        let (_, v) = api
            .call(Method::GET, &format!("/workflows/{id}"), None)
            .await;
        if v["jobs"][0]["status"] == "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let data = server.kill();

    // Restarted with its local workers, the service continues the execution.
    let server = Server::start_in(data, &[]);
    let api = Api::new(&server.url);
    let done = api.wait_finished(&id, WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    assert_eq!(output["message"], "HELLO, LIN!");
    let greets = done["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["state"] == "Greet")
        .count();
    assert_eq!(greets, 1, "the Greet state was entered twice: {done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_heartbeats_keep_a_long_task_alive() {
    let server = Server::start(&["--no-local-workers"]);
    let api = Api::new(&server.url);
    let machine = json!({"StartAt": "Slow", "States": {
        "Slow": {"Type": "Task", "Resource": "slow", "HeartbeatSeconds": 3, "End": true}}});
    let (status, v) = api
        .call(
            Method::POST,
            "/workflow-definitions",
            Some(&json!({"name": "slow-task", "stateMachine": machine})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // The task takes longer than HeartbeatSeconds; only the worker's heartbeats keep it alive.
    let _worker = WorkerProcess::start(
        &server.sfn_endpoint(),
        "default--slow",
        &["bash", "-c", "sleep 6; echo '{\"slept\": true}'", "slow"],
        &["--heartbeat-seconds", "1"],
    );
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "slow-task"}}))
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // Without heartbeats the same task times out.
    let _lazy = WorkerProcess::start(
        &server.sfn_endpoint(),
        "lazy--slow",
        &["bash", "-c", "sleep 6; echo '{}'", "slow"],
        &["--heartbeat-seconds", "60"],
    );
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "slow-task"}, "namespace": "lazy"}))
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["lastJob"]["statusReason"],
        "Job timed out\nStates.Timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_survive_repeated_kill_9_at_random_moments() {
    let port = wfm_e2e::free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let mut server = Server::start_on(
        tempfile::tempdir().expect("tmp"),
        &listen,
        &["--no-local-workers"],
    );
    let api = Api::new(&url);
    let machine = json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "step", "ResultPath": "$.a", "Next": "P"},
        "P": {"Type": "Pass", "Result": "p", "ResultPath": "$.p", "Next": "B"},
        "B": {"Type": "Task", "Resource": "step", "ResultPath": "$.b", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "Next": "C"},
        "C": {"Type": "Task", "Resource": "step", "ResultPath": "$.c", "End": true}}});
    let (status, v) = api
        .call(
            Method::POST,
            "/workflow-definitions",
            Some(&json!({"name": "durable", "stateMachine": machine})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let endpoint = format!("{url}/sfn");
    let step = ["bash", "-c", "sleep 0.15; echo '{\"done\": true}'", "step"];
    let _workers: Vec<WorkerProcess> = (0..3)
        .map(|_| {
            WorkerProcess::start(
                &endpoint,
                "default--step",
                &step,
                &["--heartbeat-seconds", "5"],
            )
        })
        .collect();
    let mut ids = Vec::new();
    for i in 0..20 {
        let wf = api.start_workflow(&json!({"workflowDefinition": {"name": "durable"}, "input": format!("{{\"i\": {i}}}")})).await;
        ids.push(wf["id"].as_str().expect("id").to_string());
    }
    // Kill the service at pseudo-random moments (the seed is printed to replay a failure).
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    println!("kill schedule seed: {seed}");
    for _ in 0..4 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pause = 300 + (seed >> 33) % 900;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let data = server.kill();
        server = Server::start_on(data, &listen, &["--no-local-workers"]);
    }
    for id in &ids {
        let done = api.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
        let output: Value =
            serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
        for key in ["a", "b", "c"] {
            assert_eq!(output[key]["done"], true, "{output}");
        }
        let states: Vec<&str> = done["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["state"].as_str())
            .collect();
        assert_eq!(
            states,
            ["A", "P", "B", "W", "C"],
            "a state was entered twice or skipped: {done}"
        );
    }
}
