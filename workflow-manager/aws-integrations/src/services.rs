//! SQS, SNS, DynamoDB and EventBridge: the optimized integrations (`sqs:sendMessage`,
//! `sns:publish`, `dynamodb:getItem|putItem|updateItem|deleteItem`, `events:putEvents`) and
//! every action of these services as `aws-sdk:SERVICE:ACTION`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use wfm_engine::integrations::{CallContext, IntegrationFailure, ServiceIntegration, Submitted};
use wfm_engine::machine::compiled::{Pattern, Resource};

use crate::aws::{Answer, Aws, AwsError, Service, DYNAMODB, EVENTS, LAMBDA, SNS, SQS};
use crate::failure::{bad_parameter, failure, from_aws, with_metadata, Style};

/// A service reached through its wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Amazon SQS (JSON protocol).
    Sqs,
    /// Amazon SNS (query protocol).
    Sns,
    /// Amazon DynamoDB (JSON protocol).
    DynamoDb,
    /// Amazon EventBridge (JSON protocol).
    Events,
    /// AWS Lambda (REST; only `invoke`).
    Lambda,
}

impl Api {
    /// Every service.
    pub const ALL: [Api; 5] = [Api::Sqs, Api::Sns, Api::DynamoDb, Api::Events, Api::Lambda];

    /// The service.
    pub fn service(self) -> Service {
        match self {
            Api::Sqs => SQS,
            Api::Sns => SNS,
            Api::DynamoDb => DYNAMODB,
            Api::Events => EVENTS,
            Api::Lambda => LAMBDA,
        }
    }

    /// The name in `arn:aws:states:::aws-sdk:NAME:action`.
    pub fn sdk_name(self) -> &'static str {
        match self {
            Api::Sqs => "sqs",
            Api::Sns => "sns",
            Api::DynamoDb => "dynamodb",
            Api::Events => "eventbridge",
            Api::Lambda => "lambda",
        }
    }

    /// The `resourceType` of AWS SDK integration events.
    fn sdk_resource_type(self) -> &'static str {
        match self {
            Api::Sqs => "aws-sdk:sqs",
            Api::Sns => "aws-sdk:sns",
            Api::DynamoDb => "aws-sdk:dynamodb",
            Api::Events => "aws-sdk:eventbridge",
            Api::Lambda => "aws-sdk:lambda",
        }
    }

    /// The name in `arn:aws:states:::NAME:action` and the optimized actions.
    fn optimized(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Api::Sqs => ("sqs", &["sendMessage"]),
            Api::Sns => ("sns", &["publish"]),
            Api::DynamoDb => (
                "dynamodb",
                &["getItem", "putItem", "updateItem", "deleteItem"],
            ),
            Api::Events => ("events", &["putEvents"]),
            Api::Lambda => ("lambda", &["invoke"]),
        }
    }

    /// Calls `action` (PascalCase) with the parameters as given.
    pub async fn call(
        self,
        aws: &Aws,
        action: &str,
        parameters: &Value,
    ) -> Result<(Value, Answer), AwsError> {
        match self {
            Api::Sqs => {
                aws.json_call(SQS, "AmazonSQS", "1.0", action, parameters)
                    .await
            }
            Api::DynamoDb => {
                aws.json_call(DYNAMODB, "DynamoDB_20120810", "1.0", action, parameters)
                    .await
            }
            Api::Events => {
                aws.json_call(EVENTS, "AWSEvents", "1.1", action, parameters)
                    .await
            }
            Api::Sns => query_call(aws, SNS, "2010-03-31", action, parameters).await,
            Api::Lambda => crate::lambda::sdk_call(aws, action, parameters).await,
        }
    }
}

async fn query_call(
    aws: &Aws,
    service: Service,
    version: &str,
    action: &str,
    parameters: &Value,
) -> Result<(Value, Answer), AwsError> {
    let form = crate::query::encode(action, version, parameters);
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let answer = aws
        .send(
            service,
            "POST",
            "/",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )],
            body.into_bytes(),
        )
        .await?;
    if answer.status >= 300 {
        let (code, message, request_id) =
            crate::query::decode_error(&answer.body).unwrap_or_else(|| {
                (
                    "UnknownError".into(),
                    String::from_utf8_lossy(&answer.body).into_owned(),
                    answer.request_id(),
                )
            });
        return Err(AwsError::Service {
            status: answer.status,
            code,
            message,
            request_id,
        });
    }
    let (result, _) = crate::query::decode_result(&answer.body).map_err(AwsError::Client)?;
    Ok((result, answer))
}

/// Percent-encoding of a form value (RFC 3986 unreserved characters kept).
fn urlencode(s: &str) -> String {
    crate::aws::percent_encode(s, false)
}

/// `sendMessage` → `SendMessage`.
pub fn pascal(action: &str) -> String {
    let mut c = action.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// The service and action of a resource, and how it waits.
fn parse(resource: &str) -> Option<(String, String, Pattern)> {
    match Resource::parse(resource) {
        Resource::Service {
            service,
            action,
            pattern,
            ..
        } => Some((service, action, pattern)),
        _ => None,
    }
}

/// A JSON value given where the service takes text (a message body, an event's detail) is
/// sent as its JSON text, as Step Functions does.
fn as_text(parameters: &mut Value, field: &str) {
    if let Some(v) = parameters.get_mut(field) {
        if !v.is_string() && !v.is_null() {
            *v = Value::String(v.to_string());
        }
    }
}

/// An optimized integration of SQS, SNS, DynamoDB or EventBridge.
pub struct Optimized {
    aws: Arc<Aws>,
    api: Api,
}

impl Optimized {
    /// The integration of `api` (not Lambda: see [`crate::lambda`]).
    pub fn new(aws: Arc<Aws>, api: Api) -> Self {
        Self { aws, api }
    }
}

#[async_trait]
impl ServiceIntegration for Optimized {
    fn resource_type(&self) -> &'static str {
        self.api.optimized().0
    }

    fn handles(&self, resource: &str) -> bool {
        let (name, actions) = self.api.optimized();
        parse(resource).is_some_and(|(s, a, _)| s == name && actions.contains(&a.as_str()))
    }

    fn region(&self) -> String {
        self.aws.region()
    }

    async fn submit(
        &self,
        resource: &str,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        let Some((_, action, _)) = parse(resource) else {
            return Err(bad_parameter(format!("'{resource}' is not an integration")));
        };
        let mut parameters = parameters.clone();
        if !parameters.is_object() {
            return Err(bad_parameter("the parameters must be a JSON object"));
        }
        match self.api {
            Api::Sqs => as_text(&mut parameters, "MessageBody"),
            Api::Sns => as_text(&mut parameters, "Message"),
            Api::Events => {
                if let Some(Value::Array(entries)) = parameters.get_mut("Entries") {
                    for e in entries {
                        as_text(e, "Detail");
                    }
                }
            }
            Api::DynamoDb | Api::Lambda => {}
        }
        let service = self.api.service();
        let (result, answer) = self
            .api
            .call(&self.aws, &pascal(&action), &parameters)
            .await
            .map_err(|e| from_aws(service, Style::Optimized, e))?;
        if self.api == Api::Events
            && result
                .get("FailedEntryCount")
                .and_then(Value::as_i64)
                .is_some_and(|n| n > 0)
        {
            return Err(failure("EventBridge.FailedEntry", result.to_string()));
        }
        let output = match self.api {
            Api::Events => result,
            _ => with_metadata(result, &answer),
        };
        Ok(Submitted {
            handle: String::new(),
            output,
        })
    }
}

/// Every action of a service as `arn:aws:states:::aws-sdk:SERVICE:action`.
pub struct Sdk {
    aws: Arc<Aws>,
    api: Api,
}

impl Sdk {
    /// The AWS SDK integration of `api`.
    pub fn new(aws: Arc<Aws>, api: Api) -> Self {
        Self { aws, api }
    }
}

#[async_trait]
impl ServiceIntegration for Sdk {
    fn resource_type(&self) -> &'static str {
        self.api.sdk_resource_type()
    }

    fn handles(&self, resource: &str) -> bool {
        parse(resource).is_some_and(|(s, a, _)| {
            s == "aws-sdk"
                && a.split_once(':')
                    .is_some_and(|(svc, _)| svc == self.api.sdk_name())
        })
    }

    fn region(&self) -> String {
        self.aws.region()
    }

    async fn submit_call(
        &self,
        call: &CallContext<'_>,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        self.submit(call.resource, parameters).await
    }

    async fn submit(
        &self,
        resource: &str,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        let action = parse(resource)
            .and_then(|(_, a, _)| a.split_once(':').map(|(_, action)| action.to_string()))
            .ok_or_else(|| bad_parameter(format!("'{resource}' names no action")))?;
        let parameters = if parameters.is_null() {
            Value::Object(Default::default())
        } else {
            parameters.clone()
        };
        if self.api == Api::Lambda
            && action != "invoke"
            && !crate::lambda::READ_ACTIONS.contains(&pascal(&action).as_str())
        {
            return Err(failure(
                "States.Runtime",
                format!(
                    "The action '{action}' of the service 'lambda' ({resource}) is not supported \
                     by the embedded engine; supported: invoke, {}",
                    crate::lambda::READ_ACTIONS.join(", ")
                ),
            ));
        }
        let service = self.api.service();
        let (result, _) = self
            .api
            .call(&self.aws, &pascal(&action), &parameters)
            .await
            .map_err(|e| from_aws(service, Style::Sdk, e))?;
        Ok(Submitted {
            handle: String::new(),
            output: result,
        })
    }
}

/// Any other `aws-sdk:` service: a clear failure naming it.
pub struct UnsupportedSdk;

#[async_trait]
impl ServiceIntegration for UnsupportedSdk {
    fn resource_type(&self) -> &'static str {
        "aws-sdk"
    }

    fn handles(&self, resource: &str) -> bool {
        parse(resource).is_some_and(|(s, _, _)| s == "aws-sdk")
    }

    fn region(&self) -> String {
        String::new()
    }

    async fn submit(&self, resource: &str, _: &Value) -> Result<Submitted, IntegrationFailure> {
        let service = parse(resource)
            .and_then(|(_, a, _)| a.split_once(':').map(|(s, _)| s.to_string()))
            .unwrap_or_default();
        Err(failure(
            "States.Runtime",
            format!(
                "The AWS SDK integration of the service '{service}' ({resource}) is not supported \
                 by the embedded engine; supported: sqs, sns, dynamodb, eventbridge, lambda, s3, sfn"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_claimed_by_their_service() {
        let aws = Arc::new(Aws::new(Box::new(|| {
            Box::pin(async { Err("no configuration in unit tests".to_string()) })
        })));
        let sqs = Optimized::new(aws.clone(), Api::Sqs);
        assert!(sqs.handles("arn:aws:states:::sqs:sendMessage"));
        assert!(sqs.handles("arn:aws:states:::sqs:sendMessage.waitForTaskToken"));
        assert!(!sqs.handles("arn:aws:states:::sqs:deleteQueue"));
        assert!(!sqs.handles("arn:aws:states:::aws-sdk:sqs:sendMessage"));
        let ddb = Sdk::new(aws, Api::DynamoDb);
        assert!(ddb.handles("arn:aws:states:::aws-sdk:dynamodb:getItem"));
        assert!(!ddb.handles("arn:aws:states:::aws-sdk:sqs:getItem"));
        assert!(UnsupportedSdk.handles("arn:aws:states:::aws-sdk:s3:getObject"));
        assert_eq!(pascal("putEvents"), "PutEvents");
        assert_eq!(urlencode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
