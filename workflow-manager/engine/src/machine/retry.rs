//! Errors as states see them, and Step Functions' rules for matching them: which retrier or
//! catcher an error name matches (`States.ALL`, `States.TaskFailed`, the terminal errors), and
//! how long a retrier waits before each attempt (interval, backoff, cap, full jitter).

use wfm_asl::definition::Retrier;

/// Why a state (and so maybe its execution) failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Error name.
    pub error: String,
    /// Cause.
    pub cause: String,
    /// Neither was given (a SendTaskFailure with the token only): the error output is
    /// `{"Error": null, "Cause": null}`, as Step Functions gives it.
    pub unset: bool,
}

impl Failure {
    /// A failure with this error and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
            unset: false,
        }
    }

    /// A failure reported with whatever error and cause its reporter gave.
    pub fn reported(error: Option<String>, cause: Option<String>) -> Self {
        let unset = error.is_none() && cause.is_none();
        Self {
            unset,
            ..Self::new(error.unwrap_or_default(), cause.unwrap_or_default())
        }
    }

    /// The error output a catcher sees (`{"Error": ..., "Cause": ...}`).
    pub fn output(&self) -> serde_json::Value {
        if self.unset {
            serde_json::json!({"Error": null, "Cause": null})
        } else {
            serde_json::json!({"Error": self.error, "Cause": self.cause})
        }
    }
}

/// Whether a retrier's or catcher's `ErrorEquals` matches an error.
pub fn matches_error(error_equals: &[String], error: &str) -> bool {
    // States.Runtime is never caught nor retried, not even by name (AWS's recorded behaviour:
    // a Catch of States.Runtime does not catch an OutputPath error). A task result over the
    // size limit (States.DataLimitExceeded) is caught by States.ALL.
    if error == "States.Runtime" {
        return false;
    }
    error_equals.iter().any(|e| {
        e == error
            || e == "States.ALL"
            || (e == "States.TaskFailed"
                && error != "States.Timeout"
                && error != "States.DataLimitExceeded")
    })
}

/// The wait (milliseconds) before retry number `attempt` (0-based) of a retrier; `unit` is a
/// uniform draw in `[0, 1)` for full jitter.
pub fn retry_delay_ms(r: &Retrier, attempt: u32, unit: f64) -> i64 {
    let interval = r.interval_seconds.unwrap_or(1) as f64;
    let rate = r.backoff_rate.unwrap_or(2.0);
    let mut seconds = interval * rate.powi(attempt as i32);
    if let Some(max) = r.max_delay_seconds {
        seconds = seconds.min(max as f64);
    }
    if r.jitter_strategy.as_deref() == Some("FULL") {
        seconds = seconds.max(0.0) * unit;
    }
    (seconds.clamp(0.0, 1e9) * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_are_never_matched() {
        let all = vec!["States.ALL".to_string()];
        assert!(matches_error(&all, "Boom"));
        assert!(!matches_error(&all, "States.Runtime"));
        assert!(!matches_error(
            &["States.Runtime".to_string()],
            "States.Runtime"
        ));
        assert!(matches_error(&all, "States.DataLimitExceeded"));
        let tf = vec!["States.TaskFailed".to_string()];
        assert!(matches_error(&tf, "Boom"));
        assert!(!matches_error(&tf, "States.Timeout"));
    }

    #[test]
    fn delays_back_off_and_are_capped() {
        let r: Retrier = serde_json::from_value(serde_json::json!({
            "ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 10
        }))
        .expect("retrier");
        assert_eq!(retry_delay_ms(&r, 0, 0.5), 2000);
        assert_eq!(retry_delay_ms(&r, 1, 0.5), 6000);
        assert_eq!(retry_delay_ms(&r, 2, 0.5), 10000);
    }
}
