//! Conformance of the embedded engine with AWS Step Functions, measured against executions
//! recorded on real AWS (`shared/conformance/sfn-executions.jsonl`, see its README).
//!
//! Every case runs on a fresh in-memory engine (activity cases with a worker that does what
//! the case says); status, output, error and cause are compared after the case's
//! normalisation. The test fails on any failing case that is not listed in
//! `conformance-known-failures.txt`, and on any listed case that now passes (so the list only
//! shrinks). It prints the pass rate per category and per feature.
//!
//! The data is found at `$WFM_CONFORMANCE_DIR`, else `../shared/conformance` beside the
//! workspace; when it is absent the test says so loudly and skips.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};
use wfm_engine::{Engine, EngineConfig};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111111111111";
const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/conformance";
const ACTIVITY_NAME: &str = "conformance-activity";
const KNOWN_FAILURES: &str = include_str!("conformance-known-failures.txt");

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    category: String,
    features: Vec<String>,
    state_machine_type: String,
    template: Value,
    input: Value,
    expected: Value,
    exact: bool,
    #[serde(default)]
    normalisation: Vec<Value>,
    #[serde(default)]
    placeholders: Vec<String>,
    activity_worker: Option<Value>,
}

/// The recorded cases of a JSON Lines file, one per non-empty line.
fn read_cases<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .expect("read cases")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a case"))
        .collect()
}

fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WFM_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    dir.join("sfn-executions.jsonl").exists().then_some(dir)
}

/// The case's `${VARIABLE}` placeholders and what they stand for in this run.
fn variables(sm_name: &str, exec_name: &str, activity_arn: &str) -> Vec<(&'static str, String)> {
    vec![
        ("${ACTIVITY_ARN}", activity_arn.to_string()),
        ("${ACTIVITY_NAME}", ACTIVITY_NAME.to_string()),
        ("${ROLE_ARN}", ROLE_ARN.to_string()),
        ("${STATE_MACHINE_NAME}", sm_name.to_string()),
        ("${EXECUTION_NAME}", exec_name.to_string()),
    ]
}

fn map_strings(v: &mut Value, f: &mut dyn FnMut(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| map_strings(x, f)),
        Value::Object(o) => {
            let old = std::mem::take(o);
            for (k, mut x) in old {
                map_strings(&mut x, f);
                o.insert(f(&k), x);
            }
        }
        _ => {}
    }
}

/// Replaces every node `path` selects with `replacement`.
fn replace_at_path(v: &mut Value, path: &str, replacement: &Value) {
    let Ok(p) = serde_json_path::JsonPath::parse(path) else {
        return;
    };
    let pointers: Vec<String> = p
        .query_located(v)
        .locations()
        .map(|l| l.to_json_pointer())
        .collect();
    for ptr in pointers {
        if let Some(slot) = v.pointer_mut(&ptr) {
            *slot = replacement.clone();
        }
    }
}

struct Normaliser {
    /// JSON objects quoted in messages (`'{...}'`) become `<json-input:N>`.
    json_inputs: bool,
    literal: Vec<(String, String)>,
    regex: Vec<(Regex, String)>,
    paths: Vec<(String, Value)>,
    generic: bool,
}

impl Normaliser {
    fn new(case: &Case, vars: &[(&'static str, String)]) -> Self {
        let mut n = Normaliser {
            json_inputs: case
                .placeholders
                .iter()
                .any(|p| p.starts_with("<json-input:")),
            literal: Vec::new(),
            regex: Vec::new(),
            paths: Vec::new(),
            generic: !case.exact,
        };
        for rule in &case.normalisation {
            let s = |k: &str| {
                rule.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            match rule["type"].as_str() {
                Some("literal") => {
                    let mut value = s("value");
                    for (name, actual) in vars {
                        value = value.replace(name, actual);
                    }
                    if !value.is_empty() {
                        n.literal.push((value, s("replacement")));
                    }
                }
                Some("regex") => {
                    if let Ok(r) = Regex::new(&s("pattern")) {
                        n.regex.push((r, s("replacement")));
                    }
                }
                Some("jsonpath") => {
                    // Rules written for the whole history: keep the part inside the output.
                    let path = s("path");
                    let path = match path.rfind(".output.") {
                        Some(i) => format!("$..{}", &path[i + ".output.".len()..]),
                        None => path,
                    };
                    n.paths.push((path, rule["replacement"].clone()));
                }
                _ => {}
            }
        }
        n
    }

    fn apply(&self, v: &mut Value, sm_name: &str, exec_name: &str) {
        if self.generic {
            parse_json_strings(v);
        }
        let timestamp =
            Regex::new(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:?\d{2})").ok();
        let uuid = Regex::new(
            r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        )
        .ok();
        let generic = self.generic;
        map_strings(v, &mut |s: &str| {
            let mut out = s.to_string();
            for (from, to) in &self.literal {
                out = out.replace(from.as_str(), to);
            }
            for (r, to) in &self.regex {
                out = r.replace_all(&out, to.as_str()).into_owned();
            }
            if self.json_inputs {
                out = number_json_inputs(&out);
            }
            if generic {
                if let Some(t) = &timestamp {
                    out = t.replace_all(&out, "date").into_owned();
                }
                out = out
                    .replace("arn:aws:", "arn:<partition>:")
                    .replace(REGION, "<region>")
                    .replace(sm_name, "<ArnPart_0idx>")
                    .replace(exec_name, "<ExecArnPart_0idx>");
            }
            out
        });
        for (path, replacement) in &self.paths {
            replace_at_path(v, path, replacement);
        }
        if generic {
            if let Some(u) = &uuid {
                let mut seen: Vec<String> = Vec::new();
                number_uuids(v, u, &mut seen, false);
            }
        }
    }
}

/// Replaces each quoted JSON object (`'{...}'`) in a message with `'<json-input:N>'`.
fn number_json_inputs(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut n = 0;
    while let Some(start) = rest.find("'{") {
        let Some(len) = rest[start + 1..].rfind("}'") else {
            break;
        };
        let candidate = &rest[start + 1..start + 1 + len + 1];
        if serde_json::from_str::<Value>(candidate).is_ok_and(|v| v.is_object()) {
            n += 1;
            out.push_str(&rest[..start]);
            out.push_str(&format!("'<json-input:{n}>'"));
            rest = &rest[start + 1 + len + 2..];
        } else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces UUIDs under keys ending in `id` with `<uuid:N>`, numbered in order of appearance.
fn number_uuids(v: &mut Value, uuid: &Regex, seen: &mut Vec<String>, under_id_key: bool) {
    match v {
        Value::String(s) if under_id_key && uuid.is_match(s) => {
            let n = match seen.iter().position(|x| x == s) {
                Some(i) => i + 1,
                None => {
                    seen.push(s.clone());
                    seen.len()
                }
            };
            *s = format!("<uuid:{n}>");
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| number_uuids(x, uuid, seen, under_id_key)),
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                number_uuids(x, uuid, seen, k.to_lowercase().ends_with("id"));
            }
        }
        _ => {}
    }
}

/// A string value that starts with `{` and parses as JSON becomes the parsed object, one level
/// deep: the value itself or its direct fields.
fn parse_json_strings(v: &mut Value) {
    fn parse_one(v: &mut Value) {
        if let Value::String(s) = v {
            if s.starts_with('{') {
                if let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                    *v = parsed;
                }
            }
        }
    }
    match v {
        Value::Object(o) => o.values_mut().for_each(parse_one),
        Value::Array(a) => a.iter_mut().for_each(parse_one),
        other => parse_one(other),
    }
}

/// JSON equality with numbers compared numerically.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

async fn run_case(case: &Case, index: usize) -> Result<(), String> {
    let engine = Engine::in_memory(
        EngineConfig {
            region: REGION.into(),
            account: ACCOUNT.into(),
        },
        None,
    )
    .map_err(|e| format!("engine: {e}"))?;
    // No '-' in the names: some cases split the name on it.
    let sm_name = format!("conformancesm{index}");
    let exec_name = format!("conformanceexec{index}");
    let worker_kind = case
        .activity_worker
        .as_ref()
        .and_then(|w| w["kind"].as_str())
        .unwrap_or("");
    let activity_arn = if worker_kind.contains("deleted") {
        engine.activity_arn(ACTIVITY_NAME)
    } else {
        engine
            .create_activity(ACTIVITY_NAME)
            .map_err(|e| format!("activity: {e}"))?
            .0
    };
    let vars = variables(&sm_name, &exec_name, &activity_arn);
    let mut template = case.template.to_string();
    for (name, actual) in &vars {
        template = template.replace(name, actual);
    }
    let machine_type = if case.state_machine_type == "EXPRESS" {
        "EXPRESS"
    } else {
        "STANDARD"
    };
    let sm = engine
        .create_state_machine(&sm_name, &template, ROLE_ARN, machine_type)
        .map_err(|e| format!("CreateStateMachine: {e}"))?;
    let exec = engine
        .start_execution(&sm.arn, Some(&exec_name), Some(&case.input.to_string()))
        .await
        .map_err(|e| format!("StartExecution: {e}"))?;

    // Virtual time: generous, and free for cases that end early.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let described = loop {
        if case.activity_worker.is_some() && worker_kind.starts_with("echo") {
            if let Ok(Some(task)) = engine
                .get_activity_task(&activity_arn, None, Duration::from_millis(10))
                .await
            {
                let _ = engine
                    .send_task_success(&task.task_token, &task.input)
                    .await;
            }
        }
        let d = engine
            .describe_execution(&exec.execution_arn)
            .await
            .map_err(|e| format!("describe: {e}"))?;
        if d.status != "RUNNING" {
            break d;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = engine.stop_execution(&exec.execution_arn, None, None).await;
            return Err("still RUNNING after 600 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };

    let expected = &case.expected;
    let status = expected["status"].as_str().unwrap_or("");
    if described.status != status {
        return Err(format!(
            "status {} (error {:?}, cause {:?}), expected {status}",
            described.status, described.error, described.cause
        ));
    }
    let normaliser = Normaliser::new(case, &vars);
    if status == "SUCCEEDED" {
        let text = described.output.unwrap_or_default();
        let mut actual: Value = if expected["output_is_raw_text"].as_bool() == Some(true) {
            Value::String(text)
        } else {
            serde_json::from_str(&text).map_err(|e| format!("output is not JSON: {e}"))?
        };
        normaliser.apply(&mut actual, &sm_name, &exec_name);
        if !same(&actual, &expected["output"]) {
            return Err(format!("output {actual}, expected {}", expected["output"]));
        }
    } else {
        let mut actual = Map::new();
        if let Some(e) = described.error {
            actual.insert("error".into(), Value::String(e));
        }
        if let Some(c) = described.cause {
            let cause = if expected["cause_is_json_text"].as_bool() == Some(true) {
                serde_json::from_str(&c).unwrap_or(Value::String(c))
            } else {
                Value::String(c)
            };
            actual.insert("cause".into(), cause);
        }
        let mut actual = Value::Object(actual);
        normaliser.apply(&mut actual, &sm_name, &exec_name);
        for field in ["error", "cause"] {
            let want = expected.get(field).cloned().unwrap_or(Value::Null);
            let got = actual.get(field).cloned().unwrap_or(Value::Null);
            let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
            if !(same(&got, &want) || (empty(&got) && empty(&want))) {
                return Err(format!("{field} {got}, expected {want}"));
            }
        }
    }
    Ok(())
}

fn known_failures() -> BTreeSet<String> {
    KNOWN_FAILURES
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
}

fn report(title: &str, tallies: &BTreeMap<String, Tally>) -> String {
    let mut out = format!("{title}\n");
    for (name, t) in tallies {
        out.push_str(&format!(
            "  {name:<28} {:>4}/{:<4} {:>5.1}%\n",
            t.passed,
            t.total,
            100.0 * t.passed as f64 / t.total.max(1) as f64
        ));
    }
    out
}

// Virtual time: Wait states and retry intervals elapse at once.
#[tokio::test(start_paused = true)]
async fn engine_conforms_to_recorded_aws_behaviour() {
    let Some(dir) = data_dir() else {
        eprintln!(
            "\n*** SKIPPED conformance: no sfn-executions.jsonl in $WFM_CONFORMANCE_DIR or \
             ../shared/conformance beside the workspace. The engine was NOT measured. ***\n"
        );
        return;
    };
    let cases: Vec<Case> = read_cases(&dir.join("sfn-executions.jsonl"));
    let known = known_failures();
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    let stale: Vec<&String> = known.iter().filter(|k| !ids.contains(k.as_str())).collect();

    let mut by_category: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_feature: BTreeMap<String, Tally> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    let mut all_failures = Vec::new();
    let mut failing_now = Vec::new();
    let mut passed = 0;
    for (i, case) in cases.iter().enumerate() {
        let result = run_case(case, i).await;
        let ok = result.is_ok();
        passed += ok as usize;
        let t = by_category.entry(case.category.clone()).or_default();
        t.total += 1;
        t.passed += ok as usize;
        for f in &case.features {
            let t = by_feature.entry(f.clone()).or_default();
            t.total += 1;
            t.passed += ok as usize;
        }
        if let Err(e) = &result {
            let reason: String = e.replace('\n', " ").chars().take(160).collect();
            failing_now.push(format!("{} # {reason}", case.id));
        }
        match (result, known.contains(&case.id)) {
            (Err(e), false) => unexpected.push(format!("{}\n    {e}", case.id)),
            (Err(e), true) => all_failures.push(format!("{} # {e}", case.id)),
            (Ok(()), true) => now_passing.push(case.id.clone()),
            (Ok(()), false) => {}
        }
    }
    let summary = format!(
        "conformance: {passed}/{} cases pass ({:.1}%)\n{}{}",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64,
        report("by category:", &by_category),
        report("by feature:", &by_feature)
    );
    println!("{summary}");
    if let Ok(path) = std::env::var("WFM_CONFORMANCE_REPORT") {
        let detail = format!(
            "{summary}\nknown failures and why they fail now:\n{}\n",
            all_failures.join("\n")
        );
        std::fs::write(path, detail).expect("write report");
    }
    if let Ok(path) = std::env::var("WFM_CONFORMANCE_UPDATE_KNOWN") {
        let header = "# Conformance cases the embedded engine fails today, one per line: case id, then\n\
                      # ' # ' and why it fails. Regenerate with\n\
                      # WFM_CONFORMANCE_UPDATE_KNOWN=$PWD/workflow-manager/engine/tests/conformance-known-failures.txt \\\n\
                      #   cargo test -p wfm-engine --test conformance\n";
        std::fs::write(path, format!("{header}{}\n", failing_now.join("\n")))
            .expect("write known failures");
        return;
    }
    let mut problems = String::new();
    if !unexpected.is_empty() {
        problems.push_str(&format!(
            "{} cases fail that are not known failures:\n{}\n",
            unexpected.len(),
            unexpected.join("\n")
        ));
    }
    if !now_passing.is_empty() {
        problems.push_str(&format!(
            "{} known failures pass now: remove them from conformance-known-failures.txt:\n{}\n",
            now_passing.len(),
            now_passing.join("\n")
        ));
    }
    if !stale.is_empty() {
        problems.push_str(&format!("known failures that are not cases: {stale:?}\n"));
    }
    assert!(problems.is_empty(), "{problems}");
}

#[derive(Debug, Deserialize)]
struct ValidationCase {
    id: String,
    state_machine_type: String,
    template: Value,
    expected: Value,
}

/// Definitions AWS rejected must be rejected with `InvalidDefinition`; the message is compared
/// loosely (the recorded pairing of message and definition is a heuristic) and reported.
#[tokio::test]
async fn engine_rejects_the_definitions_aws_rejects() {
    let Some(dir) = data_dir() else {
        eprintln!("\n*** SKIPPED validation conformance: no conformance data found. ***\n");
        return;
    };
    let cases: Vec<ValidationCase> = read_cases(&dir.join("sfn-validation.jsonl"));
    let engine = Engine::in_memory(
        EngineConfig {
            region: REGION.into(),
            account: ACCOUNT.into(),
        },
        None,
    )
    .expect("engine");
    let activity = engine.create_activity(ACTIVITY_NAME).expect("activity").0;
    let mut accepted = Vec::new();
    let mut same_message = 0;
    for (i, case) in cases.iter().enumerate() {
        let definition = case
            .template
            .to_string()
            .replace("${ACTIVITY_ARN}", &activity);
        let name = format!("validation-{i}");
        match engine.create_state_machine(&name, &definition, ROLE_ARN, &case.state_machine_type) {
            Err(wfm_engine::EngineError::InvalidDefinition(message)) => {
                // AWS's message, cut at its quotes: does ours carry one of its longer parts?
                let wanted = case.expected["message"].as_str().unwrap_or("");
                if wanted
                    .split(['\'', '"', '[', ']'])
                    .filter(|part| part.len() > 12)
                    .any(|part| message.contains(part.trim()))
                {
                    same_message += 1;
                }
            }
            other => accepted.push(format!("{}: {other:?}", case.id)),
        }
    }
    println!(
        "validation: {}/{} rejected with InvalidDefinition, {same_message} with a message sharing AWS's wording",
        cases.len() - accepted.len(),
        cases.len()
    );
    assert!(
        accepted.is_empty(),
        "definitions AWS rejects were accepted:\n{}",
        accepted.join("\n")
    );
}
