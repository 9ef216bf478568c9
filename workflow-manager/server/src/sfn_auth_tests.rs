//! The `/sfn` endpoint with `--auth tokens`, through the real service over HTTP and the real
//! aws-sdk-sfn client: requests signed (SigV4) with issued access keys work unchanged, each
//! key only for the activities of its namespaces; bad signatures, unknown and revoked keys are
//! refused with AWS's error codes; the local workers sign with the process's own key.

use std::time::{Duration, Instant};

use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde_json::{json, Value};

use crate::auth::AuthMode;

const ADMIN: &str = "an-admin-secret-for-the-sfn-tests";

struct Service {
    running: crate::Running,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start() -> Service {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = crate::Config::isolated(dir.path());
        config.auth = AuthMode::Tokens;
        config.admin_token = Some(ADMIN.into());
        config.definitions = concat!(env!("CARGO_MANIFEST_DIR"), "/../../definitions").into();
        config.no_local_workers = false;
        let running = crate::start(&config).await.expect("start");
        let url = format!("http://127.0.0.1:{}", running.addr.port());
        Service {
            running,
            url,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn access_key(&self, name: &str, namespaces: &[&str]) -> (String, String) {
        let (status, key) = self
            .call(
                reqwest::Method::POST,
                "/access-keys",
                Some(json!({"name": name, "namespaces": namespaces})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        (
            key["accessKeyId"].as_str().expect("id").to_string(),
            key["secretAccessKey"].as_str().expect("secret").to_string(),
        )
    }

    async fn client(&self, id: &str, secret: &str) -> aws_sdk_sfn::Client {
        wfm_workers::sfn_client_with(
            Some(&format!("{}/sfn", self.url)),
            None,
            Some((id.to_string(), secret.to_string())),
        )
        .await
    }

    async fn wait_for(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, wf) = self
                .call(reqwest::Method::GET, &format!("/workflows/{id}"), None)
                .await;
            if wf["status"] == status {
                return wf;
            }
            assert!(
                Instant::now() < deadline,
                "workflow {id} never became {status}: {wf}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn code<E: ProvideErrorMetadata>(result: Result<impl std::fmt::Debug, E>) -> String {
    match result {
        Ok(v) => format!("succeeded: {v:?}"),
        Err(e) => e.code().unwrap_or("no code").to_string(),
    }
}

#[tokio::test]
async fn access_keys_sign_sfn_calls_and_limit_them_to_their_namespaces() {
    let service = Service::start().await;

    // The local workers (hello-world's greet and shout) sign with the process's own key.
    let (status, wf) = service
        .call(
            reqwest::Method::POST,
            "/workflows",
            Some(json!({"workflowDefinition": {"name": "hello-world"}, "input": "{\"name\": \"Ada\"}"})),
        )
        .await;
    assert_eq!(status, 200, "{wf}");
    let done = service
        .wait_for(wf["id"].as_str().expect("id"), "succeeded")
        .await;
    assert!(
        done["output"]
            .as_str()
            .unwrap_or("")
            .contains("HELLO, ADA!"),
        "{done}"
    );

    let (billing_id, billing_secret) = service.access_key("billing-worker", &["billing"]).await;
    let (ops_id, ops_secret) = service.access_key("ops-worker", &["ops"]).await;
    let billing = service.client(&billing_id, &billing_secret).await;
    let ops = service.client(&ops_id, &ops_secret).await;

    let arn = billing
        .create_activity()
        .name("billing--charge")
        .send()
        .await
        .expect("its own namespace")
        .activity_arn()
        .to_string();
    assert_eq!(
        code(billing.create_activity().name("ops--refund").send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(billing.list_state_machines().send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(ops.get_activity_task().activity_arn(&arn).send().await),
        "AccessDeniedException"
    );

    let forged = service.client(&billing_id, "not-the-secret").await;
    assert_eq!(
        code(forged.list_activities().send().await),
        "InvalidSignatureException"
    );
    let unknown = service.client("WFMKUNKNOWNUNKNOWN00", "x").await;
    assert_eq!(
        code(unknown.list_activities().send().await),
        "UnrecognizedClientException"
    );
    let unsigned = service
        .http
        .post(format!("{}/sfn", service.url))
        .header("x-amz-target", "AWSStepFunctions.ListActivities")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 403);
    let body: Value = unsigned.json().await.expect("json");
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");

    // A task of the billing namespace: only a billing key may take and answer it.
    let machine = json!({"StartAt": "Charge", "States": {"Charge": {"Type": "Task", "Resource": "charge", "End": true}}});
    let (status, def) = service
        .call(
            reqwest::Method::POST,
            "/workflow-definitions",
            Some(json!({"name": "billing-flow", "stateMachine": machine})),
        )
        .await;
    assert_eq!(status, 201, "{def}");
    let (status, wf) = service
        .call(
            reqwest::Method::POST,
            "/workflows",
            Some(json!({"workflowDefinition": {"name": "billing-flow"}, "namespace": "billing", "input": "{}"})),
        )
        .await;
    assert_eq!(status, 200, "{wf}");
    let task = billing
        .get_activity_task()
        .activity_arn(&arn)
        .send()
        .await
        .expect("poll");
    let token = task.task_token().expect("a task").to_string();
    assert_eq!(
        code(
            ops.send_task_success()
                .task_token(&token)
                .output("{}")
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    billing
        .send_task_success()
        .task_token(&token)
        .output(r#"{"charged": true}"#)
        .send()
        .await
        .expect("answer");
    let done = service
        .wait_for(wf["id"].as_str().expect("id"), "succeeded")
        .await;
    assert_eq!(done["output"], r#"{"charged":true}"#);

    // A revoked key stops at once.
    let (status, _) = service
        .call(
            reqwest::Method::DELETE,
            &format!("/access-keys/{billing_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        code(billing.list_activities().send().await),
        "UnrecognizedClientException"
    );

    // The audit log names the key behind each change made through /sfn.
    let (_, log) = service
        .call(
            reqwest::Method::GET,
            "/audit-log?actor=billing-worker",
            None,
        )
        .await;
    let entries = log.as_array().expect("entries");
    assert!(
        entries.iter().any(|e| e["method"] == "sfn"
            && e["path"] == "CreateActivity"
            && e["status"] == 200
            && e["credentialId"] == billing_id.as_str()),
        "{log}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["path"] == "CreateActivity" && e["status"] == 400),
        "the refused one too: {log}"
    );
    service.running.stop().await;
}

#[tokio::test]
async fn a_callback_token_is_answered_only_with_a_key_of_its_namespace() {
    let service = Service::start().await;
    let (billing_id, billing_secret) = service.access_key("billing-answers", &["billing"]).await;
    let (ops_id, ops_secret) = service.access_key("ops-answers", &["ops"]).await;
    let (all_id, all_secret) = service.access_key("reader", &["*"]).await;
    let billing = service.client(&billing_id, &billing_secret).await;
    let ops = service.client(&ops_id, &ops_secret).await;
    let all = service.client(&all_id, &all_secret).await;
    let machine = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "price-orders", "Payload": {"token.$": "$$.Task.Token", "checked": []}},
        "End": true}}});
    let (status, def) = service
        .call(
            reqwest::Method::POST,
            "/workflow-definitions",
            Some(json!({"name": "billing-callback", "stateMachine": machine})),
        )
        .await;
    assert_eq!(status, 201, "{def}");
    let (status, wf) = service
        .call(
            reqwest::Method::POST,
            "/workflows",
            Some(json!({"workflowDefinition": {"name": "billing-callback"}, "namespace": "billing", "input": "{}"})),
        )
        .await;
    assert_eq!(status, 200, "{wf}");
    // The token, from the execution's history (the function got it in its payload).
    let machines = all.list_state_machines().send().await.expect("machines");
    let machine_arn = machines
        .state_machines()
        .iter()
        .find(|m| m.name().starts_with("billing--billing-callback--"))
        .expect("its state machine")
        .state_machine_arn()
        .to_string();
    let token = loop {
        let executions = all
            .list_executions()
            .state_machine_arn(&machine_arn)
            .send()
            .await
            .expect("executions");
        if let Some(e) = executions.executions().first() {
            let history = all
                .get_execution_history()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .expect("history");
            let submitted = history
                .events()
                .iter()
                .any(|ev| ev.r#type().as_str() == "TaskSubmitted");
            let scheduled = history.events().iter().find_map(|ev| {
                ev.task_scheduled_event_details()
                    .map(|d| d.parameters().to_string())
            });
            if let (true, Some(p)) = (submitted, scheduled) {
                let p: Value = serde_json::from_str(&p).expect("parameters");
                break p["Payload"]["token"].as_str().expect("token").to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        code(
            ops.send_task_success()
                .task_token(&token)
                .output("{}")
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    billing
        .send_task_success()
        .task_token(&token)
        .output(r#"{"paid": true}"#)
        .send()
        .await
        .expect("a billing key answers a billing token");
    let done = service
        .wait_for(wf["id"].as_str().expect("id"), "succeeded")
        .await;
    assert_eq!(done["output"], r#"{"paid":true}"#);
}
