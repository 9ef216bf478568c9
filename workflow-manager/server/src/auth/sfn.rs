//! Authentication of the `/sfn` endpoint: requests are signed with AWS Signature Version 4 by
//! an access key this service issued (or the local workers' key), and each operation is
//! checked against the key's namespaces. Errors carry the codes AWS uses.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use wfm_core::access::AccessKey;

use super::policy::{sfn_scope, ScopeFields, SfnScope};
use super::sigv4::{self, SigV4Error};
use super::{Auth, AuthMode};

/// A refused `/sfn` request: status, AWS error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfnAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// `__type`.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

fn refused(code: &'static str, message: String) -> SfnAuthError {
    SfnAuthError {
        status: StatusCode::FORBIDDEN,
        code,
        message,
    }
}

impl From<SigV4Error> for SfnAuthError {
    fn from(e: SigV4Error) -> Self {
        let code = match e {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Malformed(_) => "IncompleteSignatureException",
            SigV4Error::Expired(_) => "InvalidSignatureException",
            SigV4Error::Mismatch => "InvalidSignatureException",
        };
        refused(code, e.to_string())
    }
}

/// A `/sfn` request to authenticate.
pub struct SfnRequest<'a> {
    /// Method.
    pub method: &'a Method,
    /// URI as received.
    pub uri: &'a Uri,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body.
    pub body: &'a [u8],
    /// The operation (`X-Amz-Target` without its prefix).
    pub operation: &'a str,
}

/// The key that signed `req`; `None` when the service runs open.
pub async fn authenticate(
    auth: &Auth,
    req: &SfnRequest<'_>,
) -> Result<Option<AccessKey>, SfnAuthError> {
    if auth.mode == AuthMode::None {
        return Ok(None);
    }
    let authorization = sigv4::parse_authorization(req.headers)?;
    let key = if authorization.access_key_id == auth.local_key.access_key_id {
        Some((*auth.local_key).clone())
    } else {
        auth.store
            .access_key(&authorization.access_key_id)
            .await
            .map_err(|e| SfnAuthError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "ServiceUnavailable",
                message: e.to_string(),
            })?
    };
    let key = key.ok_or_else(|| {
        refused(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".into(),
        )
    })?;
    sigv4::verify(
        &authorization,
        &key.secret_access_key,
        req.method,
        req.uri,
        req.headers,
        req.body,
        chrono::Utc::now(),
    )?;
    Ok(Some(key))
}

/// Whether `key` may run the operation of `req`; `task_activity` finds the activity ARN of a
/// task token.
pub fn permit(
    key: &AccessKey,
    req: &SfnRequest<'_>,
    task_activity: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SfnAuthError> {
    let allowed = match sfn_scope(req.operation, &ScopeFields::of(req.body), task_activity) {
        SfnScope::AnyKey => true,
        SfnScope::Namespace(ns) => key.allows_namespace(&ns),
        SfnScope::Unrestricted => key.is_unrestricted(),
    };
    if !allowed {
        return Err(SfnAuthError {
            status: StatusCode::BAD_REQUEST,
            code: "AccessDeniedException",
            message: format!(
                "access key {} ({}) may not call {} here: it is limited to the activities of namespaces [{}]",
                key.access_key_id,
                key.name,
                req.operation,
                key.namespaces.join(", ")
            ),
        });
    }
    Ok(())
}
