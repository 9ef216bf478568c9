//! The shared Store behaviour suite, on SQLite (in memory and on disk).

use super::*;

#[tokio::test]
async fn in_memory_store_passes_the_suite() {
    let store = SqliteStore::in_memory().expect("store");
    wfm_core::store_suite::run_all(&store).await;
}

#[tokio::test]
async fn file_store_passes_the_suite_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wm.db");
    {
        let store = SqliteStore::open(&path).expect("store");
        wfm_core::store_suite::run_all(&store).await;
    }
    let reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        reopened
            .latest_workflow_definition("suite-def")
            .await
            .expect("latest")
            .version,
        1
    );
}
