//! Distributed Maps in the engine, with an in-memory object store standing in for S3 (the
//! engine's side of the contract; S3 itself is tested against moto in
//! `wfm-aws-integrations`): items read from JSON, JSON Lines and CSV objects and from a
//! listing page by page, `MaxItems`, batches, the result files and the Map's output, read
//! failures through Catch, and a restart in the middle of a listing and of the writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::integrations::{IntegrationFailure, ServiceIntegration, Submitted};

/// Objects by `bucket/key`; listings give two objects a page; while `hold` is set, the calls
/// from number `block_from` on wait.
#[derive(Default)]
struct Objects {
    objects: StdMutex<BTreeMap<String, String>>,
    calls: AtomicUsize,
    hold: AtomicBool,
    block_from: AtomicUsize,
}

impl Objects {
    fn with(objects: &[(&str, &str)]) -> Arc<Self> {
        let o = Self::default();
        {
            let mut m = o.objects.lock().unwrap_or_else(|p| p.into_inner());
            for (k, v) in objects {
                m.insert(k.to_string(), v.to_string());
            }
        }
        Arc::new(o)
    }

    /// `count` objects of body `x`, the key of object `i` made by `key`.
    fn numbered(count: usize, key: impl Fn(usize) -> String) -> Arc<Self> {
        let keys: Vec<String> = (0..count).map(key).collect();
        let objects: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "x")).collect();
        Self::with(&objects)
    }

    fn get(&self, key: &str) -> Option<String> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
}

#[async_trait]
impl ServiceIntegration for Objects {
    fn resource_type(&self) -> &'static str {
        "s3"
    }
    fn handles(&self, resource: &str) -> bool {
        resource.starts_with("arn:aws:states:::s3:")
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn submit(&self, resource: &str, p: &Value) -> Result<Submitted, IntegrationFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        while self.hold.load(Ordering::SeqCst) && n >= self.block_from.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let bucket = p["Bucket"].as_str().unwrap_or_default();
        let output = match resource.rsplit(':').next().unwrap_or_default() {
            "getObject" => {
                let key = format!("{bucket}/{}", p["Key"].as_str().unwrap_or_default());
                let body = self.get(&key).ok_or_else(|| IntegrationFailure {
                    error: "S3.NoSuchKeyException".into(),
                    cause: format!("no object {key}"),
                })?;
                json!({ "Body": body })
            }
            "listObjectsV2" => {
                let prefix = format!("{bucket}/{}", p["Prefix"].as_str().unwrap_or_default());
                let keys: Vec<String> = self
                    .objects
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .cloned()
                    .collect();
                let from: usize = p["ContinuationToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let page: Vec<Value> = keys
                    .iter()
                    .skip(from)
                    .take(2)
                    .map(|k| {
                        json!({"ETag": "\"e\"", "Key": k.trim_start_matches(&format!("{bucket}/")),
                               "LastModified": "2024-01-01T00:00:00Z", "Size": 1,
                               "StorageClass": "STANDARD"})
                    })
                    .collect();
                let mut out = json!({ "Contents": page });
                if from + 2 < keys.len() {
                    out["NextContinuationToken"] = json!((from + 2).to_string());
                }
                out
            }
            "putObject" => {
                let key = format!("{bucket}/{}", p["Key"].as_str().unwrap_or_default());
                let body = p["Body"].as_str().unwrap_or_default().to_string();
                self.objects
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, body);
                json!({"ETag": "\"e\""})
            }
            other => {
                return Err(IntegrationFailure {
                    error: "States.Runtime".into(),
                    cause: format!("no action {other}"),
                })
            }
        };
        Ok(Submitted {
            handle: String::new(),
            output,
        })
    }
}

/// Waits until `n` calls were made.
async fn wait_for_calls(s3: &Objects, n: usize) {
    for _ in 0..2000 {
        if s3.calls.load(Ordering::SeqCst) >= n {
            // Let the call's round settle (it is waiting, not answered).
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("fewer than {n} calls");
}

fn distributed(map: Value) -> String {
    let mut m = json!({"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": true}}}});
    if let (Some(t), Some(e)) = (m.as_object_mut(), map.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
    json!({"StartAt": "Fan", "States": {"Fan": m}}).to_string()
}

async fn run(e: &Engine, name: &str, def: &str, input: Value) -> ExecutionInfo {
    let sm = e
        .create_state_machine(name, def, "r", "STANDARD")
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    let ex = e
        .start_execution(&sm.arn, Some(name), Some(&input.to_string()))
        .await
        .expect("start");
    super::tests_support_wait(e, &ex.execution_arn).await
}

fn output(d: &ExecutionInfo) -> Value {
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    serde_json::from_str(d.output.as_deref().unwrap_or("null")).expect("json")
}

#[tokio::test]
async fn items_come_from_json_json_lines_and_csv_objects() {
    let s3 = Objects::with(&[
        ("b/items.json", r#"[{"n": 1}, {"n": 2}, {"n": 3}]"#),
        ("b/items.jsonl", "{\"n\": 1}\n{\"n\": 2}\n"),
        ("b/items.csv", "name;size\nx;1\ny;2\n"),
    ]);
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    e.register_integration(s3.clone());
    let reader = |key: &str, config: Value| {
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                              "Parameters": {"Bucket": "b", "Key": key}, "ReaderConfig": config}})
    };
    let json_items = run(
        &e,
        "json",
        &distributed(reader(
            "items.json",
            json!({"InputType": "JSON", "MaxItemsPath": "$.max"}),
        )),
        json!({"max": 2}),
    )
    .await;
    assert_eq!(output(&json_items), json!([{"n": 1}, {"n": 2}]));
    let lines = run(
        &e,
        "lines",
        &distributed(reader("items.jsonl", json!({"InputType": "JSONL"}))),
        json!({}),
    )
    .await;
    assert_eq!(output(&lines), json!([{"n": 1}, {"n": 2}]));
    let csv = run(
        &e,
        "csv",
        &distributed(reader(
            "items.csv",
            json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "SEMICOLON"}),
        )),
        json!({}),
    )
    .await;
    assert_eq!(
        output(&csv),
        json!([{"name": "x", "size": "1"}, {"name": "y", "size": "2"}])
    );
    // A missing object fails the read (States.ItemReaderFailed), which Catch sees.
    let mut missing = reader("nope.json", json!({"InputType": "JSON"}));
    missing["Catch"] = json!([{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}]);
    let mut def: Value = serde_json::from_str(&distributed(missing)).expect("json");
    if let Some(m) = def["States"]["Fan"].as_object_mut() {
        m.remove("End");
        m.insert("Next".into(), json!("Caught"));
    }
    def["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    let caught = run(&e, "missing", &def.to_string(), json!({})).await;
    let out = output(&caught);
    assert_eq!(out["Error"], json!("States.ItemReaderFailed"), "{out}");
    assert_eq!(out["Cause"], json!("no object b/nope.json"), "{out}");
    // A negative MaxItems is refused as AWS does.
    let negative = run(
        &e,
        "negative",
        &distributed(reader(
            "items.json",
            json!({"InputType": "JSON", "MaxItemsPath": "$.max"}),
        )),
        json!({"max": -1}),
    )
    .await;
    assert_eq!(negative.error.as_deref(), Some("States.ItemReaderFailed"));
    assert_eq!(
        negative.cause.as_deref(),
        Some("field MaxItems must be positive")
    );
}

#[tokio::test]
async fn a_listing_is_read_page_by_page_batched_and_the_results_written() {
    let s3 = Objects::numbered(5, |i| format!("b/in/{i}.txt"));
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    e.register_integration(s3.clone());
    let def = distributed(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                       "Parameters": {"Bucket": "b", "Prefix": "in/"}},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key", "run.$": "$.run"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "b", "Prefix": "out"}},
        "Label": "Files"}));
    let done = run(&e, "files", &def, json!({"run": 7})).await;
    let out = output(&done);
    let history = e
        .get_execution_history(&done.execution_arn, Some(1000), None, false)
        .await
        .expect("history")
        .events;
    let types: Vec<&str> = history
        .iter()
        .map(|ev| ev.event_type.as_str())
        .filter(|t| t.starts_with("MapRun") || t.starts_with("MapState"))
        .collect();
    assert_eq!(
        types,
        [
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited"
        ]
    );
    let started_arn = history
        .iter()
        .find_map(|ev| ev.map_run_started_event_details.as_ref())
        .map(|d| d.map_run_arn.clone());
    let map_run = out["MapRunArn"].as_str().expect("map run arn").to_string();
    assert!(
        map_run.starts_with("arn:aws:states:us-east-1:123456789012:mapRun:files/Files:"),
        "{map_run}"
    );
    assert_eq!(started_arn.as_deref(), Some(map_run.as_str()));
    let id = map_run.rsplit(':').next().expect("id");
    let manifest_key = format!("out/{id}/manifest.json");
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "b", "Key": manifest_key})
    );
    let manifest: Value =
        serde_json::from_str(&s3.get(&format!("b/{manifest_key}")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["MapRunArn"], json!(map_run));
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    let succeeded: Value = serde_json::from_str(
        &s3.get(&format!("b/out/{id}/SUCCEEDED_0.json"))
            .expect("results"),
    )
    .expect("json");
    // Five objects in three pages, in batches of two: three iterations.
    let outputs: Vec<Value> = succeeded
        .as_array()
        .expect("array")
        .iter()
        .map(|r| serde_json::from_str(r["Output"].as_str().unwrap_or("null")).expect("json"))
        .collect();
    assert_eq!(outputs.len(), 3);
    assert_eq!(
        outputs[0],
        json!({"BatchInput": {"run": 7},
               "Items": [{"key": "in/0.txt", "run": 7}, {"key": "in/1.txt", "run": 7}]})
    );
    assert_eq!(outputs[2]["Items"], json!([{"key": "in/4.txt", "run": 7}]));
    assert_eq!(succeeded[0]["Status"], json!("SUCCEEDED"));
    // Three pages read, two files written (SUCCEEDED_0 and the manifest; nothing failed).
    assert_eq!(s3.calls.load(Ordering::SeqCst), 3 + 2);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_listing_and_of_the_writes_finishes_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("engine.db");
    let s3 = Objects::numbered(6, |i| format!("b/in/{i}"));
    let def = distributed(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                       "Parameters": {"Bucket": "b", "Prefix": "in/"}},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "b", "Prefix": "out"}}}));
    // First life: stopped while the second page is being read.
    s3.block_from.store(1, Ordering::SeqCst);
    s3.hold.store(true, Ordering::SeqCst);
    let first = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    first.register_integration(s3.clone());
    let sm = first
        .create_state_machine("restart", &def, "r", "STANDARD")
        .expect("sm");
    let ex = first
        .start_execution(&sm.arn, Some("restart"), Some("{}"))
        .await
        .expect("start");
    wait_for_calls(&s3, 2).await;
    first.halt();
    // Second life: reads the second page again and the third, writes the results, and is
    // stopped while the manifest is being written.
    let before = s3.calls.load(Ordering::SeqCst);
    s3.block_from.store(before + 3, Ordering::SeqCst);
    let second = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    second.register_integration(s3.clone());
    assert_eq!(second.recover().await.expect("recover"), 1);
    wait_for_calls(&s3, before + 4).await;
    second.halt();
    let manifests = |s3: &Objects| {
        s3.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|k| k.ends_with("manifest.json"))
            .count()
    };
    assert_eq!(manifests(&s3), 0, "stopped before the manifest was written");
    // Third life: writes the manifest and ends.
    s3.hold.store(false, Ordering::SeqCst);
    let third = Engine::open(&path, EngineConfig::default(), None).expect("engine");
    third.register_integration(s3.clone());
    assert_eq!(third.recover().await.expect("recover"), 1);
    let done = super::tests_support_wait(&third, &ex.execution_arn).await;
    let out = output(&done);
    let key = out["ResultWriterDetails"]["Key"]
        .as_str()
        .expect("manifest key")
        .replace("manifest.json", "SUCCEEDED_0.json");
    let results: Value =
        serde_json::from_str(&s3.get(&format!("b/{key}")).expect("results")).expect("json");
    let keys: Vec<Value> = results
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["Output"].as_str().unwrap_or("null")).expect("json")
                ["key"]
                .clone()
        })
        .collect();
    assert_eq!(
        keys,
        (0..6).map(|i| json!(format!("in/{i}"))).collect::<Vec<_>>(),
        "every object once, in order"
    );
    let manifest: Value = serde_json::from_str(
        &s3.get(&format!(
            "b/{}",
            out["ResultWriterDetails"]["Key"].as_str().unwrap_or("")
        ))
        .expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["ResultFiles"]["SUCCEEDED"][0]["Key"], json!(key));
}

#[tokio::test]
async fn a_tolerated_failure_is_written_to_the_failed_file() {
    let s3 = Objects::with(&[(
        "b/items.json",
        r#"[{"raw": "{\"n\": 1}"}, {"raw": "not json"}, {"raw": "{\"n\": 3}"}]"#,
    )]);
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    e.register_integration(s3.clone());
    let def = distributed(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "b", "Key": "items.json"},
                       "ReaderConfig": {"InputType": "JSON"}},
        // The second item's selector fails: a tolerated failure without an input.
        "ItemSelector": {"v.$": "States.StringToJson($$.Map.Item.Value.raw)"},
        "ToleratedFailureCount": 1,
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": "b", "Prefix": "out"}}}));
    let done = run(&e, "tolerated", &def, json!({})).await;
    let out = output(&done);
    let manifest_key = out["ResultWriterDetails"]["Key"].as_str().expect("key");
    let manifest: Value =
        serde_json::from_str(&s3.get(&format!("b/{manifest_key}")).expect("manifest"))
            .expect("json");
    let failed_key = manifest["ResultFiles"]["FAILED"][0]["Key"]
        .as_str()
        .expect("a FAILED file");
    let failed: Value =
        serde_json::from_str(&s3.get(&format!("b/{failed_key}")).expect("failed")).expect("json");
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(failed[0]["Status"], json!("FAILED"));
    assert_eq!(failed[0]["Error"], json!("States.Runtime"), "{failed}");
    let succeeded_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .expect("a SUCCEEDED file");
    let succeeded: Value =
        serde_json::from_str(&s3.get(&format!("b/{succeeded_key}")).expect("ok")).expect("json");
    assert_eq!(succeeded.as_array().map(Vec::len), Some(2), "{succeeded}");
}

#[tokio::test]
async fn stopping_the_execution_aborts_its_map_run() {
    let s3 = Objects::with(&[("b/items.json", "[1, 2]")]);
    let e = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    e.register_integration(s3.clone());
    let def = json!({"StartAt": "Fan", "States": {"Fan": {"Type": "Map", "End": true,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "Parameters": {"Bucket": "b", "Key": "items.json"},
                       "ReaderConfig": {"InputType": "JSON"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 3600, "End": true}}}}}});
    let sm = e
        .create_state_machine("stopped", &def.to_string(), "r", "STANDARD")
        .expect("sm");
    let ex = e
        .start_execution(&sm.arn, Some("stopped"), Some("{}"))
        .await
        .expect("start");
    for _ in 0..400 {
        if super::tests::history_types(&e, &ex.execution_arn)
            .await
            .iter()
            .any(|t| t == "WaitStateEntered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    e.stop_execution(&ex.execution_arn, None, None)
        .await
        .expect("stop");
    let seen = super::tests::history_types(&e, &ex.execution_arn).await;
    let n = seen.len();
    assert!(n >= 2, "{seen:?}");
    assert_eq!(
        &seen[n - 2..],
        ["MapRunAborted", "ExecutionAborted"],
        "{seen:?}"
    );
}
