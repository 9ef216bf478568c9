//! `workflow-manager`: runs the service with the embedded defaults (SQLite in `./data`, the
//! embedded engine, the definitions and local workers of `./definitions`, on 127.0.0.1:8080).

use clap::Parser;
use workflow_manager::config::LogFormat;
use workflow_manager::{start, Config};

/// mimalloc rather than the system allocator: the service frees on one thread what another
/// allocated (requests, history, store writes), which contends on glibc's arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        // One JSON object per line; the fields of a line (workflow_id, execution, state) and
        // of the spans around it are top-level keys.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => logs.init(),
    }
    let running = start(&config).await?;
    eprintln!("workflow-manager listening on http://{}", running.addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    if running.stop().await {
        tracing::info!("stopped");
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
