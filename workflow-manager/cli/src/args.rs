//! The command line: subcommands and flags (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The workflow-manager command line.
#[derive(Parser, Debug)]
#[command(name = "wfm", version, about)]
pub struct Cli {
    /// The service's URL.
    #[arg(
        long,
        global = true,
        env = "WORKFLOW_MANAGER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// An API token (when the service runs with --auth tokens).
    #[arg(
        long,
        global = true,
        env = "WORKFLOW_MANAGER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Colours: on a terminal by default.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Workflow definitions.
    #[command(subcommand)]
    Definitions(DefinitionsCommand),
    /// Starts a workflow: NAME or NAME:VERSION.
    Start(StartArgs),
    /// Workflows.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Cancels a workflow.
    Cancel(CancelArgs),
    /// Resumes a finished workflow from a state, as a new workflow.
    Resume(ResumeArgs),
    /// Marks a workflow resolved.
    Resolve(IdArgs),
    /// State resources.
    #[command(subcommand)]
    Resources(ResourcesCommand),
}

/// `definitions ...`.
#[derive(Subcommand, Debug)]
pub enum DefinitionsCommand {
    /// Creates or updates the definitions of a directory: a new version only where one changed.
    Apply(ApplyArgs),
    /// The latest version of every definition.
    List(JsonFlag),
    /// One definition: NAME (latest) or NAME:VERSION.
    Show(ShowDefinitionArgs),
}

/// `workflows ...`.
#[derive(Subcommand, Debug)]
pub enum WorkflowsCommand {
    /// Lists workflows, with every filter of the API.
    List(ListArgs),
    /// One workflow, with its jobs.
    Show(ShowArgs),
    /// Follows a workflow until it ends; the exit code tells the outcome (0 succeeded,
    /// 3 failed, 4 cancelled).
    Follow(FollowArgs),
}

/// `resources ...`.
#[derive(Subcommand, Debug)]
pub enum ResourcesCommand {
    /// Creates or replaces a state resource.
    Put(PutResourceArgs),
    /// Shows a state resource.
    Get(ResourceKey),
    /// Deletes a state resource.
    Delete(ResourceKey),
}

/// `--json`.
#[derive(Args, Debug)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `definitions apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Directory of definition files (`.yaml`, `.yml`, `.json`; `workers.yaml` is skipped).
    pub dir: PathBuf,
    /// Show what would change without changing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// `definitions show`.
#[derive(Args, Debug)]
pub struct ShowDefinitionArgs {
    /// NAME or NAME:VERSION.
    pub name: String,
}

/// `start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// NAME or NAME:VERSION.
    pub definition: String,
    /// Input: JSON, or @FILE.
    #[arg(long)]
    pub input: Option<String>,
    /// Namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// A tag, KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// The workflow id (an idempotent start: the same request again returns the same workflow).
    #[arg(long)]
    pub id: Option<String>,
    /// Print the workflow as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
}

/// `workflows list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only workflows of this definition.
    #[arg(long)]
    pub definition: Option<String>,
    /// Only these statuses (repeatable, or comma-separated).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only resolved workflows.
    #[arg(long, conflicts_with = "unresolved")]
    pub resolved: bool,
    /// Only unresolved workflows.
    #[arg(long)]
    pub unresolved: bool,
    /// Only workflows created at or after this instant (RFC 3339).
    #[arg(long)]
    pub created_after: Option<String>,
    /// Only workflows created before this instant (RFC 3339).
    #[arg(long)]
    pub created_before: Option<String>,
    /// Only workflows with this tag, KEY=VALUE (repeatable; all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Only workflows of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only workflows of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Oldest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Page size (1 to 10,000).
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    /// Every page, not just the first.
    #[arg(long)]
    pub all: bool,
    /// JSON (whole workflows, jobs included) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `workflows show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The workflow id.
    pub id: String,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `workflows follow`.
#[derive(Args, Debug)]
pub struct FollowArgs {
    /// The workflow id.
    pub id: String,
    /// How often to look, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
}

/// `cancel`.
#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The workflow id.
    pub id: String,
    /// Why (recorded on the workflow).
    #[arg(long)]
    pub reason: String,
}

/// `resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The workflow id.
    pub id: String,
    /// The state to start from.
    #[arg(long = "from")]
    pub from: String,
    /// Input for that state (JSON or @FILE); default: the input it had.
    #[arg(long)]
    pub input: Option<String>,
}

/// A workflow id.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The workflow id.
    pub id: String,
}

/// `resources put`.
#[derive(Args, Debug)]
pub struct PutResourceArgs {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// URI (an ARN).
    pub uri: String,
}

/// A state resource's key.
#[derive(Args, Debug)]
pub struct ResourceKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Cli {
    /// The generated client for `--url`, with `--token` as a bearer token.
    pub fn client(&self) -> anyhow::Result<wfm_client::Client> {
        use wfm_client::reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| anyhow::anyhow!("--token: not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = wfm_client::reqwest::Client::builder()
            .default_headers(headers)
            .build()?;
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("--url: '{url}' is not an http(s) URL");
        }
        Ok(wfm_client::Client::with_reqwest(url, http))
    }
}
