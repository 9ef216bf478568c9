//! UI sessions: `POST /login` trades an API token for a session cookie (HttpOnly,
//! SameSite=Strict, Secure behind HTTPS), `POST /logout` ends it, `GET /session` says who is
//! signed in and gives the CSRF token that every cookie-authenticated mutation must carry
//! (header `X-CSRF-Token`, or a `_csrf` field of a form post).

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{secrets, Principal};
use crate::api::error::ApiError;
use crate::app::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "wfm_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// The largest form a CSRF check reads.
const MAX_FORM_BYTES: usize = 1 << 20;

/// The session cookie's value, if the request has one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

fn forbidden(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: message.into(),
    }
}

/// Refuses a request whose `Origin` is not this service (a cross-site form post).
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if origin_host.trim_end_matches('/') == host {
        Ok(())
    } else {
        Err(forbidden(&format!(
            "Origin '{origin}' is not this service ({host}): cross-site requests are refused"
        )))
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Checks the CSRF token of a cookie-authenticated mutation; returns the request (its body
/// read and put back when the token was a form field).
pub async fn check_csrf(request: Request) -> Result<Request, ApiError> {
    check_origin(request.headers())?;
    let expected = cookie(request.headers())
        .map(|s| secrets::csrf_token(&s))
        .ok_or_else(|| forbidden("CSRF check: no session"))?;
    if let Some(sent) = request.headers().get("x-csrf-token") {
        return if sent.as_bytes() == expected.as_bytes() {
            Ok(request)
        } else {
            Err(forbidden(
                "X-CSRF-Token: wrong token for this session (GET /session gives it)",
            ))
        };
    }
    if is_form(request.headers()) {
        let (parts, body) = request.into_parts();
        let bytes = to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the form: {e}")))?;
        let sent = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.into_owned());
        return match sent {
            Some(t) if t == expected => Ok(Request::from_parts(parts, Body::from(bytes))),
            Some(_) => Err(forbidden("_csrf: wrong token for this session")),
            None => Err(forbidden(
                "_csrf: a form post with a session needs its CSRF token",
            )),
        };
    }
    Err(forbidden(
        "CSRF token missing: send X-CSRF-Token (GET /session gives it) with session cookies",
    ))
}

fn session_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("wfm_session=; Max-Age=0"))
}

/// Where a sign-in may send the browser next: a path of this service, else the UI's home.
fn next_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/ui/workflows".to_string(),
    }
}

/// GET /login: the sign-in form (`next`: where to go after).
pub async fn login_page(pairs: crate::api::body::QueryPairs) -> Html<String> {
    let next = next_path(pairs.get("next"));
    let markup = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · workflow-manager" }
                style { "body{font:15px system-ui,sans-serif;background:#f6f7f9;display:flex;justify-content:center;padding-top:12vh}main{background:#fff;border:1px solid #d8dde6;border-radius:6px;padding:20px 24px;max-width:420px;width:100%}label{display:block;margin:12px 0 4px}input{font:inherit;width:100%;padding:6px}button{font:inherit;margin-top:14px;padding:6px 14px;background:#1f5fbf;color:#fff;border:none;border-radius:4px}" }
            }
            body {
                main {
                    h1 { "Sign in" }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// POST /login: `{"token": ...}` (JSON) or `token=...` (form). Answers the signed-in principal
/// (JSON) or sends the browser to `/` (form), setting the session cookie either way.
pub async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match login_inner(&app, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn login_inner(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    check_origin(headers)?;
    let form = is_form(headers);
    let token = if form {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
    }
    .filter(|t| !t.is_empty())
    .ok_or_else(|| ApiError::bad_request("token: an API token is required"))?;
    let auth = &app.auth;
    let found = auth.store.token_by_hash(&secrets::hash(&token)).await?;
    let Some(found) = found else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "token: unknown or revoked".into(),
        });
    };
    let session = secrets::new_session();
    let expires = chrono::Utc::now() + chrono::Duration::hours(SESSION_HOURS);
    auth.store
        .save_session(&secrets::hash(&session), &found.id, expires)
        .await?;
    super::audit::record(
        auth,
        &Principal::Token(found.clone()),
        &axum::http::Method::POST,
        "/login",
        StatusCode::OK,
    )
    .await;
    let cookie = session_cookie(&session, SESSION_HOURS * 3600, auth.cookie_secure);
    let mut response = if form {
        let next = form_urlencoded::parse(body)
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned());
        Redirect::to(&next_path(next.as_deref())).into_response()
    } else {
        Json(json!({
            "name": found.name,
            "role": found.role,
            "tokenId": found.id,
            "csrfToken": secrets::csrf_token(&session),
        }))
        .into_response()
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// POST /logout: ends the session and clears its cookie.
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = cookie(&headers) {
        let hash = secrets::hash(&session);
        let store = &app.auth.store;
        let ended = match store.session_token(&hash, chrono::Utc::now()).await {
            Ok(token) => store.delete_session(&hash).await.map(|()| token),
            Err(e) => Err(e),
        };
        match ended {
            Ok(Some(token)) => {
                super::audit::record(
                    &app.auth,
                    &Principal::Token(token),
                    &axum::http::Method::POST,
                    "/logout",
                    StatusCode::NO_CONTENT,
                )
                .await;
            }
            Ok(None) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, app.auth.cookie_secure),
    );
    response
}

/// GET /session: who is signed in, and the CSRF token when through a session cookie.
pub async fn whoami(
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let mut body = json!({
        "name": principal.actor(),
        "role": principal.role(),
    });
    if let Some(id) = principal.credential_id() {
        body["tokenId"] = json!(id);
    }
    if let Some(session) = cookie(&headers) {
        body["csrfToken"] = json!(secrets::csrf_token(&session));
    }
    Json(body)
}
