//! AWS Lambda: `arn:aws:states:::lambda:invoke` (optimized: `Payload`, `StatusCode`,
//! `ExecutedVersion`), a function ARN as the `Resource` (the output is the payload), and
//! `aws-sdk:lambda:invoke`. A function named in `functions.yaml` runs as a local command
//! ([`LocalFunctions`]); any other is invoked through Lambda's Invoke API at the configured
//! endpoint. A function error (an unhandled exception) fails the task with the error type the
//! function raised and its payload as the cause, as Step Functions does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use wfm_engine::integrations::{IntegrationFailure, ServiceIntegration, Submitted};
use wfm_engine::machine::compiled::Resource;

use crate::aws::{Answer, Aws, AwsError, LAMBDA};
use crate::failure::{bad_parameter, failure, from_aws, with_metadata, Style};

/// Functions run as local commands, from `functions.yaml`.
#[derive(Debug, Clone, Default)]
pub struct LocalFunctions {
    dir: PathBuf,
    commands: HashMap<String, Vec<String>>,
    timeout: Option<Duration>,
}

/// `functions.yaml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionsFile {
    #[serde(default)]
    functions: Vec<FunctionEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionEntry {
    name: String,
    command: Vec<String>,
}

/// `functions.yaml` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FunctionsError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// The file is not a valid functions file.
    #[error("{path}: {error}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        error: String,
    },
}

impl LocalFunctions {
    /// Reads `dir/functions.yaml`; no functions when there is no such file.
    pub fn load(dir: &Path) -> Result<Self, FunctionsError> {
        let path = dir.join("functions.yaml");
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    dir: dir.to_path_buf(),
                    ..Self::default()
                })
            }
            Err(e) => {
                return Err(FunctionsError::Read {
                    path: shown,
                    error: e.to_string(),
                })
            }
        };
        let file: FunctionsFile =
            serde_yaml::from_str(&text).map_err(|e| FunctionsError::Invalid {
                path: shown.clone(),
                error: e.to_string(),
            })?;
        let mut commands = HashMap::new();
        for f in file.functions {
            if f.command.is_empty() {
                return Err(FunctionsError::Invalid {
                    path: shown,
                    error: format!("the function '{}' has an empty command", f.name),
                });
            }
            if commands.insert(f.name.clone(), f.command).is_some() {
                return Err(FunctionsError::Invalid {
                    path: shown,
                    error: format!("the function '{}' is named twice", f.name),
                });
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            commands,
            timeout: None,
        })
    }

    /// Functions from a list (tests).
    pub fn new(dir: &Path, functions: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            commands: functions.into_iter().collect(),
            timeout: None,
        }
    }

    /// The names of the functions.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.commands.keys().cloned().collect();
        n.sort();
        n
    }

    /// The command of a function, by name or ARN.
    fn command(&self, function: &str) -> Option<&Vec<String>> {
        self.commands.get(function_name(function))
    }

    /// Runs a function: the payload is the last argument, the last line of its output the
    /// result; a non-zero exit is a function error.
    async fn run(&self, command: &[String], payload: &str) -> Result<Invoked, IntegrationFailure> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| bad_parameter("the function has no command"))?;
        let mut child = tokio::process::Command::new(program);
        child
            .args(args)
            .arg(payload)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let run = child.output();
        let output = match self.timeout {
            Some(t) => tokio::time::timeout(t, run)
                .await
                .map_err(|_| failure("Lambda.AWSLambdaException", "the function timed out"))?,
            None => run.await,
        }
        .map_err(|e| {
            failure(
                "Lambda.AWSLambdaException",
                format!("cannot run the function's command '{program}': {e}"),
            )
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        if output.status.success() {
            let payload = if last.is_empty() {
                "null".to_string()
            } else {
                last
            };
            return Ok(Invoked {
                status: 200,
                payload,
                function_error: None,
                version: "$LATEST".into(),
                answer: None,
            });
        }
        // A runtime's error line, or the command's own words.
        let reported: Option<Value> = serde_json::from_str(&last)
            .ok()
            .filter(|v: &Value| v.get("errorType").is_some() || v.get("errorMessage").is_some());
        let payload = match reported {
            Some(v) => runtime_text(&with_request_id(v)),
            None => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let message = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!("the function's command exited with {}", output.status)
                    });
                runtime_text(&json!({"errorMessage": message, "errorType": "Unhandled"}))
            }
        };
        Ok(Invoked {
            status: 200,
            payload,
            function_error: Some("Unhandled".into()),
            version: "$LATEST".into(),
            answer: None,
        })
    }
}

/// A runtime's error report with the `requestId` Lambda's runtimes add (after `errorType`).
fn with_request_id(report: Value) -> Value {
    let Value::Object(fields) = report else {
        return report;
    };
    if fields.contains_key("requestId") {
        return Value::Object(fields);
    }
    let mut out = serde_json::Map::new();
    let mut placed = false;
    for (k, v) in fields {
        let after_type = k == "errorType";
        out.insert(k, v);
        if after_type {
            out.insert("requestId".into(), json!(uuid::Uuid::new_v4().to_string()));
            placed = true;
        }
    }
    if !placed {
        out.insert("requestId".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    Value::Object(out)
}

/// JSON as Lambda's runtimes write an error report (Python's `json.dumps`: `", "` and `": "`
/// between items), which the legacy function-ARN form passes on verbatim as the cause.
fn runtime_text(report: &Value) -> String {
    /// `serde_json`'s compact output with a space after each `,` and `:`.
    struct Spaced;
    fn comma<W: ?Sized + std::io::Write>(w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            comma(w, first)
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            comma(w, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    match serde::Serialize::serialize(report, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| report.to_string()),
        Err(_) => report.to_string(),
    }
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, `ACCOUNT:function:NAME` or
/// `NAME[:QUALIFIER]` → `NAME`.
pub fn function_name(function: &str) -> &str {
    if let Some((_, rest)) = function.split_once(":function:") {
        return rest.split(':').next().unwrap_or(rest);
    }
    function.split(':').next().unwrap_or(function)
}

/// How a function error's payload becomes the task's cause.
#[derive(Debug, Clone, Copy)]
enum CauseText {
    /// JSON re-serialized compactly (`lambda:invoke`).
    Compact,
    /// The payload's text as the function wrote it (a function ARN as the resource).
    Verbatim,
}

/// What an invocation gave.
struct Invoked {
    status: u16,
    payload: String,
    function_error: Option<String>,
    version: String,
    answer: Option<Answer>,
}

impl Invoked {
    /// The payload as JSON (text that is not JSON stays text).
    fn payload_value(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or_else(|_| json!(self.payload))
    }

    /// A function error fails the task: its error type, and the payload as the cause. The
    /// optimized integration re-serializes a JSON payload compactly; the legacy form passes
    /// the payload's text on as the function wrote it (both as Step Functions does).
    fn check(self, text: CauseText) -> Result<Self, IntegrationFailure> {
        if self.function_error.is_none() {
            return Ok(self);
        }
        let parsed = serde_json::from_str::<Value>(&self.payload).ok();
        let error = parsed
            .as_ref()
            .and_then(|v| {
                v.get("errorType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "Lambda.Unknown".into());
        let cause = match (text, parsed) {
            (CauseText::Compact, Some(v)) => v.to_string(),
            _ => self.payload,
        };
        Err(failure(error, cause))
    }
}

/// Calls Lambda's Invoke API.
async fn invoke_remote(
    aws: &Aws,
    function: &str,
    qualifier: Option<&str>,
    payload: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<Invoked, AwsError> {
    let mut path = format!(
        "/2015-03-31/functions/{}/invocations",
        encode_path(function)
    );
    if let Some(q) = qualifier {
        path.push_str(&format!("?Qualifier={}", encode_path(q)));
    }
    let answer = aws.send(LAMBDA, "POST", &path, headers, payload).await?;
    if answer.status >= 300 {
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        return Err(crate::aws::json_error(&body, &answer));
    }
    Ok(Invoked {
        status: answer.status,
        payload: String::from_utf8_lossy(&answer.body).into_owned(),
        function_error: answer.header("x-amz-function-error").map(str::to_string),
        version: answer
            .header("x-amz-executed-version")
            .unwrap_or("$LATEST")
            .to_string(),
        answer: Some(answer),
    })
}

fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'$' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Invoke request of a Task's parameters.
struct Request {
    function: String,
    qualifier: Option<String>,
    payload: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

/// The payload: JSON text given as a string is sent as it is (as Step Functions does), any
/// other value as its JSON text, none as `{}`.
fn request(parameters: &Value) -> Result<Request, IntegrationFailure> {
    let function = parameters
        .get("FunctionName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_parameter("The field 'FunctionName' is required"))?
        .to_string();
    let payload = match parameters.get("Payload") {
        None | Some(Value::Null) => b"{}".to_vec(),
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v) => v.to_string().into_bytes(),
    };
    let mut headers = vec![];
    for (field, header) in [
        ("InvocationType", "x-amz-invocation-type"),
        ("LogType", "x-amz-log-type"),
        ("ClientContext", "x-amz-client-context"),
    ] {
        if let Some(v) = parameters.get(field).and_then(Value::as_str) {
            headers.push((header, v.to_string()));
        }
    }
    Ok(Request {
        function,
        qualifier: parameters
            .get("Qualifier")
            .and_then(Value::as_str)
            .map(str::to_string),
        payload,
        headers,
    })
}

/// `aws-sdk:lambda:ACTION` (only `Invoke`): the SDK's response shape.
pub async fn sdk_call(
    aws: &Aws,
    action: &str,
    parameters: &Value,
) -> Result<(Value, Answer), AwsError> {
    if action != "Invoke" {
        return read_call(aws, action, parameters).await;
    }
    let r = request(parameters).map_err(|f| AwsError::Client(f.cause))?;
    let invoked = invoke_remote(
        aws,
        &r.function,
        r.qualifier.as_deref(),
        r.payload,
        &r.headers,
    )
    .await?;
    let mut out = json!({
        "ExecutedVersion": invoked.version,
        "Payload": invoked.payload,
        "StatusCode": invoked.status,
    });
    if let Some(e) = &invoked.function_error {
        out["FunctionError"] = json!(e);
    }
    let answer = invoked.answer.unwrap_or(Answer {
        status: 200,
        headers: vec![],
        body: vec![],
    });
    Ok((out, answer))
}

/// The Lambda actions besides Invoke that `aws-sdk:lambda:` carries out (Lambda's REST
/// paths; the answers are already in the SDK's PascalCase shapes).
pub const READ_ACTIONS: [&str; 6] = [
    "ListFunctions",
    "GetFunction",
    "GetFunctionConfiguration",
    "ListVersionsByFunction",
    "ListAliases",
    "GetAlias",
];

/// A read-only Lambda action.
async fn read_call(
    aws: &Aws,
    action: &str,
    parameters: &Value,
) -> Result<(Value, Answer), AwsError> {
    let text = |field: &str| parameters.get(field).and_then(Value::as_str);
    let function = || {
        text("FunctionName")
            .map(encode_path)
            .ok_or_else(|| AwsError::Client("FunctionName is required".into()))
    };
    let mut query: Vec<String> = Vec::new();
    for (field, name) in [("Marker", "Marker"), ("Qualifier", "Qualifier")] {
        if let Some(v) = text(field) {
            query.push(format!("{name}={}", encode_path(v)));
        }
    }
    if let Some(n) = parameters.get("MaxItems").and_then(Value::as_i64) {
        query.push(format!("MaxItems={n}"));
    }
    let path = match action {
        "ListFunctions" => "/2015-03-31/functions/".to_string(),
        "GetFunction" => format!("/2015-03-31/functions/{}", function()?),
        "GetFunctionConfiguration" => {
            format!("/2015-03-31/functions/{}/configuration", function()?)
        }
        "ListVersionsByFunction" => format!("/2015-03-31/functions/{}/versions", function()?),
        "ListAliases" => format!("/2015-03-31/functions/{}/aliases", function()?),
        "GetAlias" => format!(
            "/2015-03-31/functions/{}/aliases/{}",
            function()?,
            encode_path(text("Name").unwrap_or_default())
        ),
        other => {
            return Err(AwsError::Client(format!(
            "The action '{other}' of the service 'lambda' is not supported by the embedded engine"
        )))
        }
    };
    let path = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let answer = aws.send(LAMBDA, "GET", &path, &[], vec![]).await?;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status >= 300 {
        return Err(crate::aws::json_error(&body, &answer));
    }
    Ok((body, answer))
}

/// How a Lambda Task names its function.
enum Form {
    /// `arn:aws:states:::lambda:invoke`: the function in `FunctionName`.
    Optimized,
    /// A function ARN as the resource: the parameters are the payload.
    Legacy(String),
}

/// `lambda:invoke` and function ARNs.
pub struct LambdaIntegration {
    aws: Arc<Aws>,
    functions: LocalFunctions,
}

impl LambdaIntegration {
    /// Functions of `functions` run locally; others go to Lambda.
    pub fn new(aws: Arc<Aws>, functions: LocalFunctions) -> Self {
        Self { aws, functions }
    }

    fn form(resource: &str) -> Option<Form> {
        match Resource::parse(resource) {
            Resource::Service {
                service, action, ..
            } if service == "lambda" && action == "invoke" => Some(Form::Optimized),
            Resource::Other(arn) if arn.starts_with("arn:") && arn.contains(":lambda:") => {
                arn.contains(":function:").then_some(Form::Legacy(arn))
            }
            _ => None,
        }
    }

    async fn invoke(&self, r: Request) -> Result<Invoked, IntegrationFailure> {
        if let Some(command) = self.functions.command(&r.function) {
            let payload = String::from_utf8_lossy(&r.payload).into_owned();
            return self.functions.run(command, &payload).await;
        }
        invoke_remote(
            &self.aws,
            &r.function,
            r.qualifier.as_deref(),
            r.payload,
            &r.headers,
        )
        .await
        .map_err(|e| from_aws(LAMBDA, Style::Optimized, e))
    }
}

#[async_trait]
impl ServiceIntegration for LambdaIntegration {
    fn resource_type(&self) -> &'static str {
        "lambda"
    }

    fn handles(&self, resource: &str) -> bool {
        Self::form(resource).is_some()
    }

    fn region(&self) -> String {
        self.aws.region()
    }

    async fn submit(
        &self,
        resource: &str,
        parameters: &Value,
    ) -> Result<Submitted, IntegrationFailure> {
        match Self::form(resource) {
            Some(Form::Optimized) => {
                let invoked = self
                    .invoke(request(parameters)?)
                    .await?
                    .check(CauseText::Compact)?;
                let mut out = json!({
                    "ExecutedVersion": invoked.version,
                    "Payload": invoked.payload_value(),
                    "StatusCode": invoked.status,
                });
                if let Some(a) = &invoked.answer {
                    out = with_metadata(out, a);
                }
                Ok(Submitted {
                    handle: String::new(),
                    output: out,
                })
            }
            Some(Form::Legacy(arn)) => {
                let r = Request {
                    function: arn,
                    qualifier: None,
                    payload: parameters.to_string().into_bytes(),
                    headers: vec![],
                };
                let invoked = self.invoke(r).await?.check(CauseText::Verbatim)?;
                Ok(Submitted {
                    handle: String::new(),
                    output: invoked.payload_value(),
                })
            }
            None => Err(bad_parameter(format!(
                "'{resource}' is not a Lambda function"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_names_and_arns() {
        assert_eq!(function_name("hello"), "hello");
        assert_eq!(function_name("hello:live"), "hello");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:hello:3"),
            "hello"
        );
        assert_eq!(function_name("123456789012:function:hello"), "hello");
    }

    #[tokio::test]
    async fn a_local_function_answers_with_its_last_line_or_its_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = LocalFunctions::new(
            dir.path(),
            [
                (
                    "echo".to_string(),
                    vec!["sh".into(), "-c".into(), "echo log; echo \"$0\"".into()],
                ),
                (
                    "boom".to_string(),
                    vec![
                        "sh".into(),
                        "-c".into(),
                        r#"echo '{"errorType": "ValueError", "errorMessage": "bad"}'; exit 1"#
                            .into(),
                    ],
                ),
            ],
        );
        let ok = f
            .run(f.command("echo").expect("echo"), r#"{"a":1}"#)
            .await
            .expect("ran")
            .check(CauseText::Compact)
            .ok()
            .map(|i| i.payload_value());
        assert_eq!(ok, Some(json!({"a": 1})));
        let err = f
            .run(
                f.command("arn:aws:lambda:r:1:function:boom").expect("boom"),
                "{}",
            )
            .await
            .expect("ran")
            .check(CauseText::Compact)
            .err()
            .expect("a function error");
        assert_eq!(err.error, "ValueError");
        assert!(
            err.cause.contains("\"errorMessage\":\"bad\""),
            "{}",
            err.cause
        );
        assert!(err.cause.contains("\"requestId\":"), "{}", err.cause);
        // The legacy form passes the runtime's text on: Python's separators.
        let verbatim = f
            .run(f.command("boom").expect("boom"), "{}")
            .await
            .expect("ran")
            .check(CauseText::Verbatim)
            .err()
            .expect("a function error");
        assert!(
            verbatim
                .cause
                .starts_with(r#"{"errorType": "ValueError", "requestId": ""#),
            "{}",
            verbatim.cause
        );
    }
}
