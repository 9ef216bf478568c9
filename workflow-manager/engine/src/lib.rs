//! The embedded Step Functions engine: state machines, executions and activities, run inside the
//! service process and kept in SQLite. Its API mirrors the Step Functions API (the service
//! serves it on the wire under `/sfn`), and it writes history events as Step Functions does.
//!
//! This crate owns interpretation and the engine's own database. It must not depend on the
//! workflow-manager's domain model, its store, HTTP or any AWS SDK.

mod activities;
mod choice;
mod clock;
mod dataflow;
mod db;
mod error;
pub mod integrations;
mod interpreter;
mod log;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use wfm_asl::{HistoryEvent, StateMachine};

pub use activities::ActivityTask;
pub use clock::Clock;
pub use error::EngineError;

use activities::{ActivityBoard, TaskOutcome};
use db::{EngineDb, ExecutionRow, StateMachineRow};
use interpreter::{Resume, Run};
use log::{Ending, ExecutionLog};

/// Told whenever an execution's history grows, so that status can be pushed rather than polled.
pub trait ExecutionObserver: Send + Sync {
    /// `execution_arn` (named `execution_name`) has a new event.
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

struct Live {
    log: Arc<ExecutionLog>,
    abort: Option<tokio::task::AbortHandle>,
}

pub(crate) struct Inner {
    config: EngineConfig,
    pub(crate) clock: Clock,
    db: Arc<EngineDb>,
    board: ActivityBoard,
    live: Mutex<HashMap<String, Live>>,
    machines: Mutex<HashMap<String, Arc<StateMachine>>>,
    observer: Option<Arc<dyn ExecutionObserver>>,
    /// The source of randomness of the executions (intrinsics, JSONata, retry jitter).
    entropy: std::sync::RwLock<Arc<dyn wfm_asl::entropy::Entropy>>,
    /// Bumped whenever an execution ends (StartSyncExecution waits on it).
    pub(crate) finished: tokio::sync::watch::Sender<u64>,
    /// Service integrations and their work in flight.
    pub(crate) integrations: integrations::Integrations,
    /// Set when the service shuts down: long polls answer "no task" at once.
    draining: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn drop_abort_handle(&self, execution_arn: &str) {
        if let Some(live) = self.live().get_mut(execution_arn) {
            live.abort = None;
        }
    }

    pub(crate) fn forget_live(&self, execution_arn: &str) {
        self.live().remove(execution_arn);
        self.finished.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Step Functions' rule for names of state machines, executions and activities.
fn check_name(name: &str, what: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 80
        && name.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !"<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidName(format!(
            "Invalid Name: '{name}' is not a valid {what} name (1 to 80 characters, no \
             whitespace, brackets, wildcards or special characters)"
        )))
    }
}

impl Engine {
    /// Opens the engine over the database at `path` (created if missing).
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
        Ok(Self::with_db(
            EngineDb::open(path)?,
            config,
            observer,
            clock,
        ))
    }

    /// Runs the Task states whose resource `integration` handles (register before
    /// [`recover`](Self::recover), so recovered executions find it).
    pub fn register_integration(&self, integration: Arc<dyn integrations::ServiceIntegration>) {
        self.inner.integrations.register(integration);
    }

    /// Makes executions started from now on draw their randomness from `entropy` (a
    /// `SeededEntropy` makes `States.UUID`, `States.MathRandom`, `$random` and retry jitter
    /// reproducible). Task tokens always come from the operating system.
    pub fn set_entropy(&self, entropy: Arc<dyn wfm_asl::entropy::Entropy>) {
        *self
            .inner
            .entropy
            .write()
            .unwrap_or_else(|p| p.into_inner()) = entropy;
    }

    /// The engine's clock.
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// An engine over an in-memory database (tests, benchmarks).
    pub fn in_memory(
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
    ) -> Result<Self, EngineError> {
        Ok(Self::with_db(
            EngineDb::in_memory()?,
            config,
            observer,
            Clock::new(),
        ))
    }

    fn with_db(
        db: EngineDb,
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
        clock: Clock,
    ) -> Self {
        let engine = Self {
            inner: Arc::new(Inner {
                config,
                clock,
                finished: tokio::sync::watch::channel(0).0,
                entropy: std::sync::RwLock::new(Arc::new(wfm_asl::entropy::OsEntropy)),
                db: Arc::new(db),
                board: ActivityBoard::default(),
                live: Mutex::new(HashMap::new()),
                machines: Mutex::new(HashMap::new()),
                observer,
                integrations: Default::default(),
                draining: tokio::sync::watch::channel(false).0,
            }),
        };
        // Parked executions are continued through a weak handle, so the board does not keep
        // the engine alive.
        let weak = Arc::downgrade(&engine.inner);
        engine.inner.board.set_resumer(Box::new(move |arn: &str| {
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.resume_parked(arn);
            }
        }));
        engine
    }

    /// The engine's region and account.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn arn(&self, kind: &str, rest: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:{kind}:{rest}",
            self.inner.config.region, self.inner.config.account
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

    /// Creates a state machine; the same name with the same definition returns the existing one.
    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: &str,
        machine_type: &str,
    ) -> Result<StateMachineInfo, EngineError> {
        check_name(name, "state machine")?;
        let machine = wfm_asl::parse_definition(definition)
            .and_then(|m| wfm_asl::validate(&m).map(|()| m))
            .map_err(|e| {
                EngineError::InvalidDefinition(format!("Invalid State Machine Definition: '{e}'"))
            })?;
        if machine_type != "STANDARD" && machine_type != "EXPRESS" {
            return Err(EngineError::Validation(format!(
                "invalid type '{machine_type}'"
            )));
        }
        if machine_type == "EXPRESS" {
            check_express(&machine, "")?;
        }
        let arn = self.state_machine_arn(name);
        if let Some(existing) = self.inner.db.state_machine(&arn)? {
            let same: bool = serde_json::from_str::<Value>(&existing.definition).ok()
                == serde_json::from_str::<Value>(definition).ok()
                && existing.role_arn == role_arn;
            return if same {
                Ok(machine_info(existing))
            } else {
                Err(EngineError::StateMachineAlreadyExists(format!(
                    "State Machine Already Exists: '{arn}'"
                )))
            };
        }
        let row = StateMachineRow {
            arn: arn.clone(),
            name: name.to_string(),
            definition: definition.to_string(),
            role_arn: role_arn.to_string(),
            machine_type: machine_type.to_string(),
            created: self.inner.clock.now(),
            deleted: false,
        };
        self.inner.db.insert_state_machine(&row)?;
        self.machines().insert(arn, Arc::new(machine));
        Ok(machine_info(row))
    }

    fn machines(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StateMachine>>> {
        self.inner
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// State machines by name, a page after `next_token`; returns the page and the next token.
    pub fn list_state_machines(
        &self,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<StateMachineInfo>, Option<String>), EngineError> {
        let limit = page_size(max_results)?;
        let after = decode_name_token(next_token)?;
        let mut rows = self.inner.db.state_machines(&after, limit + 1)?;
        let next = next_name_token(&mut rows, limit, |r| &r.name);
        Ok((rows.into_iter().map(machine_info).collect(), next))
    }

    /// Replaces a state machine's definition and/or role; running executions keep the old one.
    pub fn update_state_machine(
        &self,
        arn: &str,
        definition: Option<&str>,
        role_arn: Option<&str>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let current = self.describe_state_machine(arn)?;
        if definition.is_none() && role_arn.is_none() {
            return Err(EngineError::Validation(
                "either definition or roleArn must be given".into(),
            ));
        }
        let definition = definition.unwrap_or(&current.definition);
        let machine = wfm_asl::parse_definition(definition)
            .and_then(|m| wfm_asl::validate(&m).map(|()| m))
            .map_err(|e| {
                EngineError::InvalidDefinition(format!("Invalid State Machine Definition: '{e}'"))
            })?;
        let now = self.inner.clock.now();
        self.inner.db.update_state_machine(
            arn,
            definition,
            role_arn.unwrap_or(&current.role_arn),
            now,
        )?;
        self.machines().insert(arn.to_string(), Arc::new(machine));
        Ok(now)
    }

    /// Deletes a state machine; its running executions go on.
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        self.describe_state_machine(arn)?;
        self.inner.db.delete_state_machine(arn)
    }

    /// Executions of a state machine, newest first, optionally of one status.
    pub fn list_executions(
        &self,
        state_machine_arn: &str,
        status: Option<&str>,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ExecutionInfo>, Option<String>), EngineError> {
        self.describe_state_machine(state_machine_arn)?;
        if let Some(s) = status {
            if ![
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "TIMED_OUT",
                "ABORTED",
                "PENDING_REDRIVE",
            ]
            .contains(&s)
            {
                return Err(EngineError::Validation(format!(
                    "invalid statusFilter '{s}'"
                )));
            }
        }
        let limit = page_size(max_results)?;
        let before = match next_token {
            None => None,
            Some(t) => Some(
                t.strip_prefix("x.")
                    .and_then(|rest| rest.split_once('.'))
                    .and_then(|(ms, arn)| ms.parse::<i64>().ok().map(|ms| (ms, arn.to_string())))
                    .ok_or_else(|| EngineError::InvalidToken(format!("Invalid Token: '{t}'")))?,
            ),
        };
        let mut rows = self
            .inner
            .db
            .executions(state_machine_arn, status, before, limit + 1)?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| format!("x.{}.{}", r.start.timestamp_millis(), r.arn))
        } else {
            None
        };
        Ok((rows.into_iter().map(Into::into).collect(), next))
    }

    /// Runs an EXPRESS state machine's execution to its end and returns it.
    pub async fn start_sync_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionInfo, EngineError> {
        let machine = self.describe_state_machine(state_machine_arn)?;
        if machine.machine_type != "EXPRESS" {
            return Err(EngineError::StateMachineTypeNotSupported(
                "This operation is only supported by EXPRESS state machines".into(),
            ));
        }
        let started = self.start_execution(state_machine_arn, name, input).await?;
        let mut changes = self.inner.finished.subscribe();
        loop {
            let e = self.describe_execution(&started.execution_arn)?;
            if e.status != "RUNNING" {
                return Ok(e);
            }
            // Woken by any execution ending; a missed wake-up costs at most the poll interval.
            let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
        }
    }

    /// An activity's name and creation time.
    pub fn describe_activity(&self, arn: &str) -> Result<(String, DateTime<Utc>), EngineError> {
        self.inner.db.activity(arn)?.ok_or_else(|| {
            EngineError::ActivityDoesNotExist(format!("Activity Does Not Exist: '{arn}'"))
        })
    }

    /// Activities by name, a page after `next_token`.
    pub fn list_activities(
        &self,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ActivityInfo>, Option<String>), EngineError> {
        let limit = page_size(max_results)?;
        let after = decode_name_token(next_token)?;
        let mut rows = self.inner.db.activities(&after, limit + 1)?;
        let next = next_name_token(&mut rows, limit, |r| &r.1);
        let activities = rows
            .into_iter()
            .map(|(arn, name, created)| ActivityInfo { arn, name, created })
            .collect();
        Ok((activities, next))
    }

    /// Deletes an activity.
    pub fn delete_activity(&self, arn: &str) -> Result<(), EngineError> {
        self.inner.db.delete_activity(arn)
    }

    /// Describes a state machine.
    pub fn describe_state_machine(&self, arn: &str) -> Result<StateMachineInfo, EngineError> {
        self.inner
            .db
            .state_machine(arn)?
            .filter(|r| !r.deleted)
            .map(machine_info)
            .ok_or_else(|| {
                EngineError::StateMachineDoesNotExist(format!(
                    "State Machine Does Not Exist: '{arn}'"
                ))
            })
    }

    fn parsed_machine(&self, row: &StateMachineRow) -> Result<Arc<StateMachine>, EngineError> {
        if let Some(m) = self.machines().get(&row.arn) {
            return Ok(m.clone());
        }
        let m = Arc::new(
            wfm_asl::parse_definition(&row.definition)
                .map_err(|e| EngineError::Storage(format!("stored definition is invalid: {e}")))?,
        );
        self.machines().insert(row.arn.clone(), m.clone());
        Ok(m)
    }

    /// Starts an execution. A name already used with the same input returns the running
    /// execution; with another input it is `ExecutionAlreadyExists`.
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionInfo, EngineError> {
        let machine_row = self
            .inner
            .db
            .state_machine(state_machine_arn)?
            .ok_or_else(|| {
                EngineError::StateMachineDoesNotExist(format!(
                    "State Machine Does Not Exist: '{state_machine_arn}'"
                ))
            })?;
        let name = match name {
            Some(n) => n.to_string(),
            // Time-ordered, like the service's workflow ids: new keys go to the end of the
            // executions' and events' indexes.
            None => uuid::Uuid::now_v7().to_string(),
        };
        check_name(&name, "execution")?;
        let input_text = input.unwrap_or("{}");
        let input_value: Value = serde_json::from_str(input_text).map_err(|e| {
            EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: '{e}'"
            ))
        })?;
        let arn = self.arn("execution", &format!("{}:{name}", machine_row.name));
        let machine = self.parsed_machine(&machine_row)?;
        // Milliseconds, as stored: the start date reads back the same.
        let now = chrono::SubsecRound::trunc_subsecs(self.inner.clock.now(), 3);
        let row = ExecutionRow {
            arn: arn.clone(),
            state_machine_arn: state_machine_arn.to_string(),
            name: name.clone(),
            status: "RUNNING".into(),
            input: input_text.to_string(),
            output: None,
            error: None,
            cause: None,
            start: now,
            stop: None,
        };
        let mut started = HistoryEvent::new(1, 0, "ExecutionStarted", now);
        started.execution_started_event_details = Some(wfm_asl::history::ExecutionStartedDetails {
            input: Some(input_text.to_string()),
            input_details: Some(wfm_asl::history::PayloadDetails { truncated: false }),
            role_arn: Some(machine_row.role_arn.clone()),
        });
        match self.inner.db.insert_execution(&row, &started).await {
            Ok(()) => {}
            // The name is taken: the same input while it runs is the same start (idempotent).
            Err(EngineError::ExecutionAlreadyExists(m)) => {
                return match self.inner.db.execution(&arn)? {
                    Some(existing)
                        if existing.status == "RUNNING"
                            && serde_json::from_str::<Value>(&existing.input).ok()
                                == Some(input_value) =>
                    {
                        Ok(existing.into())
                    }
                    _ => Err(EngineError::ExecutionAlreadyExists(m)),
                };
            }
            Err(e) => return Err(e),
        }
        if let Some(o) = &self.inner.observer {
            o.execution_changed(&arn, &name);
        }
        let resume = Resume::start(&machine, &input_value);
        self.launch(&row, &machine_row, machine, input_value, resume, 0, 1);
        Ok(row.into())
    }

    /// Spawns the run of an execution from `resume`, its history ending at `last_event_id`.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        row: &ExecutionRow,
        machine_row: &StateMachineRow,
        machine: Arc<StateMachine>,
        input: Value,
        resume: Resume,
        resume_entered_id: i64,
        last_event_id: i64,
    ) {
        let log = Arc::new(ExecutionLog::new(
            row.arn.clone(),
            row.name.clone(),
            self.inner.db.clone(),
            self.inner.observer.clone(),
            last_event_id,
            self.inner.clock,
        ));
        let run = Run {
            inner: self.inner.clone(),
            log: log.clone(),
            machine,
            state_machine_arn: machine_row.arn.clone(),
            state_machine_name: machine_row.name.clone(),
            role_arn: machine_row.role_arn.clone(),
            express: machine_row.machine_type == "EXPRESS",
            input,
            start_date: row.start,
            resume,
            resume_entered_id,
            last_event_id,
        };
        // Register before spawning so that a stop right after the start finds the run.
        self.inner
            .live()
            .insert(row.arn.clone(), Live { log, abort: None });
        let entropy = self
            .inner
            .entropy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let handle = tokio::spawn(wfm_asl::entropy::Scoped::new(entropy, run.run()));
        if let Some(live) = self.inner.live().get_mut(&row.arn) {
            live.abort = Some(handle.abort_handle());
        }
    }

    /// Continues every execution a previous process left RUNNING, from where its history
    /// ends: a state that had exited is not run again, a recorded task answer is used, a
    /// task that was scheduled but not answered is handed out again (with a new token).
    /// Call once after opening, inside the runtime. Returns how many were resumed.
    pub fn recover(&self) -> Result<usize, EngineError> {
        let mut resumed = 0;
        for row in self.inner.db.running_executions()? {
            if self.inner.live().contains_key(&row.arn) {
                continue;
            }
            if self.resume_from_history(row)? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Continues one execution from where its history ends (after a restart, or when the
    /// answer of a parked task arrives). Returns false when its state machine is gone.
    pub(crate) fn resume_from_history(&self, row: ExecutionRow) -> Result<bool, EngineError> {
        let Some(machine_row) = self.inner.db.state_machine(&row.state_machine_arn)? else {
            tracing::error!(execution = %row.arn, "cannot resume: its state machine is gone");
            return Ok(false);
        };
        let machine = self.parsed_machine(&machine_row)?;
        let events = self
            .inner
            .db
            .events(&row.arn, 0, i64::MAX, false, usize::MAX)?;
        let input: Value = serde_json::from_str(&row.input).unwrap_or(Value::Null);
        let (resume, entered_id) = Resume::from_history(&events, &machine, &input);
        let last_id = events.last().map(|e| e.id).unwrap_or(0);
        tracing::debug!(execution = %row.arn, state = %resume.state, "resuming execution");
        self.launch(
            &row,
            &machine_row,
            machine,
            input,
            resume,
            entered_id,
            last_id,
        );
        Ok(true)
    }

    /// Resumes a parked execution whose task was just answered.
    pub(crate) fn resume_parked(&self, execution_arn: &str) {
        let result = self
            .inner
            .db
            .execution(execution_arn)
            .and_then(|row| match row {
                Some(row) if row.status == "RUNNING" => self.resume_from_history(row).map(|_| ()),
                _ => Ok(()),
            });
        if let Err(e) = result {
            tracing::error!(execution = %execution_arn, error = %e, "cannot resume a parked execution");
        }
    }

    /// Stops running every execution at once without recording anything, as a crash would:
    /// their histories stay as they are and [`recover`](Self::recover) (in this or a new
    /// process) continues them. Used at shutdown and by tests of recovery.
    pub fn halt(&self) {
        let live: Vec<Live> = self.inner.live().drain().map(|(_, l)| l).collect();
        for l in live {
            // Withdraw the tasks first, so their tokens are retired before the run's own
            // clean-up (on abort) could remove them silently.
            self.inner.board.remove_execution(&l.log.arn);
            if let Some(h) = l.abort {
                h.abort();
            }
        }
        // Parked executions have no run, only their tasks.
        self.inner.board.retire_all();
        // What was queued before the halt is committed; nothing after it is.
        if let Err(e) = self.inner.db.flush() {
            tracing::error!(error = %e, "cannot flush the engine's history at halt");
        }
    }

    /// Describes an execution.
    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionInfo, EngineError> {
        self.inner
            .db
            .execution(arn)?
            .map(Into::into)
            .ok_or_else(|| {
                EngineError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
            })
    }

    /// Stops a running execution at once: it ends ABORTED, its outstanding tasks are withdrawn.
    pub fn stop_execution(
        &self,
        arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let row = self.inner.db.execution(arn)?.ok_or_else(|| {
            EngineError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
        })?;
        if row.status != "RUNNING" {
            return Ok(row.stop.unwrap_or_else(|| self.inner.clock.now()));
        }
        let live = self.inner.live().remove(arn);
        if live.is_none() {
            // No log in memory: the history's end must be read from the database, so let the
            // writer commit what it holds first.
            self.inner.db.flush()?;
        }
        let log = match &live {
            Some(l) => l.log.clone(),
            None => Arc::new(ExecutionLog::new(
                arn.to_string(),
                row.name.clone(),
                self.inner.db.clone(),
                self.inner.observer.clone(),
                self.last_event_id(arn)?,
                self.inner.clock,
            )),
        };
        // Withdraw the tasks first, so their tokens are retired (a late answer is an invalid
        // token) before the run's own clean-up on abort could remove them silently.
        self.inner.board.remove_execution(arn);
        if let Some(Live { abort: Some(h), .. }) = &live {
            h.abort();
        }
        // Batch jobs and other service work of the execution are cancelled.
        self.inner
            .integrations
            .cancel_execution(arn, cause.or(error).unwrap_or("execution stopped"));
        log.finish(
            "ExecutionAborted",
            |e| {
                e.execution_aborted_event_details = Some(wfm_asl::history::ErrorDetails {
                    error: error.map(str::to_string),
                    cause: cause.map(str::to_string),
                })
            },
            Ending {
                status: "ABORTED",
                output: None,
                error,
                cause,
            },
        )?;
        Ok(self.inner.clock.now())
    }

    fn last_event_id(&self, arn: &str) -> Result<i64, EngineError> {
        Ok(self
            .inner
            .db
            .events(arn, 0, i64::MAX, true, 1)?
            .first()
            .map(|e| e.id)
            .unwrap_or(0))
    }

    /// A page of an execution's history. `next_token` continues a previous page.
    pub fn get_execution_history(
        &self,
        arn: &str,
        max_results: Option<usize>,
        next_token: Option<&str>,
        reverse: bool,
    ) -> Result<HistoryPage, EngineError> {
        if self.inner.db.execution(arn)?.is_none() {
            return Err(EngineError::ExecutionDoesNotExist(format!(
                "Execution Does Not Exist: '{arn}'"
            )));
        }
        let limit = match max_results {
            None | Some(0) => 100,
            Some(n) if n > 1000 => {
                return Err(EngineError::Validation(
                    "maxResults must be less than or equal to 1000".into(),
                ))
            }
            Some(n) => n,
        };
        let start = match next_token {
            None => None,
            Some(t) => Some(
                t.strip_prefix("h.")
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| EngineError::InvalidToken(format!("Invalid Token: '{t}'")))?,
            ),
        };
        let (from, to) = match (reverse, start) {
            (false, s) => (s.unwrap_or(1), i64::MAX),
            (true, s) => (1, s.unwrap_or(i64::MAX)),
        };
        let mut events = self.inner.db.events(arn, from, to, reverse, limit + 1)?;
        let next_token = if events.len() > limit {
            let extra = events.pop();
            extra.map(|e| format!("h.{}", e.id))
        } else {
            None
        };
        Ok(HistoryPage { events, next_token })
    }

    /// Creates an activity (idempotent); returns its ARN and creation time.
    pub fn create_activity(&self, name: &str) -> Result<(String, DateTime<Utc>), EngineError> {
        check_name(name, "activity")?;
        let arn = self.activity_arn(name);
        let created = self
            .inner
            .db
            .ensure_activity(&arn, name, self.inner.clock.now())?;
        Ok((arn, created))
    }

    /// Waits up to `wait` for a task of the activity; `None` when none came.
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<&str>,
        wait: Duration,
    ) -> Result<Option<ActivityTask>, EngineError> {
        if !self.inner.db.activity_exists(activity_arn)? {
            return Err(EngineError::ActivityDoesNotExist(format!(
                "Activity Does Not Exist: '{activity_arn}'"
            )));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut draining = self.inner.draining.subscribe();
        loop {
            if *draining.borrow() {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(task) = self
                .inner
                .board
                .poll(activity_arn, left, &mut draining)
                .await
            else {
                return Ok(None);
            };
            // The task may have been withdrawn (execution stopped) since it was queued.
            if let Ok(slot) = self.inner.board.slot(&task.task_token) {
                metrics::histogram!("wfm_activity_dispatch_seconds")
                    .record(slot.scheduled_at.elapsed().as_secs_f64());
                interpreter::mark_started(&slot, worker_name)?;
                return Ok(Some(task));
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    /// Ends every waiting GetActivityTask long poll with "no task", now and from now on: the
    /// service is shutting down, and a poll must not hold its answer (or the shutdown) for a
    /// minute. Executions and their tasks are untouched.
    pub fn drain_polls(&self) {
        self.inner.draining.send_replace(true);
    }

    /// Reports a task's success; `output` must be JSON.
    pub fn send_task_success(&self, token: &str, output: &str) -> Result<(), EngineError> {
        activities::check_token_format(token)?;
        serde_json::from_str::<Value>(output)
            .map_err(|e| EngineError::InvalidOutput(format!("Invalid Output: '{e}'")))?;
        self.inner
            .board
            .complete(token, TaskOutcome::Success(output.to_string()))
    }

    /// Reports a task's failure.
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), EngineError> {
        self.inner.board.complete(
            token,
            TaskOutcome::Failure {
                error: error.map(str::to_string),
                cause: cause.map(str::to_string),
            },
        )
    }

    /// The activity ARN of an outstanding task, by its token.
    pub fn task_activity(&self, token: &str) -> Option<String> {
        self.inner
            .board
            .slot(token)
            .ok()
            .map(|slot| slot.activity_arn.to_string())
    }

    /// Records a heartbeat of an outstanding task.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        let slot = self.inner.board.slot(token)?;
        activities::write(&slot.last_heartbeat, Some(tokio::time::Instant::now()));
        Ok(())
    }

    /// Activity tasks no worker has taken yet, and how long the oldest has waited.
    pub fn waiting_tasks(&self) -> (usize, Option<Duration>) {
        self.inner.board.waiting()
    }

    /// Number of activity tasks scheduled and not yet answered.
    pub fn outstanding_tasks(&self) -> usize {
        self.inner.board.outstanding()
    }
}

/// EXPRESS machines cannot wait for activities or task tokens.
fn check_express(machine: &StateMachine, path: &str) -> Result<(), EngineError> {
    use wfm_asl::State;
    for (name, state) in &machine.states {
        let here = format!("{path}/States/{name}");
        match state {
            State::Task(t) => {
                let r = t.resource.as_deref().unwrap_or("");
                let problem = if r.contains(":activity:") {
                    Some("Activity ARN")
                } else if r.ends_with(".waitForTaskToken") {
                    Some("'.waitForTaskToken' service integration")
                } else {
                    None
                };
                if let Some(p) = problem {
                    return Err(EngineError::InvalidDefinition(format!(
                        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: Express state \
                         machine does not support {p} at {here}/Resource'"
                    )));
                }
            }
            State::Parallel(p) => {
                for (i, b) in p.branches.iter().flatten().enumerate() {
                    check_express(b, &format!("{here}/Branches[{i}]"))?;
                }
            }
            State::Map(m) => {
                if let Some(p) = m.processor() {
                    check_express(p, &format!("{here}/ItemProcessor"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A page size (default 100, at most 1000).
fn page_size(max_results: Option<usize>) -> Result<usize, EngineError> {
    match max_results {
        None | Some(0) => Ok(100),
        Some(n) if n > 1000 => Err(EngineError::Validation(
            "maxResults must be at most 1000".into(),
        )),
        Some(n) => Ok(n),
    }
}

/// Paging by name: tokens are `n.` and the last name of the previous page.
fn decode_name_token(token: Option<&str>) -> Result<String, EngineError> {
    match token {
        None => Ok(String::new()),
        Some(t) => t
            .strip_prefix("n.")
            .map(str::to_string)
            .ok_or_else(|| EngineError::InvalidToken(format!("Invalid Token: '{t}'"))),
    }
}

fn next_name_token<T>(
    rows: &mut Vec<T>,
    limit: usize,
    name: impl Fn(&T) -> &String,
) -> Option<String> {
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| format!("n.{}", name(r)))
    } else {
        None
    }
}

fn machine_info(r: StateMachineRow) -> StateMachineInfo {
    StateMachineInfo {
        arn: r.arn,
        name: r.name,
        definition: r.definition,
        role_arn: r.role_arn,
        machine_type: r.machine_type,
        created: r.created,
    }
}

#[cfg(test)]
mod integration_tests;
#[cfg(test)]
mod tests;

/// Waits (up to 10 s) until an execution is no longer running.
#[cfg(test)]
async fn tests_support_wait(e: &Engine, arn: &str) -> ExecutionInfo {
    for _ in 0..2000 {
        let d = e.describe_execution(arn).expect("describe");
        if d.status != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("execution {arn} did not finish");
}
