//! The DynamoDB store against moto's server: the shared store suite and access checks, large
//! workflows in pieces, and table creation that can run twice.

use aws_sdk_dynamodb::config::{Credentials, Region};
use wfm_core::store_suite;
use wfm_core::Store;
use wfm_store_dynamodb::DynamoStore;

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn fresh_store(endpoint: &str) -> DynamoStore {
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::new(client(endpoint), &prefix[..12]);
    store.ensure_tables().await.expect("tables");
    store
        .ensure_tables()
        .await
        .expect("tables again (idempotent)");
    store
}

#[tokio::test]
async fn dynamodb_store_passes_the_store_suite_and_the_access_checks() {
    let Some(moto) = wfm_emulators::Emulator::moto() else {
        return;
    };
    let store = fresh_store(&moto.endpoint).await;
    store_suite::run_all(&store).await;
    store_suite::run_access_checks(&store).await;
}

#[tokio::test]
async fn workflows_larger_than_an_item_are_kept_whole_and_replaced_without_leftovers() {
    let Some(moto) = wfm_emulators::Emulator::moto() else {
        return;
    };
    let store = fresh_store(&moto.endpoint).await;
    let def = store_suite::sample_definition("big", 0);
    let mut wf = store_suite::sample_workflow("big-1", &def);
    wf.input = format!("{{\"blob\":\"{}\"}}", "x".repeat(250_000));
    wf.output = format!("{{\"blob\":\"{}\"}}", "é".repeat(120_000));
    for i in 0..4 {
        let mut job: wfm_core::model::Job = serde_json::from_value(serde_json::json!({
            "id": format!("job-{i}"), "state": format!("S{i}"), "status": "succeeded",
            "createdAt": "2026-01-01T00:00:00Z", "input": "y".repeat(200_000),
        }))
        .expect("job");
        job.output = "z".repeat(100_000);
        wf.jobs.push(job);
    }
    store
        .save_workflow(&wf)
        .await
        .expect("save a 1.7 MB workflow");
    assert_eq!(store.get_workflow("big-1").await.expect("get"), wf);
    assert_eq!(parts(&store).await, 6, "1.7 MB in 300 KB pieces");

    // Replaced by a larger one, then by a small one: the old pieces go.
    wf.jobs.push(wf.jobs[0].clone());
    wf.last_updated = chrono::Utc::now();
    store.update_workflow(&wf).await.expect("update larger");
    assert_eq!(store.get_workflow("big-1").await.expect("get"), wf);
    assert_eq!(parts(&store).await, 7);
    let listed = store
        .list_workflows(&wfm_core::WorkflowQuery {
            definition_name: "big".into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        listed.workflows,
        [wf.clone()],
        "listings read the pieces too"
    );
    wf.jobs.clear();
    wf.input = "{}".into();
    wf.output = "{}".into();
    store.update_workflow(&wf).await.expect("update smaller");
    assert_eq!(store.get_workflow("big-1").await.expect("get"), wf);
    assert_eq!(parts(&store).await, 0, "no pieces left behind");

    // A refused write leaves no pieces either.
    let mut terminal = wf.clone();
    terminal.status = wfm_core::model::WorkflowStatus::Succeeded;
    store.update_workflow(&terminal).await.expect("succeed");
    let mut back = terminal.clone();
    back.status = wfm_core::model::WorkflowStatus::Running;
    back.input = "x".repeat(700_000);
    assert!(store.update_workflow(&back).await.is_err());
    assert_eq!(
        parts(&store).await,
        0,
        "pieces of a refused write are removed"
    );
    store.delete_workflow("big-1").await.expect("delete");
}

async fn parts(store: &DynamoStore) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let out = store
            .client_for_tests()
            .query()
            .table_name(&store.tables().workflow_parts)
            .key_condition_expression("workflowId = :o")
            .expression_attribute_values(
                ":o",
                aws_sdk_dynamodb::types::AttributeValue::S("workflow#big-1".into()),
            )
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("parts");
        count += out.count() as usize;
        start = out.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}
