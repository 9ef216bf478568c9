//! Compatibility with clients generated from Clever's `swagger.yml` (0.14, their wag Go and JS
//! clients): requests of exactly their shape (Go's `omitempty` leaves zero values out), and
//! answers checked against their models: the routes, the status codes (201 for creations and
//! `resolved`, 200 for cancel and delete), the JSON names and types, `{"message"}` errors, and
//! paging by following `X-Next-Page-Path` as their iterator does. Extra fields are allowed (both
//! clients ignore unknown fields); a field of theirs with another type is not.

use serde_json::{json, Value};

/// A field type of Clever's models.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    DateTime,
    Int,
    Bool,
    Object,
    Array,
    OneOf(&'static [&'static str]),
}

const WORKFLOW_STATUS: &[&str] = &["queued", "running", "failed", "succeeded", "cancelled"];
const JOB_STATUS: &[&str] = &[
    "created",
    "queued",
    "waiting_for_deps",
    "running",
    "succeeded",
    "failed",
    "aborted_deps_failed",
    "aborted_by_user",
];

const DEFINITION: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("version", Kind::Int),
    ("name", Kind::Str),
    ("createdAt", Kind::DateTime),
    ("manager", Kind::OneOf(&["step-functions"])),
    ("stateMachine", Kind::Object),
    ("defaultTags", Kind::Object),
];

const WORKFLOW: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("createdAt", Kind::DateTime),
    ("stoppedAt", Kind::DateTime),
    ("lastUpdated", Kind::DateTime),
    ("workflowDefinition", Kind::Object),
    ("status", Kind::OneOf(WORKFLOW_STATUS)),
    ("namespace", Kind::Str),
    ("queue", Kind::Str),
    ("input", Kind::Str),
    ("resolvedByUser", Kind::Bool),
    ("retryFor", Kind::Str),
    ("retries", Kind::Array),
    ("tags", Kind::Object),
    ("lastJob", Kind::Object),
    ("statusReason", Kind::Str),
    ("output", Kind::Str),
    ("jobs", Kind::Array),
];

const JOB: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("attempts", Kind::Array),
    ("container", Kind::Str),
    ("createdAt", Kind::DateTime),
    ("input", Kind::Str),
    ("name", Kind::Str),
    ("output", Kind::Str),
    ("queue", Kind::Str),
    ("startedAt", Kind::DateTime),
    ("state", Kind::Str),
    ("stateResource", Kind::Object),
    ("status", Kind::OneOf(JOB_STATUS)),
    ("statusReason", Kind::Str),
    ("stoppedAt", Kind::DateTime),
];

const STATE_RESOURCE: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("namespace", Kind::Str),
    ("uri", Kind::Str),
    ("lastUpdated", Kind::DateTime),
    (
        "type",
        Kind::OneOf(&[
            "JobDefinitionARN",
            "ActivityARN",
            "LambdaFunctionARN",
            "TaskARN",
        ]),
    ),
];

/// Checks `v` against a model: every field present has the model's type; `required` must be
/// present.
fn check(what: &str, v: &Value, model: &[(&str, Kind)], required: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for r in required {
        assert!(obj.contains_key(*r), "{what}: {r} is missing: {v}");
    }
    for (field, kind) in model {
        let Some(x) = obj.get(*field) else { continue };
        let ok = match kind {
            Kind::Str => x.is_string(),
            Kind::DateTime => x
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            Kind::Int => x.is_i64() || x.is_u64(),
            Kind::Bool => x.is_boolean(),
            Kind::Object => x.is_object(),
            Kind::Array => x.is_array(),
            Kind::OneOf(values) => x.as_str().is_some_and(|s| values.contains(&s)),
        };
        assert!(
            ok,
            "{what}.{field} is not what Clever's clients decode: {x}"
        );
    }
    if let Some(def) = obj.get("workflowDefinition") {
        check(
            &format!("{what}.workflowDefinition"),
            def,
            DEFINITION,
            &["name", "version"],
        );
    }
    for job in obj
        .get("jobs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(
            &format!("{what}.jobs[]"),
            job,
            JOB,
            &["id", "state", "status"],
        );
    }
    if let Some(job) = obj.get("lastJob") {
        check(&format!("{what}.lastJob"), job, JOB, &["state", "status"]);
    }
}

fn check_error(what: &str, v: &Value) {
    assert!(v["message"].is_string(), "{what}: not {{\"message\"}}: {v}");
}

struct Api {
    base: String,
    http: wfm_client::reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let method = wfm_client::reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let next = resp
            .headers()
            .get("x-next-page-path")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        (status, value, next)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clever_client_requests_and_answers_keep_their_shape() {
    let dir = tempfile::tempdir().expect("dir");
    let running = workflow_manager::start(&workflow_manager::Config::isolated(dir.path()))
        .await
        .expect("start");
    let api = Api {
        base: format!("http://{}", running.addr),
        http: wfm_client::reqwest::Client::new(),
    };

    let (status, _, _) = api.call("GET", "/_health", None).await;
    assert_eq!(status, 200);

    // NewWorkflowDefinitionRequest as the Go client marshals it (zero values omitted).
    let request = json!({
        "name": "clever-flow",
        "manager": "step-functions",
        "defaultTags": {"team": "core"},
        "stateMachine": {
            "Version": "1.0",
            "Comment": "made by a wag client",
            "StartAt": "Start",
            "States": {
                "Start": {"Type": "Pass", "Result": "hello", "ResultPath": "$.greeting", "Next": "Check"},
                "Check": {"Type": "Choice", "Choices": [
                    {"Variable": "$.fail", "BooleanEquals": true, "Next": "Broken"}
                ], "Default": "Done"},
                "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "asked to"},
                "Done": {"Type": "Succeed"}
            }
        }
    });
    let (status, def, _) = api
        .call("POST", "/workflow-definitions", Some(request.clone()))
        .await;
    assert_eq!(status, 201, "{def}");
    check(
        "WorkflowDefinition",
        &def,
        DEFINITION,
        &["id", "name", "version", "createdAt", "stateMachine"],
    );
    assert_eq!(def["version"], 0);
    let (status, v1, _) = api
        .call("PUT", "/workflow-definitions/clever-flow", Some(request))
        .await;
    assert_eq!((status, &v1["version"]), (201, &json!(1)));
    let (status, all, _) = api.call("GET", "/workflow-definitions", None).await;
    assert_eq!(status, 200);
    for d in all.as_array().expect("array") {
        check("WorkflowDefinition", d, DEFINITION, &["name", "version"]);
    }
    let (status, versions, _) = api
        .call(
            "GET",
            "/workflow-definitions/clever-flow?latest=false",
            None,
        )
        .await;
    assert_eq!((status, versions.as_array().map(Vec::len)), (200, Some(2)));
    let (status, latest, _) = api
        .call("GET", "/workflow-definitions/clever-flow", None)
        .await;
    assert_eq!((status, &latest[0]["version"]), (200, &json!(1)));
    let (status, one, _) = api
        .call("GET", "/workflow-definitions/clever-flow/0", None)
        .await;
    assert_eq!((status, &one["version"]), (200, &json!(0)));
    let (status, e, _) = api.call("GET", "/workflow-definitions/nope", None).await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);
    let (status, e, _) = api
        .call("GET", "/workflow-definitions/clever-flow/9", None)
        .await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);

    // StartWorkflowRequest, input as a JSON string; idSuffix as embedded Clever used it.
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, wf, _) = api
            .call(
                "POST",
                "/workflows",
                Some(json!({
                    "workflowDefinition": {"name": "clever-flow", "version": 0},
                    "input": format!("{{\"fail\": {}}}", i == 0),
                    "namespace": "clever",
                    "queue": "default",
                    "tags": {"run": i.to_string()},
                    "idSuffix": "-nightly"
                })),
            )
            .await;
        assert_eq!(status, 200, "{wf}");
        check(
            "Workflow",
            &wf,
            WORKFLOW,
            &[
                "id",
                "createdAt",
                "workflowDefinition",
                "status",
                "namespace",
                "queue",
                "input",
            ],
        );
        assert!(wf["id"].as_str().is_some_and(|id| id.ends_with("-nightly")));
        ids.push(wf["id"].as_str().expect("id").to_string());
    }
    let (status, e, _) = api
        .call(
            "POST",
            "/workflows",
            Some(json!({"workflowDefinition": {"name": "nope"}, "input": "{}"})),
        )
        .await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);
    let (status, e, _) = api
        .call(
            "POST",
            "/workflows",
            Some(json!({"workflowDefinition": {"name": "clever-flow"}, "input": "not json"})),
        )
        .await;
    assert_eq!(status, 400);
    check_error("BadRequest", &e);

    // Wait for all five to end (the first fails, the others succeed).
    let mut done = Vec::new();
    for id in &ids {
        let mut wf = Value::Null;
        for _ in 0..400 {
            wf = api.call("GET", &format!("/workflows/{id}"), None).await.1;
            if wf["status"] == "failed" || wf["status"] == "succeeded" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        check("Workflow", &wf, WORKFLOW, &["id", "status", "jobs"]);
        done.push(wf);
    }
    assert_eq!(done[0]["status"], "failed");
    assert_eq!(done[0]["lastJob"]["state"], "Broken");
    assert_eq!(done[1]["status"], "succeeded");

    // getWorkflows, paged as the wag iterator pages: follow X-Next-Page-Path until it is gone.
    let mut path = "/workflows?workflowDefinitionName=clever-flow&limit=2".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page, next) = api.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for wf in page.as_array().expect("array") {
            check("Workflow", wf, WORKFLOW, &["id", "status"]);
            seen.push(wf["id"].as_str().expect("id").to_string());
        }
        pages += 1;
        match next {
            Some(n) => {
                assert!(
                    n.starts_with("/workflows?"),
                    "a path on the same server: {n}"
                );
                path = n;
            }
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every workflow once, newest first");
    assert_eq!(pages, 3);
    let (_, summaries, _) = api
        .call("GET", "/workflows?workflowDefinitionName=clever-flow&summaryOnly=true&status=failed&resolvedByUser=false&oldestFirst=true", None)
        .await;
    let summaries = summaries.as_array().expect("array").clone();
    assert_eq!(summaries.len(), 1);
    check(
        "WorkflowSummary",
        &summaries[0],
        WORKFLOW,
        &["id", "status"],
    );
    assert!(
        summaries[0]
            .get("jobs")
            .is_none_or(|j| j.as_array().is_some_and(Vec::is_empty)),
        "summaryOnly omits jobs"
    );
    let (status, e, _) = api
        .call(
            "GET",
            "/workflows?workflowDefinitionName=clever-flow&limit=10001",
            None,
        )
        .await;
    assert_eq!(status, 400);
    check_error("BadRequest", &e);
    let (status, e, _) = api
        .call("GET", &format!("/workflows/{}x", ids[0]), None)
        .await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);

    // resumeWorkflowByID with WorkflowDefinitionOverrides, resolve (201, then 409), cancel (200).
    let (status, resumed, _) = api
        .call(
            "POST",
            &format!("/workflows/{}", ids[0]),
            Some(json!({"StartAt": "Check"})),
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    check("Workflow", &resumed, WORKFLOW, &["id", "retryFor"]);
    assert_eq!(resumed["retryFor"], ids[0].as_str());
    let (status, body, _) = api
        .call("POST", &format!("/workflows/{}/resolved", ids[0]), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, e, _) = api
        .call("POST", &format!("/workflows/{}/resolved", ids[0]), None)
        .await;
    assert_eq!(status, 409);
    check_error("Conflict", &e);
    let (_, original, _) = api
        .call("GET", &format!("/workflows/{}", ids[0]), None)
        .await;
    assert_eq!(original["resolvedByUser"], true);
    assert_eq!(original["retries"][0], resumed["id"]);
    let waits = json!({"name": "clever-waits", "manager": "step-functions", "stateMachine": {
        "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "nobody-polls", "End": true}}}});
    assert_eq!(
        api.call("POST", "/workflow-definitions", Some(waits))
            .await
            .0,
        201
    );
    let (_, waiting, _) = api
        .call("POST", "/workflows", Some(json!({"workflowDefinition": {"name": "clever-waits"}, "input": "{}", "namespace": "clever"})))
        .await;
    let waiting_id = waiting["id"].as_str().expect("id");
    let (status, _, _) = api
        .call(
            "DELETE",
            &format!("/workflows/{waiting_id}"),
            Some(json!({"reason": "no longer needed"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, e, _) = api
        .call("DELETE", "/workflows/nope", Some(json!({"reason": "x"})))
        .await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);

    // State resources: POST and PUT answer 201 with the resource, DELETE 200.
    let resource = json!({"name": "charge", "namespace": "clever", "uri": "arn:aws:states:us-east-1:123456789012:activity:clever--charge"});
    let (status, saved, _) = api
        .call("POST", "/state-resources", Some(resource.clone()))
        .await;
    assert_eq!(status, 201, "{saved}");
    check(
        "StateResource",
        &saved,
        STATE_RESOURCE,
        &["name", "namespace", "uri", "lastUpdated", "type"],
    );
    assert_eq!(saved["type"], "ActivityARN");
    let (status, saved, _) = api
        .call("PUT", "/state-resources/clever/charge", Some(resource))
        .await;
    assert_eq!(status, 201, "{saved}");
    let (status, got, _) = api
        .call("GET", "/state-resources/clever/charge", None)
        .await;
    assert_eq!(status, 200);
    check(
        "StateResource",
        &got,
        STATE_RESOURCE,
        &["name", "namespace", "uri"],
    );
    let (status, _, _) = api
        .call("DELETE", "/state-resources/clever/charge", None)
        .await;
    assert_eq!(status, 200);
    let (status, e, _) = api
        .call("GET", "/state-resources/clever/charge", None)
        .await;
    assert_eq!(status, 404);
    check_error("NotFound", &e);
    let (status, e, _) = api
        .call(
            "PUT",
            "/state-resources/clever/charge",
            Some(json!({"uri": ""})),
        )
        .await;
    assert_eq!(status, 400);
    check_error("BadRequest", &e);

    running.stop().await;
}
