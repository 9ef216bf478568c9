//! Counts every DynamoDB call by operation, and the throttled ones, for `/metrics`
//! (`wfm_aws_calls_total`, `wfm_aws_throttles_total`), through an SDK interceptor: one place
//! instead of one line per call.

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

#[derive(Debug)]
struct Metered;

/// The error codes DynamoDB throttles with.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

impl Intercept for Metered {
    fn name(&self) -> &'static str {
        "wfm-metrics"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        metrics::counter!("wfm_aws_calls_total", "service" => "dynamodb", "operation" => operation.clone())
            .increment(1);
        let throttled = context.response().is_some_and(|r| {
            r.status().as_u16() == 400
                && r.body()
                    .bytes()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .is_some_and(|text| THROTTLING.iter().any(|code| text.contains(code)))
        });
        if throttled {
            metrics::counter!("wfm_aws_throttles_total", "service" => "dynamodb", "operation" => operation)
                .increment(1);
        }
        Ok(())
    }
}

/// The same client, counting its calls.
pub fn metered(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(Metered).build())
}
