//! The embedded Step Functions engine: state machines, executions and activities, run inside the
//! service process and kept in SQLite. Its API mirrors the Step Functions API (the service
//! serves it on the wire under `/sfn`), and it writes history events as Step Functions does.
//!
//! Inside, the States Language is a pure step machine ([`machine`]): each execution's state
//! (every frame of every Parallel branch and Map iteration, with retries, timers and tasks) is
//! data, advanced by what happens to it. The runtime ([`runtime`]) delivers what happens, and
//! commits each round's events and state in one transaction before acting on it; the store
//! ([`store`]) keeps them. After a crash, an execution is loaded, never re-run: a branch or
//! iteration that finished keeps its result, timers keep their deadlines, a task whose answer
//! was committed is never handed out again.
//!
//! This crate must not depend on the workflow-manager's domain model, its store, HTTP or any
//! AWS SDK.

mod api;
mod clock;
mod error;
pub mod integrations;
pub mod machine;
mod nested;
pub mod runtime;
pub mod store;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use wfm_asl::HistoryEvent;

pub use api::{catalog, validation};
pub use clock::Clock;
pub use error::EngineError;

use runtime::Runtime;
use store::{EngineDb, ExecutionRow};

/// Told whenever an execution's history grows, so that status can be pushed rather than polled.
pub trait ExecutionObserver: Send + Sync {
    /// `execution_arn` (named `execution_name`) has new events.
    fn execution_changed(&self, execution_arn: &str, execution_name: &str);
}

/// Where the engine pretends to live, for the ARNs it hands out.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Region in ARNs.
    pub region: String,
    /// Account id in ARNs.
    pub account: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }
}

/// A state machine as DescribeStateMachine shows it.
#[derive(Debug, Clone)]
pub struct StateMachineInfo {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// ASL JSON text.
    pub definition: String,
    /// Role.
    pub role_arn: String,
    /// STANDARD or EXPRESS.
    pub machine_type: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// The definition's revision id (`revisionId`: changes with each update).
    pub revision_id: String,
}

/// An execution as DescribeExecution shows it.
#[derive(Debug, Clone)]
pub struct ExecutionInfo {
    /// ARN.
    pub execution_arn: String,
    /// Its state machine.
    pub state_machine_arn: String,
    /// Name.
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    /// Input JSON text.
    pub input: String,
    /// Output JSON text, once succeeded.
    pub output: Option<String>,
    /// Error, once failed or aborted.
    pub error: Option<String>,
    /// Cause, once failed or aborted.
    pub cause: Option<String>,
    /// Start.
    pub start_date: DateTime<Utc>,
    /// Stop.
    pub stop_date: Option<DateTime<Utc>>,
}

impl From<ExecutionRow> for ExecutionInfo {
    fn from(r: ExecutionRow) -> Self {
        Self {
            execution_arn: r.arn,
            state_machine_arn: r.state_machine_arn,
            name: r.name,
            status: r.status,
            input: r.input,
            output: r.output,
            error: r.error,
            cause: r.cause,
            start_date: r.start,
            stop_date: r.stop,
        }
    }
}

/// An activity as ListActivities shows it.
#[derive(Debug, Clone)]
pub struct ActivityInfo {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The events.
    pub events: Vec<HistoryEvent>,
    /// Token for the next page.
    pub next_token: Option<String>,
}

/// A task handed to a poller.
#[derive(Debug, Clone)]
pub struct ActivityTask {
    /// The token to answer with.
    pub task_token: String,
    /// The task input (JSON text).
    pub input: String,
}

/// The engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    rt: Arc<Runtime>,
}

impl Engine {
    /// Opens the engine over the database at `path` (created, or upgraded, if needed).
    pub fn open(
        path: &Path,
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
    ) -> Result<Self, EngineError> {
        Self::open_with_clock(path, config, observer, Clock::new())
    }

    /// [`open`](Self::open) with a given clock (tests that restart an engine in virtual
    /// time pass the first engine's clock to the second).
    pub fn open_with_clock(
        path: &Path,
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
        clock: Clock,
    ) -> Result<Self, EngineError> {
        Ok(Self::over(Runtime::new(
            EngineDb::open(path)?,
            config,
            observer,
            clock,
        )?))
    }

    /// An engine over an in-memory database (tests, benchmarks).
    pub fn in_memory(
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
    ) -> Result<Self, EngineError> {
        Ok(Self::over(Runtime::new(
            EngineDb::in_memory()?,
            config,
            observer,
            Clock::new(),
        )?))
    }

    /// The engine over a runtime, with the integrations the engine runs itself (nested
    /// executions).
    fn over(rt: Arc<Runtime>) -> Self {
        rt.calls.register(Arc::new(nested::Nested::new(&rt)));
        Self { rt }
    }

    /// Runs the Task states whose resource `integration` handles (register before
    /// [`recover`](Self::recover), so recovered executions find it).
    pub fn register_integration(&self, integration: Arc<dyn integrations::ServiceIntegration>) {
        self.rt.calls.register(integration);
    }

    /// Makes executions draw their randomness from `entropy` (a `SeededEntropy` makes
    /// `States.UUID`, `States.MathRandom`, `$random` and retry jitter reproducible). Task
    /// tokens always come from the operating system.
    pub fn set_entropy(&self, entropy: Arc<dyn wfm_asl::entropy::Entropy>) {
        *self.rt.entropy.write().unwrap_or_else(|p| p.into_inner()) = entropy;
    }

    /// At most about this many events per round of an execution (each round is one
    /// transaction; tests use small rounds to cut a run at every step).
    pub fn set_round_events(&self, events: usize) {
        self.rt
            .round_events
            .store(events.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Fault injection for recovery tests: the engine halts, as if its process died, right
    /// after its `commits`-th next commit (what that commit wrote stays; nothing of it is
    /// acted on, nothing after it is written).
    pub fn crash_after_commits(&self, commits: usize) {
        self.rt
            .crash_after
            .store(commits.max(1), std::sync::atomic::Ordering::Release);
    }

    /// Whether the engine was halted.
    pub fn halted(&self) -> bool {
        self.rt.halted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Rounds committed since the engine was opened.
    pub fn commits(&self) -> u64 {
        self.rt.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The engine's clock.
    pub fn clock(&self) -> Clock {
        self.rt.clock
    }

    /// The engine's region and account.
    pub fn config(&self) -> &EngineConfig {
        &self.rt.config
    }

    fn arn(&self, kind: &str, rest: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:{kind}:{rest}",
            self.rt.config.region, self.rt.config.account
        )
    }

    /// The ARN of a state machine of this name.
    pub fn state_machine_arn(&self, name: &str) -> String {
        self.arn("stateMachine", name)
    }

    /// The ARN of an activity of this name.
    pub fn activity_arn(&self, name: &str) -> String {
        self.arn("activity", name)
    }
}

#[cfg(test)]
mod callback_tests;
#[cfg(test)]
mod distributed_tests;
#[cfg(test)]
mod integration_tests;
#[cfg(test)]
mod nested_tests;
#[cfg(test)]
mod tests;

/// Waits (up to 10 s) until an execution is no longer running.
#[cfg(test)]
async fn tests_support_wait(e: &Engine, arn: &str) -> ExecutionInfo {
    for _ in 0..2000 {
        let d = e.describe_execution(arn).await.expect("describe");
        if d.status != "RUNNING" {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("execution {arn} did not finish");
}
