//! Access control: who a request comes from (an API token, a UI session, a SigV4 signature
//! with an issued access key, or nobody when the service runs open on a loopback address),
//! what the route needs ([`policy`]), CSRF on cookie-authenticated mutations, and the audit
//! log of every mutation. Handlers never see a request that is not allowed.

pub mod audit;
pub mod policy;
pub mod secrets;
pub mod session;
pub mod sfn;
pub mod sigv4;

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wfm_core::access::{AccessStore, ApiToken, Role};

use crate::api::error::ApiError;
use crate::app::AppState;
use policy::Access;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Nobody is asked who they are (only allowed on a loopback address).
    None,
    /// API tokens, UI sessions, and SigV4 access keys on `/sfn`.
    Tokens,
}

/// What access control needs at request time.
#[derive(Clone)]
pub struct Auth {
    /// The mode.
    pub mode: AuthMode,
    /// Where tokens, keys, sessions and the audit log live.
    pub store: Arc<dyn AccessStore>,
    /// Whether the session cookie is marked `Secure` (served over HTTPS).
    pub cookie_secure: bool,
    /// The access key of the local workers this process starts: made at start, never stored.
    pub local_key: Arc<wfm_core::access::AccessKey>,
}

impl Auth {
    /// Access control in `mode` over `store`, with a fresh key for the local workers.
    pub fn new(mode: AuthMode, store: Arc<dyn AccessStore>, cookie_secure: bool) -> Self {
        let (id, secret) = secrets::new_access_key();
        Self {
            mode,
            store,
            cookie_secure,
            local_key: Arc::new(wfm_core::access::AccessKey {
                access_key_id: id,
                secret_access_key: secret,
                name: "local-workers".into(),
                namespaces: vec!["*".into()],
                created_at: chrono::Utc::now(),
                created_by: "workflow-manager".into(),
                revoked_at: None,
            }),
        }
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Nobody: the service runs open.
    Anonymous,
    /// An API token, sent as a bearer token or through a UI session.
    Token(ApiToken),
}

impl Principal {
    /// The role: open services allow everything.
    pub fn role(&self) -> Role {
        match self {
            Principal::Anonymous => Role::Admin,
            Principal::Token(t) => t.role,
        }
    }

    /// The name the audit log records.
    pub fn actor(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Token(t) => &t.name,
        }
    }

    /// The token id, if any.
    pub fn credential_id(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::Token(t) => Some(&t.id),
        }
    }
}

/// How the principal of a request was found (CSRF applies to cookies only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Open,
    Bearer,
    Cookie,
}

fn unauthenticated(message: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
    }
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"workflow-manager\""),
    );
    r
}

/// Finds the principal of a REST request, if it has one.
async fn identify(auth: &Auth, headers: &HeaderMap) -> Result<Option<(Principal, Via)>, ApiError> {
    if auth.mode == AuthMode::None {
        return Ok(Some((Principal::Anonymous, Via::Open)));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "Authorization: only 'Bearer TOKEN' is accepted here".into(),
            });
        };
        let found = auth
            .store
            .token_by_hash(&secrets::hash(token.trim()))
            .await?;
        return match found {
            Some(t) => Ok(Some((Principal::Token(t), Via::Bearer))),
            None => Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "Authorization: the token is unknown or revoked".into(),
            }),
        };
    }
    if let Some(session) = session::cookie(headers) {
        let found = auth
            .store
            .session_token(&secrets::hash(&session), chrono::Utc::now())
            .await?;
        return Ok(found.map(|t| (Principal::Token(t), Via::Cookie)));
    }
    Ok(None)
}

fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The REST API's gate: authenticates, checks the route's role and CSRF, runs the handler, and
/// records mutations in the audit log. Runs after routing (`route_layer`), so it knows the
/// route; unknown routes answer 404 without it.
pub async fn gate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let access = policy::rest_access(method.as_str(), &route);
    let identified = match identify(&app.auth, request.headers()).await {
        Ok(found) => found,
        Err(e) if access == Access::Public => {
            // A bad credential on a public route (a stale token on the login page) is ignored.
            tracing::debug!(message = %e.message, "credential ignored on a public route");
            None
        }
        Err(e) => return e.into_response(),
    };
    let mut request = request;
    let principal = match (access, identified) {
        (Access::Public, found) => {
            if let Some((p, _)) = found {
                request.extensions_mut().insert(p);
            }
            return next.run(request).await;
        }
        (Access::Role(_), None) if method == Method::GET && crate::ui::is_page(&path) => {
            return crate::ui::to_sign_in(&request);
        }
        (Access::Role(_), None) => {
            return unauthenticated(
                "authentication required: send 'Authorization: Bearer TOKEN' or log in",
            )
        }
        (Access::Role(required), Some((principal, via))) => {
            if !principal.role().includes(required) {
                let denied = ApiError {
                    status: StatusCode::FORBIDDEN,
                    message: format!(
                        "token '{}' has role {}; {} {} needs {}",
                        principal.actor(),
                        principal.role().as_str(),
                        method,
                        route,
                        required.as_str()
                    ),
                }
                .into_response();
                audit::record(&app.auth, &principal, &method, &path, denied.status()).await;
                return denied;
            }
            if via == Via::Cookie && is_mutation(&method) {
                request = match session::check_csrf(request).await {
                    Ok(r) => r,
                    Err(e) => {
                        let denied = e.into_response();
                        audit::record(&app.auth, &principal, &method, &path, denied.status()).await;
                        return denied;
                    }
                };
            }
            principal
        }
    };
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    if is_mutation(&method) {
        let target = response
            .extensions()
            .get::<audit::AuditTarget>()
            .map(|t| t.0.clone());
        audit::record_made(
            &app.auth,
            &principal,
            &method,
            &path,
            response.status(),
            target,
        )
        .await;
    }
    response
}
