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

/// Calls an operation without a token (401) and as a reader (403), recording both.
macro_rules! refused {
    ($op:literal, $nobody:ident, $reader:ident, |$c:ident| $call:expr) => {{
        let $c = &$nobody;
        record($op, $call.await);
        let $c = &$reader;
        record($op, $call.await);
    }};
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
        let wf = a
            .get_workflow_by_id()
            .workflow_id(id)
            .send()
            .await
            .expect("get")
            .into_inner();
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
    record("healthCheck", nobody.health_check().send().await);
    record("getSession", nobody.get_session().send().await);
    let me = record("getSession", a.get_session().send().await).expect("session");
    assert_eq!(me.name.as_deref(), Some("bootstrap"));
    let reader = record(
        "newToken",
        a.new_token()
            .body(json!({"name": "reader", "role": "reader"}))
            .send()
            .await,
    )
    .expect("token");
    let reader_secret = reader.token.clone().expect("secret");
    let r = client(&base, Some(&reader_secret));
    record(
        "newToken",
        a.new_token()
            .body(json!({"name": " ", "role": "admin"}))
            .send()
            .await,
    );
    refused!("newToken", nobody, r, |c| c
        .new_token()
        .body(json!({"name": "x", "role": "admin"}))
        .send());
    let tokens = record("getTokens", a.get_tokens().send().await).expect("tokens");
    assert_eq!(tokens.len(), 2);
    refused!("getTokens", nobody, r, |c| c.get_tokens().send());
    let temp = record(
        "newToken",
        a.new_token()
            .body(json!({"name": "temp", "role": "operator"}))
            .send()
            .await,
    )
    .expect("token");
    let temp_id = temp.id.clone().expect("id");
    refused!("revokeToken", nobody, r, |c| c
        .revoke_token()
        .token_id(&temp_id)
        .send());
    record(
        "revokeToken",
        a.revoke_token().token_id(&temp_id).send().await,
    );
    record(
        "revokeToken",
        a.revoke_token().token_id("no-such-token").send().await,
    );
    let login = record(
        "login",
        nobody
            .login()
            .body(json!({"token": reader_secret}))
            .send()
            .await,
    )
    .expect("login");
    assert!(login.csrf_token.is_some());
    record(
        "login",
        nobody.login().body(json!({"token": ""})).send().await,
    );
    record(
        "login",
        nobody
            .login()
            .body(json!({"token": "wfm_unknown"}))
            .send()
            .await,
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
    record("logout", nobody.logout().send().await);

    // Access keys.
    let key = record(
        "newAccessKey",
        a.new_access_key()
            .body(json!({"name": "w", "namespaces": ["billing"]}))
            .send()
            .await,
    )
    .expect("key");
    assert!(key.secret_access_key.is_some());
    record(
        "newAccessKey",
        a.new_access_key()
            .body(json!({"name": "w", "namespaces": []}))
            .send()
            .await,
    );
    refused!("newAccessKey", nobody, r, |c| c
        .new_access_key()
        .body(json!({"name": "w", "namespaces": ["a"]}))
        .send());
    let keys = record("getAccessKeys", a.get_access_keys().send().await).expect("keys");
    assert!(keys.iter().all(|k| serde_json::to_value(k)
        .expect("json")
        .get("secretAccessKey")
        .is_none()));
    refused!("getAccessKeys", nobody, r, |c| c.get_access_keys().send());
    let key_id = key.access_key_id.clone().expect("id");
    refused!("revokeAccessKey", nobody, r, |c| c
        .revoke_access_key()
        .access_key_id(&key_id)
        .send());
    record(
        "revokeAccessKey",
        a.revoke_access_key().access_key_id(&key_id).send().await,
    );
    record(
        "revokeAccessKey",
        a.revoke_access_key().access_key_id("WFMKNONE").send().await,
    );

    // Definitions.
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Fail", "Error": "Boom"}}});
    let def: types::NewWorkflowDefinitionRequest =
        body(json!({"name": "flow", "stateMachine": machine}));
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition().body(def.clone()).send().await,
    )
    .expect("definition");
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition().body(def.clone()).send().await,
    );
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition()
            .body(json!({"name": "bad", "stateMachine": {"StartAt": "Nope", "States": {}}}))
            .send()
            .await,
    );
    refused!("newWorkflowDefinition", nobody, r, |c| c
        .new_workflow_definition()
        .body(def.clone())
        .send());
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition()
            .name("flow")
            .body(def.clone())
            .send()
            .await,
    )
    .expect("v1");
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition()
            .name("nope")
            .body(json!({"stateMachine": machine}))
            .send()
            .await,
    );
    record(
        "updateWorkflowDefinition",
        a.update_workflow_definition()
            .name("flow")
            .body(json!({"stateMachine": {"StartAt": "X", "States": {}}}))
            .send()
            .await,
    );
    refused!("updateWorkflowDefinition", nobody, r, |c| c
        .update_workflow_definition()
        .name("flow")
        .body(def.clone())
        .send());
    let all = record(
        "getWorkflowDefinitions",
        r.get_workflow_definitions().send().await,
    )
    .expect("defs");
    assert_eq!(all.len(), 1);
    record(
        "getWorkflowDefinitions",
        nobody.get_workflow_definitions().send().await,
    );
    let versions = record(
        "getWorkflowDefinitionVersionsByName",
        r.get_workflow_definition_versions_by_name()
            .name("flow")
            .latest(false)
            .send()
            .await,
    )
    .expect("versions");
    assert_eq!(versions.len(), 2);
    record(
        "getWorkflowDefinitionVersionsByName",
        r.get_workflow_definition_versions_by_name()
            .name("nope")
            .send()
            .await,
    );
    record(
        "getWorkflowDefinitionVersionsByName",
        nobody
            .get_workflow_definition_versions_by_name()
            .name("flow")
            .send()
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
        r.get_workflow_definition_by_name_and_version()
            .name("flow")
            .version(1)
            .send()
            .await,
    )
    .expect("v1");
    assert_eq!(v1.version, Some(1));
    record(
        "getWorkflowDefinitionByNameAndVersion",
        r.get_workflow_definition_by_name_and_version()
            .name("flow")
            .version(7)
            .send()
            .await,
    );
    record(
        "getWorkflowDefinitionByNameAndVersion",
        nobody
            .get_workflow_definition_by_name_and_version()
            .name("flow")
            .version(0)
            .send()
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
    let wf = record(
        "startWorkflow",
        a.start_workflow().body(start.clone()).send().await,
    )
    .expect("started");
    assert_eq!(wf.id.as_deref(), Some("wf-1"));
    record(
        "startWorkflow",
        a.start_workflow().body( json!({"workflowDefinition": {"name": "flow"}, "input": "{\"x\": 2}", "id": "wf-1"}), ).send()
        .await,
    );
    record(
        "startWorkflow",
        a.start_workflow()
            .body(json!({"workflowDefinition": {"name": "nope"}}))
            .send()
            .await,
    );
    record(
        "startWorkflow",
        a.start_workflow()
            .body(json!({"workflowDefinition": {"name": "flow"}, "input": "[not json"}))
            .send()
            .await,
    );
    refused!("startWorkflow", nobody, r, |c| c
        .start_workflow()
        .body(start.clone())
        .send());
    let failed = wait_status(&a, "wf-1", types::WorkflowStatus::Failed).await;
    assert!(failed.jobs.iter().any(|j| j.state.as_deref() == Some("B")));
    record(
        "getWorkflowByID",
        r.get_workflow_by_id().workflow_id("wf-1").send().await,
    )
    .expect("wf");
    record(
        "getWorkflowByID",
        r.get_workflow_by_id().workflow_id("nope").send().await,
    );
    record(
        "getWorkflowByID",
        nobody.get_workflow_by_id().workflow_id("wf-1").send().await,
    );

    let listed = record(
        "getWorkflows",
        r.with_tags(&[("team".into(), "a".into())])
            .get_workflows()
            .status("failed")
            .workflow_definition_name("flow")
            .send()
            .await,
    )
    .expect("list");
    assert_eq!(listed.len(), 1);
    let none = r
        .with_tags(&[("team".into(), "b".into())])
        .get_workflows()
        .send()
        .await
        .expect("list")
        .into_inner();
    assert!(none.is_empty(), "tag filters reach the server");
    record(
        "getWorkflows",
        r.get_workflows().status("bogus").send().await,
    );
    record(
        "getWorkflows",
        r.get_workflows()
            .workflow_definition_name("nope")
            .send()
            .await,
    );
    record("getWorkflows", nobody.get_workflows().send().await);
    let counts = record(
        "getWorkflowCounts",
        r.get_workflow_counts()
            .workflow_definition_name("flow")
            .send()
            .await,
    )
    .expect("counts");
    assert_eq!(serde_json::to_value(&counts).expect("json")["failed"], 1);
    record(
        "getWorkflowCounts",
        r.get_workflow_counts().status("bogus").send().await,
    );
    record(
        "getWorkflowCounts",
        nobody.get_workflow_counts().send().await,
    );

    let resumed = record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id()
            .workflow_id("wf-1")
            .body(json!({"StartAt": "A"}))
            .send()
            .await,
    )
    .expect("resumed");
    assert_eq!(resumed.retry_for.as_deref(), Some("wf-1"));
    record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id()
            .workflow_id("wf-1")
            .body(json!({"StartAt": "Nope"}))
            .send()
            .await,
    );
    record(
        "resumeWorkflowByID",
        a.resume_workflow_by_id()
            .workflow_id("nope")
            .body(json!({"StartAt": "A"}))
            .send()
            .await,
    );
    refused!("resumeWorkflowByID", nobody, r, |c| c
        .resume_workflow_by_id()
        .workflow_id("wf-1")
        .body(json!({"StartAt": "A"}))
        .send());

    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id().workflow_id("wf-1").send().await,
    );
    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id().workflow_id("wf-1").send().await,
    );
    record(
        "resolveWorkflowByID",
        a.resolve_workflow_by_id().workflow_id("nope").send().await,
    );
    refused!("resolveWorkflowByID", nobody, r, |c| c
        .resolve_workflow_by_id()
        .workflow_id("wf-1")
        .send());

    let reason: types::CancelReason = body(json!({"reason": "testing"}));
    // A workflow waiting on a task nobody works: cancellable.
    let waiting_machine = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "nobody", "End": true}}});
    record(
        "newWorkflowDefinition",
        a.new_workflow_definition()
            .body(json!({"name": "waits", "stateMachine": waiting_machine}))
            .send()
            .await,
    );
    let waiting = record(
        "startWorkflow",
        a.start_workflow()
            .body(json!({"workflowDefinition": {"name": "waits"}}))
            .send()
            .await,
    )
    .expect("started");
    let waiting_id = waiting.id.expect("id");
    refused!("CancelWorkflow", nobody, r, |c| c
        .cancel_workflow()
        .workflow_id(&waiting_id)
        .body(reason.clone())
        .send());
    record(
        "CancelWorkflow",
        a.cancel_workflow()
            .workflow_id("wf-1")
            .body(reason.clone())
            .send()
            .await,
    ); // failed: 400
    record(
        "CancelWorkflow",
        a.cancel_workflow()
            .workflow_id(&waiting_id)
            .body(reason.clone())
            .send()
            .await,
    );
    record(
        "CancelWorkflow",
        a.cancel_workflow()
            .workflow_id("nope")
            .body(reason.clone())
            .send()
            .await,
    );

    // Bulk repair.
    let plan = record("startRepair", a.start_repair().body(json!({"action": "resolve", "workflowIds": [resumed.id.clone().expect("id")], "dryRun": true})).send().await).expect("plan");
    assert!(plan.is_object());
    let job = record(
        "startRepair",
        a.start_repair()
            .body(
                json!({"action": "resolve", "filter": {"status": ["failed"]}, "ratePerSecond": 1}),
            )
            .send()
            .await,
    )
    .expect("job");
    let repair_id = job["id"].as_str().expect("repair id").to_string();
    record(
        "startRepair",
        a.start_repair()
            .body(json!({"action": "resolve"}))
            .send()
            .await,
    );
    record(
        "startRepair",
        a.start_repair()
            .body(json!({"action": "resolve", "workflowIds": ["no-such-workflow"]}))
            .send()
            .await,
    );
    refused!("startRepair", nobody, r, |c| c
        .start_repair()
        .body(json!({"action": "resolve"}))
        .send());
    record(
        "getRepair",
        r.get_repair().repair_id(&repair_id).send().await,
    )
    .expect("report");
    record("getRepair", r.get_repair().repair_id("nope").send().await);
    record(
        "getRepair",
        nobody.get_repair().repair_id(&repair_id).send().await,
    );
    refused!("stopRepair", nobody, r, |c| c
        .stop_repair()
        .repair_id(&repair_id)
        .send());
    record(
        "stopRepair",
        a.stop_repair().repair_id(&repair_id).send().await,
    );
    record("stopRepair", a.stop_repair().repair_id("nope").send().await);

    // State resources.
    let resource: types::NewStateResource = body(
        json!({"name": "charge", "namespace": "billing", "uri": "arn:aws:states:us-east-1:123456789012:activity:billing--charge"}),
    );
    record(
        "postStateResource",
        a.post_state_resource().body(resource.clone()).send().await,
    )
    .expect("resource");
    record(
        "postStateResource",
        a.post_state_resource()
            .body(json!({"name": "", "namespace": "billing", "uri": ""}))
            .send()
            .await,
    );
    refused!("postStateResource", nobody, r, |c| c
        .post_state_resource()
        .body(resource.clone())
        .send());
    record(
        "putStateResource",
        a.put_state_resource()
            .namespace("billing")
            .name("charge")
            .body(resource.clone())
            .send()
            .await,
    )
    .expect("resource");
    record(
        "putStateResource",
        a.put_state_resource()
            .namespace("billing")
            .name("charge")
            .body(json!({"uri": ""}))
            .send()
            .await,
    );
    refused!("putStateResource", nobody, r, |c| c
        .put_state_resource()
        .namespace("billing")
        .name("charge")
        .body(resource.clone())
        .send());
    record(
        "getStateResource",
        r.get_state_resource()
            .namespace("billing")
            .name("charge")
            .send()
            .await,
    )
    .expect("resource");
    record(
        "getStateResource",
        r.get_state_resource()
            .namespace("billing")
            .name("nope")
            .send()
            .await,
    );
    record(
        "getStateResource",
        nobody
            .get_state_resource()
            .namespace("billing")
            .name("charge")
            .send()
            .await,
    );
    refused!("deleteStateResource", nobody, r, |c| c
        .delete_state_resource()
        .namespace("billing")
        .name("charge")
        .send());
    record(
        "deleteStateResource",
        a.delete_state_resource()
            .namespace("billing")
            .name("charge")
            .send()
            .await,
    );
    record(
        "deleteStateResource",
        a.delete_state_resource()
            .namespace("billing")
            .name("charge")
            .send()
            .await,
    );

    // The audit log.
    let log = record(
        "getAuditLog",
        a.get_audit_log().actor("bootstrap").send().await,
    )
    .expect("log");
    assert!(log.iter().any(|e| e.path.as_deref() == Some("/workflows")));
    record(
        "getAuditLog",
        a.get_audit_log()
            .limit(std::num::NonZeroU64::new(5000).expect("non-zero"))
            .send()
            .await,
    );
    refused!("getAuditLog", nobody, r, |c| c.get_audit_log().send());

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
