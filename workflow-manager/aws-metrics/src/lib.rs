//! One SDK interceptor that counts every AWS call by service and operation, and the throttled
//! and failed ones, for `/metrics`: `wfm_aws_calls_total`, `wfm_aws_throttles_total` and
//! `wfm_aws_errors_total`, each labelled `service` (`sfn`, `dynamodb`, `batch`, ...) and
//! `operation`. Every AWS SDK crate's config builder takes it (`.interceptor(Metered)`), so the
//! counting lives in one place instead of beside every call.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The interceptor; add it to any SDK client's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metered;

/// Whether an AWS error code means "throttled" (try again later, more slowly).
pub fn is_throttling(code: &str) -> bool {
    THROTTLING.contains(&code)
}

/// The error codes AWS services throttle with.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
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
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_lowercase(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        metrics::counter!("wfm_aws_calls_total", "service" => service.clone(), "operation" => operation.clone())
            .increment(1);
        let failed = context
            .output_or_error()
            .is_none_or(|outcome| outcome.is_err());
        if !failed {
            return Ok(());
        }
        metrics::counter!("wfm_aws_errors_total", "service" => service.clone(), "operation" => operation.clone())
            .increment(1);
        // The error code is in the body (JSON protocols) or the `x-amzn-errortype` header.
        let throttled = context.response().is_some_and(|r| {
            let header = r.headers().get("x-amzn-errortype").unwrap_or("");
            let body = r
                .body()
                .bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("");
            THROTTLING
                .iter()
                .any(|code| header.starts_with(code) || body.contains(code))
        });
        if throttled {
            metrics::counter!("wfm_aws_throttles_total", "service" => service, "operation" => operation)
                .increment(1);
        }
        Ok(())
    }
}
