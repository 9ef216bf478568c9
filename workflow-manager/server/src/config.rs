//! Command-line flags and environment of the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::auth::AuthMode;

/// The workflow-manager service.
#[derive(Parser, Debug, Clone)]
#[command(name = "workflow-manager", version, about)]
pub struct Config {
    /// Address of the REST API, the UI and the `/sfn` endpoint.
    #[arg(long, env = "WFM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the SQLite files (created if missing).
    #[arg(long, env = "WFM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Directory of workflow definitions to load at start (and of `workers.yaml`).
    #[arg(long, env = "WFM_DEFINITIONS", default_value = "definitions")]
    pub definitions: PathBuf,
    /// Do not start the local workers listed in `workers.yaml`.
    #[arg(long, env = "WFM_NO_LOCAL_WORKERS")]
    pub no_local_workers: bool,
    /// Region used in the embedded engine's ARNs.
    #[arg(long, env = "WFM_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Account id used in the embedded engine's ARNs.
    #[arg(long, env = "WFM_ACCOUNT", default_value = "123456789012")]
    pub account: String,
    /// Role the state machines run as.
    #[arg(
        long,
        env = "WFM_ROLE_ARN",
        default_value = "arn:aws:iam::123456789012:role/workflow-manager"
    )]
    pub role_arn: String,
    /// Longest wait of a GetActivityTask long poll, in seconds.
    #[arg(long, env = "WFM_ACTIVITY_POLL_SECONDS", default_value_t = 60)]
    pub activity_poll_seconds: u64,
    /// Seconds a missing execution is tolerated before its workflow is marked failed.
    #[arg(long, env = "WFM_ZOMBIE_GRACE_SECONDS", default_value_t = 300)]
    pub zombie_grace_seconds: u64,
    /// How requests are authenticated: `none` (only on a loopback address) or `tokens`.
    #[arg(long, env = "WFM_AUTH", value_enum, default_value = "none")]
    pub auth: AuthMode,
    /// An admin API token to accept from the start (registered, by its hash, as the token
    /// named `bootstrap`): how the first tokens and access keys get made.
    #[arg(long, env = "WFM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Mark the session cookie `Secure` (default: when not listening on a loopback address).
    #[arg(long, env = "WFM_COOKIE_SECURE")]
    pub cookie_secure: Option<bool>,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "WFM_MAX_BODY_BYTES", default_value_t = crate::limits::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

impl Config {
    /// The defaults, with the SQLite files in `data_dir`, on a free loopback port, without
    /// definitions or local workers: a service of its own, for benchmarks and tests.
    pub fn isolated(data_dir: &std::path::Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            definitions: data_dir.join("no-definitions"),
            no_local_workers: true,
            region: "us-east-1".into(),
            account: "123456789012".into(),
            role_arn: "arn:aws:iam::123456789012:role/workflow-manager".into(),
            activity_poll_seconds: 60,
            zombie_grace_seconds: 300,
            auth: AuthMode::None,
            admin_token: None,
            cookie_secure: None,
            max_body_bytes: crate::limits::MAX_BODY_BYTES,
        }
    }
}
