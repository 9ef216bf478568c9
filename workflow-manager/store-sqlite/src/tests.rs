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

/// Every combination of listing filters reads its page from an index, in order: no full scan
/// of the workflows table and no sort of the matching rows.
#[tokio::test]
async fn every_filter_combination_is_served_by_an_index() {
    use chrono::{TimeZone, Utc};
    use wfm_core::model::WorkflowStatus;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("wm.db")).expect("store");
    let conn = store.reader().expect("a file store has readers");
    let t = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
    let mut checked = 0;
    for mask in 0..(1u32 << 8) {
        let bit = |i: u32| mask & (1 << i) != 0;
        let q = WorkflowQuery {
            definition_name: if bit(0) { "flow".into() } else { String::new() },
            statuses: match (bit(1), bit(2)) {
                (true, true) => vec![WorkflowStatus::Failed, WorkflowStatus::Running],
                (true, false) => vec![WorkflowStatus::Failed],
                _ => vec![],
            },
            resolved_by_user: bit(3).then_some(false),
            namespace: bit(4).then(|| "ns".to_string()),
            queue: bit(5).then(|| "q".to_string()),
            created_after: bit(6).then_some(t),
            created_before: bit(6).then_some(t),
            tags: if bit(7) {
                vec![("team".into(), "a".into()), ("env".into(), "b".into())]
            } else {
                vec![]
            },
            oldest_first: mask % 3 == 0,
            limit: 10,
            page_token: None,
        };
        for token in [
            None,
            Some(
                encode_token(&PageKey {
                    c: 1,
                    i: "x".into(),
                })
                .expect("token"),
            ),
        ] {
            let q = WorkflowQuery {
                page_token: token,
                ..q.clone()
            };
            let (sql, args) = list_sql(&q).expect("sql");
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain");
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows");
            let text = plan.join(" | ");
            assert!(
                !text.contains("TEMP B-TREE"),
                "{q:?} sorts its rows: {text}"
            );
            for line in &plan {
                let full_scan = line.starts_with("SCAN") && !line.contains("USING");
                assert!(!full_scan, "{q:?} scans a table: {text}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 512);
}

/// Writes are committed in groups, each in its own savepoint: a refused write (a taken id) is
/// answered with its error and leaves nothing behind, and the writes committed with it stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_does_not_undo_the_others_of_its_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("wm.db")).expect("store"));
    let def = wfm_core::store_suite::sample_definition("group", 0);
    let mut writes = Vec::new();
    for i in 0..200 {
        let (store, def) = (store.clone(), def.clone());
        writes.push(tokio::spawn(async move {
            // Every fourth write reuses the id of the write before it.
            let n = if i % 4 == 3 { i - 1 } else { i };
            let mut wf = wfm_core::store_suite::sample_workflow(&format!("wf-{n}"), &def);
            wf.tags = [("write".to_string(), i.to_string())].into();
            (i, store.save_workflow(&wf).await)
        }));
    }
    let mut conflicts = 0;
    for w in writes {
        match w.await.expect("join") {
            (_, Ok(())) => {}
            (_, Err(StoreError::Conflict(_))) => conflicts += 1,
            (i, Err(other)) => panic!("write {i}: {other}"),
        }
    }
    assert_eq!(conflicts, 50);
    let page = store
        .list_workflows(&WorkflowQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.workflows.len(), 150);
    // The refused writes left no tags: each stored workflow has exactly its own one.
    for wf in &page.workflows {
        let tagged = store
            .list_workflows(&WorkflowQuery {
                tags: vec![("write".into(), wf.tags["write"].clone())],
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("by tag");
        assert_eq!(tagged.workflows.len(), 1, "{}", wf.id);
    }
}

#[tokio::test]
async fn access_checks_pass_in_memory_and_on_file() {
    let store = SqliteStore::in_memory().expect("store");
    wfm_core::store_suite::run_access_checks(&store).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("s.db")).expect("store");
    wfm_core::store_suite::run_access_checks(&store).await;
}
