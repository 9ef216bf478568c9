//! The interceptor on a real SDK client against a local HTTP server that answers as Step
//! Functions does: a success, a throttled call and another error, each counted as such.

use std::io::{Read, Write};
use std::net::TcpListener;

use aws_sdk_sfn::config::{Credentials, Region};
use metrics_exporter_prometheus::PrometheusBuilder;
use wfm_aws_metrics::Metered;

/// Answers each connection with the next (status, body), then closes it.
fn serve(answers: Vec<(u16, &'static str)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for (status, body) in answers {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn calls_throttles_and_errors_are_counted_by_service_and_operation() {
    let url = serve(vec![
        (200, r#"{"stateMachines":[]}"#),
        (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        (400, r#"{"__type":"ExecutionDoesNotExist","message":"no"}"#),
    ]);
    let client = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled())
            .interceptor(Metered)
            .build(),
    );
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            client
                .list_state_machines()
                .send()
                .await
                .expect("a success");
            for _ in 0..2 {
                assert!(client
                    .describe_execution()
                    .execution_arn("arn:aws:states:us-east-1:1:execution:m:e")
                    .send()
                    .await
                    .is_err());
            }
        })
    });
    let text = handle.render();
    for expected in [
        r#"wfm_aws_calls_total{service="sfn",operation="ListStateMachines"} 1"#,
        r#"wfm_aws_calls_total{service="sfn",operation="DescribeExecution"} 2"#,
        r#"wfm_aws_errors_total{service="sfn",operation="DescribeExecution"} 2"#,
        r#"wfm_aws_throttles_total{service="sfn",operation="DescribeExecution"} 1"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains(r#"wfm_aws_errors_total{service="sfn",operation="ListStateMachines"}"#),
        "{text}"
    );
}
