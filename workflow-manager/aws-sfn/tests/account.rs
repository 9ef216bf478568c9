//! The account is learned from moto's STS, checked against `--account`, and read from Step
//! Functions' ARNs when STS does not answer.

use aws_credential_types::Credentials;
use wfm_aws_sfn::account::{settle_account, AccountError};
use wfm_emulators::Emulator;

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

#[tokio::test]
async fn the_account_is_learned_checked_or_read_from_arns() {
    let Some(moto) = Emulator::moto() else { return };
    let config = sdk(&moto.endpoint).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    // moto answers for its default account.
    let learned = settle_account(&sts, &sfn, None).await.expect("learned");
    assert_eq!(learned, "123456789012");
    assert_eq!(
        settle_account(&sts, &sfn, Some("123456789012")).await,
        Ok("123456789012".to_string())
    );
    let mismatch = settle_account(&sts, &sfn, Some("999999999999")).await;
    assert!(
        matches!(&mismatch, Err(AccountError::Mismatch { configured, actual, .. })
            if configured == "999999999999" && actual == "123456789012"),
        "{mismatch:?}"
    );
    assert!(mismatch
        .err()
        .map(|e| e.to_string())
        .is_some_and(|m| m.contains("999999999999") && m.contains("123456789012")));

    // STS unreachable: nothing listed yet is an error that says what to do...
    let nowhere = sdk("http://127.0.0.1:9").await;
    let dead_sts = aws_sdk_sts::Client::new(&nowhere);
    let unknown = settle_account(&dead_sts, &sfn, None).await;
    assert!(
        unknown
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .is_some_and(|m| m.contains("--account")),
        "{unknown:?}"
    );
    // ... and once Step Functions lists an activity, its ARN tells the account.
    sfn.create_activity()
        .name("probe")
        .send()
        .await
        .expect("activity");
    assert_eq!(
        settle_account(&dead_sts, &sfn, None).await,
        Ok("123456789012".to_string())
    );
}
