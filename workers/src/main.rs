//! `wfm-worker`: polls one Step Functions activity and runs a program for each task, like
//! Clever's `sfncli`. Points at AWS by default, or at any Step Functions endpoint (the embedded
//! engine's `http://127.0.0.1:8080/sfn`) with `--endpoint-url` or `AWS_ENDPOINT_URL_SFN`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use wfm_workers::command::CommandHandler;
use wfm_workers::{ensure_activity, sfn_client, Worker, WorkerConfig};

/// Runs a command for every task of a Step Functions activity.
#[derive(Parser, Debug)]
#[command(name = "wfm-worker", version, about)]
struct Args {
    /// Name of the activity to poll (created if missing), e.g. `default--greet`.
    #[arg(long, env = "WFM_ACTIVITY_NAME")]
    activity_name: String,
    /// The program to run, then its arguments; the task input is appended as the last argument.
    #[arg(long, num_args = 1.., required = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// Step Functions endpoint (default: AWS, or AWS_ENDPOINT_URL_SFN).
    #[arg(long, env = "WFM_SFN_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// AWS region (default: the AWS configuration chain).
    #[arg(long)]
    region: Option<String>,
    /// Worker name reported to Step Functions (default: hostname and pid).
    #[arg(long)]
    worker_name: Option<String>,
    /// Run each task in a fresh directory under this one (removed afterwards; WORK_DIR is set).
    #[arg(long)]
    work_directory: Option<PathBuf>,
    /// Seconds between heartbeats while a command runs.
    #[arg(long, default_value_t = 20)]
    heartbeat_seconds: u64,
    /// Seconds a command gets after SIGTERM before it is killed.
    #[arg(long, default_value_t = 10)]
    grace_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let client = sfn_client(args.endpoint_url.as_deref(), args.region.as_deref()).await;
    let activity_arn = ensure_activity(&client, &args.activity_name)
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot create activity '{}'", args.activity_name))?;
    let (program, cmd_args) = args.cmd.split_first().context("--cmd needs a program")?;
    let mut handler = CommandHandler::new(program.clone(), cmd_args.to_vec());
    handler.work_directory = args.work_directory.clone();
    handler.grace = Duration::from_secs(args.grace_seconds);
    let worker_name = args.worker_name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let worker = Worker::new(
        client,
        WorkerConfig {
            activity_arn: activity_arn.clone(),
            worker_name,
            heartbeat_interval: Duration::from_secs(args.heartbeat_seconds.max(1)),
        },
        Arc::new(handler),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing the task in hand, if any");
        let _ = stop_tx.send(true);
    });
    tracing::info!(activity = %activity_arn, "polling");
    worker.run(stop_rx).await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
