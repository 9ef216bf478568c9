//! Runs one execution of a state machine: enters each state, applies the JSONPath data flow,
//! hands Task states to activity workers and waits for their answer, and writes the history
//! events Step Functions writes. States this first cut does not run yet (Wait, Parallel, Map)
//! fail the execution with `States.Runtime` and a cause that says so.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;
use wfm_asl::definition::{ChoiceState, FailState, PassState, State, StateMachine, TaskState};
use wfm_asl::history::{
    ActivityScheduledDetails, ActivityStartedDetails, ErrorDetails, OutputDetails, PayloadDetails,
    StateEnteredDetails, StateExitedDetails,
};
use wfm_asl::path::{
    apply_path_filter, apply_result_path, evaluate_expression, expand_template, select, PathError,
};

use crate::activities::{new_task_token, read, write, ActivityTask, TaskOutcome, TaskSlot};
use crate::choice;
use crate::error::EngineError;
use crate::log::{Ending, ExecutionLog};
use crate::Inner;

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
}

impl Resume {
    /// A new execution: StartAt with the execution input.
    pub fn start(machine: &StateMachine, input: &Value) -> Resume {
        Resume {
            state: machine.start_at.clone(),
            input: input.clone(),
            progress: Progress::Fresh,
        }
    }

    /// Reads from an execution's history where its run stopped; also returns the id of the
    /// StateEntered event of that state.
    pub fn from_history(
        events: &[wfm_asl::HistoryEvent],
        machine: &StateMachine,
        input: &Value,
    ) -> (Resume, i64) {
        let mut resume = Resume::start(machine, input);
        let mut entered_id = 0;
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null)
        };
        for e in events {
            if let Some(d) = &e.state_entered_event_details {
                resume = Resume {
                    state: d.name.clone(),
                    input: parse(&d.input),
                    progress: Progress::Entered,
                };
                entered_id = e.id;
            } else if let Some(d) = &e.state_exited_event_details {
                resume.progress = Progress::Exited(parse(&d.output));
            } else if e.event_type == "ActivityScheduled" || e.event_type == "ActivityStarted" {
                resume.progress = Progress::Scheduled;
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

/// Where a state leads.
struct Step {
    output: Value,
    next: Option<String>,
}

/// One execution being run.
pub(crate) struct Run {
    pub inner: Arc<Inner>,
    pub log: Arc<ExecutionLog>,
    pub machine: Arc<StateMachine>,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub input: Value,
    pub start_time: String,
    pub resume: Resume,
    /// Id of the StateEntered event of the resumed state (for error messages).
    pub resume_entered_id: i64,
}

fn payload() -> Option<PayloadDetails> {
    Some(PayloadDetails { truncated: false })
}

impl Run {
    /// Runs the execution to its end and records how it ended.
    pub async fn run(self) {
        let result = self.run_machine().await;
        let outcome = match &result {
            Ok(output) => {
                let text = output.to_string();
                self.log.finish(
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
                )
            }
            Err(f) => self.log.finish(
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
            ),
        };
        if let Err(e) = outcome {
            tracing::error!(execution = %self.log.arn, error = %e, "cannot record the end of an execution");
        }
        self.inner.forget_live(&self.log.arn);
    }

    fn context(&self, state_name: &str, entered: &str, token: Option<&str>) -> Value {
        let mut ctx = json!({
            "Execution": {
                "Id": self.log.arn,
                "Input": self.input,
                "Name": self.log.name,
                "RoleArn": self.role_arn,
                "StartTime": self.start_time,
            },
            "StateMachine": {"Id": self.state_machine_arn, "Name": self.state_machine_name},
            "State": {"EnteredTime": entered, "Name": state_name, "RetryCount": 0},
        });
        if let Some(t) = token {
            ctx["Task"] = json!({"Token": t});
        }
        ctx
    }

    async fn run_machine(&self) -> Result<Value, Failure> {
        let mut name = self.resume.state.clone();
        let mut input = self.resume.input.clone();
        let mut progress = self.resume.progress.clone();
        loop {
            let state = self.machine.states.get(&name).ok_or_else(|| {
                Failure::new("States.Runtime", format!("State '{name}' does not exist"))
            })?;
            let entered_at =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            if let Progress::Exited(output) = progress {
                // The state finished before the engine stopped: only its successor is left.
                let next = match state {
                    State::Choice(c) => {
                        self.choice(c, &name, &entered_at, &input)
                            .map_err(|e| Failure::new("States.Runtime", e.to_string()))?
                            .next
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
                self.log
                    .emit(&format!("{}StateEntered", state.type_name()), |e| {
                        e.state_entered_event_details = Some(StateEnteredDetails {
                            name: name.clone(),
                            input: Some(input.to_string()),
                            input_details: payload(),
                        })
                    })?
                    .unwrap_or_default()
            } else {
                self.resume_entered_id
            };
            let runtime = |err: PathError| {
                Failure::new(
                    "States.Runtime",
                    format!(
                        "An error occurred while executing the state '{name}' (entered at the \
                         event id #{entered_id}). {err}"
                    ),
                )
            };
            let step = match state {
                State::Pass(s) => self.pass(s, &name, &entered_at, &input).map_err(runtime)?,
                State::Choice(s) => self
                    .choice(s, &name, &entered_at, &input)
                    .map_err(runtime)?,
                State::Succeed(s) => {
                    let ctx = self.context(&name, &entered_at, None);
                    let effective =
                        apply_path_filter(s.input_path.as_ref(), &input, &ctx).map_err(runtime)?;
                    let output = apply_path_filter(s.output_path.as_ref(), &effective, &ctx)
                        .map_err(runtime)?;
                    Step { output, next: None }
                }
                State::Fail(s) => {
                    return Err(self.fail(s, &name, &entered_at, &input).map_err(runtime)?)
                }
                State::Task(s) => {
                    let progress = std::mem::replace(&mut progress, Progress::Fresh);
                    self.task(s, &name, &entered_at, &input, progress, runtime)
                        .await?
                }
                other => {
                    return Err(Failure::new(
                        "States.Runtime",
                        format!(
                            "The state '{name}' of type {} is not supported by the embedded \
                             engine yet",
                            other.type_name()
                        ),
                    ))
                }
            };
            progress = Progress::Fresh;
            let output_text = step.output.to_string();
            self.log
                .emit(&format!("{}StateExited", state.type_name()), |e| {
                    e.state_exited_event_details = Some(StateExitedDetails {
                        name: name.clone(),
                        output: Some(output_text.clone()),
                        output_details: payload(),
                    })
                })?;
            match step.next {
                Some(next) => {
                    name = next;
                    input = step.output;
                }
                None => return Ok(step.output),
            }
        }
    }

    fn pass(
        &self,
        s: &PassState,
        name: &str,
        entered: &str,
        raw: &Value,
    ) -> Result<Step, PathError> {
        let ctx = self.context(name, entered, None);
        let effective = apply_path_filter(s.input_path.as_ref(), raw, &ctx)?;
        let effective = match &s.parameters {
            Some(t) => expand_template(t, &effective, &ctx)?,
            None => effective,
        };
        let result = s.result.clone().unwrap_or(effective);
        let combined = apply_result_path(s.result_path.as_ref(), raw, result)?;
        let output = apply_path_filter(s.output_path.as_ref(), &combined, &ctx)?;
        Ok(Step {
            output,
            next: s.next.clone(),
        })
    }

    fn choice(
        &self,
        s: &ChoiceState,
        name: &str,
        entered: &str,
        raw: &Value,
    ) -> Result<Step, PathError> {
        let ctx = self.context(name, entered, None);
        let effective = apply_path_filter(s.input_path.as_ref(), raw, &ctx)?;
        let mut next = None;
        for rule in s.choices.as_deref().unwrap_or(&[]) {
            if choice::evaluate(rule, &effective, &ctx)? {
                next = rule.next.clone();
                break;
            }
        }
        let next = match next.or_else(|| s.default.clone()) {
            Some(n) => n,
            None => {
                return Err(PathError::Unsupported(format!(
                    "No Matches! (no choice rule of state '{name}' matched and it has no Default)"
                )))
            }
        };
        let output = apply_path_filter(s.output_path.as_ref(), &effective, &ctx)?;
        Ok(Step {
            output,
            next: Some(next),
        })
    }

    fn fail(
        &self,
        s: &FailState,
        name: &str,
        entered: &str,
        raw: &Value,
    ) -> Result<Failure, PathError> {
        let ctx = self.context(name, entered, None);
        let from_path = |p: &Option<String>| -> Result<Option<String>, PathError> {
            match p {
                Some(p) => {
                    let v = evaluate_expression(p, raw, &ctx)?;
                    Ok(Some(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    ))
                }
                None => Ok(None),
            }
        };
        let error = match &s.error {
            Some(e) => Some(e.clone()),
            None => from_path(&s.error_path)?,
        };
        let cause = match &s.cause {
            Some(c) => Some(c.clone()),
            None => from_path(&s.cause_path)?,
        };
        Ok(Failure {
            error: error.unwrap_or_default(),
            cause: cause.unwrap_or_default(),
        })
    }

    async fn task(
        &self,
        s: &TaskState,
        name: &str,
        entered: &str,
        raw: &Value,
        progress: Progress,
        runtime: impl Fn(PathError) -> Failure,
    ) -> Result<Step, Failure> {
        let resource = s.resource.clone().unwrap_or_default();
        let token = new_task_token();
        let ctx = self.context(name, entered, Some(&token));
        if let Progress::Answered(outcome) = progress {
            // Recovered: the worker's answer was recorded before the engine stopped.
            return self.task_outcome(s, raw, &ctx, Some(outcome), false, &runtime);
        }
        let effective = apply_path_filter(s.input_path.as_ref(), raw, &ctx).map_err(&runtime)?;
        let effective = match &s.parameters {
            Some(t) => expand_template(t, &effective, &ctx).map_err(&runtime)?,
            None => effective,
        };
        let seconds = |v: &Option<Value>, p: &Option<String>| -> Result<Option<u64>, Failure> {
            if let Some(v) = v {
                return Ok(v.as_u64());
            }
            if let Some(p) = p {
                let v = select(p, raw, &ctx).map_err(&runtime)?;
                return v.as_u64().map(Some).ok_or_else(|| {
                    runtime(PathError::Invalid {
                        path: p.clone(),
                        reason: "must select a non-negative integer".into(),
                    })
                });
            }
            Ok(None)
        };
        let timeout = seconds(&s.timeout_seconds, &s.timeout_seconds_path)?;
        let heartbeat = seconds(&s.heartbeat_seconds, &s.heartbeat_seconds_path)?;

        if !is_activity_arn(&resource) {
            return Err(Failure::new(
                "States.Runtime",
                format!(
                    "The resource '{resource}' of state '{name}' is not supported by the embedded \
                     engine yet: only activity ARNs are"
                ),
            ));
        }
        let input_text = effective.to_string();
        if progress != Progress::Scheduled {
            if !self.inner.db.activity_exists(&resource)? {
                let failure = runtime(PathError::Unsupported(format!(
                    "The activity {resource} does not exist."
                )));
                self.log.emit("ActivityScheduleFailed", |e| {
                    e.activity_schedule_failed_event_details = Some(ErrorDetails {
                        error: Some(failure.error.clone()),
                        cause: Some(failure.cause.clone()),
                    })
                })?;
                return Err(failure);
            }
            self.log.emit("ActivityScheduled", |e| {
                e.activity_scheduled_event_details = Some(ActivityScheduledDetails {
                    resource: resource.clone(),
                    input: Some(input_text.clone()),
                    input_details: payload(),
                    timeout_in_seconds: timeout,
                    heartbeat_in_seconds: heartbeat,
                })
            })?;
        }
        // A recovered task (scheduled before the engine stopped) is handed out again with a
        // new token: the old one died with the process that issued it.
        let outcome = self
            .wait_for_worker(&resource, token, input_text, timeout, heartbeat)
            .await;
        self.task_outcome(s, raw, &ctx, outcome, true, &runtime)
    }

    /// Schedules an activity task and waits for its answer or its time-out.
    async fn wait_for_worker(
        &self,
        resource: &str,
        token: String,
        input_text: String,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    ) -> Option<TaskOutcome> {
        let (tx, mut rx) = oneshot::channel();
        let slot = Arc::new(TaskSlot::new(self.log.clone(), tx));
        self.inner.board.schedule(
            resource,
            ActivityTask {
                task_token: token.clone(),
                input: input_text,
            },
            slot.clone(),
        );
        let scheduled = Instant::now();
        let outcome = loop {
            let deadline = next_deadline(&slot, scheduled, timeout, heartbeat);
            tokio::select! {
                r = &mut rx => break r.ok(),
                _ = sleep_until_opt(deadline) => {
                    let now = Instant::now();
                    if timeout.is_some_and(|t| now >= scheduled + Duration::from_secs(t)) {
                        break Some(TaskOutcome::Failure {
                            error: Some("States.Timeout".into()), cause: None });
                    }
                    if let (Some(hb), Some(since)) = (heartbeat, last_sign_of_life(&slot)) {
                        if now >= since + Duration::from_secs(hb) {
                            break Some(TaskOutcome::Failure {
                                error: Some("States.HeartbeatTimeout".into()), cause: None });
                        }
                    }
                }
            }
        };
        self.inner.board.remove(&token);
        outcome
    }

    /// Records a task's answer (unless `record` is false: it was recorded before a restart),
    /// then applies the result's data flow, or fails the state.
    fn task_outcome(
        &self,
        s: &TaskState,
        raw: &Value,
        ctx: &Value,
        outcome: Option<TaskOutcome>,
        record: bool,
        runtime: &impl Fn(PathError) -> Failure,
    ) -> Result<Step, Failure> {
        match outcome {
            Some(TaskOutcome::Success(text)) => {
                if record {
                    self.log.emit("ActivitySucceeded", |e| {
                        e.activity_succeeded_event_details = Some(OutputDetails {
                            output: Some(text.clone()),
                            output_details: payload(),
                        })
                    })?;
                }
                let result: Value = serde_json::from_str(&text).map_err(|e| {
                    Failure::new("States.Runtime", format!("task output is not JSON: {e}"))
                })?;
                let result = match &s.result_selector {
                    Some(t) => expand_template(t, &result, ctx).map_err(runtime)?,
                    None => result,
                };
                let combined =
                    apply_result_path(s.result_path.as_ref(), raw, result).map_err(runtime)?;
                let output =
                    apply_path_filter(s.output_path.as_ref(), &combined, ctx).map_err(runtime)?;
                Ok(Step {
                    output,
                    next: s.next.clone(),
                })
            }
            Some(TaskOutcome::Failure { error, cause }) => {
                let timed_out = matches!(
                    error.as_deref(),
                    Some("States.Timeout") | Some("States.HeartbeatTimeout")
                );
                if record {
                    let details = ErrorDetails {
                        error: error.clone(),
                        cause: cause.clone(),
                    };
                    self.log.emit(
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

/// `arn:aws:states:REGION:ACCOUNT:activity:NAME`.
pub(crate) fn is_activity_arn(resource: &str) -> bool {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    parts.len() == 7 && parts[0] == "arn" && parts[2] == "states" && parts[5] == "activity"
}

/// Records that a worker took the task.
pub(crate) fn mark_started(slot: &TaskSlot, worker_name: Option<&str>) -> Result<(), EngineError> {
    write(&slot.started, Some(Instant::now()));
    slot.log.emit("ActivityStarted", |e| {
        e.activity_started_event_details = Some(ActivityStartedDetails {
            worker_name: worker_name.map(str::to_string),
        })
    })?;
    Ok(())
}
