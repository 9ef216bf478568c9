//! Lambda and HTTP Tasks in the embedded engine. moto's Lambda needs Docker to run code, which
//! is not here, so the SDK path is tested against a small local server that answers Lambda's
//! Invoke API (a hand-written fake: no emulator runs here); functions of `functions.yaml` run
//! as local commands. The HTTP Task calls a local HTTP server started by the test.

mod common;

use common::{aws_at, output, run};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use wfm_aws_integrations::http_task::{ApiKey, Connection};
use wfm_aws_integrations::{register, HttpPolicy, LocalFunctions};
use wfm_engine::{Engine, EngineConfig};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Lambda's Invoke API: `echo` returns its payload, `flaky` fails once with a service error,
/// `boom` raises, anything else does not exist.
async fn invoke(
    State(calls): State<Arc<AtomicUsize>>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let n = calls.fetch_add(1, Ordering::SeqCst);
    let ok = |body: String| {
        (
            StatusCode::OK,
            [
                ("x-amz-executed-version", "$LATEST"),
                ("x-amzn-requestid", "req"),
            ],
            body,
        )
            .into_response()
    };
    // Lambda takes a name or an ARN.
    match name.rsplit(':').next().unwrap_or_default() {
        "echo" => ok(body),
        "flaky" if n == 0 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-errortype", "ServiceException")],
            json!({"Type": "Service", "message": "try again"}).to_string(),
        )
            .into_response(),
        "flaky" => ok(body),
        "boom" => (
            StatusCode::OK,
            [("x-amz-function-error", "Unhandled")],
            json!({"errorMessage": "bad input", "errorType": "ValueError",
                   "requestId": "r", "stackTrace": []})
            .to_string(),
        )
            .into_response(),
        other => (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            json!({"Type": "User", "message": format!("Function not found: {other}")}).to_string(),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn lambda_through_the_invoke_api_and_local_functions() {
    let calls = Arc::new(AtomicUsize::new(0));
    let lambda = serve(
        Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .route(
                "/2015-03-31/functions/{name}",
                get(|Path(name): Path<String>| async move {
                    axum::Json(
                        json!({"Configuration": {"FunctionName": name, "Runtime": "python3.12"}}),
                    )
                }),
            )
            .with_state(calls.clone()),
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("functions.yaml"),
        "functions:\n  - name: local-echo\n    command: [sh, -c, 'echo starting; echo \"$0\"']\n  - name: local-fail\n    command: [sh, -c, 'echo \"{\\\"errorType\\\": \\\"KeyError\\\", \\\"errorMessage\\\": \\\"missing\\\"}\"; exit 3']\n",
    )
    .expect("functions.yaml");
    let functions = LocalFunctions::load(dir.path()).expect("functions");
    assert_eq!(functions.names(), ["local-echo", "local-fail"]);
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    register(&e, aws_at(&lambda), functions, HttpPolicy::default());

    let invoke = "arn:aws:states:::lambda:invoke";
    let done = run(
        &e,
        "lambdas",
        json!({
            "Echo": {"Type": "Task", "Resource": invoke, "ResultPath": "$.echo",
                     "Parameters": {"FunctionName": "echo", "Payload": {"v.$": "$.v"}}, "Next": "Text"},
            "Text": {"Type": "Task", "Resource": invoke, "ResultPath": "$.text",
                     "Parameters": {"FunctionName": "echo", "Payload": "\"HelloWorld\""}, "Next": "Flaky"},
            "Flaky": {"Type": "Task", "Resource": invoke, "ResultSelector": {"p.$": "$.Payload"},
                      "ResultPath": "$.flaky",
                      "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
                                     "Payload": {"again": true}},
                      "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 0, "MaxAttempts": 2}],
                      "Next": "Legacy"},
            "Legacy": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:echo",
                       "Parameters": {"legacy.$": "$.v"}, "ResultPath": "$.legacy", "Next": "Local"},
            "Local": {"Type": "Task", "Resource": invoke, "ResultPath": "$.local",
                      "Parameters": {"FunctionName": "local-echo", "Payload": {"n": 1}}, "Next": "Boom"},
            "Boom": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": "boom"},
                     "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.boom", "Next": "LocalFail"}],
                     "Next": "LocalFail"},
            "LocalFail": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": "local-fail"},
                          "Catch": [{"ErrorEquals": ["KeyError"], "ResultPath": "$.localFail", "Next": "Missing"}],
                          "Next": "Missing"},
            "Missing": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": "nope"},
                        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.missing", "Next": "Done"}],
                        "Next": "Done"},
            "Done": {"Type": "Pass", "End": true}}),
        json!({"v": 7}),
    )
    .await;
    let out = output(&done);
    assert_eq!(out["echo"]["Payload"], json!({"v": 7}));
    assert_eq!(out["echo"]["StatusCode"], json!(200));
    assert_eq!(out["echo"]["ExecutedVersion"], json!("$LATEST"));
    assert_eq!(
        out["text"]["Payload"],
        json!("HelloWorld"),
        "JSON text is sent as it is"
    );
    assert_eq!(
        out["flaky"],
        json!({"p": {"again": true}}),
        "retried after the service error"
    );
    assert_eq!(
        out["legacy"],
        json!({"legacy": 7}),
        "a function ARN's output is the payload"
    );
    assert_eq!(out["local"]["Payload"], json!({"n": 1}));
    assert_eq!(out["boom"]["Error"], json!("ValueError"));
    let cause: Value =
        serde_json::from_str(out["boom"]["Cause"].as_str().unwrap_or("")).expect("cause is JSON");
    assert_eq!(cause["errorMessage"], json!("bad input"));
    assert_eq!(out["localFail"]["Error"], json!("KeyError"));
    assert_eq!(
        out["missing"]["Error"],
        json!("Lambda.ResourceNotFoundException")
    );
    assert!(out["missing"]["Cause"].as_str().is_some_and(|c| c
        .contains("(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException")));

    // aws-sdk:lambda: reads beyond Invoke; an action that is not carried out is
    // States.Runtime, naming it.
    let read = run(
        &e,
        "read",
        json!({"Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:lambda:getFunction",
                       "Parameters": {"FunctionName": "echo"}, "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(
        output(&read)["Configuration"]["FunctionName"],
        json!("echo")
    );
    let refused = run(
        &e,
        "refused",
        json!({"Delete": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:lambda:deleteFunction",
                          "Parameters": {"FunctionName": "echo"}, "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(refused.error.as_deref(), Some("States.Runtime"));
    assert!(refused
        .cause
        .is_some_and(|c| c.contains("'deleteFunction'")));
}

async fn echo(
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"query": q, "key": header("x-api-key"), "trace": header("x-trace"),
               "contentType": header("content-type"), "body": body})
        .to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn http_tasks_call_an_endpoint_and_fail_on_its_status() {
    let api = serve(Router::new().route("/echo", get(echo).post(echo)).route(
        "/missing",
        get(|| async { (StatusCode::NOT_FOUND, "{\"error\": \"no\"}") }),
    ))
    .await;
    let mut connections = HashMap::new();
    connections.insert(
        "local-api".to_string(),
        Connection {
            name: "local-api".into(),
            api_key: Some(ApiKey {
                name: "x-api-key".into(),
                value: "s3cret".into(),
            }),
            ..Connection::default()
        },
    );
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    register(
        &e,
        aws_at("http://127.0.0.1:1"),
        LocalFunctions::default(),
        HttpPolicy {
            allow: vec!["127.0.0.1".into()],
            connections,
        },
    );
    let http = "arn:aws:states:::http:invoke";
    let done = run(
        &e,
        "http",
        json!({
            "Get": {"Type": "Task", "Resource": http, "ResultPath": "$.get",
                    "Parameters": {"ApiEndpoint": format!("{api}/echo"), "Method": "GET",
                                   "QueryParameters": {"page.$": "$.page"},
                                   "Headers": {"x-trace": "t-1"},
                                   "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/local-api/0000"}},
                    "Next": "Form"},
            "Form": {"Type": "Task", "Resource": http, "ResultSelector": {"b.$": "$.ResponseBody"},
                     "ResultPath": "$.form",
                     "Parameters": {"ApiEndpoint": format!("{api}/echo"), "Method": "POST",
                                    "RequestBody": {"a": [1, 2], "b": "x y"},
                                    "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                                                  "RequestEncodingOptions": {"ArrayFormat": "REPEAT"}}},
                     "Next": "Missing"},
            "Missing": {"Type": "Task", "Resource": http,
                        "Parameters": {"ApiEndpoint": format!("{api}/missing"), "Method": "GET"},
                        "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.missing", "Next": "Done"}],
                        "Next": "Done"},
            "Done": {"Type": "Pass", "End": true}}),
        json!({"page": 2}),
    )
    .await;
    let out = output(&done);
    assert_eq!(out["get"]["StatusCode"], json!(200));
    assert_eq!(out["get"]["StatusText"], json!("OK"));
    assert_eq!(out["get"]["ResponseBody"]["query"], json!({"page": "2"}));
    assert_eq!(out["get"]["ResponseBody"]["key"], json!("s3cret"));
    assert_eq!(out["get"]["ResponseBody"]["trace"], json!("t-1"));
    assert!(out["get"]["Headers"]["content-type"].is_array());
    assert_eq!(out["form"]["b"]["body"], json!("a=1&a=2&b=x+y"));
    assert_eq!(
        out["form"]["b"]["contentType"],
        json!("application/x-www-form-urlencoded")
    );
    assert_eq!(out["missing"]["Error"], json!("States.Http.StatusCode.404"));
    // A host the policy does not allow fails the execution (States.Runtime is not caught).
    let refused = run(
        &e,
        "elsewhere",
        json!({"Elsewhere": {"Type": "Task", "Resource": http,
            "Parameters": {"ApiEndpoint": "http://example.com/", "Method": "GET"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": true},
               "Done": {"Type": "Pass", "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(refused.status, "FAILED");
    assert_eq!(refused.error.as_deref(), Some("States.Runtime"));
    assert!(refused.cause.is_some_and(|c| c.contains("example.com")));
}
