//! Mapping of SDK errors onto [`StoreError`], and recognising the ones the store reacts to
//! (a failed condition, a cancelled transaction).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use wfm_core::StoreError;

/// Any SDK failure as a backend error, with the service's code and message when there is one.
pub fn backend<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    let detail = match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("unknown error"),
            service.message().unwrap_or("")
        ),
        None => format!("{e:?}"),
    };
    StoreError::Backend(format!("DynamoDB {detail}"))
}

/// Whether the error is a failed `ConditionExpression` (of a single write, or of any item of
/// a cancelled transaction).
pub fn is_condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().is_some_and(|s| {
        matches!(
            s.code(),
            Some("ConditionalCheckFailedException") | Some("TransactionCanceledException")
        )
    })
}

/// A stored item that does not decode: the table holds something this version did not write.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} does not decode: {detail}"))
}
