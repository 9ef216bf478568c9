//! Local workers started with the service in embedded mode, as listed in the definitions
//! directory's `workers.yaml`. Each runs the worker library's command handler in-process and
//! polls the service's own `/sfn` endpoint over HTTP, so it exercises exactly the path a separate
//! `wfm-worker` process (or a worker on AWS) takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wfm_workers::command::CommandHandler;
use wfm_workers::{ensure_activity, sfn_client_with, Worker, WorkerConfig};

use crate::loader::{read_document, LoadError};

/// `workers.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersFile {
    /// The workers.
    pub workers: Vec<LocalWorker>,
}

/// One local worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalWorker {
    /// The short resource name the definitions use.
    pub resource: String,
    /// Namespace whose activity it serves (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Program and arguments; relative paths that exist under the definitions directory are
    /// resolved against it.
    pub command: Vec<String>,
    /// How many tasks run at once (one poller each).
    #[serde(default = "one")]
    pub concurrency: usize,
}

fn default_namespace() -> String {
    "default".into()
}

fn one() -> usize {
    1
}

/// Reads `dir/workers.yaml`; `None` when there is none.
pub fn read_workers(dir: &Path) -> Result<Option<WorkersFile>, LoadError> {
    let path = dir.join("workers.yaml");
    if !path.exists() {
        return Ok(None);
    }
    let doc = read_document(&path)?;
    serde_json::from_value(doc)
        .map(Some)
        .map_err(|e| LoadError {
            path,
            message: format!("not a workers file: {e}"),
        })
}

fn resolve(dir: &Path, arg: &str) -> String {
    let candidate: PathBuf = dir.join(arg);
    if arg.contains('/') && !Path::new(arg).is_absolute() && candidate.exists() {
        candidate
            .canonicalize()
            .unwrap_or(candidate)
            .to_string_lossy()
            .into_owned()
    } else {
        arg.to_string()
    }
}

/// Starts the workers of `file` against `sfn_endpoint`, signing with `credentials` (the
/// process's own access key); they stop when `shutdown` turns true.
pub async fn start_workers(
    file: &WorkersFile,
    definitions_dir: &Path,
    sfn_endpoint: &str,
    credentials: (String, String),
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let client = sfn_client_with(Some(sfn_endpoint), None, Some(credentials)).await;
    let mut handles = Vec::new();
    for w in &file.workers {
        let activity = wfm_core::conventions::activity_name(&w.namespace, &w.resource);
        let arn = ensure_activity(&client, &activity)
            .await
            .map_err(|e| format!("activity {activity}: {e}"))?;
        let Some((program, args)) = w.command.split_first() else {
            return Err(format!("worker for {activity}: empty command"));
        };
        let mut handler = CommandHandler::new(
            resolve(definitions_dir, program),
            args.iter().map(|a| resolve(definitions_dir, a)).collect(),
        );
        handler.echo_output = false;
        let handler = Arc::new(handler);
        for i in 0..w.concurrency.max(1) {
            let worker = Worker::new(
                client.clone(),
                WorkerConfig {
                    activity_arn: arn.clone(),
                    worker_name: format!("local-{}-{i}", w.resource),
                    heartbeat_interval: Duration::from_secs(20),
                },
                handler.clone(),
            );
            let rx = shutdown.clone();
            handles.push(tokio::spawn(async move { worker.run(rx).await }));
        }
        tracing::info!(activity = %activity, concurrency = w.concurrency, "local worker started");
    }
    Ok(handles)
}
