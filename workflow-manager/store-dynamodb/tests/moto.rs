//! The DynamoDB store against moto's server: the shared store suite and access checks, large
//! workflows in pieces, and table creation that can run twice.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use wfm_core::store_suite;
use wfm_core::Store;
use wfm_store_dynamodb::DynamoStore;

/// Records the name of every operation the store calls.
#[derive(Debug, Default, Clone)]
struct Operations(Arc<Mutex<Vec<String>>>);

impl Intercept for Operations {
    fn name(&self) -> &'static str {
        "operations"
    }
    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(m.name().to_string());
        }
        Ok(())
    }
}

fn client(endpoint: &str, operations: &Operations) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .interceptor(operations.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn fresh_store(endpoint: &str) -> DynamoStore {
    fresh_store_recording(endpoint, &Operations::default()).await
}

async fn fresh_store_recording(endpoint: &str, operations: &Operations) -> DynamoStore {
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::new(client(endpoint, operations), &prefix[..12]);
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
    let operations = Operations::default();
    let store = fresh_store_recording(&moto.endpoint, &operations).await;
    store_suite::run_all(&store).await;
    store_suite::run_access_checks(&store).await;
    // Every listing of the suite was a Query on a table or an index: never a Scan.
    let seen = operations
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(seen.iter().any(|o| o == "Query"), "{seen:?}");
    assert!(
        !seen.iter().any(|o| o == "Scan"),
        "a Scan was made: {seen:?}"
    );
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

    // A definition over an item's size (up to 1 MiB is accepted) is kept whole too, and its
    // latest-version pointer reads the same pieces.
    let mut big_def = store_suite::sample_definition("big-def", 0);
    big_def.state_machine.comment = Some("d".repeat(900_000));
    store
        .save_workflow_definition(&big_def)
        .await
        .expect("save a 900 KB definition");
    assert_eq!(
        store
            .latest_workflow_definition("big-def")
            .await
            .expect("latest"),
        big_def
    );
    assert_eq!(
        store
            .get_workflow_definition("big-def", 0)
            .await
            .expect("get"),
        big_def
    );

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

#[tokio::test]
async fn deleting_many_pieces_writes_at_most_25_per_batch() {
    let Some(moto) = wfm_emulators::Emulator::moto() else {
        return;
    };
    let operations = Operations::default();
    // 1 KB pieces: a 60 KB workflow is 60 of them.
    let store = fresh_store_recording(&moto.endpoint, &operations)
        .await
        .with_body_limits(1_000, 1_000);
    let def = store_suite::sample_definition("many", 0);
    let mut wf = store_suite::sample_workflow("big-1", &def);
    wf.input = format!("{{\"blob\":\"{}\"}}", "x".repeat(60_000));
    store.save_workflow(&wf).await.expect("save");
    assert_eq!(store.get_workflow("big-1").await.expect("get"), wf);
    let pieces = parts(&store).await;
    assert!(pieces > 50, "{pieces} pieces");
    operations
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    store.delete_workflow("big-1").await.expect("delete");
    assert_eq!(parts(&store).await, 0);
    let batches = operations
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|o| *o == "BatchWriteItem")
        .count();
    assert_eq!(
        batches,
        pieces.div_ceil(25),
        "{pieces} deletions in batches of 25"
    );
}
