//! The web UI at the router: pages render the stored data (escaped), filters live in the URL
//! and change the table, sign-in sends the browser back where it was going, and the detail
//! page's actions run through form posts that need the session's CSRF token.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;
use wfm_core::access::Role;

use crate::app::{router, AppState};
use crate::auth::{secrets, AuthMode};

struct Page {
    status: StatusCode,
    location: String,
    html: String,
}

async fn send(app: &AppState, req: Request<Body>) -> Page {
    let resp = router(app.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Page {
        status,
        location,
        html: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().uri(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).expect("request")
}

fn post_form(uri: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(form.to_string())).expect("request")
}

async fn api(
    app: &AppState,
    method: Method,
    uri: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer wfm_ui-test-admin")
        .body(Body::from(body.to_string()))
        .expect("request");
    let page = send(app, req).await;
    assert!(
        page.status.is_success(),
        "{uri}: {} {}",
        page.status,
        page.html
    );
    serde_json::from_str(&page.html).unwrap_or(serde_json::Value::Null)
}

async fn wait_finished(app: &AppState, id: &str) {
    for _ in 0..400 {
        let wf = app
            .manager
            .store()
            .get_workflow(id)
            .await
            .expect("workflow");
        if wf.status.is_terminal() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{id} never finished");
}

/// A guarded service with an admin token, a definition, a failed workflow with a hostile
/// input and tags, and a succeeded one.
async fn service() -> (AppState, String, String) {
    let app = crate::test_support::app_state_with_sync(AuthMode::Tokens);
    crate::test_support::save_token(&app, "ada", Role::Admin, "wfm_ui-test-admin").await;
    let machine = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Broken"},
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "<b>bold</b> cause"}
    }});
    api(
        &app,
        Method::POST,
        "/workflow-definitions",
        json!({"name": "ui-flow", "stateMachine": machine}),
    )
    .await;
    let failed = api(
        &app,
        Method::POST,
        "/workflows",
        json!({
            "workflowDefinition": {"name": "ui-flow"},
            "input": json!({"ok": false, "note": "<script>alert(1)</script>"}).to_string(),
            "tags": {"team": "<i>ops</i>"}
        }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let ok = api(&app, Method::POST, "/workflows", json!({
        "workflowDefinition": {"name": "ui-flow"}, "input": "{\"ok\": true}", "tags": {"team": "web"}
    }))
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_finished(&app, &failed).await;
    wait_finished(&app, &ok).await;
    (app, failed, ok)
}

/// Signs in through the form; returns the session cookie and its CSRF token.
async fn sign_in(app: &AppState, role: Role) -> (String, String) {
    let secret = secrets::new_token();
    crate::test_support::save_token(app, role.as_str(), role, &secret).await;
    let page = send(
        app,
        post_form(
            "/login",
            None,
            &format!("token={secret}&next=%2Fui%2Fworkflows%3Fstatus%3Dfailed"),
        ),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location, "/ui/workflows?status=failed",
        "back where the visit was going"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"token": secret}).to_string()))
        .expect("request");
    let resp = router(app.clone()).oneshot(req).await.expect("response");
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    (
        cookie,
        body["csrfToken"].as_str().expect("csrf").to_string(),
    )
}

#[tokio::test]
async fn pages_need_a_session_and_send_the_visit_to_sign_in() {
    let (app, _, _) = service().await;
    let page = send(&app, get("/ui/workflows?status=failed", None)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location,
        "/login?next=%2Fui%2Fworkflows%3Fstatus%3Dfailed"
    );
    let form = send(
        &app,
        get(&format!("/login?next={}", "%2Fui%2Fworkflows"), None),
    )
    .await;
    assert!(
        form.html.contains(r#"name="next" value="/ui/workflows""#),
        "{}",
        form.html
    );
    // Only paths of this service are followed after signing in.
    let form = send(&app, get("/login?next=https%3A%2F%2Fevil.example", None)).await;
    assert!(form.html.contains(r#"value="/ui/workflows""#));
    let (cookie, _) = sign_in(&app, Role::Reader).await;
    let page = send(&app, get("/ui/workflows", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("reader · reader"),
        "who is signed in is shown"
    );
    assert!(!page.html.contains("Cancel workflow"));
}

#[tokio::test]
async fn the_workflows_table_follows_the_filters_in_the_url() {
    let (app, failed, ok) = service().await;
    let (cookie, _) = sign_in(&app, Role::Reader).await;
    let all = send(&app, get("/ui/workflows", Some(&cookie))).await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.html.contains(&failed) && all.html.contains(&ok));
    assert!(all.html.contains("2 shown"), "{}", all.html);
    let failed_only = send(&app, get("/ui/workflows?status=failed", Some(&cookie))).await;
    assert!(failed_only.html.contains(&failed) && !failed_only.html.contains(&ok));
    let tagged = send(
        &app,
        get("/ui/workflows?tag=team%3Dweb&columns=team", Some(&cookie)),
    )
    .await;
    assert!(tagged.html.contains(&ok) && !tagged.html.contains(&failed));
    assert!(tagged.html.contains("tag: team"), "the chosen tag column");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let dated = send(
        &app,
        get(
            &format!("/ui/workflows?from={today}&to={today}&resolved=no"),
            Some(&cookie),
        ),
    )
    .await;
    assert!(dated.html.contains(&failed), "created today, unresolved");
    let none = send(
        &app,
        get("/ui/workflows?from=2001-01-01&to=2001-01-02", Some(&cookie)),
    )
    .await;
    assert!(none.html.contains("No workflow matches"));
    let bad = send(&app, get("/ui/workflows?from=yesterday", Some(&cookie))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html.contains("from: &#39;yesterday&#39; is not a date")
            || bad.html.contains("from: 'yesterday' is not a date"),
        "{}",
        bad.html
    );
    // Counts link to their status; the hostile tag value is escaped.
    assert!(all.html.contains("status=failed"));
    let with_tags = send(&app, get("/ui/workflows?columns=team", Some(&cookie))).await;
    assert!(
        with_tags.html.contains("&lt;i&gt;ops&lt;/i&gt;") && !with_tags.html.contains("<i>ops</i>")
    );
    let refreshing = send(&app, get("/ui/workflows?refresh=on", Some(&cookie))).await;
    assert!(refreshing.html.contains(r#"http-equiv="refresh""#));
}

#[tokio::test]
async fn the_detail_page_draws_the_machine_and_escapes_what_it_shows() {
    let (app, failed, _) = service().await;
    let (cookie, _) = sign_in(&app, Role::Operator).await;
    let page = send(&app, get(&format!("/ui/workflows/{failed}"), Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<svg"), "the graph");
    assert!(
        page.html.contains(r#"class="s-failed""#),
        "Broken is drawn failed"
    );
    assert!(
        page.html.contains(r#"class="s-succeeded""#),
        "Check is drawn succeeded"
    );
    assert!(
        !page.html.contains("<script>alert(1)</script>"),
        "the input is escaped"
    );
    assert!(page.html.contains("&lt;script&gt;"));
    assert!(!page.html.contains("<b>bold</b>"), "the cause is escaped");
    assert!(page.html.contains("Resume") && page.html.contains("Mark resolved"));
    assert!(
        page.html.contains("ExecutionStarted")
            && page.html.contains("FailStateEntered")
            && page.html.contains("ExecutionFailed"),
        "the execution history"
    );
    assert!(
        !page.html.contains("Cancel workflow"),
        "a finished workflow cannot be cancelled"
    );
    let missing = send(&app, get("/ui/workflows/nope", Some(&cookie))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_run_from_the_detail_page_with_the_csrf_token() {
    let (app, failed, _) = service().await;
    let (cookie, csrf) = sign_in(&app, Role::Operator).await;
    let base = format!("/ui/workflows/{failed}");

    let forged = send(
        &app,
        post_form(&format!("{base}/resolve"), Some(&cookie), "confirm=yes"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token");
    let unconfirmed = send(
        &app,
        post_form(
            &format!("{base}/resolve"),
            Some(&cookie),
            &format!("_csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(unconfirmed.status, StatusCode::SEE_OTHER);
    assert!(
        unconfirmed.location.contains("problem=confirm"),
        "{}",
        unconfirmed.location
    );
    assert!(
        !app.manager
            .store()
            .get_workflow(&failed)
            .await
            .expect("wf")
            .resolved_by_user
    );

    let resolved = send(
        &app,
        post_form(
            &format!("{base}/resolve"),
            Some(&cookie),
            &format!("_csrf={csrf}&confirm=yes"),
        ),
    )
    .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER);
    assert!(
        resolved.location.contains("done=Marked+resolved"),
        "{}",
        resolved.location
    );
    assert!(
        app.manager
            .store()
            .get_workflow(&failed)
            .await
            .expect("wf")
            .resolved_by_user
    );
    let shown = send(&app, get(&resolved.location, Some(&cookie))).await;
    assert!(shown.html.contains("Marked resolved"));

    let resumed = send(
        &app,
        post_form(
            &format!("{base}/resume"),
            Some(&cookie),
            &format!("_csrf={csrf}&confirm=yes&state=Check&input=%7B%22ok%22%3A+true%7D"),
        ),
    )
    .await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    let new_id = resumed
        .location
        .split("new=")
        .nth(1)
        .expect("the new workflow's id")
        .to_string();
    wait_finished(&app, &new_id).await;
    let new = app.manager.store().get_workflow(&new_id).await.expect("wf");
    assert_eq!(new.retry_for.as_deref(), Some(failed.as_str()));
    assert_eq!(
        new.status.as_str(),
        "succeeded",
        "resumed with the input override"
    );
    let bad_input = send(
        &app,
        post_form(
            &format!("{base}/resume"),
            Some(&cookie),
            &format!("_csrf={csrf}&confirm=yes&state=Check&input=%7Bnope"),
        ),
    )
    .await;
    assert!(
        bad_input.location.contains("problem=input"),
        "{}",
        bad_input.location
    );

    // Cancel a workflow that waits on a task nobody works.
    let machine = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "nobody", "End": true}}});
    api(
        &app,
        Method::POST,
        "/workflow-definitions",
        json!({"name": "waits", "stateMachine": machine}),
    )
    .await;
    let waiting = api(
        &app,
        Method::POST,
        "/workflows",
        json!({"workflowDefinition": {"name": "waits"}}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let page = send(
        &app,
        get(&format!("/ui/workflows/{waiting}"), Some(&cookie)),
    )
    .await;
    assert!(page.html.contains("Cancel workflow"));
    let cancelled = send(
        &app,
        post_form(
            &format!("/ui/workflows/{waiting}/cancel"),
            Some(&cookie),
            &format!("_csrf={csrf}&confirm=yes&reason=wrong+input"),
        ),
    )
    .await;
    assert!(
        cancelled.location.contains("done=Cancelling"),
        "{}",
        cancelled.location
    );
    wait_finished(&app, &waiting).await;
    let wf = app
        .manager
        .store()
        .get_workflow(&waiting)
        .await
        .expect("wf");
    assert_eq!(
        (wf.status.as_str(), wf.status_reason.as_str()),
        ("cancelled", "wrong input")
    );

    // A reader sees no actions and may not post them.
    let (reader_cookie, reader_csrf) = sign_in(&app, Role::Reader).await;
    let denied = send(
        &app,
        post_form(
            &format!("{base}/resolve"),
            Some(&reader_cookie),
            &format!("_csrf={reader_csrf}&confirm=yes"),
        ),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bulk_repair_runs_from_the_repairs_page() {
    let (app, failed, ok) = service().await;
    let (cookie, csrf) = sign_in(&app, Role::Operator).await;
    let page = send(&app, get("/ui/repairs", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Broken") && page.html.contains("Nope"),
        "the group: {}",
        page.html
    );
    let selected = send(
        &app,
        get(
            "/ui/repairs?definition=ui-flow&state=Broken&error=Nope",
            Some(&cookie),
        ),
    )
    .await;
    assert!(selected.html.contains(&failed) && !selected.html.contains(&ok));
    assert!(selected.html.contains("Run on 1 workflows"));

    let form =
        format!("_csrf={csrf}&definition=ui-flow&state=Broken&error=Nope&action=resume&rate=50");
    let unconfirmed = send(&app, post_form("/ui/repairs", Some(&cookie), &form)).await;
    assert!(
        unconfirmed.location.contains("problem=confirm"),
        "{}",
        unconfirmed.location
    );
    let started = send(
        &app,
        post_form("/ui/repairs", Some(&cookie), &format!("{form}&confirm=yes")),
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert!(
        started.location.starts_with("/ui/repairs/"),
        "{}",
        started.location
    );
    let mut progress = String::new();
    for _ in 0..300 {
        progress = send(&app, get(&started.location, Some(&cookie))).await.html;
        if progress.contains("1 of 1 handled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(progress.contains("1 of 1 handled: 1 done"), "{progress}");
    let original = app.manager.store().get_workflow(&failed).await.expect("wf");
    assert_eq!(original.retries.len(), 1, "resumed once");
    let again = send(
        &app,
        post_form("/ui/repairs", Some(&cookie), &format!("{form}&confirm=yes")),
    )
    .await;
    assert!(
        again.location.contains("problem="),
        "the group is empty now: {}",
        again.location
    );
    let missing = send(&app, get("/ui/repairs/nope", Some(&cookie))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_manual_run_starts_a_workflow_and_keeps_what_was_typed_when_refused() {
    let (app, _, _) = service().await;
    let (cookie, csrf) = sign_in(&app, Role::Submitter).await;
    let form = send(&app, get("/ui/runs", Some(&cookie))).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.html.contains(r#"<option value="ui-flow""#),
        "the definition picker"
    );
    assert!(
        form.html.contains("JSON.parse"),
        "the input is checked before it is sent"
    );

    let bad = send(
        &app,
        post_form(
            "/ui/runs",
            Some(&cookie),
            &format!("_csrf={csrf}&definition=ui-flow&input=%7Bnot+json&tags=team%3Dx"),
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("input: not JSON"), "{}", bad.html);
    assert!(
        bad.html.contains("{not json") && bad.html.contains("team=x"),
        "what was typed is kept"
    );

    let started = send(
        &app,
        post_form("/ui/runs", Some(&cookie), &format!("_csrf={csrf}&definition=ui-flow&version=0&namespace=manual&input=%7B%22ok%22%3A+true%7D&tags=team%3Dmanual%0Arun%3D7")),
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.html);
    let id = started
        .location
        .strip_prefix("/ui/workflows/")
        .and_then(|rest| rest.split('?').next())
        .expect("the new workflow's page")
        .to_string();
    wait_finished(&app, &id).await;
    let wf = app.manager.store().get_workflow(&id).await.expect("wf");
    assert_eq!(
        (wf.namespace.as_str(), wf.status.as_str()),
        ("manual", "succeeded")
    );
    assert_eq!(wf.tags.get("run").map(String::as_str), Some("7"));

    let (reader, reader_csrf) = sign_in(&app, Role::Reader).await;
    let denied = send(
        &app,
        post_form(
            "/ui/runs",
            Some(&reader),
            &format!("_csrf={reader_csrf}&definition=ui-flow"),
        ),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn definitions_show_versions_their_graph_and_a_diff() {
    let (app, _, _) = service().await;
    let machine = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Broken"},
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "StillNope"}
    }});
    api(
        &app,
        Method::PUT,
        "/workflow-definitions/ui-flow",
        json!({"stateMachine": machine}),
    )
    .await;
    let (cookie, _) = sign_in(&app, Role::Reader).await;
    let list = send(&app, get("/ui/definitions", Some(&cookie))).await;
    assert!(
        list.html.contains(r#"href="/ui/definitions/ui-flow""#),
        "{}",
        list.html
    );
    let page = send(
        &app,
        get("/ui/definitions/ui-flow?version=1&diff=0", Some(&cookie)),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<svg"), "the graph of the version");
    assert!(page.html.contains("From version 0 to version 1"));
    assert!(
        page.html
            .contains("+      &quot;Error&quot;: &quot;StillNope&quot;")
            || page.html.contains("+      \"Error\": \"StillNope\""),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("-      &quot;Error&quot;: &quot;Nope&quot;")
            || page.html.contains("-      \"Error\": \"Nope\"")
    );
    let missing = send(
        &app,
        get("/ui/definitions/ui-flow?version=9", Some(&cookie)),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unknown = send(&app, get("/ui/definitions/nope", Some(&cookie))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn state_resources_are_created_edited_and_deleted_from_their_page() {
    let (app, _, _) = service().await;
    let (cookie, csrf) = sign_in(&app, Role::Operator).await;
    let arn = "arn%3Aaws%3Astates%3Aus-east-1%3A123456789012%3Aactivity%3Ashop--charge";
    let saved = send(
        &app,
        post_form(
            "/ui/resources",
            Some(&cookie),
            &format!("_csrf={csrf}&namespace=shop&name=charge&uri={arn}"),
        ),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(
        saved.location.contains("done=Saved+shop%2Fcharge"),
        "{}",
        saved.location
    );
    let page = send(&app, get("/ui/resources?namespace=shop", Some(&cookie))).await;
    assert!(
        page.html.contains("shop--charge") && page.html.contains("ActivityARN"),
        "{}",
        page.html
    );
    let edit = send(&app, get("/ui/resources?edit=shop/charge", Some(&cookie))).await;
    assert!(
        edit.html.contains(r#"value="charge""#),
        "the form is filled"
    );
    let bad = send(
        &app,
        post_form(
            "/ui/resources",
            Some(&cookie),
            &format!("_csrf={csrf}&namespace=shop&name=charge&uri="),
        ),
    )
    .await;
    assert!(bad.location.contains("problem=uri"), "{}", bad.location);
    let unconfirmed = send(
        &app,
        post_form(
            "/ui/resources/delete",
            Some(&cookie),
            &format!("_csrf={csrf}&namespace=shop&name=charge"),
        ),
    )
    .await;
    assert!(unconfirmed.location.contains("problem=confirm"));
    assert!(app
        .manager
        .store()
        .get_state_resource("shop", "charge")
        .await
        .is_ok());
    let deleted = send(
        &app,
        post_form(
            "/ui/resources/delete",
            Some(&cookie),
            &format!("_csrf={csrf}&namespace=shop&name=charge&confirm=yes"),
        ),
    )
    .await;
    assert!(
        deleted.location.contains("done=Deleted"),
        "{}",
        deleted.location
    );
    assert!(app
        .manager
        .store()
        .get_state_resource("shop", "charge")
        .await
        .is_err());
    let (reader, _) = sign_in(&app, Role::Reader).await;
    let read_only = send(&app, get("/ui/resources", Some(&reader))).await;
    assert!(
        !read_only.html.contains("Create or replace"),
        "readers get no form"
    );
}
