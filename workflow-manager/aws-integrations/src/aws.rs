//! Signed calls to AWS services, configured as the AWS SDKs are: region, credentials and
//! endpoints from the standard configuration (`AWS_REGION`, profiles, `AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_SQS`, ...), loaded when the first call is made. Requests are the
//! services' own wire protocols (JSON for DynamoDB, EventBridge and SQS, REST for Lambda, the
//! query protocol for SNS), so that a Task's parameters, which Step Functions passes to the
//! service as they are, reach it unchanged and every action of a service can be called.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::OnceCell;

/// Loads the SDK configuration when the first call needs it.
pub type ConfigLoader =
    Box<dyn Fn() -> BoxFuture<'static, Result<SdkConfig, String>> + Send + Sync>;

/// An AWS service as the SDKs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The SDK's service id (`AWS_ENDPOINT_URL_<ID>` names its endpoint).
    pub id: &'static str,
    /// The signing name and endpoint prefix.
    pub signing_name: &'static str,
    /// The name in the causes of optimized integrations' errors (`AmazonSQS`).
    pub java_name: &'static str,
    /// The prefix of optimized integrations' error names (`SQS`).
    pub error_prefix: &'static str,
    /// The prefix of AWS SDK integrations' error names (`Sqs`), and the name in their causes.
    pub sdk_name: &'static str,
    /// The Java SDK's exception class of errors the service does not model
    /// (`ValidationException` of DynamoDB is `AmazonDynamoDBException`).
    pub generic_exception: &'static str,
}

/// Amazon SQS.
pub const SQS: Service = Service {
    id: "SQS",
    signing_name: "sqs",
    java_name: "AmazonSQS",
    error_prefix: "SQS",
    sdk_name: "Sqs",
    generic_exception: "AmazonSQSException",
};
/// Amazon SNS.
pub const SNS: Service = Service {
    id: "SNS",
    signing_name: "sns",
    java_name: "AmazonSNS",
    error_prefix: "SNS",
    sdk_name: "Sns",
    generic_exception: "AmazonSNSException",
};
/// Amazon DynamoDB.
pub const DYNAMODB: Service = Service {
    id: "DynamoDB",
    signing_name: "dynamodb",
    java_name: "AmazonDynamoDBv2",
    error_prefix: "DynamoDB",
    sdk_name: "DynamoDb",
    generic_exception: "AmazonDynamoDBException",
};
/// Amazon EventBridge.
pub const EVENTS: Service = Service {
    id: "EventBridge",
    signing_name: "events",
    java_name: "AmazonCloudWatchEvents",
    error_prefix: "EventBridge",
    sdk_name: "EventBridge",
    generic_exception: "AmazonEventBridgeException",
};
/// AWS Lambda.
pub const LAMBDA: Service = Service {
    id: "Lambda",
    signing_name: "lambda",
    java_name: "AWSLambda",
    error_prefix: "Lambda",
    sdk_name: "Lambda",
    generic_exception: "AWSLambdaException",
};

/// A service's answer to a call that failed, or a call that could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AwsError {
    /// The service answered with an error.
    #[error("{code}: {message}")]
    Service {
        /// HTTP status.
        status: u16,
        /// Error code (`ResourceNotFoundException`, `AWS.SimpleQueueService.NonExistentQueue`).
        code: String,
        /// Message.
        message: String,
        /// The request id.
        request_id: String,
    },
    /// No answer: configuration, credentials, the network.
    #[error("{0}")]
    Client(String),
}

/// What a service answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request id AWS gave the call.
    pub fn request_id(&self) -> String {
        self.header("x-amzn-requestid")
            .or_else(|| self.header("x-amz-request-id"))
            .unwrap_or_default()
            .to_string()
    }
}

/// Amazon S3 (REST-XML; signed with a payload hash and single-encoded paths).
pub const S3: Service = Service {
    id: "S3",
    signing_name: "s3",
    java_name: "Amazon S3",
    error_prefix: "S3",
    sdk_name: "S3",
    generic_exception: "S3Exception",
};

/// Percent-encoding with RFC 3986's unreserved characters kept (and `/` with `keep_slash`,
/// for S3 keys in a path).
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The configuration, and an HTTP client.
pub struct Aws {
    config: OnceCell<SdkConfig>,
    loader: ConfigLoader,
    http: reqwest::Client,
}

impl Aws {
    /// With a configuration loaded on first use.
    pub fn new(loader: ConfigLoader) -> Self {
        Self {
            config: OnceCell::new(),
            loader,
            http: reqwest::Client::new(),
        }
    }

    /// Calls to one endpoint for every service (an emulator), with static credentials.
    pub fn at_endpoint(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> Self {
        let config = SdkConfig::builder()
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        access_key, secret_key, None, None, "static",
                    ),
                ),
            )
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Self::new(Box::new(move || {
            let config = config.clone();
            Box::pin(async move { Ok(config) })
        }))
    }

    async fn config(&self) -> Result<&SdkConfig, AwsError> {
        self.config
            .get_or_try_init(|| (self.loader)())
            .await
            .map_err(AwsError::Client)
    }

    /// The region calls go to (empty before the configuration is loaded, or without one).
    pub fn region(&self) -> String {
        self.config
            .get()
            .and_then(|c| c.region())
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// The service's endpoint: `AWS_ENDPOINT_URL_<ID>` (or the profile's), else
    /// `AWS_ENDPOINT_URL`, else AWS's own.
    fn endpoint(config: &SdkConfig, service: Service, region: &str) -> String {
        let key = aws_types::service_config::ServiceConfigKey::builder()
            .service_id(service.id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build();
        let own = key
            .ok()
            .and_then(|k| config.service_config().and_then(|c| c.load_config(k)));
        own.or_else(|| config.endpoint_url().map(str::to_string))
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://{}.{region}.amazonaws.com", service.signing_name))
    }

    /// Sends a signed request: `path_and_query` is appended to the service's endpoint.
    pub async fn send(
        &self,
        service: Service,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, AwsError> {
        let config = self.config().await?;
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| AwsError::Client("no AWS region is configured".into()))?;
        let url = format!(
            "{}{path_and_query}",
            Self::endpoint(config, service, &region)
        );
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| AwsError::Client("no AWS credentials are configured".into()))?
            .provide_credentials()
            .await
            .map_err(|e| AwsError::Client(format!("cannot load AWS credentials: {e}")))?;
        let identity: Identity = credentials.into();
        let mut settings = SigningSettings::default();
        if service == S3 {
            // S3 signs the path as sent, and wants the payload's hash in a header.
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(service.signing_name)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| AwsError::Client(format!("cannot sign the request: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().map(|(n, v)| (*n, v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| AwsError::Client(format!("cannot sign the request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| AwsError::Client(format!("cannot sign the request: {e}")))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| AwsError::Client(e.to_string()))?;
        let mut request = self.http.request(method, &url).body(body);
        for (n, v) in headers {
            request = request.header(*n, v.as_str());
        }
        for (n, v) in instructions.headers() {
            request = request.header(n, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AwsError::Client(format!("Unable to execute HTTP request: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| AwsError::Client(format!("Unable to read the response: {e}")))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A call of a JSON-protocol service (`X-Amz-Target: <prefix>.<Action>`).
    pub async fn json_call(
        &self,
        service: Service,
        target_prefix: &str,
        json_version: &str,
        action: &str,
        body: &Value,
    ) -> Result<(Value, Answer), AwsError> {
        let answer = self
            .send(
                service,
                "POST",
                "/",
                &[
                    (
                        "content-type",
                        format!("application/x-amz-json-{json_version}"),
                    ),
                    ("x-amz-target", format!("{target_prefix}.{action}")),
                ],
                serde_json::to_vec(body).map_err(|e| AwsError::Client(e.to_string()))?,
            )
            .await?;
        let value: Value = if answer.body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
        };
        if answer.status >= 300 {
            return Err(json_error(&value, &answer));
        }
        Ok((value, answer))
    }
}

/// The error of a JSON-protocol answer: `__type` (`prefix#Code` or `Code`), `message`.
pub fn json_error(body: &Value, answer: &Answer) -> AwsError {
    let code = body
        .get("__type")
        .or_else(|| body.get("code"))
        .and_then(Value::as_str)
        .or_else(|| answer.header("x-amzn-errortype"))
        .unwrap_or("UnknownError");
    let code = code
        .rsplit('#')
        .next()
        .unwrap_or(code)
        .split(':')
        .next()
        .unwrap_or(code)
        .to_string();
    let message = body
        .get("message")
        .or_else(|| body.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    AwsError::Service {
        status: answer.status,
        code,
        message,
        request_id: answer.request_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer {
        Answer {
            status,
            headers: vec![("x-amzn-requestid".into(), "r-1".into())],
            body: vec![],
        }
    }

    #[test]
    fn json_errors_keep_the_code_without_its_namespace() {
        let e = json_error(
            &serde_json::json!({"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                                "message": "Requested resource not found"}),
            &answer(400),
        );
        assert_eq!(
            e,
            AwsError::Service {
                status: 400,
                code: "ResourceNotFoundException".into(),
                message: "Requested resource not found".into(),
                request_id: "r-1".into()
            }
        );
    }
}
