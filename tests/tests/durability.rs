//! Durability of the real binary under `kill -9`: hundreds of workflows of a definition with a
//! Task that retries, a Wait, a Parallel, a Map with MaxConcurrency and a Choice are started
//! while the service's whole process group is killed with SIGKILL at random moments (the seed
//! is printed) and started again on the same data directory. Workers in this test answer
//! tasks over the Step Functions protocol and log every task they are handed.
//!
//! Afterwards: every workflow whose start was answered 2xx succeeded; each has the jobs a run
//! without a crash has (no state entered twice); no task whose answer was acknowledged was
//! handed to a worker again; the listing holds each workflow once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use wfm_e2e::{sfn_client, Api, Server};

const WORKFLOWS: usize = 200;
const KILLS: usize = 6;

fn machine() -> Value {
    json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Task", "Resource": "step",
            "Parameters": {"step": "prepare", "n.$": "$.n", "wf.$": "$$.Execution.Name",
                           "retry.$": "$$.State.RetryCount"},
            "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "ResultPath": "$.prepared", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Fan"},
        "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Each", "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Task", "Resource": "step",
                "Parameters": {"step": "left", "wf.$": "$$.Execution.Name",
                               "retry.$": "$$.State.RetryCount"}, "End": true}}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": "step",
                "Parameters": {"step": "right", "wf.$": "$$.Execution.Name",
                               "retry.$": "$$.State.RetryCount"}, "End": true}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
            "ItemSelector": {"i.$": "$$.Map.Item.Index", "wf.$": "$$.Execution.Name"},
            "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Task",
                "Resource": "step", "Parameters": {"step": "item", "i.$": "$.i", "wf.$": "$.wf",
                                                   "retry.$": "$$.State.RetryCount"},
                "End": true}}},
            "ResultPath": "$.each", "Next": "Decide"},
        "Decide": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericGreaterThanEquals": 0, "Next": "Done"}], "Default": "Bad"},
        "Done": {"Type": "Succeed"},
        "Bad": {"Type": "Fail", "Error": "Negative"}}})
}

/// What the workers saw: every task handed out (by what it is: workflow, step, item, attempt)
/// and the ones whose answer the service acknowledged.
#[derive(Default)]
struct Ledger {
    handed: Vec<String>,
    acknowledged: HashSet<String>,
    again: Vec<String>,
}

/// A worker: polls, logs, answers (the first attempt of every third workflow's prepare step
/// fails with Flaky, which the state retries), until `stop`.
async fn worker(endpoint: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<tokio::sync::Notify>) {
    let sfn = sfn_client(&endpoint).await;
    let activity = "arn:aws:states:us-east-1:123456789012:activity:default--step";
    loop {
        let poll = sfn.get_activity_task().activity_arn(activity).send();
        let task = tokio::select! {
            r = poll => r,
            _ = stop.notified() => return,
        };
        let Ok(task) = task else {
            // The service is down (killed): try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (Some(token), Some(input)) = (task.task_token(), task.input()) else {
            continue;
        };
        let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
        let key = format!(
            "{} {} {} {}",
            input["wf"], input["step"], input["i"], input["retry"]
        );
        {
            let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
            if l.acknowledged.contains(&key) {
                l.again.push(key.clone());
            }
            l.handed.push(key.clone());
        }
        let flaky = input["step"] == "prepare"
            && input["retry"] == 0
            && input["n"].as_u64().unwrap_or(1).is_multiple_of(3);
        let acknowledged = if flaky {
            sfn.send_task_failure()
                .task_token(token)
                .error("Flaky")
                .send()
                .await
                .is_ok()
        } else {
            sfn.send_task_success()
                .task_token(token)
                .output(json!({"done": key}).to_string())
                .send()
                .await
                .is_ok()
        };
        if acknowledged {
            ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .acknowledged
                .insert(key);
        }
    }
}

fn job_states(workflow: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for j in workflow["jobs"].as_array().into_iter().flatten() {
        if let Some(s) = j["state"].as_str() {
            *out.entry(s.to_string()).or_default() += 1;
        }
    }
    out
}

async fn wait_finished(api: &Api, id: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    let mut last = Value::Null;
    loop {
        if let Ok((200, v, _)) = api
            .try_call(Method::GET, &format!("/workflows/{id}"), None)
            .await
        {
            if matches!(
                v["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return v;
            }
            last = v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "workflow {id} did not finish: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_workflows_survive_repeated_kill_9_of_the_process_group() {
    let port = wfm_e2e::free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let flags = ["--no-local-workers", "--activity-poll-seconds", "1"];
    let mut server = Server::start_on(tempfile::tempdir().expect("tmp"), &listen, &flags);
    let api = Arc::new(Api::new(&url));
    let (status, v) = api
        .call(
            Method::POST,
            "/workflow-definitions",
            Some(&json!({"name": "durable-mix", "stateMachine": machine()})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(worker(format!("{url}/sfn"), ledger.clone(), stop.clone())))
        .collect();

    // Two runs without a crash: what every workflow's jobs must be.
    let mut expected = HashMap::new();
    for n in [0u64, 1] {
        let body = json!({"workflowDefinition": {"name": "durable-mix"}, "id": format!("baseline-{n}"),
                          "input": json!({"n": n, "items": [0, 1, 2]}).to_string()});
        api.start_workflow(&body).await;
        let done = wait_finished(&api, &format!("baseline-{n}"), Duration::from_secs(60)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        expected.insert(n % 3 == 0, job_states(&done));
    }

    // Starts, while the service is killed now and then: a start the service did not answer
    // is sent again (the id makes it idempotent) until it is answered.
    let starter = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut started = Vec::new();
            for i in 0..WORKFLOWS {
                let id = format!("dur-{i}");
                let body = json!({"workflowDefinition": {"name": "durable-mix"}, "id": id,
                                  "input": json!({"n": i, "items": [0, 1, 2]}).to_string()});
                loop {
                    match api.try_call(Method::POST, "/workflows", Some(&body)).await {
                        Ok((200, _, _)) => {
                            started.push((i, id));
                            break;
                        }
                        Ok((status, v, _)) => panic!("start {id}: {status} {v}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            started
        })
    };
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    println!("kill schedule seed: {seed}");
    for _ in 0..KILLS {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pause = 300 + (seed >> 33) % 1500;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let data = server.kill();
        server = Server::start_on(data, &listen, &flags);
    }
    let started = starter.await.expect("starter");
    assert_eq!(started.len(), WORKFLOWS);

    for (i, id) in &started {
        let done = wait_finished(&api, id, Duration::from_secs(240)).await;
        assert_eq!(done["status"], "succeeded", "{done}\n{}", server.log());
        assert_eq!(
            job_states(&done),
            expected[&(i % 3 == 0)],
            "a state was entered twice or skipped: {done}"
        );
    }
    stop.notify_waiters();
    for w in workers {
        w.abort();
    }
    {
        let l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            l.again.is_empty(),
            "tasks handed out again after their answer was acknowledged: {:?}",
            l.again
        );
        println!(
            "{} tasks handed out, {} acknowledged answers",
            l.handed.len(),
            l.acknowledged.len()
        );
    }

    // The listing holds each workflow once.
    let mut listed = Vec::new();
    let mut path = "/workflows?workflowDefinitionName=durable-mix&limit=100".to_string();
    loop {
        let (status, v, headers) = api
            .try_call(Method::GET, &path, None)
            .await
            .expect("listing");
        assert_eq!(status, 200, "{v}");
        listed.extend(
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w["id"].as_str().map(str::to_string)),
        );
        match headers
            .get("X-Next-Page-Path")
            .and_then(|h| h.to_str().ok())
        {
            Some(next) if !next.is_empty() => path = next.to_string(),
            _ => break,
        }
    }
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a workflow is listed twice");
    for (_, id) in &started {
        assert!(unique.contains(id), "{id} is not listed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_service_on_the_same_data_directory_refuses_to_start() {
    let first = Server::start(&["--no-local-workers"]);
    let out = std::process::Command::new(wfm_e2e::binaries().join("workflow-manager"))
        .current_dir(wfm_e2e::workspace())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-local-workers",
            "--data-dir",
        ])
        .arg(first.data.path())
        .output()
        .expect("run a second service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("in use by another process"),
        "no clear message: {stderr}"
    );
    // The first one is untouched.
    let (status, _) = Api::new(&first.url)
        .call(Method::GET, "/_health", None)
        .await;
    assert_eq!(status, 200);
}
