//! Router-level tests: the spec and the router agree, and bad input gets a JSON message with
//! the right status and stores nothing. They run the real router over an in-memory store and
//! engine, without a socket.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wfm_core::sfn::{ExecutionDescription, HistoryPage};
use wfm_core::{ManagerConfig, SfnError, StepFunctions, WorkflowManager};
use wfm_engine::{Engine, EngineConfig};
use wfm_store_sqlite::SqliteStore;

use crate::api::ROUTES;
use crate::app::{router, AppState};
use crate::embedded::EmbeddedStepFunctions;

const SPEC: &str = include_str!("../../../api-spec/openapi.yaml");

/// Access control of a service running open (no authentication).
fn open_auth() -> crate::auth::Auth {
    crate::auth::Auth::new(
        crate::auth::AuthMode::None,
        Arc::new(SqliteStore::in_memory().expect("store")),
        false,
    )
}

fn state() -> AppState {
    crate::test_support::app_state(crate::auth::AuthMode::None)
}

async fn call(
    app: &AppState,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .expect("request");
    let resp = router(app.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

fn spec_routes() -> BTreeSet<(String, String)> {
    let spec: Value = serde_yaml::from_str(SPEC).expect("spec parses");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn spec_and_router_agree() {
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        spec_routes(),
        table,
        "api-spec/openapi.yaml and api::ROUTES disagree"
    );
    let spec: Value = serde_yaml::from_str(SPEC).expect("spec parses");
    for (method, path, access) in ROUTES {
        assert_eq!(
            spec["paths"][path][method.to_lowercase()]["x-required-role"].as_str(),
            Some(access.as_str()),
            "{method} {path}: the spec's x-required-role and api::ROUTES disagree"
        );
    }
    let app = state();
    for (method, path, _) in ROUTES {
        if (*method, *path) == ("GET", "/login") {
            continue; // HTML
        }
        let uri = path.replace("{version}", "0").replace(['{', '}'], "");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, body) = call(&app, method.clone(), &uri, Some("{}")).await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not routed"
        );
        assert_ne!(
            body["message"], "no such route",
            "{method} {path} is not routed"
        );
        assert!(
            body.is_null() || body.is_object() || body.is_array(),
            "{method} {path}: {body}"
        );
        if !status.is_success() {
            assert!(
                body["message"].is_string(),
                "{method} {path} answered {status} without a message"
            );
        }
    }
    let (status, body) = call(&app, Method::GET, "/nope", None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such route"))
    );
    let (status, _) = call(&app, Method::PATCH, "/workflows", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

const GOOD_MACHINE: &str = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#;

async fn create_definition(app: &AppState, name: &str) {
    let machine: Value = serde_json::from_str(GOOD_MACHINE).expect("machine");
    create_definition_of(app, name, &machine).await;
}

/// Creates version 0 of `name` running `machine`.
async fn create_definition_of(app: &AppState, name: &str, machine: &Value) {
    let body = json!({"name": name, "stateMachine": machine}).to_string();
    let (status, v) = call(app, Method::POST, "/workflow-definitions", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// Starts a workflow from a request body; returns its id.
async fn start_workflow(app: &AppState, body: &str) -> String {
    let (status, wf) = call(app, Method::POST, "/workflows", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{wf}");
    wf["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn definitions_get_versions_and_conflicts() {
    let app = state();
    create_definition(&app, "flow").await;
    let (status, v) = call(
        &app,
        Method::POST,
        "/workflow-definitions",
        Some(&format!(
            r#"{{"name": "flow", "stateMachine": {GOOD_MACHINE}}}"#
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = call(
        &app,
        Method::PUT,
        "/workflow-definitions/flow",
        Some(&format!(
            r#"{{"stateMachine": {GOOD_MACHINE}, "defaultTags": {{"a": "b"}}}}"#
        )),
    )
    .await;
    assert_eq!(
        (status, v["version"].as_i64()),
        (StatusCode::CREATED, Some(1))
    );
    let (_, v) = call(&app, Method::GET, "/workflow-definitions/flow", None).await;
    assert_eq!(v.as_array().map(|a| a.len()), Some(1));
    assert_eq!(v[0]["version"], 1);
    let (_, v) = call(
        &app,
        Method::GET,
        "/workflow-definitions/flow?latest=false",
        None,
    )
    .await;
    assert_eq!(
        v.as_array()
            .map(|a| a.iter().map(|d| d["version"].as_i64()).collect::<Vec<_>>()),
        Some(vec![Some(1), Some(0)])
    );
    let (status, v) = call(&app, Method::GET, "/workflow-definitions/flow/0", None).await;
    assert_eq!((status, v["version"].as_i64()), (StatusCode::OK, Some(0)));
    let (status, _) = call(&app, Method::GET, "/workflow-definitions/flow/9", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = call(&app, Method::GET, "/workflow-definitions/flow/x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap_or("").contains("version"),
        "{v}"
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        "/workflow-definitions/ghost",
        Some(&format!(r#"{{"stateMachine": {GOOD_MACHINE}}}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_a_400_or_404_naming_the_problem_and_stores_nothing() {
    let app = state();
    create_definition(&app, "flow").await;
    let cases: &[(Method, &str, &str, StatusCode, &str)] = &[
        (
            Method::POST,
            "/workflows",
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid request body",
        ),
        (
            Method::POST,
            "/workflows",
            "",
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "ghost"}}"#,
            StatusCode::NOT_FOUND,
            "ghost",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow", "version": 4}}"#,
            StatusCode::NOT_FOUND,
            "version 4",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow"}, "input": "[1, 2]"}"#,
            StatusCode::BAD_REQUEST,
            "input: must be a JSON object",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow"}, "input": "{oops"}"#,
            StatusCode::BAD_REQUEST,
            "input: not valid JSON",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow"}, "tags": {"n": 5}}"#,
            StatusCode::BAD_REQUEST,
            "tags.n",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow"}, "nmespace": "x"}"#,
            StatusCode::BAD_REQUEST,
            "nmespace",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"version": 1}}"#,
            StatusCode::BAD_REQUEST,
            "workflowDefinition",
        ),
        (
            Method::POST,
            "/workflows",
            r#"{"workflowDefinition": {"name": "flow"}, "namespace": "a b"}"#,
            StatusCode::BAD_REQUEST,
            "namespace",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad", "stateMachine": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}}}"#,
            StatusCode::BAD_REQUEST,
            "$.States.A.Next",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad", "stateMachine": {"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}}}"#,
            StatusCode::BAD_REQUEST,
            "$.States.A.Resource",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad", "stateMachine": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Bogus": 1}}}}"#,
            StatusCode::BAD_REQUEST,
            "$.States.A.Bogus",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad", "defaultTags": {"t": true}, "stateMachine": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}}"#,
            StatusCode::BAD_REQUEST,
            "defaultTags.t",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad name", "stateMachine": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}}"#,
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            Method::POST,
            "/workflow-definitions",
            r#"{"name": "bad"}"#,
            StatusCode::BAD_REQUEST,
            "stateMachine",
        ),
        (
            Method::GET,
            "/workflows?createdAfter=yesterday",
            "",
            StatusCode::BAD_REQUEST,
            "createdAfter",
        ),
        (
            Method::GET,
            "/workflow-counts?status=nope",
            "",
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            Method::GET,
            "/workflows?workflowDefinitionName=flow&limit=0",
            "",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            Method::GET,
            "/workflows?workflowDefinitionName=flow&status=done",
            "",
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            Method::GET,
            "/workflows?workflowDefinitionName=flow&pageToken=zzz",
            "",
            StatusCode::BAD_REQUEST,
            "pageToken",
        ),
        (
            Method::GET,
            "/workflows?workflowDefinitionName=flow&oldestFirst=maybe",
            "",
            StatusCode::BAD_REQUEST,
            "oldestFirst",
        ),
        (
            Method::GET,
            "/workflows/nope",
            "",
            StatusCode::NOT_FOUND,
            "nope",
        ),
        (
            Method::PUT,
            "/state-resources/ns/r",
            r#"{"uri": ""}"#,
            StatusCode::BAD_REQUEST,
            "uri",
        ),
        (
            Method::PUT,
            "/state-resources/ns/r",
            r#"{"name": "other", "uri": "arn:x"}"#,
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            Method::GET,
            "/state-resources/ns/none",
            "",
            StatusCode::NOT_FOUND,
            "ns/none",
        ),
    ];
    for (method, uri, body, expected, needle) in cases {
        let body = if body.is_empty() && *method == Method::GET {
            None
        } else {
            Some(*body)
        };
        let (status, v) = call(&app, method.clone(), uri, body).await;
        assert_eq!(status, *expected, "{method} {uri} {body:?}: {v}");
        let message = v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {uri}: no message in {v}"));
        assert!(
            message.contains(needle),
            "{method} {uri}: '{message}' does not name '{needle}'"
        );
    }
    let (_, list) = call(
        &app,
        Method::GET,
        "/workflows?workflowDefinitionName=flow",
        None,
    )
    .await;
    assert_eq!(list, json!([]), "a rejected start stored a workflow");
    let (status, _) = call(&app, Method::GET, "/workflow-definitions/bad", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a rejected definition was stored"
    );
    let (_, defs) = call(&app, Method::GET, "/workflow-definitions", None).await;
    assert_eq!(defs.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn start_list_and_page_with_next_page_path() {
    let app = state();
    create_definition(&app, "flow").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = format!(
            r#"{{"workflowDefinition": {{"name": "flow"}}, "input": "", "tags": {{"i": "{i}"}}}}"#
        );
        let (status, v) = call(&app, Method::POST, "/workflows", Some(&body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["input"], "{}");
        assert_eq!(v["queue"], "default");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut uri = "/workflows?workflowDefinitionName=flow&limit=2&summaryOnly=true".to_string();
    loop {
        let req = Request::builder()
            .uri(&uri)
            .body(Body::empty())
            .expect("req");
        let resp = router(app.clone()).oneshot(req).await.expect("resp");
        let next = resp
            .headers()
            .get("X-Next-Page-Path")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let page: Value = serde_json::from_slice(&bytes).expect("json");
        for wf in page.as_array().expect("array") {
            assert!(wf.get("jobs").is_none(), "summaryOnly returned jobs");
            seen.push(wf["id"].as_str().expect("id").to_string());
        }
        match next {
            Some(n) => {
                assert!(
                    n.starts_with("/workflows?")
                        && n.contains("summaryOnly=true")
                        && n.contains("limit=2"),
                    "{n}"
                );
                uri = n;
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

/// The embedded backend, except that every start fails.
struct FailingStart(EmbeddedStepFunctions);

#[async_trait::async_trait]
impl StepFunctions for FailingStart {
    fn activity_arn(&self, name: &str) -> String {
        self.0.activity_arn(name)
    }
    fn state_machine_arn(&self, sm: &str) -> String {
        self.0.state_machine_arn(sm)
    }
    fn execution_arn(&self, sm: &str, name: &str) -> String {
        self.0.execution_arn(sm, name)
    }
    async fn ensure_state_machine(
        &self,
        name: &str,
        def: &wfm_asl::StateMachine,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, SfnError> {
        self.0.ensure_state_machine(name, def, tags).await
    }
    async fn start_execution(&self, _: &str, _: &str, _: &str) -> Result<String, SfnError> {
        Err(SfnError::Other("ServiceUnavailable: try again".into()))
    }
    async fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription, SfnError> {
        self.0.describe_execution(arn).await
    }
    async fn stop_execution(
        &self,
        arn: &str,
        e: Option<&str>,
        c: Option<&str>,
    ) -> Result<(), SfnError> {
        self.0.stop_execution(arn, e, c).await
    }
    async fn execution_history_page(
        &self,
        arn: &str,
        t: Option<&str>,
    ) -> Result<HistoryPage, SfnError> {
        self.0.execution_history_page(arn, t).await
    }
}

#[tokio::test]
async fn a_failed_start_removes_the_stored_workflow_and_surfaces_the_error() {
    let engine = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    let manager = WorkflowManager::new(
        Arc::new(SqliteStore::in_memory().expect("store")),
        Arc::new(FailingStart(EmbeddedStepFunctions::new(
            engine.clone(),
            "arn:role",
        ))),
        ManagerConfig::default(),
    );
    let app = AppState {
        manager,
        engine,
        activity_poll_wait: Duration::from_millis(10),
        repairs: Default::default(),
        auth: open_auth(),
    };
    create_definition(&app, "flow").await;
    let (status, v) = call(
        &app,
        Method::POST,
        "/workflows",
        Some(r#"{"workflowDefinition": {"name": "flow"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("ServiceUnavailable"),
        "{v}"
    );
    let (_, list) = call(
        &app,
        Method::GET,
        "/workflows?workflowDefinitionName=flow",
        None,
    )
    .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_pinned_version_runs_that_version_and_minus_one_the_latest() {
    let app = state();
    create_definition(&app, "flow").await;
    let v1 =
        r#"{"stateMachine": {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}}"#;
    let (status, _) = call(&app, Method::PUT, "/workflow-definitions/flow", Some(v1)).await;
    assert_eq!(status, StatusCode::CREATED);
    for (version, start_at) in [(0, "A"), (1, "B"), (-1, "B")] {
        let body = format!(r#"{{"workflowDefinition": {{"name": "flow", "version": {version}}}}}"#);
        let (status, v) = call(&app, Method::POST, "/workflows", Some(&body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(
            v["workflowDefinition"]["stateMachine"]["StartAt"], start_at,
            "version {version}"
        );
    }
}

/// A state whose engine pushes execution changes into the store, as the service runs it.
fn state_with_sync() -> AppState {
    crate::test_support::app_state_with_sync(crate::auth::AuthMode::None)
}

async fn wait_status(app: &AppState, id: &str, status: &str) -> Value {
    for _ in 0..400 {
        let (_, v) = call(app, Method::GET, &format!("/workflows/{id}"), None).await;
        if v["status"] == status {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("workflow {id} did not become {status}");
}

/// Answers the next task of `default--work` with `output`; returns its token.
async fn answer_work(app: &AppState, output: &str) -> String {
    let arn = app.engine.activity_arn("default--work");
    let task = app
        .engine
        .get_activity_task(&arn, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("a task");
    app.engine
        .send_task_success(&task.task_token, output)
        .await
        .expect("success");
    task.task_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_cancel_resolve_and_resume() {
    let app = state_with_sync();
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "work", "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Broken"},
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "NotOk", "Cause": "ok was false"}}});
    create_definition_of(&app, "ops", &machine).await;

    // A workflow that fails at Broken.
    let id1 = start_workflow(
        &app,
        r#"{"workflowDefinition": {"name": "ops"}, "input": "{\"n\": 1}"}"#,
    )
    .await;
    answer_work(&app, r#"{"ok": false}"#).await;
    let failed = wait_status(&app, &id1, "failed").await;
    assert_eq!(failed["lastJob"]["state"], "Broken");

    let (status, v) = call(
        &app,
        Method::DELETE,
        &format!("/workflows/{id1}"),
        Some(r#"{"reason": "x"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("failed"),
        "{v}"
    );

    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/workflows/{id1}/resolved"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/workflows/{id1}/resolved"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(&app, Method::POST, "/workflows/nope/resolved", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Resume from Check: the input is what Check received; Work is pruned away.
    let (status, wf2) = call(
        &app,
        Method::POST,
        &format!("/workflows/{id1}"),
        Some(r#"{"StartAt": "Check"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{wf2}");
    let id2 = wf2["id"].as_str().expect("id").to_string();
    assert_eq!(wf2["retryFor"], id1.as_str());
    assert_eq!(
        wf2["workflowDefinition"]["stateMachine"]["StartAt"],
        "Check"
    );
    assert!(wf2["workflowDefinition"]["stateMachine"]["States"]
        .get("Work")
        .is_none());
    assert_eq!(
        serde_json::from_str::<Value>(wf2["input"].as_str().expect("input")).expect("json"),
        json!({"ok": false})
    );
    wait_status(&app, &id2, "failed").await;
    let (_, original) = call(&app, Method::GET, &format!("/workflows/{id1}"), None).await;
    assert_eq!(original["retries"], json!([id2]));

    // Resume with an input override: now it succeeds.
    let (status, wf3) = call(
        &app,
        Method::POST,
        &format!("/workflows/{id1}"),
        Some(r#"{"StartAt": "Check", "input": "{\"ok\": true}"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{wf3}");
    wait_status(&app, wf3["id"].as_str().expect("id"), "succeeded").await;

    for (body, needle) in [
        (r#"{"StartAt": "Nope"}"#, "not a state"),
        (r#"{"StartAt": "Done"}"#, "no job"),
        (r#"{"StartAt": "Check", "input": "[1]"}"#, "JSON object"),
        (r#"{}"#, "StartAt"),
    ] {
        let (status, v) = call(&app, Method::POST, &format!("/workflows/{id1}"), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(needle),
            "{body}: {v}"
        );
    }

    // A running workflow cannot be resumed; it can be cancelled, with a reason.
    let id4 = start_workflow(&app, r#"{"workflowDefinition": {"name": "ops"}}"#).await;
    let arn = app.engine.activity_arn("default--work");
    let task = app
        .engine
        .get_activity_task(&arn, None, Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/workflows/{id4}"),
        Some(r#"{"StartAt": "Check"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/workflows/{id4}"),
        Some(r#"{"reason": "operator says no"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = wait_status(&app, &id4, "cancelled").await;
    assert_eq!(cancelled["statusReason"], "operator says no");
    assert_eq!(cancelled["resolvedByUser"], true);
    assert_eq!(cancelled["jobs"][0]["status"], "aborted_by_user");
    assert!(matches!(
        app.engine.send_task_success(&task.task_token, "{}").await,
        Err(wfm_engine::EngineError::TaskTimedOut(_))
    ));
}

#[tokio::test]
async fn a_client_chosen_id_makes_the_start_idempotent() {
    let app = state();
    create_definition(&app, "flow").await;
    let body = r#"{"workflowDefinition": {"name": "flow"}, "id": "order-42", "input": "{\"a\": 1}", "tags": {"t": "x"}}"#;
    let (status, first) = call(&app, Method::POST, "/workflows", Some(body)).await;
    assert_eq!(
        (status, first["id"].as_str()),
        (StatusCode::OK, Some("order-42")),
        "{first}"
    );
    // The same request again (input spelled differently) returns the same workflow.
    let again = r#"{"workflowDefinition": {"name": "flow", "version": 0}, "id": "order-42", "input": "{ \"a\" : 1 }", "tags": {"t": "x"}}"#;
    let (status, second) = call(&app, Method::POST, "/workflows", Some(again)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["createdAt"], first["createdAt"]);
    // Another request with the id is a conflict, and changes nothing.
    let other =
        r#"{"workflowDefinition": {"name": "flow"}, "id": "order-42", "input": "{\"a\": 2}"}"#;
    let (status, v) = call(&app, Method::POST, "/workflows", Some(other)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (_, list) = call(
        &app,
        Method::GET,
        "/workflows?workflowDefinitionName=flow",
        None,
    )
    .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (_, stored) = call(&app, Method::GET, "/workflows/order-42", None).await;
    assert_eq!(stored["input"], first["input"]);
    let (status, v) = call(
        &app,
        Method::POST,
        "/workflows",
        Some(r#"{"workflowDefinition": {"name": "flow"}, "id": "no spaces"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").starts_with("id:"),
        "{v}"
    );
}

#[tokio::test]
async fn a_start_cut_short_after_storing_the_workflow_is_finished_by_its_retry() {
    let app = state();
    create_definition(&app, "flow").await;
    let body = r#"{"workflowDefinition": {"name": "flow"}, "id": "cut-1", "input": "{\"a\": 1}"}"#;
    let (status, first) = call(&app, Method::POST, "/workflows", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // As if the service had died after storing the workflow and before starting its
    // execution: a stored workflow, queued, with no execution.
    let mut stored = app
        .manager
        .store()
        .get_workflow("cut-1")
        .await
        .expect("stored");
    stored.id = "cut-2".into();
    app.manager
        .store()
        .save_workflow(&stored)
        .await
        .expect("save");
    let retry = body.replace("cut-1", "cut-2");
    let (status, v) = call(&app, Method::POST, "/workflows", Some(&retry)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let arn = app
        .engine
        .state_machine_arn(&wfm_core::conventions::state_machine_name(
            "flow", 0, "default", "A",
        ));
    let execution = arn.replace(":stateMachine:", ":execution:") + ":cut-2";
    let described = app
        .engine
        .describe_execution(&execution)
        .await
        .expect("started");
    assert_eq!(
        serde_json::from_str::<Value>(&described.input).expect("json")["a"],
        1
    );
}

#[tokio::test]
async fn list_filters_and_counts() {
    let app = state();
    create_definition(&app, "flow").await;
    create_definition(&app, "other").await;
    for (def, ns, team) in [("flow", "a", "x"), ("flow", "b", "y"), ("other", "a", "x")] {
        let body = format!(
            r#"{{"workflowDefinition": {{"name": "{def}"}}, "namespace": "{ns}", "tags": {{"team": "{team}"}}}}"#
        );
        let (status, v) = call(&app, Method::POST, "/workflows", Some(&body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let count = |v: &Value| v.as_array().map(Vec::len).unwrap_or(0);
    let (_, all) = call(&app, Method::GET, "/workflows?limit=100", None).await;
    assert_eq!(count(&all), 3, "workflowDefinitionName is optional");
    let (_, v) = call(&app, Method::GET, "/workflows?namespace=a&tag.team=x", None).await;
    assert_eq!(count(&v), 2);
    let (_, v) = call(
        &app,
        Method::GET,
        "/workflows?workflowDefinitionName=flow&tag.team=x&namespace=a",
        None,
    )
    .await;
    assert_eq!(count(&v), 1);
    let (_, v) = call(
        &app,
        Method::GET,
        "/workflows?createdAfter=2000-01-01T00:00:00Z&createdBefore=2001-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(count(&v), 0);
    let (status, counts) = call(&app, Method::GET, "/workflow-counts?namespace=a", None).await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    let total: u64 = counts
        .as_object()
        .expect("object")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(total, 2);
    assert!(
        counts.get("cancelled").is_some(),
        "every status is present: {counts}"
    );
}

#[tokio::test]
async fn state_resources_crud() {
    let app = state();
    let (status, v) = call(
        &app,
        Method::PUT,
        "/state-resources/ns/r",
        Some(r#"{"uri": "arn:aws:batch:us-east-1:1:job-definition/x"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["name"].as_str(),
            v["namespace"].as_str(),
            v["type"].as_str()
        ),
        (Some("r"), Some("ns"), Some("JobDefinitionARN"))
    );
    let (status, _) = call(
        &app,
        Method::POST,
        "/state-resources",
        Some(r#"{"name": "q", "namespace": "ns", "uri": "arn:x"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = call(&app, Method::GET, "/state-resources/ns/q", None).await;
    assert_eq!((status, v["uri"].as_str()), (StatusCode::OK, Some("arn:x")));
    let (status, _) = call(&app, Method::DELETE, "/state-resources/ns/q", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Method::DELETE, "/state-resources/ns/q", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_workflow_whose_execution_never_appears_fails_after_the_grace_period() {
    let app = state();
    let def = wfm_core::store_suite::sample_definition("zombie", 0);
    let mut wf = wfm_core::store_suite::sample_workflow("zombie-1", &def);
    wf.last_updated = chrono::Utc::now() - chrono::Duration::minutes(10);
    app.manager.store().save_workflow(&wf).await.expect("save");
    let mut young = wfm_core::store_suite::sample_workflow("zombie-2", &def);
    young.last_updated = chrono::Utc::now();
    app.manager
        .store()
        .save_workflow(&young)
        .await
        .expect("save");

    // Default grace: five minutes.
    let synced = app.manager.sync_workflow("zombie-1").await.expect("sync");
    assert_eq!(synced.status, wfm_core::model::WorkflowStatus::Failed);
    assert_eq!(synced.status_reason, "execution not found");
    let synced = app.manager.sync_workflow("zombie-2").await.expect("sync");
    assert_eq!(
        synced.status,
        wfm_core::model::WorkflowStatus::Queued,
        "a new execution may still appear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_task_shows_its_attempts() {
    let app = state_with_sync();
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "work", "End": true,
                 "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0, "MaxAttempts": 2}]}}});
    create_definition_of(&app, "retried", &machine).await;
    let id = start_workflow(&app, r#"{"workflowDefinition": {"name": "retried"}}"#).await;
    let arn = app.engine.activity_arn("default--work");
    let first = app
        .engine
        .get_activity_task(&arn, Some("w1"), Duration::from_secs(5))
        .await
        .expect("poll")
        .expect("task");
    app.engine
        .send_task_failure(&first.task_token, Some("Flaky"), Some("try again"))
        .await
        .expect("fail");
    answer_work(&app, r#"{"ok": true}"#).await;
    let done = wait_status(&app, &id, "succeeded").await;
    let jobs = done["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "one job per state entered: {done}");
    assert_eq!(jobs[0]["status"], "succeeded");
    let attempts = jobs[0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{done}");
    assert_eq!(attempts[0]["reason"], "try again\nFlaky");
    assert_eq!(attempts[0]["taskARN"], "w1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_repair_dry_run_run_and_stop() {
    let app = state_with_sync();
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "work", "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Broken"},
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "NotOk"}}});
    create_definition_of(&app, "bulk", &machine).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = start_workflow(&app, r#"{"workflowDefinition": {"name": "bulk"}}"#).await;
        answer_work(&app, r#"{"ok": false}"#).await;
        wait_status(&app, &id, "failed").await;
        ids.push(id);
    }
    let running = start_workflow(&app, r#"{"workflowDefinition": {"name": "bulk"}}"#).await;

    // Dry run: the three failed ones would resume from Check; the running one is not picked.
    let filter =
        json!({"workflowDefinitionName": "bulk", "status": ["failed", "running", "queued"]});
    let (status, plan) = call(
        &app,
        Method::POST,
        "/repairs",
        Some(
            &json!({"action": "resume", "startAt": "Check", "filter": filter, "dryRun": true})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["total"], 4);
    let items = plan["items"].as_array().expect("items");
    assert_eq!(
        items.iter().filter(|i| i["skip"].is_null()).count(),
        3,
        "{plan}"
    );
    assert!(items.iter().any(|i| i["workflowId"] == running.as_str()
        && i["skip"].as_str().is_some_and(|s| s.starts_with("still"))));
    let (_, list) = call(
        &app,
        Method::GET,
        "/workflows?workflowDefinitionName=bulk&limit=100",
        None,
    )
    .await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(4),
        "a dry run changed something"
    );

    // A real run resolves them, reporting per workflow.
    let (status, started) = call(
        &app,
        Method::POST,
        "/repairs",
        Some(&json!({"action": "resolve", "workflowIds": ids, "ratePerSecond": 100}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let repair = started["id"].as_str().expect("id").to_string();
    let mut report = Value::Null;
    for _ in 0..200 {
        report = call(&app, Method::GET, &format!("/repairs/{repair}"), None)
            .await
            .1;
        if report["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        (
            report["state"].as_str(),
            report["done"].as_u64(),
            report["failed"].as_u64()
        ),
        (Some("done"), Some(3), Some(0)),
        "{report}"
    );
    for id in &ids {
        let (_, wf) = call(&app, Method::GET, &format!("/workflows/{id}"), None).await;
        assert_eq!(wf["resolvedByUser"], true);
    }

    // A slow run can be stopped.
    let (_, slow) = call(&app, Method::POST, "/repairs",
        Some(&json!({"action": "resume", "startAt": "Check", "workflowIds": ids, "ratePerSecond": 0.5}).to_string())).await;
    let slow_id = slow["id"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = call(&app, Method::DELETE, &format!("/repairs/{slow_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..300 {
        report = call(&app, Method::GET, &format!("/repairs/{slow_id}"), None)
            .await
            .1;
        if report["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(report["state"], "stopped", "{report}");
    assert!(report["processed"].as_u64().unwrap_or(9) < 3, "{report}");
    let (status, v) = call(
        &app,
        Method::POST,
        "/repairs",
        Some(r#"{"action": "resolve"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = call(&app, Method::GET, "/repairs/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
