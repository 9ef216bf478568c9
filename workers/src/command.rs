//! Runs a program for each task, with Clever's `sfncli` contract: the task's JSON input is the
//! last argument, `_EXECUTION_NAME` is in the environment, the last line of stdout is the JSON
//! output; a non-zero exit fails the task with sfncli's error names, or with the program's own
//! when its last stdout line is `{"error": ..., "cause": ...}`, else with the last stderr line as
//! the cause. On SIGTERM the program gets SIGTERM, then SIGKILL after a grace period, and the task
//! fails with `sfncli.CommandTerminated`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::{Cancel, Task, TaskFailure, TaskHandler};

/// sfncli's error names.
pub mod errors {
    /// The program exited non-zero without naming an error.
    pub const COMMAND_EXITED_NONZERO: &str = "sfncli.CommandExitedNonzero";
    /// The program was terminated because the worker received SIGTERM.
    pub const COMMAND_TERMINATED: &str = "sfncli.CommandTerminated";
    /// The program was killed by a signal the worker did not send.
    pub const COMMAND_KILLED: &str = "sfncli.CommandKilled";
    /// The program does not exist or cannot be run.
    pub const COMMAND_NOT_FOUND: &str = "sfncli.CommandNotFound";
    /// The task input is not a JSON object.
    pub const TASK_INPUT_NOT_JSON: &str = "sfncli.TaskInputNotJSON";
    /// The last stdout line is not JSON.
    pub const TASK_OUTPUT_NOT_JSON: &str = "sfncli.TaskOutputNotJSON";
    /// Anything else.
    pub const UNKNOWN: &str = "sfncli.Unknown";
}

/// How many trailing lines of each stream are kept.
const KEPT_LINES: usize = 64;

/// Runs `program args... INPUT` per task.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    /// The program.
    pub program: String,
    /// Arguments before the input.
    pub args: Vec<String>,
    /// Where per-task working directories are made (removed after the task); none = inherit.
    pub work_directory: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Copy the program's output to this process's stdout/stderr.
    pub echo_output: bool,
}

async fn last_lines<R: AsyncRead + Unpin>(
    stream: R,
    echo: bool,
    to_stderr: bool,
) -> VecDeque<String> {
    let mut lines = BufReader::new(stream).lines();
    let mut kept = VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept
}

fn last_non_empty(lines: &VecDeque<String>) -> Option<&str> {
    lines.iter().rev().map(|l| l.trim()).find(|l| !l.is_empty())
}

#[cfg(unix)]
fn send_sigterm(pid: Option<u32>) {
    if let Some(pid) = pid {
        // `kill` is the portable way to signal without unsafe code.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
}

#[cfg(not(unix))]
fn send_sigterm(_pid: Option<u32>) {}

impl CommandHandler {
    /// A handler running `program` with `args`.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            args,
            work_directory: None,
            grace: Duration::from_secs(10),
            echo_output: true,
        }
    }
}

#[async_trait]
impl TaskHandler for CommandHandler {
    async fn handle(
        &self,
        task: Task,
        mut cancel: watch::Receiver<Cancel>,
    ) -> Result<Value, TaskFailure> {
        let input: Map<String, Value> = match serde_json::from_str::<Value>(&task.input) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(TaskFailure::new(
                    errors::TASK_INPUT_NOT_JSON,
                    format!(
                        "task input not a JSON object: '{}'",
                        crate::truncate(&task.input, 1024)
                    ),
                ))
            }
        };
        let execution_name = input
            .get("_EXECUTION_NAME")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let work_dir = match &self.work_directory {
            Some(base) => {
                let dir = base.join(format!("task-{}", uuid_like()));
                std::fs::create_dir_all(&dir).map_err(|e| {
                    TaskFailure::new(
                        errors::UNKNOWN,
                        format!("cannot create work directory {}: {e}", dir.display()),
                    )
                })?;
                Some(dir)
            }
            None => None,
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .arg(&task.input)
            .env("_EXECUTION_NAME", &execution_name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &work_dir {
            cmd.current_dir(dir).env("WORK_DIR", dir);
        }
        let result = self.run(cmd, &mut cancel, &execution_name).await;
        if let Some(dir) = work_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }
}

/// A short random suffix for per-task directories.
fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

impl CommandHandler {
    async fn run(
        &self,
        mut cmd: Command,
        cancel: &mut watch::Receiver<Cancel>,
        execution_name: &str,
    ) -> Result<Value, TaskFailure> {
        let mut child = cmd.spawn().map_err(|e| {
            TaskFailure::new(
                errors::COMMAND_NOT_FOUND,
                format!("command not found: '{}': {e}", self.program),
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .map(|s| tokio::spawn(last_lines(s, self.echo_output, false)));
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(last_lines(s, self.echo_output, true)));

        let mut terminated = false;
        let status = loop {
            tokio::select! {
                s = child.wait() => break s,
                changed = cancel.changed() => {
                    if changed.is_err() { continue; }
                    match *cancel.borrow() {
                        Cancel::No => continue,
                        Cancel::TaskGone => {
                            let _ = child.start_kill();
                        }
                        Cancel::Terminate => {
                            terminated = true;
                            send_sigterm(child.id());
                        }
                    }
                    // Give the program its grace period, then kill it.
                    match tokio::time::timeout(self.grace, child.wait()).await {
                        Ok(s) => break s,
                        Err(_) => {
                            let _ = child.start_kill();
                            break child.wait().await;
                        }
                    }
                }
            }
        };
        let status = status.map_err(|e| {
            TaskFailure::new(errors::UNKNOWN, format!("cannot wait for the command: {e}"))
        })?;
        let out = match stdout {
            Some(h) => h.await.unwrap_or_default(),
            None => VecDeque::new(),
        };
        let err = match stderr {
            Some(h) => h.await.unwrap_or_default(),
            None => VecDeque::new(),
        };
        let last_err = last_non_empty(&err).unwrap_or("").to_string();

        if terminated {
            return Err(TaskFailure::new(errors::COMMAND_TERMINATED, last_err));
        }
        if !status.success() {
            if let Some(line) = last_non_empty(&out) {
                if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) {
                    if let Some(Value::String(error)) = o.get("error") {
                        let cause = match o.get("cause") {
                            Some(Value::String(c)) => c.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        };
                        return Err(TaskFailure::new(error.clone(), cause));
                    }
                }
            }
            if status.code().is_none() {
                return Err(TaskFailure::new(errors::COMMAND_KILLED, last_err));
            }
            return Err(TaskFailure::new(errors::COMMAND_EXITED_NONZERO, last_err));
        }
        let output = match last_non_empty(&out) {
            None => Value::Object(Map::new()),
            Some(line) => serde_json::from_str::<Value>(line).map_err(|_| {
                TaskFailure::new(
                    errors::TASK_OUTPUT_NOT_JSON,
                    format!("stdout not valid JSON: '{}'", crate::truncate(line, 1024)),
                )
            })?,
        };
        let output = match output {
            Value::Object(mut o) => {
                if !execution_name.is_empty() {
                    o.entry("_EXECUTION_NAME")
                        .or_insert_with(|| Value::String(execution_name.to_string()));
                }
                Value::Object(o)
            }
            other => other,
        };
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn run(script: &str, input: &str) -> Result<Value, TaskFailure> {
        let mut h = CommandHandler::new("bash", vec!["-c".into(), script.into(), "script".into()]);
        h.echo_output = false;
        h.grace = Duration::from_millis(500);
        let (_tx, rx) = watch::channel(Cancel::No);
        h.handle(
            Task {
                token: "t".into(),
                input: input.into(),
            },
            rx,
        )
        .await
    }

    #[tokio::test]
    async fn last_stdout_line_is_the_output_with_the_execution_name() {
        let out = run(
            r#"echo noise; echo "{\"got\": $1, \"env\": \"$_EXECUTION_NAME\"}""#,
            r#"{"_EXECUTION_NAME": "wf-1"}"#,
        )
        .await;
        let out = out.expect("success");
        assert_eq!(out["env"], "wf-1");
        assert_eq!(out["got"]["_EXECUTION_NAME"], "wf-1");
        assert_eq!(out["_EXECUTION_NAME"], "wf-1");
    }

    #[tokio::test]
    async fn failures_use_sfncli_error_names() {
        let e = run("echo oops >&2; echo last words >&2; exit 3", "{}")
            .await
            .expect_err("fails");
        assert_eq!(
            e,
            TaskFailure::new(errors::COMMAND_EXITED_NONZERO, "last words")
        );
        let e = run(
            r#"echo '{"error": "MyError", "cause": "bad input"}'; exit 1"#,
            "{}",
        )
        .await
        .expect_err("fails");
        assert_eq!(e, TaskFailure::new("MyError", "bad input"));
        let e = run("echo not-json", "{}").await.expect_err("fails");
        assert_eq!(e.error, errors::TASK_OUTPUT_NOT_JSON);
        let e = run("true", "[1]").await.expect_err("fails");
        assert_eq!(e.error, errors::TASK_INPUT_NOT_JSON);
        let e = run("kill -9 $$", "{}").await.expect_err("fails");
        assert_eq!(e.error, errors::COMMAND_KILLED);
        let mut h = CommandHandler::new("/no/such/program", vec![]);
        h.echo_output = false;
        let (_tx, rx) = watch::channel(Cancel::No);
        let e = h
            .handle(
                Task {
                    token: "t".into(),
                    input: "{}".into(),
                },
                rx,
            )
            .await
            .expect_err("fails");
        assert_eq!(e.error, errors::COMMAND_NOT_FOUND);
    }

    #[tokio::test]
    async fn terminate_forwards_sigterm_and_reports_command_terminated() {
        let mut h = CommandHandler::new(
            "bash",
            vec![
                "-c".into(),
                "trap 'echo got term >&2; exit 0' TERM; while true; do sleep 0.05; done".into(),
                "s".into(),
            ],
        );
        h.echo_output = false;
        let (tx, rx) = watch::channel(Cancel::No);
        let run = tokio::spawn(async move {
            h.handle(
                Task {
                    token: "t".into(),
                    input: json!({}).to_string(),
                },
                rx,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(Cancel::Terminate).expect("send");
        let e = run.await.expect("join").expect_err("terminated");
        assert_eq!(e, TaskFailure::new(errors::COMMAND_TERMINATED, "got term"));
    }

    #[tokio::test]
    async fn work_directory_is_made_per_task_and_removed() {
        let base = tempfile::tempdir().expect("tmp");
        let mut h = CommandHandler::new(
            "bash",
            vec![
                "-c".into(),
                r#"touch marker; echo "{\"dir\": \"$PWD\"}""#.into(),
                "s".into(),
            ],
        );
        h.echo_output = false;
        h.work_directory = Some(base.path().to_path_buf());
        let (_tx, rx) = watch::channel(Cancel::No);
        let out = h
            .handle(
                Task {
                    token: "t".into(),
                    input: "{}".into(),
                },
                rx,
            )
            .await
            .expect("ok");
        let dir = out["dir"].as_str().expect("dir").to_string();
        assert!(dir.starts_with(base.path().to_str().expect("utf8")));
        assert!(!std::path::Path::new(&dir).exists());
    }
}
