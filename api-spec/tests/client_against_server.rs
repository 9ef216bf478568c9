//! The generated client against the real server (over HTTP, token authentication on): every
//! operation of `openapi.yaml` is called, every status code it documents is produced, and every
//! answer decodes into the generated types. A status the spec does not document, or a body
//! that does not match its schema, fails the call; a documented status never produced fails
//! the test. So the spec, the server and the client cannot drift apart.
//!
//! A few statuses cannot be produced through a typed client (a malformed boolean or version
//! in the URL, a browser's form post or cross-site `Origin`): those are sent raw, and their
//! bodies decoded into the generated `Error` type.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{json, Value};
use wfm_client::{types, Client, Error, ResponseValue};

const ADMIN: &str = "client-test-admin-token-0123456789";

/// (operationId, status) pairs seen.
static SEEN: Mutex<BTreeSet<(String, u16)>> = Mutex::new(BTreeSet::new());

fn seen(op: &str, status: u16) {
    SEEN.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((op.to_string(), status));
}

/// Records the status of a generated call; panics on an undocumented status or a body that
/// does not match the schema.
fn record<T, E: std::fmt::Debug>(
    op: &str,
    result: Result<ResponseValue<T>, Error<E>>,
) -> Option<T> {
    match result {
        Ok(v) => {
            seen(op, v.status().as_u16());
            Some(v.into_inner())
        }
        Err(Error::ErrorResponse(v)) => {
            seen(op, v.status().as_u16());
            eprintln!("{op}: {} {:?}", v.status(), v.into_inner());
            None
        }
        Err(e) => panic!("{op}: {e:?}"),
    }
}

fn body<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a body of the generated type")
}

fn client(base: &str, token: Option<&str>) -> Client {
    let mut headers = wfm_client::reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        headers.insert(
            wfm_client::reqwest::header::AUTHORIZATION,
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    let http = wfm_client::reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    Client::with_reqwest(base, http)
}

/// A raw request, for the statuses a typed client cannot cause; the body must be the
/// generated `Error` (or empty for a redirect).
async fn raw(op: &str, request: wfm_client::reqwest::RequestBuilder) {
    let resp = request.send().await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    if status >= 400 {
        let e: types::Error = serde_json::from_slice(&bytes).expect("an Error body");
        assert!(!e.message.is_empty());
    }
    seen(op, status);
}

/// Every (operationId, status) the spec documents, but the HTML sign-in form.
fn documented() -> BTreeSet<(String, u16)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("spec");
    let spec: Value = serde_yaml::from_str(&text).expect("yaml");
    let mut out = BTreeSet::new();
    for item in spec["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("item").values() {
            let (Some(id), Some(responses)) =
                (op["operationId"].as_str(), op["responses"].as_object())
            else {
                continue;
            };
            if id == "loginPage" {
                continue;
            }
            for code in responses.keys() {
                out.insert((id.to_string(), code.parse().expect("numeric status")));
            }
        }
    }
    out
}

async fn wait_status(a: &Client, id: &str, status: types::WorkflowStatus) -> types::Workflow {
    for _ in 0..400 {
        let wf = a.get_workflow_by_id(id).await.expect("get").into_inner();
        if wf.status == Some(status) {
            return wf;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("workflow {id} never became {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_status_of_the_spec_through_the_generated_client() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = workflow_manager::Config::isolated(dir.path());
    config.auth = workflow_manager::auth::AuthMode::Tokens;
    config.admin_token = Some(ADMIN.into());
    let running = workflow_manager::start(&config).await.expect("start");
    let base = format!("http://{}", running.addr);
    let a = client(&base, Some(ADMIN));
    let nobody = Client::for_url(&base);
    let http = wfm_client::reqwest::Client::new();

    // Health, sessions, tokens.
    record("healthCheck", nobody.health_check().await);
    record("getSession", nobody.get_session().await);
    let me = record("getSession", a.get_session().await).expect("session");
    assert_eq!(me.name.as_deref(), Some("bootstrap"));
    let reader = record(
        "newToken",
        a.new_token(&body(json!({"name": "reader", "role": "reader"})))
            .await,
    )
    .expect("token");
    let reader_secret = reader.token.clone().expect("secret");
    let r = client(&base, Some(&reader_secret));
    record(
        "newToken",
        a.new_token(&body(json!({"name": " ", "role": "admin"})))
            .await,
    );
    record(
        "newToken",
        nobody
            .new_token(&body(json!({"name": "x", "role": "admin"})))
            .await,
    );
    record(
        "newToken",
        r.new_token(&body(json!({"name": "x", "role": "admin"})))
            .await,
    );
    let tokens = record("getTokens", a.get_tokens().await).expect("tokens");
    assert_eq!(tokens.len(), 2);
    record("getTokens", nobody.get_tokens().await);
    record("getTokens", r.get_tokens().await);
    let temp = record(
        "newToken",
        a.new_token(&body(json!({"name": "temp", "role": "operator"})))
            .await,
    )
    .expect("token");
    let temp_id = temp.id.clone().expect("id");
    record("revokeToken", nobody.revoke_token(&temp_id).await);
    record("revokeToken", r.revoke_token(&temp_id).await);
    record("revokeToken", a.revoke_token(&temp_id).await);
    record("revokeToken", a.revoke_token("no-such-token").await);
    let login = record(
        "login",
        nobody.login(&body(json!({"token": reader_secret}))).await,
    )
    .expect("login");
    assert!(login.csrf_token.is_some());
    record("login", nobody.login(&body(json!({"token": ""}))).await);
    record(
        "login",
        nobody.login(&body(json!({"token": "wfm_unknown"}))).await,
    );
    raw(
        "login",
        http.post(format!("{base}/login"))
            .header("origin", "https://elsewhere.example")
            .json(&json!({"token": ADMIN})),
    )
    .await;
    let no_redirects = wfm_client::reqwest::Client::builder()
        .redirect(wfm_client::reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    raw(
        "login",
        no_redirects
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={ADMIN}")),
    )
    .await;
    record("logout", nobody.logout().await);

    // Access keys.
    let key = record(
        "newAccessKey",
        a.new_access_key(&body(json!({"name": "w", "namespaces": ["billing"]})))
            .await,
    )
    .expect("key");
    assert!(key.secret_access_key.is_some());
    record(
        "newAccessKey",
        a.new_access_key(&body(json!({"name": "w", "namespaces": []})))
            .await,
    );
    record(
        "newAccessKey",
        nobody
            .new_access_key(&body(json!({"name": "w", "namespaces": ["a"]})))
            .await,
    );
    record(
        "newAccessKey",
        r.new_access_key(&body(json!({"name": "w", "namespaces": ["a"]})))
            .await,
    );
    let keys = record("getAccessKeys", a.get_access_keys().await).expect("keys");
    assert!(keys.iter().all(|k| serde_json::to_value(k)
        .expect("json")
        .get("secretAccessKey")
        .is_none()));
    record("getAccessKeys", nobody.get_access_keys().await);
    record("getAccessKeys", r.get_access_keys().await);
    let key_id = key.access_key_id.clone().expect("id");
    record("revokeAccessKey", nobody.revoke_access_key(&key_id).await);
    record("revokeAccessKey", r.revoke_access_key(&key_id).await);
    record("revokeAccessKey", a.revoke_access_key(&key_id).await);
    record("revokeAccessKey", a.revoke_access_key("WFMKNONE").await);

    // Definitions.
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Fail", "Error": "Boom"}}});
    let def: types::NewWorkflowDefinitionRequest =
        body(json!({"name": "flow", "stateMachine": machine}));
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition(&def).await,
    )
    .expect("definition");
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition(&def).await,
    );
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition(&body(
            json!({"name": "bad", "stateMachine": {"StartAt": "Nope", "States": {}}}),
        ))
        .await,
    );
    record(
        "newWorkflowDefinition",
        nobody.new_workflow_definition(&def).await,
    );
    record(
        "newWorkflowDefinition",
        r.new_workflow_definition(&def).await,
    );
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition("flow", &def).await,
    )
    .expect("v1");
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition("nope", &body(json!({"stateMachine": machine})))
            .await,
    );
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition(
            "flow",
            &body(json!({"stateMachine": {"StartAt": "X", "States": {}}})),
        )
        .await,
    );
    record(
        "updateWorkflowDefinition",
        nobody.update_workflow_definition("flow", &def).await,
    );
    record(
        "updateWorkflowDefinition",
        r.update_workflow_definition("flow", &def).await,
    );
    let all = record("getWorkflowDefinitions", r.get_workflow_definitions().await).expect("defs");
    assert_eq!(all.len(), 1);
    record(
        "getWorkflowDefinitions",
        nobody.get_workflow_definitions().await,
    );
    let versions = record(
        "getWorkflowDefinitionVersionsByName",
        r.get_workflow_definition_versions_by_name("flow", Some(false))
            .await,
    )
    .expect("versions");
    assert_eq!(versions.len(), 2);
    record(
        "getWorkflowDefinitionVersionsByName",
        r.get_workflow_definition_versions_by_name("nope", None)
            .await,
    );
    record(
        "getWorkflowDefinitionVersionsByName",
        nobody
            .get_workflow_definition_versions_by_name("flow", None)
            .await,
    );
    raw(
        "getWorkflowDefinitionVersionsByName",
        http.get(format!("{base}/workflow-definitions/flow?latest=perhaps"))
            .bearer_auth(ADMIN),
    )
    .await;
    let v1 = record(
        "getWorkflowDefinitionByNameAndVersion",
        r.get_workflow_definition_by_name_and_version("flow", 1)
            .await,
    )
    .expect("v1");
    assert_eq!(v1.version, Some(1));
    record(
        "getWorkflowDefinitionByNameAndVersion",
        r.get_workflow_definition_by_name_and_version("flow", 7)
            .await,
    );
    record(
        "getWorkflowDefinitionByNameAndVersion",
        nobody
            .get_workflow_definition_by_name_and_version("flow", 0)
            .await,
    );
    raw(
        "getWorkflowDefinitionByNameAndVersion",
        http.get(format!("{base}/workflow-definitions/flow/latest"))
            .bearer_auth(ADMIN),
    )
    .await;

    // Workflows.
    let start: types::StartWorkflowRequest = body(
        json!({"workflowDefinition": {"name": "flow"}, "input": "{\"x\": 1}", "tags": {"team": "a"}, "id": "wf-1"}),
    );
    let wf = record("startWorkflow", a.start_workflow(&start).await).expect("started");
    assert_eq!(wf.id.as_deref(), Some("wf-1"));
    record(
        "startWorkflow",
        a.start_workflow(&body(
            json!({"workflowDefinition": {"name": "flow"}, "input": "{\"x\": 2}", "id": "wf-1"}),
        ))
        .await,
    );
    record(
        "startWorkflow",
        a.start_workflow(&body(json!({"workflowDefinition": {"name": "nope"}})))
            .await,
    );
    record(
        "startWorkflow",
        a.start_workflow(&body(
            json!({"workflowDefinition": {"name": "flow"}, "input": "[not json"}),
        ))
        .await,
    );
    record("startWorkflow", nobody.start_workflow(&start).await);
    record("startWorkflow", r.start_workflow(&start).await);
    let failed = wait_status(&a, "wf-1", types::WorkflowStatus::Failed).await;
    assert!(failed.jobs.iter().any(|j| j.state.as_deref() == Some("B")));
    record("getWorkflowByID", r.get_workflow_by_id("wf-1").await).expect("wf");
    record("getWorkflowByID", r.get_workflow_by_id("nope").await);
    record("getWorkflowByID", nobody.get_workflow_by_id("wf-1").await);

    let listed = record(
        "getWorkflows",
        r.with_tags(&[("team".into(), "a".into())])
            .get_workflows(
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some("failed"),
                None,
                Some("flow"),
            )
            .await,
    )
    .expect("list");
    assert_eq!(listed.len(), 1);
    let none = r
        .with_tags(&[("team".into(), "b".into())])
        .get_workflows(
            None, None, None, None, None, None, None, None, None, None, None,
        )
        .await
        .expect("list")
        .into_inner();
    assert!(none.is_empty(), "tag filters reach the server");
    record(
        "getWorkflows",
        r.get_workflows(
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some("bogus"),
            None,
            None,
        )
        .await,
    );
    record(
        "getWorkflows",
        r.get_workflows(
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some("nope"),
        )
        .await,
    );
    record(
        "getWorkflows",
        nobody
            .get_workflows(
                None, None, None, None, None, None, None, None, None, None, None,
            )
            .await,
    );
    let counts = record(
        "getWorkflowCounts",
        r.get_workflow_counts(None, None, None, None, None, None, Some("flow"))
            .await,
    )
    .expect("counts");
    assert_eq!(serde_json::to_value(&counts).expect("json")["failed"], 1);
    record(
        "getWorkflowCounts",
        r.get_workflow_counts(None, None, None, None, None, Some("bogus"), None)
            .await,
    );
    record(
        "getWorkflowCounts",
        nobody
            .get_workflow_counts(None, None, None, None, None, None, None)
            .await,
    );

    let resumed = record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id("wf-1", &body(json!({"StartAt": "A"})))
            .await,
    )
    .expect("resumed");
    assert_eq!(resumed.retry_for.as_deref(), Some("wf-1"));
    record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id("wf-1", &body(json!({"StartAt": "Nope"})))
            .await,
    );
    record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id("nope", &body(json!({"StartAt": "A"})))
            .await,
    );
    record(
        "resumeWorkflowByID",
        nobody
            .resume_workflow_by_id("wf-1", &body(json!({"StartAt": "A"})))
            .await,
    );
    record(
        "resumeWorkflowByID",
        r.resume_workflow_by_id("wf-1", &body(json!({"StartAt": "A"})))
            .await,
    );

    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id("wf-1").await,
    );
    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id("wf-1").await,
    );
    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id("nope").await,
    );
    record(
        "resolveWorkflowByID",
        nobody.resolve_workflow_by_id("wf-1").await,
    );
    record(
        "resolveWorkflowByID",
        r.resolve_workflow_by_id("wf-1").await,
    );

    let reason: types::CancelReason = body(json!({"reason": "testing"}));
    // A workflow waiting on a task nobody works: cancellable.
    let waiting_machine = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "nobody", "End": true}}});
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition(&body(
            json!({"name": "waits", "stateMachine": waiting_machine}),
        ))
        .await,
    );
    let waiting = record(
        "startWorkflow",
        a.start_workflow(&body(json!({"workflowDefinition": {"name": "waits"}})))
            .await,
    )
    .expect("started");
    let waiting_id = waiting.id.expect("id");
    record(
        "CancelWorkflow",
        nobody.cancel_workflow(&waiting_id, &reason).await,
    );
    record(
        "CancelWorkflow",
        r.cancel_workflow(&waiting_id, &reason).await,
    );
    record("CancelWorkflow", a.cancel_workflow("wf-1", &reason).await); // failed: 400
    record(
        "CancelWorkflow",
        a.cancel_workflow(&waiting_id, &reason).await,
    );
    record("CancelWorkflow", a.cancel_workflow("nope", &reason).await);

    // Bulk repair.
    let plan = record("startRepair", a.start_repair(&body(json!({"action": "resolve", "workflowIds": [resumed.id.clone().expect("id")], "dryRun": true}))).await).expect("plan");
    assert!(plan.is_object());
    let job = record(
        "startRepair",
        a.start_repair(&body(
            json!({"action": "resolve", "filter": {"status": ["failed"]}, "ratePerSecond": 1}),
        ))
        .await,
    )
    .expect("job");
    let repair_id = job["id"].as_str().expect("repair id").to_string();
    record(
        "startRepair",
        a.start_repair(&body(json!({"action": "resolve"}))).await,
    );
    record(
        "startRepair",
        a.start_repair(&body(
            json!({"action": "resolve", "workflowIds": ["no-such-workflow"]}),
        ))
        .await,
    );
    record(
        "startRepair",
        nobody
            .start_repair(&body(json!({"action": "resolve"})))
            .await,
    );
    record(
        "startRepair",
        r.start_repair(&body(json!({"action": "resolve"}))).await,
    );
    record("getRepair", r.get_repair(&repair_id).await).expect("report");
    record("getRepair", r.get_repair("nope").await);
    record("getRepair", nobody.get_repair(&repair_id).await);
    record("stopRepair", nobody.stop_repair(&repair_id).await);
    record("stopRepair", r.stop_repair(&repair_id).await);
    record("stopRepair", a.stop_repair(&repair_id).await);
    record("stopRepair", a.stop_repair("nope").await);

    // State resources.
    let resource: types::NewStateResource = body(
        json!({"name": "charge", "namespace": "billing", "uri": "arn:aws:states:us-east-1:123456789012:activity:billing--charge"}),
    );
    record("postStateResource", a.post_state_resource(&resource).await).expect("resource");
    record(
        "postStateResource",
        a.post_state_resource(&body(
            json!({"name": "", "namespace": "billing", "uri": ""}),
        ))
        .await,
    );
    record(
        "postStateResource",
        nobody.post_state_resource(&resource).await,
    );
    record("postStateResource", r.post_state_resource(&resource).await);
    record(
        "putStateResource",
        a.put_state_resource("billing", "charge", &resource).await,
    )
    .expect("resource");
    record(
        "putStateResource",
        a.put_state_resource("billing", "charge", &body(json!({"uri": ""})))
            .await,
    );
    record(
        "putStateResource",
        nobody
            .put_state_resource("billing", "charge", &resource)
            .await,
    );
    record(
        "putStateResource",
        r.put_state_resource("billing", "charge", &resource).await,
    );
    record(
        "getStateResource",
        r.get_state_resource("billing", "charge").await,
    )
    .expect("resource");
    record(
        "getStateResource",
        r.get_state_resource("billing", "nope").await,
    );
    record(
        "getStateResource",
        nobody.get_state_resource("billing", "charge").await,
    );
    record(
        "deleteStateResource",
        nobody.delete_state_resource("billing", "charge").await,
    );
    record(
        "deleteStateResource",
        r.delete_state_resource("billing", "charge").await,
    );
    record(
        "deleteStateResource",
        a.delete_state_resource("billing", "charge").await,
    );
    record(
        "deleteStateResource",
        a.delete_state_resource("billing", "charge").await,
    );

    // The audit log.
    let log = record(
        "getAuditLog",
        a.get_audit_log(Some("bootstrap"), None, None).await,
    )
    .expect("log");
    assert!(log.iter().any(|e| e.path.as_deref() == Some("/workflows")));
    record(
        "getAuditLog",
        a.get_audit_log(None, None, std::num::NonZeroU64::new(5000))
            .await,
    );
    record("getAuditLog", nobody.get_audit_log(None, None, None).await);
    record("getAuditLog", r.get_audit_log(None, None, None).await);

    let seen = SEEN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let documented = documented();
    let missing: Vec<_> = documented.difference(&seen).collect();
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "documented but never produced: {missing:?}\nproduced but not documented: {undocumented:?}"
    );
    running.stop().await;
}
