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
    let store = SqliteStore::in_memory().expect("store");
    let conn = store.conn();
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
