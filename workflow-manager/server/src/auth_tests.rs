//! Access control at the router: every route against every role, exactly as `api::ROUTES`
//! documents; revocation; sessions and CSRF; the audit log; size limits; refusing to listen
//! beyond loopback without authentication.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wfm_core::access::Role;

use crate::api::ROUTES;
use crate::app::{router, router_with_limit, AppState};
use crate::auth::policy::Access;
use crate::auth::{secrets, AuthMode};

/// A service with token authentication over in-memory storage.
fn guarded() -> AppState {
    crate::test_support::app_state(AuthMode::Tokens)
}

/// Registers a token of `role` straight in the store; returns its secret.
async fn token(app: &AppState, name: &str, role: Role) -> String {
    let secret = secrets::new_token();
    crate::test_support::save_token(app, name, role, &secret).await;
    secret
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(app: &AppState, req: Request<Body>) -> Answer {
    let resp = router(app.clone()).oneshot(req).await.expect("response");
    answer(resp).await
}

async fn answer(resp: axum::response::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        headers,
        body,
    }
}

fn request(method: Method, uri: &str, bearer: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

async fn call(
    app: &AppState,
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    body: &str,
) -> Answer {
    send(app, request(method, uri, bearer, body)).await
}

#[tokio::test]
async fn every_route_answers_every_role_as_documented() {
    let app = guarded();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, token(&app, role.as_str(), role).await));
    }
    let mut checked = 0;
    for (method, path, access) in ROUTES.iter().chain(crate::ui::ROUTES) {
        let uri = path.replace("{version}", "0").replace(['{', '}'], "");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let anonymous = call(&app, m.clone(), &uri, None, "{}").await;
        match access {
            Access::Public => assert!(
                anonymous.status != StatusCode::UNAUTHORIZED
                    && anonymous.status != StatusCode::FORBIDDEN,
                "{method} {path} is public but answered {} without a token",
                anonymous.status
            ),
            Access::Role(_) if *method == "GET" && crate::ui::is_page(path) => {
                assert_eq!(
                    anonymous.status,
                    StatusCode::SEE_OTHER,
                    "{method} {path}: to sign in"
                );
                let to = anonymous
                    .headers
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert!(to.starts_with("/login?next=%2Fui%2F"), "{to}");
            }
            Access::Role(_) => {
                assert_eq!(
                    anonymous.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a token"
                );
                assert!(anonymous.body["message"].is_string());
                assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));
            }
        }
        for (role, secret) in &tokens {
            let got = call(&app, m.clone(), &uri, Some(secret), "{}").await;
            let allowed = match access {
                Access::Public => true,
                Access::Role(required) => role.includes(*required),
            };
            if allowed {
                assert!(
                    got.status != StatusCode::UNAUTHORIZED && got.status != StatusCode::FORBIDDEN,
                    "{method} {path} must be allowed to {}, answered {}: {}",
                    role.as_str(),
                    got.status,
                    got.body
                );
                assert!(
                    !got.status.is_server_error(),
                    "{method} {path} as {}: {}",
                    role.as_str(),
                    got.body
                );
            } else {
                assert_eq!(
                    got.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {}",
                    role.as_str()
                );
                let message = got.body["message"].as_str().unwrap_or("");
                assert!(
                    message.contains(role.as_str()),
                    "the refusal names the role: {message}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        (ROUTES.len() + crate::ui::ROUTES.len()) * Role::ALL.len()
    );
    // An unknown or malformed credential is refused as such.
    let bad = call(&app, Method::GET, "/workflows", Some("wfm_not-a-token"), "").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let basic = send(
        &app,
        Request::builder()
            .uri("/workflows")
            .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert!(basic.body["message"]
        .as_str()
        .unwrap_or("")
        .contains("Bearer"));
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let app = guarded();
    let admin = token(&app, "root", Role::Admin).await;
    let made = call(
        &app,
        Method::POST,
        "/tokens",
        Some(&admin),
        r#"{"name": "svc", "role": "submitter"}"#,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let secret = made.body["token"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    let id = made.body["id"].as_str().expect("id").to_string();
    assert_eq!(made.body["role"], "submitter");
    assert_eq!(made.body["createdBy"], "root");

    let listed = call(&app, Method::GET, "/tokens", Some(&admin), "").await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert_eq!(
        call(&app, Method::GET, "/workflows", Some(&secret), "")
            .await
            .status,
        StatusCode::OK
    );

    // A session made with it ends with it too.
    let signed_in = login(&app, &secret).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let cookie = format!("wfm_session={}", session_cookie(&signed_in));
    assert_eq!(
        send(&app, with_cookie(Method::GET, "/workflows", &cookie))
            .await
            .status,
        StatusCode::OK
    );

    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/tokens/{id}"),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(revoked.body["revokedAt"].is_string());
    let after = call(&app, Method::GET, "/workflows", Some(&secret), "").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    assert_eq!(
        send(&app, with_cookie(Method::GET, "/workflows", &cookie))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let relogin = login(&app, &secret).await;
    assert_eq!(relogin.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, Method::DELETE, "/tokens/nope", Some(&admin), "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad_role = call(
        &app,
        Method::POST,
        "/tokens",
        Some(&admin),
        r#"{"name": "x", "role": "root"}"#,
    )
    .await;
    assert_eq!(bad_role.status, StatusCode::BAD_REQUEST);
    assert!(bad_role.body["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("role:"));

    // Tokens may expire on their own.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let refused = call(
        &app,
        Method::POST,
        "/tokens",
        Some(&admin),
        &json!({"name": "old", "role": "reader", "expiresAt": past}).to_string(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("expiresAt:"));
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let expiring = call(
        &app,
        Method::POST,
        "/tokens",
        Some(&admin),
        &json!({"name": "short", "role": "reader", "expiresAt": soon}).to_string(),
    )
    .await;
    assert_eq!(expiring.status, StatusCode::CREATED, "{}", expiring.body);
    assert!(expiring.body["expiresAt"].is_string());
    let short = expiring.body["token"].as_str().expect("secret");
    assert_eq!(
        call(&app, Method::GET, "/workflows", Some(short), "")
            .await
            .status,
        StatusCode::OK
    );
}

/// Signs in with a token (JSON).
async fn login(app: &AppState, token: &str) -> Answer {
    call(
        app,
        Method::POST,
        "/login",
        None,
        &json!({"token": token}).to_string(),
    )
    .await
}

/// A bodiless request carrying a session cookie (`wfm_session=...`).
fn with_cookie(method: Method, uri: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request")
}

/// The session cookie set by a login answer; checks its attributes.
fn session_cookie(login: &Answer) -> String {
    let set = login
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    set.trim_start_matches("wfm_session=")
        .split(';')
        .next()
        .expect("value")
        .to_string()
}

#[tokio::test]
async fn sessions_need_the_csrf_token_to_change_anything() {
    let app = guarded();
    let operator = token(&app, "olive", Role::Operator).await;
    let signed_in = login(&app, &operator).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert_eq!(signed_in.body["role"], "operator");
    let csrf = signed_in.body["csrfToken"]
        .as_str()
        .expect("csrf")
        .to_string();
    let cookie = format!("wfm_session={}", session_cookie(&signed_in));

    let who = send(&app, with_cookie(Method::GET, "/session", &cookie)).await;
    assert_eq!(
        (who.body["name"].as_str(), who.body["csrfToken"].as_str()),
        (Some("olive"), Some(csrf.as_str()))
    );

    let resource =
        r#"{"name": "r", "namespace": "ns", "uri": "arn:aws:states:us-east-1:1:activity:x"}"#;
    let post = |csrf_header: Option<&str>, origin: Option<&str>| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/state-resources")
            .header(header::COOKIE, &cookie)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = csrf_header {
            b = b.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Body::from(resource)).expect("request")
    };
    let missing = send(&app, post(None, None)).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.body);
    assert!(missing.body["message"]
        .as_str()
        .unwrap_or("")
        .contains("CSRF"));
    assert_eq!(
        send(&app, post(Some("0000"), None)).await.status,
        StatusCode::FORBIDDEN
    );
    let cross_site = send(&app, post(Some(&csrf), Some("https://evil.example"))).await;
    assert_eq!(
        cross_site.status,
        StatusCode::FORBIDDEN,
        "{}",
        cross_site.body
    );
    let ok = send(&app, post(Some(&csrf), Some("http://127.0.0.1:8080"))).await;
    assert!(ok.status.is_success(), "{}: {}", ok.status, ok.body);

    // A form post carries the token as `_csrf`.
    let form = |value: &str| {
        Request::builder()
            .method(Method::DELETE)
            .uri("/state-resources/ns/r")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("_csrf={value}")))
            .expect("request")
    };
    assert_eq!(
        send(&app, form("wrong")).await.status,
        StatusCode::FORBIDDEN
    );
    let deleted = send(&app, form(&csrf)).await;
    assert!(
        deleted.status.is_success(),
        "{}: {}",
        deleted.status,
        deleted.body
    );

    // A bearer token needs no CSRF token: it is not sent by browsers on their own.
    let bearer = call(
        &app,
        Method::POST,
        "/state-resources",
        Some(&operator),
        resource,
    )
    .await;
    assert!(bearer.status.is_success(), "{}", bearer.body);

    // Logging out ends the session.
    let out = send(&app, with_cookie(Method::POST, "/logout", &cookie)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let log = app
        .auth
        .store
        .list_audit(&wfm_core::access::AuditQuery {
            actor: Some("olive".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let seen: Vec<(&str, u16)> = log.iter().map(|e| (e.path.as_str(), e.status)).collect();
    assert_eq!(
        seen,
        [
            ("/logout", 204),
            ("/state-resources", 201),
            ("/state-resources/ns/r", 200),
            ("/state-resources/ns/r", 403),
            ("/state-resources", 201),
            ("/state-resources", 403),
            ("/state-resources", 403),
            ("/state-resources", 403),
            ("/login", 200),
        ],
        "sign-in, sign-out and every mutation tried, refusals included"
    );
    assert!(out
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .contains("Max-Age=0"));
    let after = send(&app, with_cookie(Method::GET, "/workflows", &cookie)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // The plain sign-in form logs in and redirects.
    let form_login = send(
        &app,
        Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={operator}")))
            .expect("request"),
    )
    .await;
    assert_eq!(form_login.status, StatusCode::SEE_OTHER);
    session_cookie(&form_login);
}

#[tokio::test]
async fn every_mutation_is_audited_with_who_and_which_token() {
    let app = guarded();
    let admin = token(&app, "ada", Role::Admin).await;
    let reader = token(&app, "rex", Role::Reader).await;
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let body = json!({"name": "audited", "stateMachine": machine}).to_string();
    let made = call(
        &app,
        Method::POST,
        "/workflow-definitions",
        Some(&admin),
        &body,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let denied = call(
        &app,
        Method::POST,
        "/workflow-definitions",
        Some(&reader),
        &body,
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let _ = call(&app, Method::GET, "/workflows", Some(&reader), "").await;
    let started = call(
        &app,
        Method::POST,
        "/workflows",
        Some(&admin),
        r#"{"workflowDefinition": {"name": "audited"}}"#,
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);

    let log = call(&app, Method::GET, "/audit-log", Some(&admin), "").await;
    assert_eq!(log.status, StatusCode::OK);
    let entries = log.body.as_array().expect("entries");
    let seen: Vec<(String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").to_string(),
                e["method"].as_str().unwrap_or("").to_string(),
                e["path"].as_str().unwrap_or("").to_string(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "ada".to_string(),
                "POST".to_string(),
                "/workflows".to_string(),
                200
            ),
            (
                "rex".into(),
                "POST".into(),
                "/workflow-definitions".into(),
                403
            ),
            (
                "ada".into(),
                "POST".into(),
                "/workflow-definitions".into(),
                201
            ),
        ],
        "newest first, reads not recorded"
    );
    assert_eq!(
        entries[0]["target"], started.body["id"],
        "the started workflow's id"
    );
    assert!(entries[1].get("target").is_none(), "a refusal made nothing");
    assert_eq!(
        entries[2]["target"], "audited:0",
        "the definition version made"
    );
    assert!(entries
        .iter()
        .all(|e| e["credentialId"].is_string() && e["at"].is_string()));
    let mine = call(
        &app,
        Method::GET,
        "/audit-log?actor=rex&limit=1",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(mine.body.as_array().map(Vec::len), Some(1));
    assert!(mine.headers.contains_key("x-next-page-path"));
    let forbidden = call(&app, Method::GET, "/audit-log", Some(&reader), "").await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn limits_answer_clear_errors_and_store_nothing() {
    let app = guarded();
    let admin = token(&app, "ada", Role::Admin).await;
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let body = json!({"name": "lim", "stateMachine": machine}).to_string();
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/workflow-definitions",
            Some(&admin),
            &body
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let message = |a: &Answer| a.body["message"].as_str().unwrap_or("").to_string();

    let big_input = json!({"workflowDefinition": {"name": "lim"}, "input": json!({"x": "a".repeat(300_000)}).to_string()});
    let a = call(
        &app,
        Method::POST,
        "/workflows",
        Some(&admin),
        &big_input.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(message(&a).starts_with("input:"), "{}", message(&a));

    let tags: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let a = call(
        &app,
        Method::POST,
        "/workflows",
        Some(&admin),
        &json!({"workflowDefinition": {"name": "lim"}, "tags": tags}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(message(&a).starts_with("tags:"), "{}", message(&a));
    let long_value = json!({"workflowDefinition": {"name": "lim"}, "tags": {"k": "v".repeat(257)}});
    let a = call(
        &app,
        Method::POST,
        "/workflows",
        Some(&admin),
        &long_value.to_string(),
    )
    .await;
    assert!(message(&a).starts_with("tags.k:"), "{}", message(&a));

    let mut states = serde_json::Map::new();
    for i in 0..10_001 {
        let next = if i == 10_000 {
            json!({"Type": "Succeed"})
        } else {
            json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), next);
    }
    let huge = json!({"name": "huge", "stateMachine": {"StartAt": "S0", "States": states}});
    let a = call(
        &app,
        Method::POST,
        "/workflow-definitions",
        Some(&admin),
        &huge.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        message(&a).starts_with("stateMachine:") && message(&a).contains("states"),
        "{}",
        message(&a)
    );

    let a = call(
        &app,
        Method::GET,
        "/workflows?limit=10001",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(message(&a).starts_with("limit:"));

    // A body over the service's limit: 413, as JSON.
    let small = router_with_limit(app.clone(), 1024);
    let resp = small
        .oneshot(request(
            Method::POST,
            "/workflows",
            Some(&admin),
            &"x".repeat(4096),
        ))
        .await
        .expect("response");
    let a = answer(resp).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message(&a).contains("limit"), "{}", a.body);

    let listed = call(&app, Method::GET, "/workflows", Some(&admin), "").await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(0),
        "nothing refused was stored"
    );
    let defs = call(&app, Method::GET, "/workflow-definitions", Some(&admin), "").await;
    assert_eq!(defs.body.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn beyond_loopback_it_refuses_to_start_without_authentication() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::Config::isolated(dir.path());
    config.listen = "0.0.0.0:0".parse().expect("addr");
    let refused = crate::start(&config).await.err().expect("refused");
    let text = refused.to_string();
    assert!(
        text.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{text}"
    );
    assert!(text.contains("--auth tokens"), "{text}");

    config.auth = AuthMode::Tokens;
    config.admin_token = Some("short".into());
    assert!(crate::start(&config)
        .await
        .err()
        .expect("short")
        .to_string()
        .contains("at least 20"));
    config.admin_token = Some("a-long-enough-bootstrap-secret".into());
    let running = crate::start(&config)
        .await
        .expect("starts with authentication");
    let url = format!("http://127.0.0.1:{}", running.addr.port());
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{url}/workflows"))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status().as_u16(), 401);
    let admin = http
        .get(format!("{url}/session"))
        .bearer_auth("a-long-enough-bootstrap-secret")
        .send()
        .await
        .expect("get");
    let who: Value = admin.json().await.expect("json");
    assert_eq!(
        (who["name"].as_str(), who["role"].as_str()),
        (Some("bootstrap"), Some("admin"))
    );
    // Registered once: a restart with the same secret keeps the same token.
    running.stop().await;
    let running = crate::start(&config).await.expect("restarts");
    let url = format!("http://127.0.0.1:{}", running.addr.port());
    let tokens: Value = http
        .get(format!("{url}/tokens"))
        .bearer_auth("a-long-enough-bootstrap-secret")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = tokens
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "{tokens}");
    let revoked = http
        .delete(format!("{url}/tokens/{}", ids[0]))
        .bearer_auth("a-long-enough-bootstrap-secret")
        .send()
        .await
        .expect("delete");
    assert_eq!(revoked.status().as_u16(), 200);
    running.stop().await;
    // Once revoked it stays revoked: the same secret does not bring it back.
    let refused = crate::start(&config).await.err().expect("refused");
    assert!(refused.to_string().contains("was revoked"), "{refused}");
}
