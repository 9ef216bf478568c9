//! Failed calls as the Task state sees them: the error names and causes Step Functions gives
//! (`DynamoDB.ResourceNotFoundException` with a Java SDK v1 cause for the optimized
//! integrations; `DynamoDb.ResourceNotFoundException` with a Java SDK v2 cause for the AWS SDK
//! integrations), and the metadata the optimized integrations add to results.

use serde_json::{json, Value};
use wfm_engine::integrations::IntegrationFailure;

use crate::aws::{Answer, AwsError, Service};

/// How an integration names errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `arn:aws:states:::sqs:sendMessage`, ...
    Optimized,
    /// `arn:aws:states:::aws-sdk:sqs:sendMessage`, ...
    Sdk,
}

/// A failure with a plain error name and cause.
pub fn failure(error: impl Into<String>, cause: impl Into<String>) -> IntegrationFailure {
    IntegrationFailure {
        error: error.into(),
        cause: cause.into(),
    }
}

/// A parameter the integration needs is missing or of the wrong type.
pub fn bad_parameter(message: impl Into<String>) -> IntegrationFailure {
    failure("States.Runtime", message)
}

/// The exception name of an error code (`QueueDoesNotExist` → `QueueDoesNotExistException`,
/// `AWS.SimpleQueueService.NonExistentQueue` → `NonExistentQueueException`).
fn exception_name(code: &str) -> String {
    let last = code.rsplit('.').next().unwrap_or(code);
    if last.ends_with("Exception") {
        last.to_string()
    } else {
        format!("{last}Exception")
    }
}

/// A failed call in the integration's style.
pub fn from_aws(service: Service, style: Style, e: AwsError) -> IntegrationFailure {
    match (e, style) {
        (
            AwsError::Service {
                status,
                code,
                message,
                request_id,
            },
            Style::Optimized,
        ) => failure(
            format!(
                "{}.{}",
                service.error_prefix,
                if code == "ValidationException" {
                    service.generic_exception.to_string()
                } else {
                    exception_name(&code)
                }
            ),
            format!(
                "{message} (Service: {}; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)",
                service.java_name
            ),
        ),
        (
            AwsError::Service {
                status,
                code,
                message,
                request_id,
            },
            Style::Sdk,
        ) => failure(
            format!("{}.{}", service.sdk_name, exception_name(&code)),
            format!(
                "{message} (Service: {}, Status Code: {status}, Request ID: {request_id})",
                service.sdk_name
            ),
        ),
        (AwsError::Client(m), Style::Optimized) => {
            failure(format!("{}.SdkClientException", service.error_prefix), m)
        }
        (AwsError::Client(m), Style::Sdk) => {
            failure(format!("{}.SdkClientException", service.sdk_name), m)
        }
    }
}

/// `SdkHttpMetadata` and `SdkResponseMetadata`, which optimized integrations add to a
/// service's answer.
pub fn with_metadata(mut result: Value, answer: &Answer) -> Value {
    let headers: serde_json::Map<String, Value> = answer
        .headers
        .iter()
        .map(|(n, v)| (canonical_header(n), json!(v)))
        .collect();
    let all: serde_json::Map<String, Value> = answer
        .headers
        .iter()
        .map(|(n, v)| (canonical_header(n), json!([v])))
        .collect();
    if let Value::Object(m) = &mut result {
        m.insert(
            "SdkHttpMetadata".into(),
            json!({"AllHttpHeaders": all, "HttpHeaders": headers, "HttpStatusCode": answer.status}),
        );
        m.insert(
            "SdkResponseMetadata".into(),
            json!({"RequestId": answer.request_id()}),
        );
    }
    result
}

/// `content-type` → `Content-Type`; AWS's own headers keep their spelling.
fn canonical_header(name: &str) -> String {
    match name {
        "x-amzn-requestid" => "x-amzn-RequestId".into(),
        n if n.starts_with("x-") => n.to_string(),
        n => n
            .split('-')
            .map(|part| {
                let mut c = part.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::DYNAMODB;

    #[test]
    fn errors_are_named_in_each_style() {
        let e = || AwsError::Service {
            status: 400,
            code: "ResourceNotFoundException".into(),
            message: "Requested resource not found".into(),
            request_id: "R".into(),
        };
        let o = from_aws(DYNAMODB, Style::Optimized, e());
        assert_eq!(o.error, "DynamoDB.ResourceNotFoundException");
        assert_eq!(
            o.cause,
            "Requested resource not found (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ResourceNotFoundException; Request ID: R; Proxy: null)"
        );
        let s = from_aws(DYNAMODB, Style::Sdk, e());
        assert_eq!(s.error, "DynamoDb.ResourceNotFoundException");
        assert_eq!(
            s.cause,
            "Requested resource not found (Service: DynamoDb, Status Code: 400, Request ID: R)"
        );
        assert_eq!(canonical_header("content-type"), "Content-Type");
    }
}
