//! Versions, aliases, tags and definition validation on the binary's `/sfn` endpoint: through
//! boto3 and the AWS CLI
//! (`tests/python/boto3_catalog.py`, with AWS's error codes for bad input), then through
//! aws-sdk-sfn after a restart (they are stored, and a version still runs its definition).

use std::time::Duration;

use aws_sdk_sfn::types::RoutingConfigurationListItem;
use wfm_e2e::{sfn_client, Server};

#[tokio::test(flavor = "multi_thread")]
async fn versions_aliases_and_tags_through_boto3_and_aws_sdk_sfn_survive_a_restart() {
    let Some(python) = wfm_e2e::test_python("versions_aliases_and_tags") else {
        return;
    };
    let server = Server::start(&["--no-local-workers"]);
    let script = wfm_e2e::workspace().join("tests/python/boto3_catalog.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(server.sfn_endpoint())
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 catalog script failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("catalog ok"));

    // The AWS CLI's validate-state-machine-definition, by endpoint URL alone.
    let cli = wfm_e2e::aws_cli_stepfunctions(
        &python,
        &server.sfn_endpoint(),
        &[
            "validate-state-machine-definition",
            "--definition",
            r#"{"StartAt": "A", "States": {"A": {"Type": "Wait", "End": true}}}"#,
        ],
        "test",
        "test",
    )
    .await;
    assert!(
        cli.status.success(),
        "aws cli failed: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&cli.stdout).expect("aws cli JSON");
    assert_eq!(answer["result"], "FAIL", "{answer}");
    assert_eq!(
        answer["diagnostics"][0]["code"], "SCHEMA_VALIDATION_FAILED",
        "{answer}"
    );

    // After a restart, through aws-sdk-sfn.
    let data = server.kill();
    let server = Server::start_in(data, &["--no-local-workers"]);
    let sfn = sfn_client(&server.sfn_endpoint()).await;
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:catalog";
    let versions = sfn
        .list_state_machine_versions()
        .state_machine_arn(machine)
        .send()
        .await
        .expect("versions");
    let arns: Vec<&str> = versions
        .state_machine_versions()
        .iter()
        .map(|v| v.state_machine_version_arn())
        .collect();
    assert_eq!(arns, [format!("{machine}:2")]);
    let alias = sfn
        .create_state_machine_alias()
        .name("stable")
        .routing_configuration(
            RoutingConfigurationListItem::builder()
                .state_machine_version_arn(format!("{machine}:2"))
                .weight(100)
                .build()
                .expect("route"),
        )
        .send()
        .await
        .expect("alias");
    let started = sfn
        .start_execution()
        .state_machine_arn(alias.state_machine_alias_arn())
        .send()
        .await
        .expect("start");
    let mut status = String::new();
    for _ in 0..200 {
        let d = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .expect("describe");
        status = d.status().as_str().to_string();
        if status != "RUNNING" {
            assert_eq!(d.output(), Some("\"two\""));
            assert_eq!(
                d.state_machine_version_arn(),
                Some(format!("{machine}:2").as_str())
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "SUCCEEDED");
    let tags = sfn
        .list_tags_for_resource()
        .resource_arn(machine)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), Some("team"));
    let missing = sfn
        .delete_state_machine_alias()
        .state_machine_alias_arn(format!("{machine}:stable"))
        .send()
        .await;
    assert!(missing.is_ok(), "{missing:?}");
}
