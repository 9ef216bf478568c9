//! Harness of the end-to-end tests: builds the real binaries once, starts the service on a free
//! port with a fresh data directory, starts real `wfm-worker` processes, and talks to them over
//! HTTP. Every process is killed when its handle drops.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Builds the service and worker binaries (once per test process); returns their directory.
pub fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "-p",
                "workflow-manager",
                "-p",
                "wfm-workers",
                "--bins",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        target_dir().join("debug")
    })
}

/// A running service.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (kept until the server drops).
    pub data: tempfile::TempDir,
}

impl Server {
    /// Starts the service with the repository's definitions and `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().expect("tempdir"), extra)
    }

    /// Starts the service on an existing data directory.
    pub fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_on(data, "127.0.0.1:0", extra)
    }

    /// Starts the service on an existing data directory and a given address.
    pub fn start_on(data: tempfile::TempDir, listen: &str, extra: &[&str]) -> Server {
        Self::start_with_env(data, listen, extra, &[])
    }

    /// Starts the service with `env` added to its environment (the AWS endpoints of the
    /// emulators, for instance).
    pub fn start_with_env(
        data: tempfile::TempDir,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let bin = binaries().join("workflow-manager");
        let log = std::fs::File::create(data.path().join("server.log")).expect("log file");
        let mut child = Command::new(bin)
            .current_dir(workspace())
            .args(["--listen", listen, "--data-dir"])
            .arg(data.path())
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            // A process group of its own, so that a kill takes whatever it started with it.
            .process_group(0)
            .spawn()
            .expect("start workflow-manager");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let text = std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.starts_with("workflow-manager listening on "))
            {
                break line
                    .trim_start_matches("workflow-manager listening on ")
                    .trim()
                    .to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("workflow-manager exited with {status} at start:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "workflow-manager did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server { child, url, data }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// The `/sfn` endpoint.
    pub fn sfn_endpoint(&self) -> String {
        format!("{}/sfn", self.url)
    }

    /// Kills its whole process group with SIGKILL and returns its data directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        self.kill_group();
        std::mem::replace(&mut self.data, tempfile::tempdir().expect("tempdir"))
    }

    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A free port on 127.0.0.1 (free when asked; a test that restarts a server on it reuses it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `wfm-worker` process.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// Starts `wfm-worker --activity-name NAME --endpoint-url ... --cmd CMD...`.
    pub fn start(
        endpoint: &str,
        activity_name: &str,
        cmd: &[&str],
        extra: &[&str],
    ) -> WorkerProcess {
        let bin = binaries().join("wfm-worker");
        let child = Command::new(bin)
            .current_dir(workspace().join("definitions"))
            .args(["--activity-name", activity_name, "--endpoint-url", endpoint])
            .args(extra)
            .arg("--cmd")
            .args(cmd)
            .env("RUST_LOG", "warn")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wfm-worker");
        WorkerProcess { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON HTTP client for the REST API.
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client for the server at `base`.
    pub fn new(base: &str) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: base.to_string(),
            token: None,
        }
    }

    /// This client, sending `token` as a bearer token.
    pub fn with_token(mut self, token: &str) -> Api {
        self.token = Some(token.to_string());
        self
    }

    /// Sends a request; returns status and JSON body (null when empty), or why it got no
    /// answer (the server is down).
    pub async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value, reqwest::header::HeaderMap), String> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?
        };
        Ok((status, value, headers))
    }

    /// Sends a request; returns status and JSON body (null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON response")
        };
        (status, value)
    }

    /// Starts a workflow; panics unless the answer is 200.
    pub async fn start_workflow(&self, body: &Value) -> Value {
        let (status, v) = self
            .call(reqwest::Method::POST, "/workflows", Some(body))
            .await;
        assert_eq!(status, 200, "start failed: {v}");
        v
    }

    /// Polls GET /workflows/{id} until its status is terminal.
    pub async fn wait_finished(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, v) = self
                .call(reqwest::Method::GET, &format!("/workflows/{id}"), None)
                .await;
            assert_eq!(status, 200, "{v}");
            if matches!(
                v["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "workflow {id} did not finish: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An aws-sdk-sfn client for the server's `/sfn` endpoint, as a worker would build it.
pub async fn sfn_client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_sfn::Client::new(&config)
}

/// The Python with boto3 and the AWS CLI that scripts/test installs (`WFM_TEST_PYTHON`);
/// `None`, after saying loudly that `test` is skipped, when it is not set.
pub fn test_python(test: &str) -> Option<std::ffi::OsString> {
    let python = std::env::var_os("WFM_TEST_PYTHON");
    if python.is_none() {
        eprintln!(
            "\n*** SKIPPED {test}: WFM_TEST_PYTHON is not set. scripts/test installs boto3 into \
             a virtualenv and sets it. ***\n"
        );
    }
    python
}

/// `aws stepfunctions ARGS...` (the AWS CLI of `python`) against `endpoint`, signed with this
/// key, answering JSON.
pub async fn aws_cli_stepfunctions(
    python: &std::ffi::OsStr,
    endpoint: &str,
    args: &[&str],
    access_key_id: &str,
    secret: &str,
) -> std::process::Output {
    tokio::process::Command::new(python)
        .args(["-m", "awscli", "stepfunctions"])
        .args(args)
        .args(["--endpoint-url", endpoint])
        .args(["--region", "us-east-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .await
        .expect("run aws cli")
}
