//! The AWS account of the state machines and activities, learned rather than guessed: STS
//! `GetCallerIdentity` when STS answers, else the account in the ARN of a state machine or
//! activity Step Functions lists. A configured account that AWS contradicts is refused.

/// How long STS may take to answer.
const STS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the account could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Nothing tells the account.
    #[error(
        "cannot learn the AWS account: STS GetCallerIdentity failed ({sts}) and Step Functions \
         lists no state machine or activity to read it from; pass --account (WFM_ACCOUNT)"
    )]
    Unknown {
        /// STS's failure.
        sts: String,
    },
    /// The configured account is not the one AWS answers for.
    #[error(
        "--account is {configured} but AWS answers for account {actual} ({source_of}): fix \
         --account (WFM_ACCOUNT) or the credentials"
    )]
    Mismatch {
        /// `--account`.
        configured: String,
        /// What AWS says.
        actual: String,
        /// Where that came from.
        source_of: &'static str,
    },
}

/// The account field of an ARN (`arn:aws:states:REGION:ACCOUNT:...`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The account from Step Functions' own ARNs (a state machine's, else an activity's).
async fn from_step_functions(sfn: &aws_sdk_sfn::Client) -> Option<String> {
    if let Ok(out) = sfn.list_state_machines().max_results(1).send().await {
        if let Some(a) = out
            .state_machines()
            .first()
            .and_then(|m| account_of_arn(m.state_machine_arn()))
        {
            return Some(a.to_string());
        }
    }
    let out = sfn.list_activities().max_results(1).send().await.ok()?;
    out.activities()
        .first()
        .and_then(|a| account_of_arn(a.activity_arn()))
        .map(str::to_string)
}

/// The account to build ARNs with: `configured` checked against what AWS says, or learned.
pub async fn settle_account(
    sts: &aws_sdk_sts::Client,
    sfn: &aws_sdk_sfn::Client,
    configured: Option<&str>,
) -> Result<String, AccountError> {
    // STS out of reach (no network to it) must not hold the start for long.
    let asked = tokio::time::timeout(STS_PATIENCE, sts.get_caller_identity().send()).await;
    let (actual, source_of, sts_error) = match asked {
        Ok(Ok(id)) => (
            id.account().map(str::to_string),
            "STS GetCallerIdentity",
            String::new(),
        ),
        Ok(Err(e)) => (
            None,
            "",
            aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
        ),
        Err(_) => (None, "", format!("no answer in {STS_PATIENCE:?}")),
    };
    let (actual, source_of) = match actual {
        Some(a) => (Some(a), source_of),
        None => (
            from_step_functions(sfn).await,
            "the ARNs Step Functions lists",
        ),
    };
    match (configured, actual) {
        (Some(c), Some(a)) if c != a => Err(AccountError::Mismatch {
            configured: c.to_string(),
            actual: a,
            source_of,
        }),
        (Some(c), _) => Ok(c.to_string()),
        (None, Some(a)) => {
            tracing::info!(account = %a, from = source_of, "learned the AWS account");
            Ok(a)
        }
        (None, None) => Err(AccountError::Unknown { sts: sts_error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_the_fifth_field_of_an_arn() {
        assert_eq!(
            account_of_arn("arn:aws:states:us-east-1:111122223333:stateMachine:x"),
            Some("111122223333")
        );
        assert_eq!(account_of_arn("arn:aws:states:us-east-1::x"), None);
        assert_eq!(account_of_arn("nonsense"), None);
    }
}
