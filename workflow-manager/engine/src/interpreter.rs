//! Runs one execution of a state machine: enters each state, applies the JSONPath data flow,
//! hands Task states to activity workers, waits, fans out Parallel branches and Map
//! iterations, retries and catches errors, and writes the history events Step Functions
//! writes. JSONata and Assign are not evaluated yet: such states fail with `States.Runtime`
//! and a cause that says so.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;
use wfm_asl::definition::QueryLanguage;
use wfm_asl::definition::{
    Catcher, ChoiceState, FailState, MapState, ParallelState, PassState, Retrier, State,
    StateMachine, TaskState, WaitState,
};
use wfm_asl::history::{
    ActivityScheduledDetails, ActivityStartedDetails, ErrorDetails, MapIterationDetails,
    MapStateStartedDetails, OutputDetails, PayloadDetails, StateEnteredDetails, StateExitedDetails,
    TaskDetails,
};
use wfm_asl::path::{apply_result_path, evaluate_expression, expand_template, select, PathError};
use wfm_asl::HistoryEvent;

use crate::activities::{new_task_token, read, write, ActivityTask, TaskOutcome, TaskSlot};
use crate::choice;
use crate::dataflow::{
    effective_input, language_of, output_and_assign, Bindings, Fields, FlowError, VARS_KEY,
};
use crate::error::EngineError;
use crate::integrations::{self, ServiceIntegration};
use crate::log::{Ending, ExecutionLog};
use crate::Inner;

/// Largest state input or output Step Functions accepts (256 KiB).
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Longest Wait Step Functions accepts (one year).
const MAX_WAIT_SECONDS: i64 = 365 * 24 * 3600;

/// Why a state (and so the execution) failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::new("States.Runtime", e.to_string())
    }
}

/// How far a state had got when the engine last stopped, read back from its history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// Not entered yet: enter it.
    Fresh,
    /// Entered (its StateEntered event is written), nothing else recorded.
    Entered,
    /// Its activity task was scheduled but not answered: hand the task out again.
    Scheduled,
    /// The same, with when it was scheduled (its TimeoutSeconds runs from then).
    ScheduledAt(Option<DateTime<Utc>>),
    /// Its service integration accepted the work (this is the recorded answer of the submit
    /// call): wait for that work, do not submit it again.
    Submitted(Value),
    /// Its activity task was answered; the answer is recorded.
    Answered(TaskOutcome),
    /// It exited with this output; go on to its successor.
    Exited(Value),
}

/// Where a run starts: a new execution at StartAt, a recovered one where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resume {
    pub state: String,
    pub input: Value,
    pub progress: Progress,
    /// When the state was entered, if it was before a restart.
    pub entered: Option<DateTime<Utc>>,
    /// When its activity task was scheduled, if it was before a restart.
    pub scheduled: Option<DateTime<Utc>>,
    /// The variables assigned before it (top-level states only).
    pub vars: Map<String, Value>,
}

impl Resume {
    /// A new run of `machine`: StartAt with `input`.
    pub fn start(machine: &StateMachine, input: &Value) -> Resume {
        Resume {
            state: machine.start_at.clone(),
            input: input.clone(),
            progress: Progress::Fresh,
            entered: None,
            scheduled: None,
            vars: Map::new(),
        }
    }

    /// Reads from an execution's history where its run stopped; also returns the id of the
    /// StateEntered event of that state. Events inside a Parallel or Map are skipped: such a
    /// state is run again as a whole.
    pub fn from_history(
        events: &[HistoryEvent],
        machine: &StateMachine,
        input: &Value,
    ) -> (Resume, i64) {
        let mut resume = Resume::start(machine, input);
        let mut entered_id = 0;
        let mut depth = 0usize;
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null)
        };
        for e in events {
            match e.event_type.as_str() {
                "MapStateStarted" | "ParallelStateStarted" => {
                    depth += 1;
                    continue;
                }
                "MapStateSucceeded"
                | "MapStateFailed"
                | "MapStateAborted"
                | "ParallelStateSucceeded"
                | "ParallelStateFailed"
                | "ParallelStateAborted" => {
                    depth = depth.saturating_sub(1);
                    continue;
                }
                _ if depth > 0 => continue,
                _ => {}
            }
            if let Some(d) = &e.state_entered_event_details {
                let vars = std::mem::take(&mut resume.vars);
                resume = Resume {
                    state: d.name.clone(),
                    input: parse(&d.input),
                    progress: Progress::Entered,
                    entered: Some(e.timestamp),
                    scheduled: None,
                    vars,
                };
                entered_id = e.id;
            } else if let Some(d) = &e.state_exited_event_details {
                resume.progress = Progress::Exited(parse(&d.output));
                for (name, text) in d.assigned_variables.iter().flatten() {
                    resume.vars.insert(
                        name.clone(),
                        serde_json::from_str(text).unwrap_or(Value::Null),
                    );
                }
            } else if e.event_type == "ActivityScheduled" {
                resume.progress = Progress::Scheduled;
                resume.scheduled = Some(e.timestamp);
            } else if e.event_type == "ActivityStarted" {
                resume.progress = Progress::Scheduled;
            } else if e.event_type == "TaskScheduled" {
                resume.progress = Progress::Scheduled;
                resume.scheduled = Some(e.timestamp);
            } else if let Some(d) = &e.task_submitted_event_details {
                resume.progress = Progress::Submitted(parse(&d.output));
            } else if let Some(d) = &e.task_succeeded_event_details {
                resume.progress =
                    Progress::Answered(TaskOutcome::Success(d.output.clone().unwrap_or_default()));
            } else if let Some(d) = e
                .task_failed_event_details
                .as_ref()
                .or(e.task_submit_failed_event_details.as_ref())
                .or(e.task_timed_out_event_details.as_ref())
            {
                resume.progress = Progress::Answered(TaskOutcome::Failure {
                    error: d.error.clone(),
                    cause: d.cause.clone(),
                });
            } else if let Some(d) = &e.activity_succeeded_event_details {
                resume.progress =
                    Progress::Answered(TaskOutcome::Success(d.output.clone().unwrap_or_default()));
            } else if let Some(d) = e
                .activity_failed_event_details
                .as_ref()
                .or(e.activity_timed_out_event_details.as_ref())
            {
                resume.progress = Progress::Answered(TaskOutcome::Failure {
                    error: d.error.clone(),
                    cause: d.cause.clone(),
                });
            }
        }
        (resume, entered_id)
    }
}

/// The last event of one sequential branch of work (the whole execution, a Parallel branch,
/// a Map iteration): the next event of that branch links to it.
struct Chain(AtomicI64);

impl Chain {
    fn new(last: i64) -> Self {
        Chain(AtomicI64::new(last))
    }

    fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, id: i64) {
        self.0.store(id, Ordering::SeqCst);
    }
}

/// The clocks of an activity task: TimeoutSeconds, HeartbeatSeconds, and how much of the
/// time-out had passed before a restart.
struct TaskTimers {
    timeout: Option<u64>,
    heartbeat: Option<u64>,
    elapsed: Duration,
}

/// How an activity task ended.
struct Answer {
    outcome: Option<TaskOutcome>,
    /// The last event of the task so far (its answer, or ActivityStarted).
    last_event_id: Option<i64>,
    /// Whether the answer is already in the history (a worker's answer is).
    recorded: bool,
}

/// Where a state leads.
struct Step {
    output: Value,
    next: Option<String>,
}

/// What a state runs inside: the Map item it processes, if any.
#[derive(Clone, Copy)]
struct Scope<'a> {
    map_item: Option<&'a Value>,
    /// Whether this is the execution's own machine (not a Parallel branch or Map iteration):
    /// only there can a run park while its task is out.
    top_level: bool,
}

/// The state being run, for error messages and the context object.
struct StateRun<'a> {
    name: &'a str,
    /// When the state was entered (recorded time, also after a restart).
    entered: DateTime<Utc>,
    entered_at: String,
    entered_id: i64,
    scope: Scope<'a>,
    /// The variables in scope.
    vars: &'a Map<String, Value>,
    /// Whether the state uses JSONata (else JSONPath).
    jsonata: bool,
    /// Variables the state assigns, visible to the states after it.
    assigned: std::sync::Mutex<Map<String, Value>>,
}

impl StateRun<'_> {
    /// A data-flow failure, with Step Functions' wording.
    fn flow(&self, e: FlowError) -> Failure {
        Failure::new(e.error, self.message(e.message))
    }

    /// Records the variables the state assigns.
    fn assign(&self, values: Map<String, Value>) {
        self.assigned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(values);
    }

    /// `States.Runtime` with Step Functions' wording.
    fn runtime(&self, err: impl std::fmt::Display) -> Failure {
        Failure::new("States.Runtime", self.message(err))
    }

    fn message(&self, err: impl std::fmt::Display) -> String {
        format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {err}",
            self.name, self.entered_id
        )
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One execution being run.
pub(crate) struct Run {
    pub inner: Arc<Inner>,
    pub log: Arc<ExecutionLog>,
    pub machine: Arc<StateMachine>,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    /// An EXPRESS state machine's execution.
    pub express: bool,
    pub input: Value,
    pub start_date: DateTime<Utc>,
    pub resume: Resume,
    /// Id of the StateEntered event of the resumed state (for error messages).
    pub resume_entered_id: i64,
    /// Id of the last event written before this run started.
    pub last_event_id: i64,
}

fn payload() -> Option<PayloadDetails> {
    Some(PayloadDetails { truncated: false })
}

/// The "error" a run ends with when it parks: its task is out, and the answer will resume the
/// execution from its history. Never an execution's error; no retrier or catcher matches it.
const PARKED: &str = "wfm.Parked";

/// Whether a retrier's or catcher's `ErrorEquals` matches an error.
fn matches_error(error_equals: &[String], error: &str) -> bool {
    if error == PARKED {
        return false;
    }
    let terminal = matches!(error, "States.Runtime" | "States.DataLimitExceeded");
    error_equals.iter().any(|e| {
        e == error
            || (e == "States.ALL" && !terminal)
            || (e == "States.TaskFailed" && !terminal && error != "States.Timeout")
    })
}

/// The wait before retry number `attempt` (0-based) of a retrier.
fn retry_delay(r: &Retrier, attempt: u32) -> Duration {
    let interval = r.interval_seconds.unwrap_or(1) as f64;
    let rate = r.backoff_rate.unwrap_or(2.0);
    let mut seconds = interval * rate.powi(attempt as i32);
    if let Some(max) = r.max_delay_seconds {
        seconds = seconds.min(max as f64);
    }
    if r.jitter_strategy.as_deref() == Some("FULL") {
        seconds = seconds.max(0.0) * wfm_asl::entropy::unit();
    }
    Duration::from_secs_f64(seconds.clamp(0.0, 1e9))
}

impl Run {
    /// Runs the execution to its end and records how it ended.
    pub async fn run(self) {
        let chain = Chain::new(self.last_event_id);
        let resume = self.resume.clone();
        let vars = self.resume.vars.clone();
        let work = self.run_states(
            &self.machine,
            resume,
            self.resume_entered_id,
            &chain,
            Scope {
                map_item: None,
                top_level: true,
            },
            QueryLanguage::JsonPath,
            vars,
        );
        let result = match self.machine.timeout_seconds {
            Some(t) => {
                let elapsed = self
                    .inner
                    .clock
                    .now()
                    .signed_duration_since(self.start_date)
                    .to_std()
                    .unwrap_or_default();
                let left = Duration::from_secs(t).saturating_sub(elapsed);
                tokio::time::timeout(left, work).await.map_err(|_| ())
            }
            None => Ok(work.await),
        };
        if matches!(&result, Ok(Err(f)) if f.error == PARKED) {
            // Parked: the task's answer resumes the execution; nothing ends here, and nothing
            // of the run stays in memory but the outstanding task and the execution's log
            // (kept in the live table, so that a stop appends to the same history). Its abort
            // handle goes: it would keep this finished task's memory alive.
            self.inner.drop_abort_handle(&self.log.arn);
            return;
        }
        // The run is forgotten (and StartSyncExecution woken) once its end is committed, so
        // whoever hears of the end reads it from the database.
        let forget = || -> crate::db::AfterCommit {
            let (inner, arn) = (self.inner.clone(), self.log.arn.clone());
            Box::new(move || inner.forget_live(&arn))
        };
        let outcome = match &result {
            Ok(Ok(output)) => {
                let text = output.to_string();
                self.log.finish_queued(
                    "ExecutionSucceeded",
                    |e| {
                        e.execution_succeeded_event_details = Some(OutputDetails {
                            output: Some(text.clone()),
                            output_details: payload(),
                        })
                    },
                    Ending {
                        status: "SUCCEEDED",
                        output: Some(&text),
                        error: None,
                        cause: None,
                    },
                    forget(),
                )
            }
            Ok(Err(f)) => self.log.finish_queued(
                "ExecutionFailed",
                |e| {
                    e.execution_failed_event_details = Some(ErrorDetails {
                        error: Some(f.error.clone()),
                        cause: Some(f.cause.clone()),
                    })
                },
                Ending {
                    status: "FAILED",
                    output: None,
                    error: Some(&f.error),
                    cause: Some(&f.cause),
                },
                forget(),
            ),
            Err(()) => {
                self.inner.board.remove_execution(&self.log.arn);
                self.log.finish_queued(
                    "ExecutionTimedOut",
                    |e| {
                        e.execution_timed_out_event_details = Some(ErrorDetails {
                            error: Some("States.Timeout".into()),
                            cause: None,
                        })
                    },
                    // DescribeExecution shows no error for a timed-out execution; the
                    // ExecutionTimedOut event carries States.Timeout.
                    Ending {
                        status: "TIMED_OUT",
                        output: None,
                        error: None,
                        cause: None,
                    },
                    forget(),
                )
            }
        };
        match outcome {
            // Ended here: forgotten once committed.
            Ok(true) => return,
            // Ended already (a stop came first).
            Ok(false) => {}
            Err(e) => {
                tracing::error!(execution = %self.log.arn, error = %e, "cannot record the end of an execution")
            }
        }
        self.inner.forget_live(&self.log.arn);
    }

    fn emit(
        &self,
        chain: &Chain,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
    ) -> Result<i64, Failure> {
        match self.log.emit_after(Some(chain.get()), event_type, fill)? {
            Some(id) => {
                chain.set(id);
                Ok(id)
            }
            // The execution ended meanwhile (stopped): nothing more may happen.
            None => Err(Failure::new("States.Runtime", "the execution has ended")),
        }
    }

    fn context(&self, st: &StateRun<'_>, token: Option<&str>, retry_count: u32) -> Value {
        let mut ctx = json!({
            "Execution": {
                "Id": self.log.arn,
                "Input": self.input,
                "Name": self.log.name,
                "RoleArn": self.role_arn,
                "StartTime": self.start_date.to_rfc3339_opts(SecondsFormat::Millis, true),
            },
            "StateMachine": {"Id": self.state_machine_arn, "Name": self.state_machine_name},
            "State": {"EnteredTime": st.entered_at, "Name": st.name},
        });
        if !self.express {
            // Standard executions can be redriven; express ones cannot and have no count.
            ctx["Execution"]["RedriveCount"] = json!(0);
        }
        if let Some(t) = token {
            // Task states also know their token and how often they were retried.
            ctx["Task"] = json!({"Token": t});
            ctx["State"]["RetryCount"] = json!(retry_count);
        }
        if let Some(item) = st.scope.map_item {
            ctx["Map"] = json!({"Item": item});
        }
        if !st.vars.is_empty() {
            ctx[VARS_KEY] = Value::Object(st.vars.clone());
        }
        ctx
    }

    /// Runs `machine` (the execution's, or a branch or processor) from `resume` to its end,
    /// with `vars` in scope and `language` as the default query language.
    #[allow(clippy::too_many_arguments)]
    fn run_states<'a>(
        &'a self,
        machine: &'a StateMachine,
        resume: Resume,
        resume_entered_id: i64,
        chain: &'a Chain,
        scope: Scope<'a>,
        language: QueryLanguage,
        vars: Map<String, Value>,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let Resume {
                state: mut name,
                mut input,
                mut progress,
                mut entered,
                mut scheduled,
                ..
            } = resume;
            let mut vars = vars;
            let language = machine.query_language.unwrap_or(language);
            loop {
                let state = machine.states.get(&name).ok_or_else(|| {
                    Failure::new("States.Runtime", format!("State '{name}' does not exist"))
                })?;
                let jsonata = language_of(state, language) == QueryLanguage::Jsonata;
                // A state resumed after a restart keeps the times recorded before it.
                let entered_time = entered.take().unwrap_or_else(|| self.inner.clock.now());
                let scheduled_time = scheduled.take();
                let entered_at = entered_time.to_rfc3339_opts(SecondsFormat::Millis, true);
                if let Progress::Exited(output) = progress {
                    // The state finished before the engine stopped: only its successor is left.
                    let next = match state {
                        State::Choice(c) => {
                            let st = StateRun {
                                name: &name,
                                entered: entered_time,
                                entered_at,
                                entered_id: resume_entered_id,
                                scope,
                                vars: &vars,
                                jsonata,
                                assigned: Default::default(),
                            };
                            self.choice(c, &st, &input)?.next
                        }
                        other => other.next().map(str::to_string),
                    };
                    match next {
                        Some(n) => {
                            name = n;
                            input = output;
                            progress = Progress::Fresh;
                            continue;
                        }
                        None => return Ok(output),
                    }
                }
                let entered_id = if progress == Progress::Fresh {
                    self.emit(chain, &format!("{}StateEntered", state.type_name()), |e| {
                        e.state_entered_event_details = Some(StateEnteredDetails {
                            name: name.clone(),
                            input: Some(input.to_string()),
                            input_details: payload(),
                        })
                    })?
                } else {
                    resume_entered_id
                };
                let st = StateRun {
                    name: &name,
                    entered: entered_time,
                    entered_at,
                    entered_id,
                    scope,
                    vars: &vars,
                    jsonata,
                    assigned: Default::default(),
                };
                let progress_now = match std::mem::replace(&mut progress, Progress::Fresh) {
                    Progress::Scheduled => Progress::ScheduledAt(scheduled_time),
                    other => other,
                };
                let step = match state {
                    State::Fail(s) => return Err(self.fail(s, &st, &input)?),
                    _ => {
                        self.execute_with_retries(state, &st, &input, progress_now, chain)
                            .await?
                    }
                };
                let assigned = st.assigned.into_inner().unwrap_or_else(|p| p.into_inner());
                let output_text = step.output.to_string();
                if output_text.len() > MAX_PAYLOAD_BYTES {
                    return Err(Failure::new(
                        "States.DataLimitExceeded",
                        format!(
                            "The state/task '{name}' returned a result with a size exceeding the \
                             maximum number of bytes service limit."
                        ),
                    ));
                }
                let assigned_text: Option<std::collections::BTreeMap<String, String>> =
                    (!assigned.is_empty()).then(|| {
                        assigned
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string()))
                            .collect()
                    });
                self.emit(chain, &format!("{}StateExited", state.type_name()), |e| {
                    e.state_exited_event_details = Some(StateExitedDetails {
                        name: name.clone(),
                        output: Some(output_text.clone()),
                        output_details: payload(),
                        assigned_variables: assigned_text.clone(),
                    })
                })?;
                vars.extend(assigned);
                match step.next {
                    Some(next) => {
                        name = next;
                        input = step.output;
                    }
                    None => return Ok(step.output),
                }
            }
        })
    }

    /// Runs a state, applying its retriers and catchers (Task, Parallel, Map).
    async fn execute_with_retries(
        &self,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
        progress: Progress,
        chain: &Chain,
    ) -> Result<Step, Failure> {
        let (retriers, catchers): (&[Retrier], &[Catcher]) = match state {
            State::Task(s) => (
                s.retry.as_deref().unwrap_or(&[]),
                s.catch.as_deref().unwrap_or(&[]),
            ),
            State::Parallel(s) => (
                s.retry.as_deref().unwrap_or(&[]),
                s.catch.as_deref().unwrap_or(&[]),
            ),
            State::Map(s) => (
                s.retry.as_deref().unwrap_or(&[]),
                s.catch.as_deref().unwrap_or(&[]),
            ),
            _ => (&[], &[]),
        };
        let mut attempts = vec![0u32; retriers.len()];
        let mut progress = progress;
        let mut retry_count = 0u32;
        loop {
            let result = match state {
                State::Pass(s) => self.pass(s, st, raw),
                State::Choice(s) => self.choice(s, st, raw),
                State::Succeed(_) => self.plain(state, st, raw, None),
                State::Wait(s) => self.wait(s, state, st, raw).await,
                State::Task(s) => {
                    let p = std::mem::replace(&mut progress, Progress::Entered);
                    self.task(s, state, st, raw, p, chain, retry_count).await
                }
                State::Parallel(s) => self.parallel(s, state, st, raw, chain).await,
                State::Map(s) => self.map(s, state, st, raw, chain).await,
                State::Fail(_) => Err(Failure::new("States.Runtime", "unreachable")),
            };
            let failure = match result {
                Ok(step) => return Ok(step),
                Err(f) => f,
            };
            if let Some(i) = retriers
                .iter()
                .position(|r| matches_error(&r.error_equals, &failure.error))
            {
                let r = &retriers[i];
                if u64::from(attempts[i]) < r.max_attempts.unwrap_or(3) {
                    tokio::time::sleep(retry_delay(r, attempts[i])).await;
                    attempts[i] += 1;
                    retry_count += 1;
                    continue;
                }
            }
            if let Some(c) = catchers
                .iter()
                .find(|c| matches_error(&c.error_equals, &failure.error))
            {
                let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                let output = if st.jsonata {
                    let ctx = self.context(st, None, 0);
                    let bindings =
                        Bindings::new(raw, &ctx, st.vars).with("errorOutput", &error_output);
                    if let Some(a) = &c.assign {
                        if let Value::Object(o) =
                            bindings.eval(a, "Assign").map_err(|e| st.flow(e))?
                        {
                            st.assign(o);
                        }
                    }
                    match &c.output {
                        Some(t) => bindings.eval(t, "Output").map_err(|e| st.flow(e))?,
                        None => error_output,
                    }
                } else {
                    if let Some(a) = &c.assign {
                        let ctx = self.context(st, None, 0);
                        if let Value::Object(o) =
                            expand_template(a, &error_output, &ctx).map_err(|e| st.runtime(e))?
                        {
                            st.assign(o);
                        }
                    }
                    apply_result_path(c.result_path.as_ref(), raw, error_output)
                        .map_err(|e| st.runtime(e))?
                };
                return Ok(Step {
                    output,
                    next: Some(c.next.clone()),
                });
            }
            return Err(failure);
        }
    }

    /// Ends a state: its output and assignments from `result` (or from its effective input when
    /// `None`), shaped by its data flow, and where it leads.
    #[allow(clippy::too_many_arguments)]
    fn finish_step(
        &self,
        f: &Fields<'_>,
        st: &StateRun<'_>,
        raw: &Value,
        effective: &Value,
        result: Option<Value>,
        ctx: &Value,
        next: Option<String>,
    ) -> Result<Step, Failure> {
        let (output, assign) =
            output_and_assign(f, st.jsonata, raw, effective, result, ctx, st.vars)
                .map_err(|e| st.flow(e))?;
        st.assign(assign);
        Ok(Step { output, next })
    }

    /// A state whose output is its (effective) input or `result`, shaped by its data flow.
    fn plain(
        &self,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
        next: Option<String>,
    ) -> Result<Step, Failure> {
        let ctx = self.context(st, None, 0);
        let f = Fields::of(state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        self.finish_step(&f, st, raw, &effective, None, &ctx, next)
    }

    fn pass(&self, s: &PassState, st: &StateRun<'_>, raw: &Value) -> Result<Step, Failure> {
        let ctx = self.context(st, None, 0);
        let state = State::Pass(s.clone());
        let f = Fields::of(&state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        let result = if st.jsonata {
            None
        } else {
            Some(s.result.clone().unwrap_or_else(|| effective.clone()))
        };
        self.finish_step(&f, st, raw, &effective, result, &ctx, s.next.clone())
    }

    fn choice(&self, s: &ChoiceState, st: &StateRun<'_>, raw: &Value) -> Result<Step, Failure> {
        let ctx = self.context(st, None, 0);
        let state = State::Choice(s.clone());
        let f = Fields::of(&state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        let mut chosen = None;
        for rule in s.choices.as_deref().unwrap_or(&[]) {
            let matched = if st.jsonata {
                let condition = rule
                    .condition
                    .as_ref()
                    .ok_or_else(|| st.runtime("a JSONata choice rule needs a Condition"))?;
                match Bindings::new(raw, &ctx, st.vars)
                    .eval(condition, "Condition")
                    .map_err(|e| st.flow(e))?
                {
                    Value::Bool(b) => b,
                    other => {
                        return Err(Failure::new(
                            "States.QueryEvaluationError",
                            st.message(format!(
                                "The Condition field must evaluate to a boolean, but was: {other}"
                            )),
                        ))
                    }
                }
            } else {
                choice::evaluate(rule, &effective, &ctx).map_err(|e| st.runtime(e))?
            };
            if matched {
                chosen = Some(rule);
                break;
            }
        }
        let next = match chosen {
            Some(rule) => rule.next.clone(),
            None => s.default.clone(),
        };
        let next = next.ok_or_else(|| {
            Failure::new(
                "States.NoChoiceMatched",
                format!(
                    "No Matches! (no choice rule of state '{}' matched and it has no Default)",
                    st.name
                ),
            )
        })?;
        // A matched rule's own Assign and Output take the place of the state's.
        let rule_fields;
        let f = match chosen.filter(|r| r.assign.is_some() || r.output.is_some()) {
            Some(rule) => {
                rule_fields = Fields {
                    input_path: f.input_path,
                    output_path: f.output_path,
                    output: rule.output.as_ref().or(f.output),
                    assign: rule.assign.as_ref().or(f.assign),
                    ..Fields::default()
                };
                &rule_fields
            }
            None => &f,
        };
        self.finish_step(f, st, raw, &effective, None, &ctx, Some(next))
    }

    fn fail(&self, s: &FailState, st: &StateRun<'_>, raw: &Value) -> Result<Failure, Failure> {
        let ctx = self.context(st, None, 0);
        let text = |v: Value| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        };
        if st.jsonata {
            let bindings = Bindings::new(raw, &ctx, st.vars);
            let eval = |v: &Option<String>, field: &str| -> Result<Option<String>, Failure> {
                match v {
                    Some(t) => Ok(Some(text(
                        bindings
                            .eval(&Value::String(t.clone()), field)
                            .map_err(|e| st.flow(e))?,
                    ))),
                    None => Ok(None),
                }
            };
            return Ok(Failure {
                error: eval(&s.error, "Error")?.unwrap_or_default(),
                cause: eval(&s.cause, "Cause")?.unwrap_or_default(),
            });
        }
        let from_path = |p: &Option<String>, field: &str| -> Result<Option<String>, Failure> {
            match p {
                Some(p) => {
                    let v = evaluate_expression(p, raw, &ctx).map_err(|e| match e {
                        PathError::NoResults { path } => st.runtime(PathError::FieldNotFound {
                            path,
                            field: field.to_string(),
                            input: raw.to_string(),
                        }),
                        other => st.runtime(other),
                    })?;
                    Ok(Some(text(v)))
                }
                None => Ok(None),
            }
        };
        let error = match &s.error {
            Some(e) => Some(e.clone()),
            None => from_path(&s.error_path, "ErrorPath")?,
        };
        let cause = match &s.cause {
            Some(c) => Some(c.clone()),
            None => from_path(&s.cause_path, "CausePath")?,
        };
        Ok(Failure {
            error: error.unwrap_or_default(),
            cause: cause.unwrap_or_default(),
        })
    }

    async fn wait(
        &self,
        s: &WaitState,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
    ) -> Result<Step, Failure> {
        let ctx = self.context(st, None, 0);
        let f = Fields::of(state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        // ISO-8601 extended format with the `T` separator (RFC 3339 would also allow a space).
        let parse_timestamp = |text: &str| {
            (text.as_bytes().get(10) == Some(&b'T'))
                .then(|| DateTime::parse_from_rfc3339(text).ok())
                .flatten()
                .map(|t| t.with_timezone(&Utc))
        };
        let jsonata_value = |v: &Value, field: &str| -> Result<Value, Failure> {
            Bindings::new(raw, &ctx, st.vars)
                .eval(v, field)
                .map_err(|e| st.flow(e))
        };
        let until: DateTime<Utc> = if let Some(v) = &s.seconds {
            let v = if st.jsonata {
                jsonata_value(v, "Seconds")?
            } else {
                v.clone()
            };
            let secs = v.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
                Failure::new(
                    "States.QueryEvaluationError",
                    st.message(format!(
                        "The Seconds field must be a non-negative integer, but was: {v}"
                    )),
                )
            })?;
            st.entered + chrono::Duration::seconds(secs)
        } else if let Some(p) = &s.seconds_path {
            let v = select(p, &effective, &ctx).map_err(|_| {
                st.runtime(format!(
                    "The SecondsPath parameter does not reference an input value: {p}"
                ))
            })?;
            let secs = v.as_i64().ok_or_else(|| {
                st.runtime(format!(
                    "The SecondsPath parameter cannot be parsed as a long value: {p} == {v}"
                ))
            })?;
            if secs < 0 {
                return Err(st.runtime(format!(
                    "The SecondsPath parameter references a negative value: {p} == {v}"
                )));
            }
            st.entered + chrono::Duration::seconds(secs)
        } else if let Some(t) = &s.timestamp {
            let text = if st.jsonata {
                let v = jsonata_value(&Value::String(t.clone()), "Timestamp")?;
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            } else {
                t.clone()
            };
            parse_timestamp(&text).ok_or_else(|| {
                let error = if st.jsonata { "States.QueryEvaluationError" } else { "States.Runtime" };
                Failure::new(
                    error,
                    st.message(format!(
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                    )),
                )
            })?
        } else if let Some(p) = &s.timestamp_path {
            let v = select(p, &effective, &ctx).map_err(|_| {
                st.runtime(format!(
                    "The TimestampPath parameter does not reference an input value: {p}"
                ))
            })?;
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            parse_timestamp(&text).ok_or_else(|| {
                st.runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {text}"
                ))
            })?
        } else {
            return Err(
                st.runtime("a Wait state needs Seconds, SecondsPath, Timestamp or TimestampPath")
            );
        };
        let delay = until.signed_duration_since(self.inner.clock.now());
        if delay.num_seconds() > MAX_WAIT_SECONDS {
            return Err(st.runtime("Wait state delay is too long."));
        }
        if let Ok(d) = delay.to_std() {
            tokio::time::sleep(d).await;
        }
        self.finish_step(&f, st, raw, &effective, None, &ctx, s.next.clone())
    }

    /// A non-negative integer from a literal or a path, named for error messages.
    fn integer_field(
        &self,
        st: &StateRun<'_>,
        literal: Option<&Value>,
        path: Option<&String>,
        field: &str,
        input: &Value,
        ctx: &Value,
    ) -> Result<Option<i64>, Failure> {
        if let Some(v) = literal {
            return v
                .as_i64()
                .map(Some)
                .ok_or_else(|| st.runtime(format!("{field} must be an integer")));
        }
        let Some(p) = path else { return Ok(None) };
        let v = select(p, input, ctx).map_err(|e| st.runtime(e))?;
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let shown = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        n.map(Some).ok_or_else(|| {
            st.runtime(format!("The {field}Path field refers to value \"{shown}\" which is not a valid integer: {p}"))
        })
    }

    async fn parallel(
        &self,
        s: &ParallelState,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
        chain: &Chain,
    ) -> Result<Step, Failure> {
        let ctx = self.context(st, None, 0);
        let f = Fields::of(state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        let language = if st.jsonata {
            QueryLanguage::Jsonata
        } else {
            QueryLanguage::JsonPath
        };
        let started = self.emit(chain, "ParallelStateStarted", |_| {})?;
        let branches = s.branches.as_deref().unwrap_or(&[]);
        let mut running: FuturesUnordered<_> = branches
            .iter()
            .enumerate()
            .map(|(i, branch)| {
                let input = effective.clone();
                let vars = st.vars.clone();
                async move {
                    let branch_chain = Chain::new(started);
                    let r = self
                        .run_states(
                            branch,
                            Resume::start(branch, &input),
                            0,
                            &branch_chain,
                            Scope {
                                top_level: false,
                                ..st.scope
                            },
                            language,
                            vars,
                        )
                        .await;
                    (i, r)
                }
            })
            .collect();
        let mut results = vec![Value::Null; branches.len()];
        while let Some((i, r)) = running.next().await {
            match r {
                Ok(v) => results[i] = v,
                Err(f) => {
                    drop(running);
                    self.emit(chain, "ParallelStateFailed", |_| {})?;
                    return Err(f);
                }
            }
        }
        self.emit(chain, "ParallelStateSucceeded", |_| {})?;
        self.finish_step(
            &f,
            st,
            raw,
            &effective,
            Some(Value::Array(results)),
            &ctx,
            s.next.clone(),
        )
    }

    /// A Map field that is a number, or (JSONata) an expression giving one.
    fn map_number(
        &self,
        st: &StateRun<'_>,
        v: Option<&Value>,
        field: &str,
        raw: &Value,
        ctx: &Value,
    ) -> Result<Option<Value>, Failure> {
        match v {
            Some(Value::String(t)) if st.jsonata => Ok(Some(
                Bindings::new(raw, ctx, st.vars)
                    .eval(&Value::String(t.clone()), field)
                    .map_err(|e| st.flow(e))?,
            )),
            other => Ok(other.cloned()),
        }
    }

    async fn map(
        &self,
        s: &MapState,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
        chain: &Chain,
    ) -> Result<Step, Failure> {
        if s.item_reader.is_some() {
            return Err(st.runtime("distributed Map states with an ItemReader are not supported by the embedded engine yet"));
        }
        let ctx = self.context(st, None, 0);
        let f = Fields::of(state);
        let effective =
            effective_input(&f, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        let items_value = if st.jsonata {
            match &s.items {
                Some(t) => {
                    let v = Bindings::new(raw, &ctx, st.vars)
                        .eval(t, "Items")
                        .map_err(|e| st.flow(e))?;
                    if !v.is_array() {
                        let expr = t
                            .as_str()
                            .and_then(wfm_asl::jsonata::expression)
                            .unwrap_or("");
                        return Err(Failure::new(
                            "States.QueryEvaluationError",
                            st.message(format!(
                                "The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {v}",
                                wfm_asl::intrinsics::type_name(&v)
                            )),
                        ));
                    }
                    v
                }
                None => effective.clone(),
            }
        } else {
            match &s.items_path {
                Some(p) => select(p, &effective, &ctx).map_err(|e| st.runtime(e))?,
                None => effective.clone(),
            }
        };
        let Value::Array(items) = items_value else {
            let error = if st.jsonata {
                "States.QueryEvaluationError"
            } else {
                "States.Runtime"
            };
            return Err(Failure::new(
                error,
                st.message(format!(
                    "Map state input must be an array but was: {items_value}"
                )),
            ));
        };
        let max_concurrency_value =
            self.map_number(st, s.max_concurrency.as_ref(), "MaxConcurrency", raw, &ctx)?;
        let max_concurrency = self.integer_field(
            st,
            max_concurrency_value.as_ref(),
            s.max_concurrency_path.as_ref(),
            "MaxConcurrency",
            &effective,
            &ctx,
        )?;
        let tolerated_count_value = self.map_number(
            st,
            s.tolerated_failure_count.as_ref(),
            "ToleratedFailureCount",
            raw,
            &ctx,
        )?;
        let tolerated_count = self.integer_field(
            st,
            tolerated_count_value.as_ref(),
            s.tolerated_failure_count_path.as_ref(),
            "ToleratedFailureCount",
            &effective,
            &ctx,
        )?;
        if tolerated_count.is_some_and(|c| c < 0) {
            return Err(st.runtime("ToleratedFailureCount cannot be negative."));
        }
        let tolerated_percentage_value = self.map_number(
            st,
            s.tolerated_failure_percentage.as_ref(),
            "ToleratedFailurePercentage",
            raw,
            &ctx,
        )?;
        let tolerated_percentage = match (
            &tolerated_percentage_value,
            &s.tolerated_failure_percentage_path,
        ) {
            (Some(v), _) => v.as_f64(),
            (None, Some(p)) => {
                let v = select(p, &effective, &ctx).map_err(|e| st.runtime(e))?;
                let shown = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                // A number, or a string holding one.
                let number = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()));
                Some(number.ok_or_else(|| {
                    st.runtime(format!(
                        "The ToleratedFailurePercentagePath field refers to value \"{shown}\" which is not a valid float: {p}"
                    ))
                })?)
            }
            (None, None) => None,
        };
        if tolerated_percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
            return Err(st.runtime("ToleratedFailurePercentage must be between 0 and 100."));
        }
        let processor = s
            .processor()
            .ok_or_else(|| st.runtime("a Map state needs an ItemProcessor"))?;
        let language = if st.jsonata {
            QueryLanguage::Jsonata
        } else {
            QueryLanguage::JsonPath
        };
        let started = self.emit(chain, "MapStateStarted", |e| {
            e.map_state_started_event_details = Some(MapStateStartedDetails {
                length: items.len(),
            })
        })?;
        let limit = match max_concurrency {
            Some(n) if n > 0 => n as usize,
            _ => items.len().max(1),
        };
        let permits = Semaphore::new(limit);
        let template = s.item_selector.as_ref().or(s.parameters.as_ref());
        let name = st.name.to_string();
        let mut running: FuturesUnordered<_> = items
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let item = json!({"Index": index, "Value": value});
                let permits = &permits;
                let effective = &effective;
                let name = name.clone();
                let vars = st.vars.clone();
                async move {
                    let _permit = permits.acquire().await;
                    let iteration_chain = Chain::new(started);
                    let item_st = StateRun {
                        name: st.name,
                        entered: st.entered,
                        entered_at: st.entered_at.clone(),
                        entered_id: st.entered_id,
                        scope: Scope {
                            map_item: Some(&item),
                            top_level: false,
                        },
                        vars: st.vars,
                        jsonata: st.jsonata,
                        assigned: Default::default(),
                    };
                    let item_ctx = self.context(&item_st, None, 0);
                    let input = match template {
                        Some(t) if st.jsonata => {
                            match Bindings::new(raw, &item_ctx, st.vars).eval(t, "ItemSelector") {
                                Ok(v) => v,
                                Err(e) => return (index, Err(st.flow(e))),
                            }
                        }
                        Some(t) => match expand_template(t, effective, &item_ctx) {
                            Ok(v) => v,
                            Err(e) => return (index, Err(st.runtime(e))),
                        },
                        None => value.clone(),
                    };
                    let details = MapIterationDetails {
                        name: name.clone(),
                        index,
                    };
                    if let Err(f) = self.emit(&iteration_chain, "MapIterationStarted", |e| {
                        e.map_iteration_started_event_details = Some(details.clone())
                    }) {
                        return (index, Err(f));
                    }
                    let r = self
                        .run_states(
                            processor,
                            Resume::start(processor, &input),
                            0,
                            &iteration_chain,
                            Scope {
                                map_item: None,
                                top_level: false,
                            },
                            language,
                            vars,
                        )
                        .await;
                    let kind = if r.is_ok() {
                        "MapIterationSucceeded"
                    } else {
                        "MapIterationFailed"
                    };
                    let emitted = self.emit(&iteration_chain, kind, |e| {
                        if r.is_ok() {
                            e.map_iteration_succeeded_event_details = Some(details.clone());
                        } else {
                            e.map_iteration_failed_event_details = Some(details.clone());
                        }
                    });
                    match emitted {
                        Ok(_) => (index, r),
                        Err(f) => (index, Err(f)),
                    }
                }
            })
            .collect();
        let total = items.len();
        let tolerated = |failed: usize| -> bool {
            let by_count = tolerated_count.is_some_and(|c| failed as i64 <= c);
            let by_pct = tolerated_percentage
                .is_some_and(|p| total > 0 && (failed as f64) * 100.0 / (total as f64) <= p);
            by_count || by_pct
        };
        let mut results = vec![Value::Null; total];
        let mut failed = 0usize;
        while let Some((i, r)) = running.next().await {
            match r {
                Ok(v) => results[i] = v,
                Err(f) => {
                    failed += 1;
                    if !tolerated(failed) {
                        drop(running);
                        self.emit(chain, "MapStateFailed", |_| {})?;
                        if tolerated_count.is_some() || tolerated_percentage.is_some() {
                            return Err(Failure::new(
                                "States.ExceedToleratedFailureThreshold",
                                "The specified tolerated failure threshold was exceeded",
                            ));
                        }
                        return Err(f);
                    }
                    results[i] = json!({"Error": f.error, "Cause": f.cause});
                }
            }
        }
        self.emit(chain, "MapStateSucceeded", |_| {})?;
        self.finish_step(
            &f,
            st,
            raw,
            &effective,
            Some(Value::Array(results)),
            &ctx,
            s.next.clone(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn task(
        &self,
        s: &TaskState,
        state: &State,
        st: &StateRun<'_>,
        raw: &Value,
        progress: Progress,
        chain: &Chain,
        retry_count: u32,
    ) -> Result<Step, Failure> {
        let resource = s.resource.clone().unwrap_or_default();
        let token = new_task_token();
        let ctx = self.context(st, Some(&token), retry_count);
        let fields = Fields::of(state);
        let effective =
            effective_input(&fields, st.jsonata, raw, &ctx, st.vars).map_err(|e| st.flow(e))?;
        if let Progress::Answered(outcome) = progress {
            // Recovered: the worker's answer was recorded before the engine stopped.
            return self.task_outcome(&fields, s, st, raw, &effective, &ctx, Some(outcome), None);
        }
        let seconds = |v: &Option<Value>, p: &Option<String>| -> Result<Option<u64>, Failure> {
            if let Some(v) = v {
                if st.jsonata {
                    let v = Bindings::new(raw, &ctx, st.vars)
                        .eval(v, "TimeoutSeconds")
                        .map_err(|e| st.flow(e))?;
                    return Ok(v.as_u64());
                }
                return Ok(v.as_u64());
            }
            if let Some(p) = p {
                let v = select(p, raw, &ctx).map_err(|e| st.runtime(e))?;
                return v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| st.runtime(format!("{p} must select a non-negative integer")));
            }
            Ok(None)
        };
        let timeout = seconds(&s.timeout_seconds, &s.timeout_seconds_path)?;
        let heartbeat = seconds(&s.heartbeat_seconds, &s.heartbeat_seconds_path)?;

        if !is_activity_arn(&resource) {
            if let Some(integration) = self.inner.integrations.for_resource(&resource) {
                return self
                    .integration_task(
                        integration,
                        &resource,
                        TaskRun {
                            fields: &fields,
                            s,
                            st,
                            raw,
                            effective: &effective,
                            ctx: &ctx,
                        },
                        progress,
                        chain,
                        timeout,
                    )
                    .await;
            }
            return Err(st.runtime(format!(
                "The resource '{resource}' is not supported by the embedded engine: only activity ARNs and the registered service integrations are"
            )));
        }
        let input_text = effective.to_string();
        let scheduled_before = match progress {
            Progress::Scheduled => Some(None),
            Progress::ScheduledAt(at) => Some(at),
            _ => None,
        };
        if scheduled_before.is_none() {
            if !self.inner.db.activity_exists(&resource)? {
                let failure = st.runtime(format!("The activity {resource} does not exist."));
                self.emit(chain, "ActivityScheduleFailed", |e| {
                    e.activity_schedule_failed_event_details = Some(ErrorDetails {
                        error: Some(failure.error.clone()),
                        cause: Some(failure.cause.clone()),
                    })
                })?;
                return Err(failure);
            }
            self.emit(chain, "ActivityScheduled", |e| {
                e.activity_scheduled_event_details = Some(ActivityScheduledDetails {
                    resource: resource.clone(),
                    input: Some(input_text.clone()),
                    input_details: payload(),
                    timeout_in_seconds: timeout,
                    heartbeat_in_seconds: heartbeat,
                })
            })?;
        }
        // A task without timers, in the execution's own machine and not retried, parks the
        // run: instead of a run waiting (kilobytes per execution), only the outstanding task
        // stays in memory, and its answer resumes the execution from its history.
        let parkable = st.scope.top_level
            && timeout.is_none()
            && heartbeat.is_none()
            && s.retry.as_ref().is_none_or(|r| r.is_empty())
            && self.machine.timeout_seconds.is_none();
        if parkable {
            let slot = Arc::new(TaskSlot::new(
                self.log.clone(),
                &resource,
                chain.get(),
                None,
            ));
            self.inner.board.schedule(
                &resource,
                ActivityTask {
                    task_token: token,
                    input: input_text,
                },
                slot,
            );
            return Err(Failure::new(PARKED, ""));
        }
        // A recovered task (scheduled before the engine stopped) is handed out again with a
        // new token: the old one died with the process that issued it.
        // Its TimeoutSeconds keeps running from when it was first scheduled.
        let elapsed = scheduled_before
            .flatten()
            .and_then(|at| {
                self.inner
                    .clock
                    .now()
                    .signed_duration_since(at)
                    .to_std()
                    .ok()
            })
            .unwrap_or_default();
        let answer = self
            .wait_for_worker(
                &resource,
                token,
                input_text,
                TaskTimers {
                    timeout,
                    heartbeat,
                    elapsed,
                },
                chain,
            )
            .await;
        if let Some(id) = answer.last_event_id {
            chain.set(id);
        }
        // A worker's answer is already in the history; a time-out is recorded here.
        let record = if answer.recorded { None } else { Some(chain) };
        self.task_outcome(
            &fields,
            s,
            st,
            raw,
            &effective,
            &ctx,
            answer.outcome,
            record,
        )
    }

    /// Runs a Task state through a service integration: records TaskScheduled and TaskStarted,
    /// submits (unless the work was submitted before a restart), records TaskSubmitted, then
    /// for `.sync` resources waits for the work (within TimeoutSeconds) and records
    /// TaskSucceeded, TaskFailed or TaskTimedOut.
    async fn integration_task(
        &self,
        integration: Arc<dyn ServiceIntegration>,
        resource: &str,
        run: TaskRun<'_, '_>,
        progress: Progress,
        chain: &Chain,
        timeout: Option<u64>,
    ) -> Result<Step, Failure> {
        let base = || TaskDetails {
            resource_type: integration.resource_type().to_string(),
            resource: integrations::operation(resource).to_string(),
            ..TaskDetails::default()
        };
        let failed = |chain: &Chain, event: &str, error: String, cause: String| {
            let details = TaskDetails {
                error: Some(error.clone()),
                cause: Some(cause.clone()),
                ..base()
            };
            self.emit(chain, event, |e| match event {
                "TaskTimedOut" => e.task_timed_out_event_details = Some(details),
                _ => e.task_failed_event_details = Some(details),
            })?;
            Err(Failure::new(error, cause))
        };
        let scheduled_before = matches!(progress, Progress::Scheduled | Progress::ScheduledAt(_));
        let recorded = match progress {
            Progress::Submitted(output) => Some(output),
            _ => None,
        };
        let (handle, submit_output) = match recorded {
            Some(output) => match integration.handle_of(&output) {
                Some(h) => (h, output),
                None => {
                    return failed(
                        chain,
                        "TaskFailed",
                        "States.Runtime".into(),
                        "the recorded submission has no handle to wait on".into(),
                    )
                }
            },
            None => {
                if !scheduled_before {
                    self.emit(chain, "TaskScheduled", |e| {
                        e.task_scheduled_event_details = Some(TaskDetails {
                            region: Some(integration.region()),
                            parameters: Some(run.effective.to_string()),
                            timeout_in_seconds: timeout,
                            ..base()
                        })
                    })?;
                    self.emit(chain, "TaskStarted", |e| {
                        e.task_started_event_details = Some(base())
                    })?;
                }
                match integration.submit(resource, run.effective).await {
                    Ok(sub) => {
                        self.emit(chain, "TaskSubmitted", |e| {
                            e.task_submitted_event_details = Some(TaskDetails {
                                output: Some(sub.output.to_string()),
                                output_details: payload(),
                                ..base()
                            })
                        })?;
                        (sub.handle, sub.output)
                    }
                    Err(f) => return failed(chain, "TaskFailed", f.error, f.cause),
                }
            }
        };
        let result = if integrations::waits(resource) {
            let arn = self.log.arn.clone();
            self.inner
                .integrations
                .started(&arn, integration.clone(), &handle);
            let wait = integration.wait(resource, &handle);
            let waited = match timeout {
                Some(t) => tokio::time::timeout(Duration::from_secs(t), wait)
                    .await
                    .map_err(|_| ()),
                None => Ok(wait.await),
            };
            self.inner.integrations.ended(&arn, &handle);
            match waited {
                Ok(Ok(output)) => output,
                Ok(Err(f)) => return failed(chain, "TaskFailed", f.error, f.cause),
                Err(()) => {
                    let (i, h) = (integration.clone(), handle.clone());
                    tokio::spawn(async move {
                        if let Err(e) = i.cancel(&h, "States.Timeout").await {
                            tracing::warn!(handle = %h, error = %e.error, "cannot cancel timed-out work");
                        }
                    });
                    return failed(
                        chain,
                        "TaskTimedOut",
                        "States.Timeout".into(),
                        String::new(),
                    );
                }
            }
        } else {
            submit_output
        };
        let text = result.to_string();
        self.emit(chain, "TaskSucceeded", |e| {
            e.task_succeeded_event_details = Some(TaskDetails {
                output: Some(text.clone()),
                output_details: payload(),
                ..base()
            })
        })?;
        self.task_outcome(
            run.fields,
            run.s,
            run.st,
            run.raw,
            run.effective,
            run.ctx,
            Some(TaskOutcome::Success(text)),
            None,
        )
    }

    /// Schedules an activity task and waits for its answer or its time-out.
    async fn wait_for_worker(
        &self,
        resource: &str,
        token: String,
        input_text: String,
        timers: TaskTimers,
        chain: &Chain,
    ) -> Answer {
        let TaskTimers {
            timeout,
            heartbeat,
            elapsed,
        } = timers;
        let (tx, mut rx) = oneshot::channel();
        let slot = Arc::new(TaskSlot::new(
            self.log.clone(),
            resource,
            chain.get(),
            Some(tx),
        ));
        // Withdraws the task however this wait ends (answer, time-out, or the run dropped).
        struct Withdraw<'a>(&'a Inner, String);
        impl Drop for Withdraw<'_> {
            fn drop(&mut self) {
                self.0.board.remove(&self.1);
            }
        }
        let _withdraw = Withdraw(&self.inner, token.clone());
        self.inner.board.schedule(
            resource,
            ActivityTask {
                task_token: token.clone(),
                input: input_text,
            },
            slot.clone(),
        );
        let now = Instant::now();
        let scheduled = now.checked_sub(elapsed).unwrap_or(now);
        loop {
            let deadline = next_deadline(&slot, scheduled, timeout, heartbeat);
            tokio::select! {
                r = &mut rx => {
                    return match r {
                        Ok((outcome, event_id)) => Answer { outcome: Some(outcome), last_event_id: Some(event_id), recorded: true },
                        Err(_) => Answer { outcome: None, last_event_id: None, recorded: false },
                    };
                }
                _ = sleep_until_opt(deadline) => {
                    let now = Instant::now();
                    let error = if timeout.is_some_and(|t| now >= scheduled + Duration::from_secs(t)) {
                        "States.Timeout"
                    } else if matches!((heartbeat, last_sign_of_life(&slot)), (Some(hb), Some(since)) if now >= since + Duration::from_secs(hb)) {
                        "States.HeartbeatTimeout"
                    } else {
                        continue;
                    };
                    // Only time out a task no worker has answered meanwhile.
                    if self.inner.board.take(&token).is_none() {
                        continue;
                    }
                    return Answer {
                        outcome: Some(TaskOutcome::Failure { error: Some(error.into()), cause: None }),
                        last_event_id: read(&slot.started_event_id),
                        recorded: false,
                    };
                }
            }
        }
    }

    /// Records a task's answer (unless `record` is `None`: it was recorded before a restart),
    /// then applies the result's data flow, or fails the state.
    #[allow(clippy::too_many_arguments)]
    fn task_outcome(
        &self,
        fields: &Fields<'_>,
        s: &TaskState,
        st: &StateRun<'_>,
        raw: &Value,
        effective: &Value,
        ctx: &Value,
        outcome: Option<TaskOutcome>,
        record: Option<&Chain>,
    ) -> Result<Step, Failure> {
        match outcome {
            Some(TaskOutcome::Success(text)) => {
                if let Some(chain) = record {
                    self.emit(chain, "ActivitySucceeded", |e| {
                        e.activity_succeeded_event_details = Some(OutputDetails {
                            output: Some(text.clone()),
                            output_details: payload(),
                        })
                    })?;
                }
                let result: Value = serde_json::from_str(&text)
                    .map_err(|e| st.runtime(format!("task output is not JSON: {e}")))?;
                self.finish_step(
                    fields,
                    st,
                    raw,
                    effective,
                    Some(result),
                    ctx,
                    s.next.clone(),
                )
            }
            Some(TaskOutcome::Failure { error, cause }) => {
                let timed_out = matches!(
                    error.as_deref(),
                    Some("States.Timeout") | Some("States.HeartbeatTimeout")
                );
                if let Some(chain) = record {
                    let details = ErrorDetails {
                        error: error.clone(),
                        cause: cause.clone(),
                    };
                    self.emit(
                        chain,
                        if timed_out {
                            "ActivityTimedOut"
                        } else {
                            "ActivityFailed"
                        },
                        |e| {
                            if timed_out {
                                e.activity_timed_out_event_details = Some(details);
                            } else {
                                e.activity_failed_event_details = Some(details);
                            }
                        },
                    )?;
                }
                Err(Failure::new(
                    error.unwrap_or_default(),
                    cause.unwrap_or_default(),
                ))
            }
            None => Err(Failure::new(
                "States.Runtime",
                "the activity task was abandoned",
            )),
        }
    }
}

fn last_sign_of_life(slot: &TaskSlot) -> Option<Instant> {
    read(&slot.last_heartbeat).or(read(&slot.started))
}

fn next_deadline(
    slot: &TaskSlot,
    scheduled: Instant,
    timeout: Option<u64>,
    heartbeat: Option<u64>,
) -> Option<Instant> {
    let t = timeout.map(|t| scheduled + Duration::from_secs(t));
    let h = match (heartbeat, last_sign_of_life(slot)) {
        (Some(hb), Some(since)) => Some(since + Duration::from_secs(hb)),
        // Not started yet: look again shortly to arm the heartbeat clock once it is.
        (Some(_), None) => Some(Instant::now() + Duration::from_millis(200)),
        _ => None,
    };
    match (t, h) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What a Task state's run has computed before its work starts.
struct TaskRun<'a, 'b> {
    fields: &'a Fields<'b>,
    s: &'a TaskState,
    st: &'a StateRun<'b>,
    raw: &'a Value,
    effective: &'a Value,
    ctx: &'a Value,
}

/// `arn:aws:states:REGION:ACCOUNT:activity:NAME`.
pub(crate) fn is_activity_arn(resource: &str) -> bool {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    parts.len() == 7 && parts[0] == "arn" && parts[2] == "states" && parts[5] == "activity"
}

/// Records that a worker took the task.
pub(crate) fn mark_started(slot: &TaskSlot, worker_name: Option<&str>) -> Result<(), EngineError> {
    write(&slot.started, Some(Instant::now()));
    let id = slot
        .log
        .emit_after(Some(slot.scheduled_event_id), "ActivityStarted", |e| {
            e.activity_started_event_details = Some(ActivityStartedDetails {
                worker_name: worker_name.map(str::to_string),
            })
        })?;
    write(&slot.started_event_id, id);
    Ok(())
}
