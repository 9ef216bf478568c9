//! Command-line flags and environment of the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::auth::AuthMode;

/// The account of ARNs when none is configured (the embedded engine's; AWS's documentation
/// example account).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

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
    /// Where state is kept: `sqlite://PATH` or `dynamodb://TABLE_PREFIX` (default: the SQLite
    /// file `workflow-manager.db` in the data directory).
    #[arg(long, env = "WFM_STORE")]
    pub store: Option<StoreUrl>,
    /// What runs executions: the `embedded` engine, or AWS Step Functions (`sfn`).
    #[arg(long, env = "WFM_EXECUTOR", value_enum, default_value = "embedded")]
    pub executor: Executor,
    /// Region of the AWS clients and of ARNs (default: the AWS SDK's own chain, `AWS_REGION`
    /// or the profile's; `us-east-1` for the embedded engine).
    #[arg(long, env = "WFM_REGION")]
    pub region: Option<String>,
    /// Account id used in ARNs (the AWS account of the state machines and activities). With
    /// `--executor sfn` and no account, it is learned from STS `GetCallerIdentity` (or the
    /// ARNs Step Functions lists), and one AWS contradicts stops the start; the embedded
    /// engine uses `123456789012` by default.
    #[arg(long, env = "WFM_ACCOUNT")]
    pub account: Option<String>,
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
    /// With `--executor sfn`: workflow syncs per second at most (each costs a
    /// DescribeExecution, whose account quota refills at 15/s).
    #[arg(long, env = "WFM_SYNC_RATE", default_value_t = 10.0)]
    pub sync_rate: f64,
    /// With `--executor sfn`: an SQS queue receiving Step Functions' execution status events
    /// from an EventBridge rule; each event makes its workflow synced at once.
    #[arg(long, env = "WFM_EVENTS_QUEUE_URL")]
    pub events_queue_url: Option<String>,
    /// Log lines as `text` or `json` (one object per line, with the workflow id, execution and
    /// state where there is one).
    #[arg(long, env = "WFM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Hosts HTTP Tasks (`arn:aws:states:::http:invoke`) of the embedded engine may call:
    /// names, or `*.suffix`; comma-separated or repeated. Default: any host.
    #[arg(long, env = "WFM_HTTP_ALLOW", value_delimiter = ',')]
    pub http_allow: Vec<String>,
}

/// What runs executions.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// The embedded engine, with its `/sfn` endpoint and the local workers.
    Embedded,
    /// AWS Step Functions through aws-sdk-sfn (`AWS_ENDPOINT_URL_SFN` points it elsewhere).
    Sfn,
}

/// Log line format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// For log pipelines.
    Json,
}

/// Where state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// DynamoDB tables named `PREFIX-...`.
    DynamoDb(String),
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("--store sqlite://PATH needs a path".into());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if let Some(prefix) = s.strip_prefix("dynamodb://") {
            let valid = !prefix.is_empty()
                && prefix.len() <= 200
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(format!(
                    "--store dynamodb://TABLE_PREFIX: '{prefix}' is not a table name prefix (letters, digits, '_', '-', '.')"
                ));
            }
            return Ok(StoreUrl::DynamoDb(prefix.to_string()));
        }
        Err(format!(
            "--store '{s}': expected sqlite://PATH or dynamodb://TABLE_PREFIX"
        ))
    }
}

impl Config {
    /// The account of the embedded engine's ARNs (the configured one, else `123456789012`).
    pub fn account_for_arns(&self) -> String {
        self.account
            .clone()
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
    }

    /// The defaults, with the SQLite files in `data_dir`, on a free loopback port, without
    /// definitions or local workers: a service of its own, for benchmarks and tests.
    pub fn isolated(data_dir: &std::path::Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            definitions: data_dir.join("no-definitions"),
            no_local_workers: true,
            store: None,
            executor: Executor::Embedded,
            region: None,
            account: Some("123456789012".into()),
            role_arn: "arn:aws:iam::123456789012:role/workflow-manager".into(),
            activity_poll_seconds: 60,
            zombie_grace_seconds: 300,
            auth: AuthMode::None,
            admin_token: None,
            cookie_secure: None,
            max_body_bytes: crate::limits::MAX_BODY_BYTES,
            sync_rate: 10.0,
            events_queue_url: None,
            log_format: LogFormat::Text,
            http_allow: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_or_say_what_is_expected() {
        assert_eq!(
            "sqlite:///var/lib/wfm.db".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite("/var/lib/wfm.db".into()))
        );
        assert_eq!(
            "dynamodb://wfm-prod".parse::<StoreUrl>(),
            Ok(StoreUrl::DynamoDb("wfm-prod".into()))
        );
        for bad in [
            "postgres://x",
            "dynamodb://",
            "dynamodb://a b",
            "sqlite://",
            "wfm",
        ] {
            let err = bad.parse::<StoreUrl>().expect_err(bad);
            assert!(err.contains("--store"), "{err}");
        }
    }
}
