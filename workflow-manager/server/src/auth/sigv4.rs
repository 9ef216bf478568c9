//! Verifies AWS Signature Version 4 on requests to `/sfn`, as Step Functions does, so that
//! aws-sdk-sfn, boto3 and the AWS CLI authenticate unchanged with keys this service issues.
//!
//! Hand-written because no maintained crate verifies SigV4 on the server side (`aws-sigv4`
//! signs; its tests here check that what it signs verifies). The canonical request is rebuilt
//! from the headers the client says it signed, so any client's choice of headers works.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

/// How far a request's `X-Amz-Date` may be from now, as in AWS.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(15);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header, or not a SigV4 one.
    #[error("Missing Authentication Token: sign the request with AWS Signature Version 4")]
    Missing,
    /// The header cannot be read.
    #[error("Authorization header malformed: {0}")]
    Malformed(String),
    /// The request's time is too far from now.
    #[error("Signature expired: {0} is more than 15 minutes from the server's time")]
    Expired(String),
    /// The signature is not the one the secret gives.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    Mismatch,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD/region/service/aws4_request`.
    pub scope: String,
    /// The date of the scope.
    pub scope_date: String,
    /// Lower-case header names, in the order signed.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Reads the `Authorization` header.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Authorization, SigV4Error> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing)?
        .to_str()
        .map_err(|_| SigV4Error::Malformed("not ASCII".into()))?;
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or(SigV4Error::Missing)?
        .trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| SigV4Error::Malformed(format!("'{}' is not KEY=VALUE", part.trim())))?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| SigV4Error::Malformed("no Credential".into()))?;
    let (access_key_id, scope) = credential
        .split_once('/')
        .ok_or_else(|| SigV4Error::Malformed("Credential has no scope".into()))?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    if scope_parts.len() != 4 || scope_parts[3] != "aws4_request" {
        return Err(SigV4Error::Malformed(format!(
            "credential scope '{scope}' is not DATE/REGION/SERVICE/aws4_request"
        )));
    }
    let signed_headers: Vec<String> = signed
        .ok_or_else(|| SigV4Error::Malformed("no SignedHeaders".into()))?
        .split(';')
        .map(str::to_string)
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed(
            "the host header must be signed".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        scope: scope.to_string(),
        scope_date: scope_parts[0].to_string(),
        signed_headers,
        signature: signature
            .ok_or_else(|| SigV4Error::Malformed("no Signature".into()))?
            .to_string(),
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// SigV4's URI encoding: everything but RFC 3986's unreserved characters (and `/` if
/// `keep_slash`), as the service's own AWS calls encode.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    wfm_aws_integrations::aws::percent_encode(s, keep_slash)
}

fn canonical_query(uri: &Uri) -> String {
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
            .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(headers: &HeaderMap, name: &str) -> Result<String, SigV4Error> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect();
    if values.is_empty() {
        return Err(SigV4Error::Malformed(format!(
            "signed header '{name}' is missing"
        )));
    }
    Ok(values.join(","))
}

/// The request's time, from `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`).
fn request_time(headers: &HeaderMap) -> Result<(String, DateTime<Utc>), SigV4Error> {
    let text = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigV4Error::Malformed("no X-Amz-Date header".into()))?;
    let t = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SigV4Error::Malformed(format!("X-Amz-Date '{text}' is not YYYYMMDDTHHMMSSZ")))?
        .and_utc();
    Ok((text.to_string(), t))
}

/// Checks that the request was signed with `secret` for the key and scope of `auth`, at most
/// [`MAX_SKEW`] from `now`.
pub fn verify(
    auth: &Authorization,
    secret: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SigV4Error> {
    let (amz_date, at) = request_time(headers)?;
    if (now - at).abs() > MAX_SKEW {
        return Err(SigV4Error::Expired(amz_date));
    }
    if !amz_date.starts_with(&auth.scope_date) {
        return Err(SigV4Error::Malformed(format!(
            "credential scope date {} is not the date of X-Amz-Date {amz_date}",
            auth.scope_date
        )));
    }
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) if h != "UNSIGNED-PAYLOAD" => {
            if h != sha256_hex(body) {
                return Err(SigV4Error::Mismatch);
            }
            h.to_string()
        }
        _ => sha256_hex(body),
    };
    let mut canonical = format!(
        "{method}\n{}\n{}\n",
        uri_encode(uri.path(), true),
        canonical_query(uri)
    );
    for name in &auth.signed_headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&canonical_header_value(headers, name)?);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&payload_hash);

    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        auth.scope,
        sha256_hex(canonical.as_bytes())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in auth.scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::decode(&auth.signature).map_err(|_| SigV4Error::Mismatch)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|_| SigV4Error::Mismatch)?;
    mac.update(string_to_sign.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&expected)
        .map_err(|_| SigV4Error::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use std::time::SystemTime;

    /// Signs a request as aws-sdk-sfn does, with the `aws-sigv4` crate.
    fn signed(secret: &str, uri: &str, body: &[u8], at: SystemTime) -> http::Request<Vec<u8>> {
        let identity = Credentials::new("AKIDTEST", secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("states")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(uri)
            .header("host", "127.0.0.1:8080")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AWSStepFunctions.GetActivityTask")
            .body(body.to_vec())
            .expect("request");
        let signable = SignableRequest::new(
            "POST",
            uri,
            req.headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_str().expect("ascii"))),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        instructions.apply_to_request_http1x(&mut req);
        req
    }

    fn check(
        req: &http::Request<Vec<u8>>,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SigV4Error> {
        let auth = parse_authorization(req.headers())?;
        assert_eq!(auth.access_key_id, "AKIDTEST");
        verify(
            &auth,
            secret,
            req.method(),
            req.uri(),
            req.headers(),
            req.body(),
            now,
        )
    }

    #[test]
    fn what_aws_sigv4_signs_verifies_and_any_change_breaks_it() {
        let now = SystemTime::now();
        let body = br#"{"activityArn":"arn:aws:states:us-east-1:1:activity:ns--a"}"#;
        let req = signed(
            "s3cret",
            "http://127.0.0.1:8080/sfn/?x=1&a=b%20c",
            body,
            now,
        );
        let t: DateTime<Utc> = now.into();
        assert_eq!(check(&req, "s3cret", t), Ok(()));
        assert_eq!(check(&req, "other", t), Err(SigV4Error::Mismatch));

        let mut tampered = req.clone();
        *tampered.body_mut() =
            br#"{"activityArn":"arn:aws:states:us-east-1:1:activity:ns--b"}"#.to_vec();
        assert_eq!(check(&tampered, "s3cret", t), Err(SigV4Error::Mismatch));

        let mut retargeted = req.clone();
        retargeted.headers_mut().insert(
            "x-amz-target",
            http::HeaderValue::from_static("AWSStepFunctions.StartExecution"),
        );
        assert_eq!(check(&retargeted, "s3cret", t), Err(SigV4Error::Mismatch));

        let late = t + chrono::Duration::minutes(16);
        assert!(matches!(
            check(&req, "s3cret", late),
            Err(SigV4Error::Expired(_))
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(parse_authorization(&headers), Err(SigV4Error::Missing));
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(parse_authorization(&headers), Err(SigV4Error::Missing));
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/states/aws4_request, SignedHeaders=x-amz-date, Signature=00"),
        );
        assert!(
            matches!(parse_authorization(&headers), Err(SigV4Error::Malformed(m)) if m.contains("host"))
        );
        headers.insert(
            "authorization",
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00",
            ),
        );
        assert!(
            matches!(parse_authorization(&headers), Err(SigV4Error::Malformed(m)) if m.contains("scope"))
        );
    }
}
