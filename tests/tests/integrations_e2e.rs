//! The Task integrations through the real binary, its REST API and `/sfn`, with moto's server
//! for SQS and DynamoDB, Lambda functions from `functions.yaml`, an HTTP server started by the
//! test, and nested executions: a callback whose token travels in an SQS message and is
//! answered by a worker reading the queue; a heartbeat timeout; a Retry of a function's error;
//! a nested `.sync:2` whose child fails (caught by the parent); a parent stopped while its
//! child runs; and `kill -9` while a callback waits, a child runs and an HTTP call is out,
//! after which each finishes exactly once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use wfm_e2e::{sfn_client, Api, Server};
use wfm_emulators::Emulator;

const WAIT: Duration = Duration::from_secs(60);

/// An HTTP server answering every request with `{"seen": N}` (N counts requests); while
/// `hold` is set, answers wait until it is cleared.
struct HttpBackend {
    url: String,
    requests: Arc<AtomicUsize>,
    hold: Arc<AtomicBool>,
}

fn http_backend() -> HttpBackend {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(AtomicBool::new(false));
    let (r, h) = (requests.clone(), hold.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (r, h) = (r.clone(), h.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                while h.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let text = json!({"seen": n}).to_string();
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    HttpBackend {
        url,
        requests,
        hold,
    }
}

fn definitions() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    // `double` doubles `n`; `flaky` fails the first time it runs (a marker file remembers).
    std::fs::write(
        dir.path().join("functions.yaml"),
        r#"functions:
  - name: double
    command: [python3, -c, "import json,sys; e=json.loads(sys.argv[-1]); print(json.dumps({'n': e['n'] * 2}))"]
  - name: default--triple
    command: [python3, -c, "import json,sys; e=json.loads(sys.argv[-1]); print(json.dumps({'n': e['n'] * 3}))"]
  - name: flaky
    command: [python3, -c, "import json,os,sys; m='flaky.marker'; first=not os.path.exists(m); open(m,'a').close(); print(json.dumps({'errorType': 'Flaky', 'errorMessage': 'first call'}) if first else json.dumps({'ok': True})); sys.exit(1 if first else 0)"]
"#,
    )
    .expect("functions.yaml");
    dir
}

/// The service-specific endpoint variables (not `AWS_ENDPOINT_URL`): the integrations resolve
/// each service's endpoint as the AWS SDKs do.
fn aws_env(moto: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_SQS", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_LAMBDA", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn start(data: tempfile::TempDir, listen: &str, defs: &std::path::Path, moto: &Emulator) -> Server {
    let env = aws_env(moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let defs = defs.to_string_lossy().to_string();
    Server::start_with_env(
        data,
        listen,
        &["--no-local-workers", "--definitions", &defs],
        &env,
    )
}

async fn sqs(moto: &Emulator) -> aws_sdk_sqs::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

async fn define(api: &Api, name: &str, machine: Value) {
    let (status, v) = api
        .call(
            Method::POST,
            "/workflow-definitions",
            Some(&json!({"name": name, "stateMachine": machine})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
}

/// Reads the queue until a message comes; returns its body as JSON.
async fn next_message(sqs: &aws_sdk_sqs::Client, url: &str) -> Value {
    for _ in 0..120 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if let Some(m) = got.messages().first() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
            return serde_json::from_str(m.body().unwrap_or("{}")).expect("JSON body");
        }
    }
    panic!("no message on {url}");
}

fn output(done: &Value) -> Value {
    assert_eq!(done["status"], "succeeded", "{done}");
    serde_json::from_str(done["output"].as_str().unwrap_or("null")).expect("output JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_workflow_calls_every_integration() {
    let Some(moto) = Emulator::moto() else { return };
    let defs = definitions();
    let server = start(
        tempfile::tempdir().expect("tmp"),
        "127.0.0.1:0",
        defs.path(),
        &moto,
    );
    let api = Api::new(&server.url);
    let sfn = sfn_client(&server.sfn_endpoint()).await;
    let sqs = sqs(&moto).await;
    let queue = sqs
        .create_queue()
        .queue_name("asks")
        .send()
        .await
        .expect("queue");
    let url = queue.queue_url().unwrap_or_default().to_string();
    let http = http_backend();
    let child = sfn
        .create_state_machine()
        .name("failing-child")
        .role_arn("arn:aws:iam::123456789012:role/r")
        .definition(
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ChildBroke", "Cause": "on purpose"}}})
                .to_string(),
        )
        .send()
        .await
        .expect("child machine");
    define(
        &api,
        "everything",
        json!({"StartAt": "Table", "States": {
            "Table": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:createTable",
                      "Parameters": {"TableName": "kv", "BillingMode": "PAY_PER_REQUEST",
                                     "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                                     "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]},
                      "ResultPath": null, "Next": "Put"},
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                    "Parameters": {"TableName": "kv", "Item": {"k": {"S": "a"}, "v": {"S.$": "$.value"}}},
                    "ResultPath": null, "Next": "Get"},
            "Get": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName": "kv", "Key": {"k": {"S": "a"}}},
                    "ResultSelector": {"v.$": "$.Item.v.S"}, "ResultPath": "$.got", "Next": "Ask"},
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token", "v.$": "$.got.v"}},
                    "HeartbeatSeconds": 60, "ResultPath": "$.answer", "Next": "Double"},
            "Double": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                       "Parameters": {"FunctionName": "double", "Payload": {"n": 21}},
                       "ResultSelector": {"n.$": "$.Payload.n"}, "ResultPath": "$.doubled", "Next": "Flaky"},
            "Flaky": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
                      "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                      "ResultPath": "$.flaky", "Next": "Triple"},
            "Triple": {"Type": "Task", "Resource": "lambda:triple", "Parameters": {"n": 5},
                       "ResultPath": "$.tripled", "Next": "Call"},
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                     "Parameters": {"ApiEndpoint": format!("{}/things", http.url), "Method": "POST",
                                    "RequestBody": {"v.$": "$.value"}},
                     "ResultSelector": {"status.$": "$.StatusCode", "body.$": "$.ResponseBody"},
                     "ResultPath": "$.http", "Next": "Child"},
            "Child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                      "Parameters": {"StateMachineArn": child.state_machine_arn(),
                                     "Input": {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}},
                      "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.childFailed", "Next": "Done"}],
                      "Next": "Done"},
            "Done": {"Type": "Succeed"}}}),
    )
    .await;
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "everything"},
                                "input": "{\"value\": \"hello\"}"}))
        .await;
    let id = wf["id"].as_str().expect("id").to_string();

    // The worker: reads the queue, answers the token it finds through /sfn.
    let body = next_message(&sqs, &url).await;
    assert_eq!(body["v"], "hello", "{body}");
    sfn.send_task_success()
        .task_token(body["token"].as_str().expect("token"))
        .output(json!({"answered": body["v"]}).to_string())
        .send()
        .await
        .expect("send task success");

    let done = api.wait_finished(&id, WAIT).await;
    let out = output(&done);
    assert_eq!(out["got"], json!({"v": "hello"}));
    assert_eq!(out["answer"], json!({"answered": "hello"}));
    assert_eq!(out["doubled"], json!({"n": 42}));
    assert_eq!(out["flaky"], json!({"ok": true}), "retried once");
    assert_eq!(
        out["tripled"],
        json!({"n": 15}),
        "lambda:NAME is NAMESPACE--NAME"
    );
    assert_eq!(out["http"], json!({"status": 200, "body": {"seen": 1}}));
    assert_eq!(out["childFailed"]["Error"], "States.TaskFailed");
    let cause: Value =
        serde_json::from_str(out["childFailed"]["Cause"].as_str().unwrap_or("")).expect("cause");
    assert_eq!(cause["Error"], "ChildBroke");
    assert_eq!(http.requests.load(Ordering::SeqCst), 1);
    // Every Task state is a job of the workflow.
    let jobs: Vec<&str> = done["jobs"]
        .as_array()
        .map(|j| j.iter().filter_map(|j| j["state"].as_str()).collect())
        .unwrap_or_default();
    for state in [
        "Table", "Put", "Get", "Ask", "Double", "Flaky", "Call", "Child",
    ] {
        assert!(jobs.contains(&state), "{state} in {jobs:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_time_out_and_a_stopped_parent_stops_its_child() {
    let Some(moto) = Emulator::moto() else { return };
    let defs = definitions();
    let server = start(
        tempfile::tempdir().expect("tmp"),
        "127.0.0.1:0",
        defs.path(),
        &moto,
    );
    let api = Api::new(&server.url);
    let sfn = sfn_client(&server.sfn_endpoint()).await;
    let sqs = sqs(&moto).await;
    let url = sqs
        .create_queue()
        .queue_name("silent")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .unwrap_or_default()
        .to_string();
    define(
        &api,
        "silent",
        json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
            "HeartbeatSeconds": 1, "End": true}}}),
    )
    .await;
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "silent"}}))
        .await;
    let done = api
        .wait_finished(wf["id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["lastJob"]["statusReason"]
            .as_str()
            .is_some_and(|r| r.contains("States.Timeout")),
        "{done}"
    );
    // The token is over: answering it says so.
    let body = next_message(&sqs, &url).await;
    let late = sfn
        .send_task_success()
        .task_token(body["token"].as_str().expect("token"))
        .output("{}")
        .send()
        .await
        .expect_err("a late answer");
    assert_eq!(
        late.as_service_error().and_then(|e| e.meta().code()),
        Some("TaskTimedOut")
    );

    // A parent stopped while its child runs: the child is stopped too.
    let activity = sfn
        .create_activity()
        .name("nobody-polls")
        .send()
        .await
        .expect("activity");
    let child = sfn
        .create_state_machine()
        .name("waiting-child")
        .role_arn("arn:aws:iam::123456789012:role/r")
        .definition(
            json!({"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": activity.activity_arn(), "End": true}}})
                .to_string(),
        )
        .send()
        .await
        .expect("child machine");
    define(
        &api,
        "parent",
        json!({"StartAt": "Child", "States": {"Child": {"Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child.state_machine_arn(), "Input": {}}, "End": true}}}),
    )
    .await;
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "parent"}}))
        .await;
    let id = wf["id"].as_str().expect("id").to_string();
    let child_arn = loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(child.state_machine_arn())
            .send()
            .await
            .expect("list");
        if let Some(e) = list.executions().first() {
            break e.execution_arn().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, v) = api
        .call(
            Method::DELETE,
            &format!("/workflows/{id}"),
            Some(&json!({"reason": "not needed"})),
        )
        .await;
    assert!(status < 300, "{status} {v}");
    api.wait_finished(&id, WAIT).await;
    let mut child_status = String::new();
    for _ in 0..200 {
        let d = sfn
            .describe_execution()
            .execution_arn(&child_arn)
            .send()
            .await
            .expect("describe child");
        child_status = d.status().as_str().to_string();
        if child_status != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(child_status, "ABORTED");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_a_callback_a_child_and_an_http_call_each_finish_once() {
    let Some(moto) = Emulator::moto() else { return };
    let defs = definitions();
    let port = wfm_e2e::free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = start(
        tempfile::tempdir().expect("tmp"),
        &listen,
        defs.path(),
        &moto,
    );
    let api = Api::new(&server.url);
    let sfn = sfn_client(&server.sfn_endpoint()).await;
    let sqs = sqs(&moto).await;
    let url = sqs
        .create_queue()
        .queue_name("durable")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let http = http_backend();
    http.hold.store(true, Ordering::SeqCst);
    let activity = sfn
        .create_activity()
        .name("child-work")
        .send()
        .await
        .expect("activity")
        .activity_arn()
        .to_string();
    let child = sfn
        .create_state_machine()
        .name("durable-child")
        .role_arn("arn:aws:iam::123456789012:role/r")
        .definition(
            json!({"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": activity, "End": true}}})
                .to_string(),
        )
        .send()
        .await
        .expect("child machine");
    define(
        &api,
        "three",
        json!({"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}},
            {"StartAt": "Child", "States": {"Child": {"Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child.state_machine_arn(), "Input": {}},
                "ResultSelector": {"out.$": "$.Output"}, "End": true}}},
            {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {"ApiEndpoint": format!("{}/slow", http.url), "Method": "GET"},
                "ResultSelector": {"body.$": "$.ResponseBody"}, "End": true}}}]}}}),
    )
    .await;
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "three"}}))
        .await;
    let id = wf["id"].as_str().expect("id").to_string();
    // Everything is out: the message is sent, the child runs, the HTTP call waits.
    let body = next_message(&sqs, &url).await;
    let token = body["token"].as_str().expect("token").to_string();
    for _ in 0..200 {
        let running = sfn
            .list_executions()
            .state_machine_arn(child.state_machine_arn())
            .send()
            .await
            .expect("list")
            .executions()
            .len();
        if running == 1 && http.requests.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http.requests.load(Ordering::SeqCst), 1);

    let data = server.kill();
    let server = start(data, &listen, defs.path(), &moto);
    http.hold.store(false, Ordering::SeqCst);
    let sfn = sfn_client(&server.sfn_endpoint()).await;
    // The callback's token still answers; the child's task is handed out again.
    sfn.send_task_success()
        .task_token(&token)
        .output(r#"{"called": "back"}"#)
        .send()
        .await
        .expect("the token survives the restart");
    let task = loop {
        let t = sfn
            .get_activity_task()
            .activity_arn(&activity)
            .send()
            .await
            .expect("poll");
        if let Some(token) = t.task_token().filter(|t| !t.is_empty()) {
            break token.to_string();
        }
    };
    sfn.send_task_success()
        .task_token(task)
        .output(r#"{"child": "done"}"#)
        .send()
        .await
        .expect("child task");
    let done = api.wait_finished(&id, WAIT).await;
    let out = output(&done);
    assert_eq!(out[0], json!({"called": "back"}));
    assert_eq!(out[1], json!({"out": {"child": "done"}}));
    // The call whose answer the crash lost was made again (at-least-once), and its state
    // finished once with the answer that came.
    assert!(
        out[2]["body"]["seen"].as_u64().is_some_and(|n| n >= 1),
        "{out}"
    );
    let machines = sfn.list_state_machines().send().await.expect("machines");
    let machine = machines
        .state_machines()
        .iter()
        .find(|m| m.name().contains("--three--"))
        .expect("the workflow's state machine");
    let executions = sfn
        .list_executions()
        .state_machine_arn(machine.state_machine_arn())
        .send()
        .await
        .expect("executions");
    assert_eq!(executions.executions().len(), 1);
    let history = sfn
        .get_execution_history()
        .execution_arn(executions.executions()[0].execution_arn())
        .max_results(1000)
        .send()
        .await
        .expect("history");
    let succeeded = history
        .events()
        .iter()
        .filter(|e| e.r#type().as_str() == "TaskSucceeded")
        .count();
    assert_eq!(succeeded, 3, "each Task succeeded once");
    let children = sfn
        .list_executions()
        .state_machine_arn(child.state_machine_arn())
        .send()
        .await
        .expect("list");
    assert_eq!(children.executions().len(), 1, "one child, not restarted");
    assert_eq!(
        sfn.send_task_success()
            .task_token(&token)
            .output("{}")
            .send()
            .await
            .expect_err("answered")
            .as_service_error()
            .and_then(|e| e.meta().code()),
        Some("TaskTimedOut")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_task_starts_a_child_workflow_linked_both_ways() {
    let server = Server::start(&["--no-local-workers"]);
    let api = Api::new(&server.url);
    define(
        &api,
        "child-step",
        json!({"StartAt": "Greet", "States": {
            "Greet": {"Type": "Pass", "Parameters": {"hello.$": "$.who", "me.$": "$._EXECUTION_NAME"}, "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.hello", "StringEquals": "nobody", "Next": "Broke"}],
                      "Default": "Fine"},
            "Broke": {"Type": "Fail", "Error": "NoOne", "Cause": "nobody to greet"},
            "Fine": {"Type": "Succeed"}}}),
    )
    .await;
    define(
        &api,
        "parent-flow",
        json!({"StartAt": "Child", "States": {
            "Child": {"Type": "Task", "Resource": "workflow:child-step", "ResultSelector": {"out.$": "$.Output"},
                      "ResultPath": "$.child", "Next": "Again"},
            "Again": {"Type": "Task", "Resource": "workflow:child-step:0", "Parameters": {"who": "nobody"},
                      "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failed", "Next": "Done"}],
                      "Next": "Done"},
            "Done": {"Type": "Succeed"}}}),
    )
    .await;
    let wf = api
        .start_workflow(&json!({"workflowDefinition": {"name": "parent-flow"}, "input": "{\"who\": \"world\"}"}))
        .await;
    let id = wf["id"].as_str().expect("id").to_string();
    let done = api.wait_finished(&id, WAIT).await;
    let out = output(&done);
    assert_eq!(out["child"]["out"]["hello"], "world", "{out}");
    assert_eq!(out["failed"]["Error"], "States.TaskFailed", "{out}");
    let children: Vec<String> = done["childWorkflowIds"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(children.len(), 2, "{done}");
    assert_eq!(
        out["child"]["out"]["me"],
        json!(children[0]),
        "the child's _EXECUTION_NAME is its workflow id"
    );
    let first = api.wait_finished(&children[0], WAIT).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["parentWorkflowId"], json!(id));
    assert_eq!(first["workflowDefinition"]["name"], "child-step");
    let second = api.wait_finished(&children[1], WAIT).await;
    assert_eq!(second["status"], "failed", "{second}");
    assert_eq!(second["parentWorkflowId"], json!(id));
    // The UI links them too.
    let page = |wid: String| {
        let url = format!("{}/ui/workflows/{wid}", server.url);
        async move {
            reqwest::get(url)
                .await
                .expect("page")
                .text()
                .await
                .expect("html")
        }
    };
    let parent_page = page(id.clone()).await;
    assert!(parent_page.contains("Child workflows"), "{parent_page}");
    assert!(parent_page.contains(&format!("/ui/workflows/{}", children[0])));
    let child_page = page(children[0].clone()).await;
    assert!(child_page.contains("Started by"));
    assert!(child_page.contains(&format!("/ui/workflows/{id}")));
}
