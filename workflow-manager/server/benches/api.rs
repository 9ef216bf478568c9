//! REST API speed: workflow starts per second with 64 concurrent clients (one-state Pass
//! definition, SQLite and the embedded engine), and list latency for the first and the tenth
//! page with each filter, over stores of 10 thousand, 100 thousand and 1 million workflows (the
//! generator fills 1 million in about 15 s). Prints numbers; asserts nothing.
//!
//! `cargo bench -p workflow-manager --bench api [-- starts|lists]`; `WFM_BENCH_AUTH=tokens` runs
//! the starts with token authentication (a token lookup per request).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wfm_core::store::{Store, WorkflowQuery};
use wfm_store_sqlite::SqliteStore;
use workflow_manager::{start, Config};

/// The service's allocator (see `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize]
}

/// `clients` concurrent clients each starting `per_client` workflows one after the other;
/// the latency of every start, per client.
async fn run_clients(
    http: &reqwest::Client,
    base: &str,
    body: &serde_json::Value,
    clients: usize,
    per_client: usize,
) -> Vec<Vec<Duration>> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, body) = (http.clone(), format!("{base}/workflows"), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let r = http.post(&url).json(&body).send().await.expect("start");
                    assert!(r.status().is_success(), "{}", r.status());
                    let _ = r.bytes().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut out = Vec::with_capacity(clients);
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}

/// Starts per client before measuring.
const WARM_UP_PER_CLIENT: usize = 30;

/// The admin token of a bench with `WFM_BENCH_AUTH=tokens`.
const BENCH_TOKEN: &str = "bench-admin-token-0123456789";

async fn starts(clients: usize, per_client: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = Config::isolated(dir.path());
    let mut headers = reqwest::header::HeaderMap::new();
    if std::env::var("WFM_BENCH_AUTH").as_deref() == Ok("tokens") {
        config.auth = workflow_manager::auth::AuthMode::Tokens;
        config.admin_token = Some(BENCH_TOKEN.into());
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {BENCH_TOKEN}").parse().expect("header"),
        );
        println!("(with token authentication)");
    }
    let running = start(&config).await.expect("start");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    let def = json!({"name": "pass-one", "stateMachine": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
    http.post(format!("{base}/workflow-definitions"))
        .json(&def)
        .send()
        .await
        .expect("definition");
    let body = json!({"workflowDefinition": {"name": "pass-one"}, "input": "{\"x\": 1}"});
    // Warm-up, not measured: connections opened, files grown to their working size.
    run_clients(&http, &base, &body, clients, WARM_UP_PER_CLIENT).await;
    let began = Instant::now();
    let all_per_client = run_clients(&http, &base, &body, clients, per_client).await;
    let took = began.elapsed();
    let mut all: Vec<Duration> = all_per_client.into_iter().flatten().collect();
    all.sort();
    println!(
        "starts over HTTP, {clients} clients, {} starts: {:.0}/s  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        all.len(),
        all.len() as f64 / took.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.9),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    );
    // The store follows the engine through the sync: how long until every workflow reads
    // succeeded (the sync keeps up if this stays short as the run grows).
    let total = (all.len() + clients * WARM_UP_PER_CLIENT) as u64;
    let ended = Instant::now();
    loop {
        let counts: serde_json::Value = http
            .get(format!(
                "{base}/workflow-counts?workflowDefinitionName=pass-one"
            ))
            .send()
            .await
            .expect("counts")
            .json()
            .await
            .expect("counts json");
        if counts["succeeded"].as_u64() == Some(total) {
            println!(
                "  every workflow synced to succeeded {:?} after the last start",
                ended.elapsed()
            );
            break;
        }
        if ended.elapsed() > Duration::from_secs(120) {
            println!("  not all synced after 120 s: {counts}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
}

async fn fill(store: &SqliteStore, n: usize, base: chrono::DateTime<chrono::Utc>) {
    let defs = [
        wfm_core::store_suite::sample_definition("bench-a", 0),
        wfm_core::store_suite::sample_definition("bench-b", 0),
    ];
    let statuses = [
        wfm_core::model::WorkflowStatus::Succeeded,
        wfm_core::model::WorkflowStatus::Failed,
        wfm_core::model::WorkflowStatus::Running,
    ];
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let mut wf = wfm_core::store_suite::sample_workflow(&format!("wf-{i:08}"), &defs[i % 2]);
        wf.created_at = base + chrono::Duration::milliseconds(i as i64);
        wf.status = statuses[i % 3];
        wf.resolved_by_user = i % 5 != 0;
        wf.namespace = format!("ns-{}", i % 4);
        wf.queue = format!("q-{}", i % 3);
        wf.tags = [("team".to_string(), format!("t{}", i % 7))].into();
        batch.push(wf);
        if batch.len() == 10_000 {
            store
                .save_many(std::mem::take(&mut batch))
                .await
                .expect("fill");
        }
    }
    store.save_many(batch).await.expect("fill");
}

async fn lists(n: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Arc::new(SqliteStore::open(&dir.path().join("wm.db")).expect("store"));
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    fill(&store, n, base).await;
    let cases: Vec<(&str, WorkflowQuery)> = vec![
        ("none", WorkflowQuery::default()),
        (
            "definition",
            WorkflowQuery {
                definition_name: "bench-a".into(),
                ..Default::default()
            },
        ),
        (
            "status",
            WorkflowQuery {
                statuses: vec![wfm_core::model::WorkflowStatus::Failed],
                ..Default::default()
            },
        ),
        (
            "def+status+unresolved",
            WorkflowQuery {
                definition_name: "bench-a".into(),
                statuses: vec![wfm_core::model::WorkflowStatus::Failed],
                resolved_by_user: Some(false),
                ..Default::default()
            },
        ),
        (
            "namespace",
            WorkflowQuery {
                namespace: Some("ns-1".into()),
                ..Default::default()
            },
        ),
        (
            "queue",
            WorkflowQuery {
                queue: Some("q-2".into()),
                ..Default::default()
            },
        ),
        (
            "tag",
            WorkflowQuery {
                tags: vec![("team".into(), "t3".into())],
                ..Default::default()
            },
        ),
        (
            // The middle half of the filled range (workflow i was created at base + i ms).
            "created range",
            WorkflowQuery {
                created_after: Some(base + chrono::Duration::milliseconds(n as i64 / 4)),
                created_before: Some(base + chrono::Duration::milliseconds(3 * n as i64 / 4)),
                ..Default::default()
            },
        ),
    ];
    for (name, q) in cases {
        for page in [1usize, 10] {
            let mut samples = Vec::new();
            let mut rows = 0;
            for _ in 0..50 {
                let mut query = WorkflowQuery {
                    limit: 10,
                    ..q.clone()
                };
                let mut took = Duration::ZERO;
                for _ in 0..page {
                    let t = Instant::now();
                    let result = store.list_workflows(&query).await.expect("list");
                    took = t.elapsed();
                    rows = result.workflows.len();
                    query.page_token = result.next_page_token;
                }
                samples.push(took);
            }
            samples.sort();
            println!(
                "list {n:>8} workflows, filter {name:<22} page {page:>2} ({rows} rows): p50 {:?}  p99 {:?}",
                percentile(&samples, 0.5),
                percentile(&samples, 0.99)
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench --bench api -- starts` (or `lists`) runs one part.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if wanted("starts") {
        // `WFM_BENCH_STARTS` starts per client (default 300).
        let per_client = std::env::var("WFM_BENCH_STARTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        starts(64, per_client).await;
    }
    if !wanted("lists") {
        return;
    }
    for n in [10_000, 100_000, 1_000_000] {
        lists(n).await;
    }
}
