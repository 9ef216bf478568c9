//! Property test of the whole REST surface: random bodies, query strings, path segments,
//! content types and credentials on every route never get a 5xx, never panic, and every
//! refusal is JSON `{"message": ...}`. Runs against a guarded service holding data (a
//! definition, workflows, a state resource), as an admin and as nobody.

use axum::body::Body;
use axum::http::{header, Method, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;
use wfm_core::access::Role;

use crate::api::ROUTES;
use crate::app::{router, AppState};
use crate::auth::AuthMode;

const ADMIN: &str = "wfm_fuzz-admin-token";

/// A guarded service with some data, and a runtime to drive it.
fn service() -> (tokio::runtime::Runtime, AppState, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (app, id) = rt.block_on(async {
        let app = crate::test_support::app_state(AuthMode::Tokens);
        crate::test_support::save_token(&app, "fuzzer", Role::Admin, ADMIN).await;
        let def = json!({"name": "fz", "stateMachine": {"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Fail", "Error": "E"}}}});
        let r = send(
            &app,
            Method::POST,
            "/workflow-definitions",
            Some(ADMIN),
            "application/json",
            def.to_string(),
        )
        .await;
        assert_eq!(r.0, 201, "{}", r.1);
        let wf = send(
            &app,
            Method::POST,
            "/workflows",
            Some(ADMIN),
            "application/json",
            json!({"workflowDefinition": {"name": "fz"}, "tags": {"t": "1"}}).to_string(),
        )
        .await;
        let id = wf.1["id"].as_str().expect("id").to_string();
        (app, id)
    });
    (rt, app, id)
}

async fn send(
    app: &AppState,
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: String,
) -> (u16, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let Ok(req) = b.body(Body::from(body)) else {
        return (0, Value::Null); // not a request http can even build
    };
    let resp = router(app.clone()).oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,10}".prop_map(Value::String),
        prop::sample::select(vec![
            "failed",
            "fz",
            "A",
            "B",
            "succeeded",
            "{}",
            "[1]",
            "$.x",
            "*",
            "resume"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the API reads, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "stateMachine",
            "workflowDefinition",
            "input",
            "namespace",
            "queue",
            "tags",
            "id",
            "idSuffix",
            "reason",
            "StartAt",
            "action",
            "filter",
            "ids",
            "dryRun",
            "ratePerSecond",
            "status",
            "resolvedByUser",
            "uri",
            "role",
            "namespaces",
            "token",
            "defaultTags",
            "version",
            "manager",
            "States",
            "Type",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{0,6}",
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        Just(String::new()),
        ".{0,40}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let param = (
        prop_oneof![
            prop::sample::select(vec![
                "limit",
                "pageToken",
                "status",
                "resolvedByUser",
                "createdAfter",
                "createdBefore",
                "tag.t",
                "tag.",
                "namespace",
                "queue",
                "oldestFirst",
                "summaryOnly",
                "latest",
                "workflowDefinitionName",
                "actor",
                "before",
            ])
            .prop_map(str::to_string),
            "[a-z.]{0,5}",
        ],
        prop_oneof![
            "[-0-9]{0,6}".boxed(),
            ".{0,10}".boxed(),
            prop::sample::select(vec![
                "true",
                "false",
                "failed,running",
                "2026-01-01T00:00:00Z",
                "0",
                "-1",
                "99999999999999999999"
            ])
            .prop_map(str::to_string)
            .boxed(),
        ],
    );
    prop::collection::vec(param, 0..4).prop_map(|ps| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(ps)
            .finish()
    })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,12}".boxed(),
        ".{1,8}"
            .prop_map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
            .boxed(),
        Just("fz".to_string()).boxed(),
        Just("0".to_string()).boxed(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_get_a_5xx(
        route in 0..ROUTES.len(),
        segments in prop::collection::vec(segment(), 3),
        use_real_id in any::<bool>(),
        q in query(),
        b in body(),
        content_type in prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
        as_admin in prop::sample::select(vec![true, true, true, false]),
    ) {
        thread_local! {
            static SERVICE: (tokio::runtime::Runtime, AppState, String) = service();
        }
        SERVICE.with(|(rt, app, wf_id)| {
            let (method, template, _) = ROUTES[route];
            let mut path = template.to_string();
            for (i, name) in ["{workflowID}", "{name}", "{version}"].iter().enumerate() {
                let value = if *name == "{workflowID}" && use_real_id { wf_id.clone() } else { segments[i].clone() };
                path = path.replace(name, &value);
            }
            for name in ["{repairID}", "{namespace}", "{tokenID}", "{accessKeyID}"] {
                path = path.replace(name, &segments[0]);
            }
            let uri = if q.is_empty() { path } else { format!("{path}?{q}") };
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let bearer = as_admin.then_some(ADMIN);
            let (status, value) = rt.block_on(send(app, method.clone(), &uri, bearer, content_type, b.clone()));
            prop_assert!(status < 500, "{} {} with {:?} answered {}: {}", method, uri, b, status, value);
            if status >= 400 {
                prop_assert!(value["message"].is_string(), "{} {}: {} without a message: {}", method, uri, status, value);
            }
            Ok(())
        })?;
    }
}
