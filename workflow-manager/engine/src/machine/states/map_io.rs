//! A Distributed Map's data, as pure functions: the `ItemReader`'s request and how its answers
//! become items (a JSON array, JSON Lines, CSV with a header row or given headers and a
//! delimiter, an S3 listing page by page), `ReaderConfig.MaxItems`, the `ItemBatcher`'s
//! batches, and the `ResultWriter`'s files (the manifest and the SUCCEEDED / FAILED files, in
//! the shapes Step Functions writes). The reading and writing themselves are service calls
//! the runtime makes (`arn:aws:states:::s3:getObject`, `s3:listObjectsV2`, `s3:putObject`
//! through the integration registry); nothing here does I/O.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use wfm_asl::path::{expand_template, select, Context};
use wfm_asl::State;

use super::View;
use crate::machine::dataflow::Bindings;
use crate::machine::retry::Failure;

/// The most items a reader gives (`MaxItems` is capped here, as on AWS).
pub const MAX_ITEMS: u64 = 100_000_000;

/// `States.ItemReaderFailed` with Step Functions' wording.
pub fn reader_failed(cause: impl Into<String>) -> Failure {
    Failure::new("States.ItemReaderFailed", cause)
}

/// `States.ResultWriterFailed`.
pub fn writer_failed(cause: impl Into<String>) -> Failure {
    Failure::new("States.ResultWriterFailed", cause)
}

/// How the reader's answers become items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Format {
    /// `InputType: JSON`: the object is a JSON array.
    Json,
    /// `InputType: JSONL`: one JSON value per line.
    JsonLines,
    /// `InputType: CSV`: one object per row, keyed by the headers (`None`: the first row).
    Csv {
        /// `CSVHeaders` (with `CSVHeaderLocation: GIVEN`).
        headers: Option<Vec<String>>,
        /// `CSVDelimiter`.
        delimiter: u8,
    },
    /// `s3:listObjectsV2`: one item per object.
    Listing,
}

/// What the reader reads, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderConfig {
    /// The format.
    pub format: Format,
    /// `MaxItems` (`None`: all).
    pub max_items: Option<u64>,
}

/// The reader's first call.
#[derive(Debug)]
pub struct ReadPlan {
    /// `arn:aws:states:::s3:getObject` or `s3:listObjectsV2`.
    pub resource: String,
    /// Its parameters.
    pub parameters: Value,
    /// How its answers become items.
    pub config: ReaderConfig,
}

/// A template of the Map's (`Parameters` with `.$` keys, or JSONata `Arguments`), evaluated.
fn evaluate(
    v: &View<'_>,
    template: &Value,
    field: &str,
    effective: &Value,
    ctx: &Context<'_>,
) -> Result<Value, Failure> {
    if v.node.jsonata {
        Bindings::new(&v.frame.input, *ctx)
            .eval(template, field)
            .map_err(|e| v.flow(e))
    } else {
        expand_template(template, effective, ctx).map_err(|e| v.runtime(e))
    }
}

/// A positive integer setting: a literal (or JSONata expression) or, with `path`, the value at
/// a path of the effective input (or a variable); numbers in strings are accepted.
pub fn count_setting(
    v: &View<'_>,
    config: &Value,
    field: &str,
    effective: &Value,
    ctx: &Context<'_>,
) -> Result<Option<i64>, Failure> {
    let value = match (config.get(field), config.get(format!("{field}Path"))) {
        (Some(literal), _) => evaluate(v, literal, field, effective, ctx)?,
        (None, Some(Value::String(p))) => select(p, effective, ctx).map_err(|e| v.runtime(e))?,
        _ => return Ok(None),
    };
    let n = match &value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| v.runtime(format!("field {field} must be an integer, was {value}")))
}

/// The reader's first call and configuration, from the Map's `ItemReader`.
pub fn read_plan(
    v: &View<'_>,
    reader: &Value,
    effective: &Value,
    ctx: &Context<'_>,
) -> Result<ReadPlan, Failure> {
    let resource = reader
        .get("Resource")
        .and_then(Value::as_str)
        .ok_or_else(|| v.runtime("the ItemReader has no Resource"))?
        .to_string();
    let parameters = match reader.get("Arguments").or_else(|| reader.get("Parameters")) {
        Some(t) => evaluate(v, t, "Arguments", effective, ctx)?,
        None => json!({}),
    };
    let none = json!({});
    let rc = reader.get("ReaderConfig").unwrap_or(&none);
    let max_items = match count_setting(v, rc, "MaxItems", effective, ctx)? {
        Some(n) if n < 0 => return Err(reader_failed("field MaxItems must be positive")),
        Some(0) | None => None,
        Some(n) => Some((n as u64).min(MAX_ITEMS)),
    };
    let input_type = rc.get("InputType").and_then(Value::as_str);
    let format = match input_type {
        Some("JSON") => Format::Json,
        Some("JSONL") => Format::JsonLines,
        Some("CSV") => {
            let headers = match rc.get("CSVHeaderLocation").and_then(Value::as_str) {
                Some("GIVEN") => {
                    let given: Vec<String> = rc
                        .get("CSVHeaders")
                        .and_then(Value::as_array)
                        .map(|h| {
                            h.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut seen = std::collections::HashSet::new();
                    if !given.iter().all(|h| seen.insert(h)) {
                        return Err(reader_failed("CSV headers cannot contain duplicates."));
                    }
                    Some(given)
                }
                _ => None,
            };
            let delimiter = match rc.get("CSVDelimiter").and_then(Value::as_str) {
                None | Some("COMMA") => b',',
                Some("PIPE") => b'|',
                Some("SEMICOLON") => b';',
                Some("SPACE") => b' ',
                Some("TAB") => b'\t',
                Some(other) => {
                    return Err(reader_failed(format!("unknown CSVDelimiter '{other}'")))
                }
            };
            Format::Csv { headers, delimiter }
        }
        Some("MANIFEST") => {
            return Err(reader_failed(
                "InputType MANIFEST (S3 inventory) is not supported by the embedded engine yet",
            ))
        }
        Some(other) => return Err(reader_failed(format!("unknown InputType '{other}'"))),
        None if resource.ends_with(":listObjectsV2") => Format::Listing,
        None => Format::Json,
    };
    Ok(ReadPlan {
        resource,
        parameters,
        config: ReaderConfig { format, max_items },
    })
}

/// The items of a `getObject` answer's `Body`.
pub fn parse_object(config: &ReaderConfig, answer: &Value) -> Result<Vec<Value>, Failure> {
    let body = answer.get("Body").and_then(Value::as_str).unwrap_or("");
    let mut items = match &config.format {
        Format::Json => match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(_) => return Err(reader_failed("Attempting to map over non-iterable node.")),
            Err(e) => return Err(reader_failed(format!("The object is not valid JSON: {e}"))),
        },
        Format::JsonLines => body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| reader_failed(format!("Line {} is not valid JSON: {e}", i + 1)))
            })
            .collect::<Result<_, _>>()?,
        Format::Csv { headers, delimiter } => csv_rows(body, headers.as_deref(), *delimiter)?,
        Format::Listing => {
            return Err(reader_failed("a listing is not read from an object's body"))
        }
    };
    if let Some(max) = config.max_items {
        items.truncate(max as usize);
    }
    Ok(items)
}

/// CSV rows as objects: values are text; a short row's missing fields are empty, a long row's
/// extra fields are dropped; empty lines are skipped.
fn csv_rows(body: &str, given: Option<&[String]>, delimiter: u8) -> Result<Vec<Value>, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut headers: Option<Vec<String>> = given.map(<[String]>::to_vec);
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| reader_failed(format!("The CSV is not valid: {e}")))?;
        let Some(h) = &headers else {
            let first: Vec<String> = record.iter().map(str::to_string).collect();
            let mut seen = std::collections::HashSet::new();
            if !first.iter().all(|h| seen.insert(h.clone())) {
                return Err(reader_failed("CSV headers cannot contain duplicates."));
            }
            headers = Some(first);
            continue;
        };
        let item: Map<String, Value> = h
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), json!(record.get(i).unwrap_or(""))))
            .collect();
        items.push(Value::Object(item));
    }
    Ok(items)
}

/// One page of an `s3:listObjectsV2` answer: its objects as items (`Etag`, `Key`,
/// `LastModified` in epoch seconds, `Size`, `StorageClass`, as Step Functions gives them) and
/// the token of the next page.
pub fn parse_listing(answer: &Value) -> (Vec<Value>, Option<String>) {
    let items = answer
        .get("Contents")
        .and_then(Value::as_array)
        .map(|objects| {
            objects
                .iter()
                .map(|o| {
                    let modified = o
                        .get("LastModified")
                        .and_then(Value::as_str)
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| json!(t.timestamp()))
                        .unwrap_or(Value::Null);
                    json!({
                        "Etag": o.get("ETag").cloned().unwrap_or(Value::Null),
                        "Key": o.get("Key").cloned().unwrap_or(Value::Null),
                        "LastModified": modified,
                        "Size": o.get("Size").cloned().unwrap_or(Value::Null),
                        "StorageClass": o.get("StorageClass").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let next = answer
        .get("NextContinuationToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    (items, next)
}

/// The `ItemBatcher`'s batches of `items` (already through the ItemSelector): each
/// `{"BatchInput": ..., "Items": [...]}` with at most `MaxItemsPerBatch` items and about
/// `MaxInputBytesPerBatch` bytes of them.
pub fn batches(
    v: &View<'_>,
    items: Vec<Value>,
    effective: &Value,
    ctx: &Context<'_>,
) -> Result<Vec<Value>, Failure> {
    let State::Map(s) = &v.node.state else {
        return Err(v.runtime("not a Map state"));
    };
    let Some(batcher) = &s.item_batcher else {
        return Ok(items);
    };
    let max_items = count_setting(v, batcher, "MaxItemsPerBatch", effective, ctx)?;
    let max_bytes = count_setting(v, batcher, "MaxInputBytesPerBatch", effective, ctx)?;
    for (name, n) in [
        ("MaxItemsPerBatch", max_items),
        ("MaxInputBytesPerBatch", max_bytes),
    ] {
        if n.is_some_and(|n| n <= 0) {
            return Err(v.runtime(format!("field {name} must be positive")));
        }
    }
    let batch_input = match batcher.get("BatchInput") {
        Some(t) => Some(evaluate(v, t, "BatchInput", effective, ctx)?),
        None => None,
    };
    let max_items = max_items.map(|n| n as usize).unwrap_or(usize::MAX);
    let max_bytes = max_bytes.map(|n| n as usize).unwrap_or(256 * 1024);
    let mut out = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut close = |current: &mut Vec<Value>| {
        let mut batch = Map::new();
        if let Some(b) = &batch_input {
            batch.insert("BatchInput".into(), b.clone());
        }
        batch.insert("Items".into(), Value::Array(std::mem::take(current)));
        out.push(Value::Object(batch));
    };
    for item in items {
        let size = item.to_string().len();
        if !current.is_empty() && (current.len() >= max_items || bytes + size > max_bytes) {
            close(&mut current);
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        close(&mut current);
    }
    Ok(out)
}

/// Where and how the `ResultWriter` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (without a trailing `/`; empty for none).
    pub prefix: String,
    /// `WriterConfig.OutputType`: JSON Lines instead of a JSON array.
    pub json_lines: bool,
    /// `WriterConfig.Transformation`.
    pub transformation: Transformation,
}

/// `WriterConfig.Transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// Each child's full description (the default).
    None,
    /// Each child's input, output and status only.
    Compact,
    /// The outputs, arrays flattened into one.
    Flatten,
}

/// The Map's `ResultWriter`, evaluated (`None` when it has none).
pub fn write_plan(
    v: &View<'_>,
    effective: &Value,
    ctx: &Context<'_>,
) -> Result<Option<WritePlan>, Failure> {
    let State::Map(s) = &v.node.state else {
        return Err(v.runtime("not a Map state"));
    };
    let Some(writer) = &s.result_writer else {
        return Ok(None);
    };
    let parameters = match writer.get("Arguments").or_else(|| writer.get("Parameters")) {
        Some(t) => evaluate(v, t, "Arguments", effective, ctx)?,
        None => json!({}),
    };
    let config = writer.get("WriterConfig").cloned().unwrap_or(json!({}));
    let Some(bucket) = parameters.get("Bucket").and_then(Value::as_str) else {
        return Err(writer_failed("The ResultWriter needs a Bucket"));
    };
    let transformation = match config.get("Transformation").and_then(Value::as_str) {
        None | Some("NONE") => Transformation::None,
        Some("COMPACT") => Transformation::Compact,
        Some("FLATTEN") => Transformation::Flatten,
        Some(other) => return Err(writer_failed(format!("unknown Transformation '{other}'"))),
    };
    Ok(Some(WritePlan {
        bucket: bucket.to_string(),
        prefix: parameters
            .get("Prefix")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string(),
        json_lines: config.get("OutputType").and_then(Value::as_str) == Some("JSONL"),
        transformation,
    }))
}

/// One iteration as the result files describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRecord {
    /// Its name (unique in the map run).
    pub name: String,
    /// Its input.
    pub input: Value,
    /// Its output, or its error output (`{"Error", "Cause"}`).
    pub result: Value,
    /// Whether it failed.
    pub failed: bool,
}

/// The ARNs of a map run: its own, its children's state machine, and a child's execution.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunArns {
    /// `arn:aws:states:R:A:mapRun:MACHINE/LABEL:ID`.
    pub map_run: String,
    /// `arn:aws:states:R:A:stateMachine:MACHINE/LABEL`.
    pub state_machine: String,
    /// `arn:aws:states:R:A:execution:MACHINE/LABEL` (a child's is this `:NAME`).
    pub execution_prefix: String,
    /// The run's id (the last part of its ARN).
    pub id: String,
}

impl MapRunArns {
    /// The ARNs of run `id` of the Map labelled `label` in the execution's state machine.
    pub fn new(state_machine_arn: &str, label: &str, id: &str) -> Self {
        let (head, machine) = state_machine_arn
            .split_once(":stateMachine:")
            .unwrap_or(("arn:aws:states:us-east-1:123456789012", state_machine_arn));
        let machine = machine.split(':').next().unwrap_or(machine);
        Self {
            map_run: format!("{head}:mapRun:{machine}/{label}:{id}"),
            state_machine: format!("{head}:stateMachine:{machine}/{label}"),
            execution_prefix: format!("{head}:execution:{machine}/{label}"),
            id: id.to_string(),
        }
    }

    /// The name of child `index`: the run's id with the index in its last group.
    pub fn child_name(&self, index: u32) -> String {
        let keep = self.id.len().saturating_sub(12);
        format!("{}{index:012x}", &self.id[..keep.min(self.id.len())])
    }
}

/// A 32-hex-digit secret as a UUID (`8-4-4-4-12`).
pub fn uuid_of(hex: &str) -> String {
    if hex.len() < 32 || !hex.is_ascii() {
        return hex.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The files a result writer puts (key and body, in writing order: the result files, then
/// the manifest), and the Map's output.
pub fn result_files(
    plan: &WritePlan,
    arns: &MapRunArns,
    children: &[ChildRecord],
    started: &str,
    stopped: &str,
) -> (Vec<(String, String)>, Value) {
    let base = if plan.prefix.is_empty() {
        arns.id.clone()
    } else {
        format!("{}/{}", plan.prefix, arns.id)
    };
    let describe = |c: &ChildRecord| -> Value {
        match plan.transformation {
            Transformation::Compact | Transformation::Flatten => {
                let mut m = Map::new();
                m.insert("Input".into(), c.input.clone());
                if c.failed {
                    m.insert("Error".into(), c.result["Error"].clone());
                    m.insert("Cause".into(), c.result["Cause"].clone());
                } else {
                    m.insert("Output".into(), c.result.clone());
                }
                m.insert(
                    "Status".into(),
                    json!(if c.failed { "FAILED" } else { "SUCCEEDED" }),
                );
                Value::Object(m)
            }
            Transformation::None => {
                let status = if c.failed { "FAILED" } else { "SUCCEEDED" };
                let mut m = Map::new();
                if c.failed {
                    m.insert("Cause".into(), c.result["Cause"].clone());
                    m.insert("Error".into(), c.result["Error"].clone());
                }
                m.insert(
                    "ExecutionArn".into(),
                    json!(format!("{}:{}", arns.execution_prefix, c.name)),
                );
                m.insert("Input".into(), json!(c.input.to_string()));
                m.insert("InputDetails".into(), json!({"Included": true}));
                m.insert("Name".into(), json!(c.name));
                if !c.failed {
                    m.insert("Output".into(), json!(c.result.to_string()));
                    m.insert("OutputDetails".into(), json!({"Included": true}));
                }
                m.insert("RedriveCount".into(), json!(0));
                m.insert(
                    "RedriveStatus".into(),
                    json!(if c.failed {
                        "REDRIVABLE_BY_MAP_RUN"
                    } else {
                        "NOT_REDRIVABLE"
                    }),
                );
                if !c.failed {
                    m.insert(
                        "RedriveStatusReason".into(),
                        json!("Execution is SUCCEEDED and cannot be redriven"),
                    );
                }
                m.insert("StartDate".into(), json!(started));
                m.insert("StateMachineArn".into(), json!(arns.state_machine));
                m.insert("Status".into(), json!(status));
                m.insert("StopDate".into(), json!(stopped));
                Value::Object(m)
            }
        }
    };
    let encode = |entries: Vec<Value>| -> String {
        if plan.json_lines {
            entries
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            Value::Array(entries).to_string()
        }
    };
    let mut files = Vec::new();
    let mut listed = Map::new();
    for (status, failed) in [("FAILED", true), ("PENDING", false), ("SUCCEEDED", false)] {
        let entries: Vec<Value> = if status == "PENDING" {
            Vec::new()
        } else {
            let mine = children.iter().filter(|c| c.failed == failed);
            if plan.transformation == Transformation::Flatten && !failed {
                mine.flat_map(|c| match &c.result {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                })
                .collect()
            } else {
                mine.map(describe).collect()
            }
        };
        let mut keys = Vec::new();
        if !entries.is_empty() {
            let ext = if plan.json_lines { "jsonl" } else { "json" };
            let key = format!("{base}/{status}_0.{ext}");
            let body = encode(entries);
            keys.push(json!({"Key": key, "Size": body.len()}));
            files.push((key, body));
        }
        listed.insert(status.into(), Value::Array(keys));
    }
    let manifest_key = format!("{base}/manifest.json");
    let manifest = json!({
        "DestinationBucket": plan.bucket,
        "MapRunArn": arns.map_run,
        "ResultFiles": listed,
    });
    files.push((manifest_key.clone(), manifest.to_string()));
    let output = json!({
        "MapRunArn": arns.map_run,
        "ResultWriterDetails": {"Bucket": plan.bucket, "Key": manifest_key},
    });
    (files, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(body: &str, headers: Option<Vec<String>>) -> Result<Vec<Value>, Failure> {
        parse_object(
            &ReaderConfig {
                format: Format::Csv {
                    headers,
                    delimiter: b',',
                },
                max_items: None,
            },
            &json!({ "Body": body }),
        )
    }

    #[test]
    fn csv_rows_fill_short_rows_and_drop_extra_fields() {
        // The recorded AWS case: a row of four empty fields, a row of one, a trailing newline.
        let items = csv(
            "Col1,Col2,Col3\nValue1,Value2,Value3\n,,,\ntrue,1,'HelloWorld'\n   \n",
            None,
        )
        .expect("items");
        assert_eq!(
            items,
            vec![
                json!({"Col1": "Value1", "Col2": "Value2", "Col3": "Value3"}),
                json!({"Col1": "", "Col2": "", "Col3": ""}),
                json!({"Col1": "true", "Col2": "1", "Col3": "'HelloWorld'"}),
                json!({"Col1": "   ", "Col2": "", "Col3": ""}),
            ]
        );
        let given = csv("a,b\n", Some(vec!["H1".into(), "H2".into()])).expect("items");
        assert_eq!(given, vec![json!({"H1": "a", "H2": "b"})]);
        let dup = csv("H,H\n1,2\n", None).expect_err("duplicate headers");
        assert_eq!(dup.cause, "CSV headers cannot contain duplicates.");
    }

    #[test]
    fn json_objects_and_lines_become_items() {
        let json_config = |max| ReaderConfig {
            format: Format::Json,
            max_items: max,
        };
        assert_eq!(
            parse_object(&json_config(Some(2)), &json!({"Body": "[1,2,3]"})).expect("items"),
            vec![json!(1), json!(2)]
        );
        let not_array = parse_object(&json_config(None), &json!({"Body": "{\"a\":1}"}))
            .expect_err("not an array");
        assert_eq!(not_array.error, "States.ItemReaderFailed");
        assert_eq!(not_array.cause, "Attempting to map over non-iterable node.");
        let lines = ReaderConfig {
            format: Format::JsonLines,
            max_items: None,
        };
        assert_eq!(
            parse_object(&lines, &json!({"Body": "{\"a\":1}\n\n[2]\n"})).expect("items"),
            vec![json!({"a": 1}), json!([2])]
        );
    }

    #[test]
    fn listings_give_objects_and_the_next_page() {
        let (items, next) = parse_listing(&json!({
            "Contents": [{"ETag": "\"e\"", "Key": "k", "LastModified": "2024-01-01T00:00:00Z",
                          "Size": 3, "StorageClass": "STANDARD"}],
            "NextContinuationToken": "t"}));
        assert_eq!(
            items,
            vec![
                json!({"Etag": "\"e\"", "Key": "k", "LastModified": 1704067200, "Size": 3,
                          "StorageClass": "STANDARD"})
            ]
        );
        assert_eq!(next.as_deref(), Some("t"));
    }

    #[test]
    fn result_files_list_succeeded_and_failed_children_in_the_manifest() {
        let arns = MapRunArns::new(
            "arn:aws:states:us-east-1:1:stateMachine:sm",
            "Label",
            "0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            arns.map_run,
            "arn:aws:states:us-east-1:1:mapRun:sm/Label:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(arns.child_name(5), "0123456789abcdef0123000000000005");
        let plan = WritePlan {
            bucket: "b".into(),
            prefix: "out".into(),
            json_lines: false,
            transformation: Transformation::None,
        };
        let children = vec![
            ChildRecord {
                name: arns.child_name(0),
                input: json!(1),
                result: json!(2),
                failed: false,
            },
            ChildRecord {
                name: arns.child_name(1),
                input: json!(3),
                result: json!({"Error": "E", "Cause": "C"}),
                failed: true,
            },
        ];
        let (files, output) = result_files(&plan, &arns, &children, "s", "t");
        let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
        let base = "out/0123456789abcdef0123456789abcdef";
        assert_eq!(
            keys,
            [
                format!("{base}/FAILED_0.json"),
                format!("{base}/SUCCEEDED_0.json"),
                format!("{base}/manifest.json")
            ]
        );
        let manifest: Value = serde_json::from_str(&files[2].1).expect("json");
        assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
        assert_eq!(
            manifest["ResultFiles"]["SUCCEEDED"][0]["Key"],
            json!(format!("{base}/SUCCEEDED_0.json"))
        );
        let succeeded: Value = serde_json::from_str(&files[1].1).expect("json");
        assert_eq!(succeeded[0]["Output"], json!("2"));
        assert_eq!(succeeded[0]["Status"], json!("SUCCEEDED"));
        let failed: Value = serde_json::from_str(&files[0].1).expect("json");
        assert_eq!(failed[0]["Error"], json!("E"));
        assert_eq!(
            output["ResultWriterDetails"],
            json!({"Bucket": "b", "Key": format!("{base}/manifest.json")})
        );
    }
}
