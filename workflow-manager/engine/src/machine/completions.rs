//! What happens to an execution, applied: its start, a timer, a task handed out, answered or
//! silent too long, a service call's answers, a stop. A completion for a task or timer that is
//! no longer waited for changes nothing (it is stale); an answer to a task that is over, or
//! with a token that is not the task's, is refused.

use serde_json::Value;

use super::event::Event;
use super::execution::{CallPhase, CallWait, Deadline, Ending, FrameId, Stage};
use super::frames::{task_gone, waits_for_work, Step};
use super::retry::Failure;
use super::states;
use super::token::Token;
use super::{Command, Completion, Outcome, Reject};

fn stale_token() -> Reject {
    Reject::InvalidToken(
        "Invalid Token: 'Provided task token is invalid: the task was handed out again'".into(),
    )
}

impl Step<'_> {
    // ---- completions ----

    pub fn complete(&mut self, c: Completion) -> Result<(), Reject> {
        if self.exec.ended.is_some() {
            return match c {
                Completion::Answer { .. }
                | Completion::Handout { .. }
                | Completion::HeartbeatLost { .. } => Err(task_gone()),
                _ => Ok(()),
            };
        }
        match c {
            Completion::Start => {
                let meta = self.exec.meta.clone();
                self.emit_last(Event::ExecutionStarted {
                    input: serde_json::to_string(&meta.input).unwrap_or_default(),
                    role_arn: meta.role_arn.clone(),
                });
                if let Some(f) = self.exec.frames.get_mut(&0) {
                    f.chain = 1;
                }
                if let Some(t) = self.machine.definition.timeout_seconds {
                    let due = meta.start_ms + (t as i64) * 1000;
                    let d = Deadline {
                        timer: self.exec.seq(),
                        due_ms: due,
                    };
                    self.command(Command::StartTimer(d));
                    self.exec.timeout = Some(d);
                }
                self.exec.touch(0);
                self.exec.enqueue(0);
                Ok(())
            }
            Completion::Continue => Ok(()),
            Completion::Recover => {
                let calls: Vec<CallWait> = self
                    .exec
                    .frames
                    .values()
                    .filter_map(|f| match &f.stage {
                        Stage::Call(c) => Some(c.clone()),
                        _ => None,
                    })
                    .collect();
                for c in calls {
                    // A callback is held again (a fresh heartbeat period after a restart).
                    if c.is_callback() {
                        self.hold(&c);
                    }
                    match c.phase {
                        CallPhase::Submitting => {
                            let key = self.call_key(c.seq, &c.secret);
                            self.command(Command::Submit {
                                seq: c.seq,
                                resource: c.resource,
                                parameters: c.parameters,
                                key,
                            })
                        }
                        CallPhase::Waiting { handle } => self.command(Command::AwaitCall {
                            seq: c.seq,
                            resource: c.resource,
                            handle,
                        }),
                        CallPhase::AwaitingToken => {}
                    }
                }
                self.recover_map_io();
                Ok(())
            }
            Completion::Timer { seq } => {
                self.timer_fired(seq);
                Ok(())
            }
            Completion::Handout {
                seq,
                secret,
                worker,
            } => self.handout(seq, secret, worker),
            Completion::Answer {
                seq,
                secret,
                outcome,
            } => self.answer(seq, &secret, outcome),
            Completion::HeartbeatLost { seq, secret } => {
                match self.task_frame(seq, &secret)? {
                    // Step Functions reports a lost heartbeat as `States.Timeout` (its recorded
                    // histories: TaskTimedOut / ActivityTimedOut with that error, no cause).
                    (id, None) => self.activity_timed_out(id, "States.Timeout"),
                    (id, Some(c)) => {
                        self.take_wait(id);
                        self.call_timed_out(id, &c, "States.Timeout");
                    }
                }
                Ok(())
            }
            Completion::Submitted { seq, result } => {
                self.submitted(seq, result);
                Ok(())
            }
            Completion::CallEnded { seq, result } => {
                self.call_ended(seq, result);
                Ok(())
            }
            Completion::Stop { error, cause } => {
                self.end(Ending::Aborted { error, cause });
                Ok(())
            }
        }
    }

    /// The frame whose task `seq` is out with this secret: an activity task (`None`) or a
    /// callback (its call).
    pub(super) fn task_frame(
        &self,
        seq: u32,
        secret: &str,
    ) -> Result<(FrameId, Option<CallWait>), Reject> {
        let id = *self.exec.waits.get(&seq).ok_or_else(task_gone)?;
        let (own, call) = match self.exec.frames.get(&id).map(|f| &f.stage) {
            Some(Stage::Activity(a)) if a.seq == seq => (&a.secret, None),
            Some(Stage::Call(c)) if c.seq == seq && c.is_callback() => (&c.secret, Some(c.clone())),
            _ => return Err(task_gone()),
        };
        if own != secret {
            return Err(stale_token());
        }
        Ok((id, call))
    }

    /// A call (a callback, or `.sync` work) ran out of time, of TimeoutSeconds or
    /// HeartbeatSeconds (`error`: `States.Timeout` either way, as Step Functions reports it);
    /// its wait is already taken.
    pub(super) fn call_timed_out(&mut self, id: FrameId, c: &CallWait, error: &str) {
        if let Some(t) = c.timeout {
            self.cancel_timer(t);
        }
        self.end_call(c, true);
        let task = self.task_ref(&c.resource);
        self.emit(
            id,
            Event::TaskTimedOut {
                task,
                error: error.into(),
                cause: String::new(),
            },
        );
        self.state_failed(id, Failure::new(error, ""));
    }

    /// An activity task ran out of time, of TimeoutSeconds or HeartbeatSeconds (`error`:
    /// `States.Timeout` either way).
    fn activity_timed_out(&mut self, id: FrameId, error: &str) {
        if let Some(taken) = self.take_wait(id) {
            self.activity_over(&taken);
        }
        self.emit(
            id,
            Event::ActivityTimedOut {
                error: Some(error.into()),
                cause: None,
            },
        );
        self.state_failed(id, Failure::new(error, ""));
    }

    /// An activity task is over: forget it and its time-out.
    pub(super) fn activity_over(&mut self, taken: &Stage) {
        if let Stage::Activity(a) = taken {
            self.command(Command::Unschedule {
                seq: a.seq,
                activity: a.activity.clone(),
                scheduled_ms: a.scheduled_ms,
            });
            if let Some(t) = a.timeout {
                self.command(Command::CancelTimer(t));
            }
        }
    }

    pub(super) fn handout(
        &mut self,
        seq: u32,
        secret: String,
        worker: Option<String>,
    ) -> Result<(), Reject> {
        let id = *self.exec.waits.get(&seq).ok_or_else(task_gone)?;
        let waiting = matches!(
            self.exec.frames.get(&id).map(|f| &f.stage),
            Some(Stage::Activity(a)) if a.seq == seq
        );
        if !waiting {
            return Err(task_gone());
        }
        let started = self.emit(id, Event::ActivityStarted { worker });
        if let Some(Stage::Activity(a)) = self.exec.frames.get_mut(&id).map(|f| &mut f.stage) {
            a.secret = secret;
            a.handed_out = true;
            a.started_event = Some(started);
        }
        Ok(())
    }

    pub(super) fn answer(
        &mut self,
        seq: u32,
        secret: &str,
        outcome: Outcome,
    ) -> Result<(), Reject> {
        let (id, call) = self.task_frame(seq, secret)?;
        let Some(taken) = self.take_wait(id) else {
            return Err(task_gone());
        };
        if let Some(c) = call {
            self.callback_answered(id, &c, outcome);
            return Ok(());
        }
        self.activity_over(&taken);
        match outcome {
            Outcome::Success(text) => {
                self.emit(
                    id,
                    Event::ActivitySucceeded {
                        output: text.clone(),
                    },
                );
                let token = Token {
                    execution: self.exec.id,
                    seq,
                    secret: secret.to_string(),
                }
                .encode();
                let activity = match &taken {
                    Stage::Activity(a) => a.activity.clone(),
                    _ => String::new(),
                };
                self.task_succeeded(id, &activity, &text, &token);
            }
            Outcome::Failure { error, cause } => {
                self.emit(
                    id,
                    Event::ActivityFailed {
                        error: error.clone(),
                        cause: cause.clone(),
                    },
                );
                self.state_failed(
                    id,
                    Failure::new(error.unwrap_or_default(), cause.unwrap_or_default()),
                );
            }
        }
        Ok(())
    }

    /// A callback's token came back: the task succeeds with the output, or fails.
    fn callback_answered(&mut self, id: FrameId, c: &CallWait, outcome: Outcome) {
        match outcome {
            Outcome::Success(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => self.call_succeeded(id, c, v),
                Err(e) => self.call_failed(
                    id,
                    c,
                    Failure::new("States.Runtime", format!("task output is not JSON: {e}")),
                ),
            },
            Outcome::Failure { error, cause } => {
                self.call_failed(id, c, Failure::reported(error, cause))
            }
        }
    }

    pub(super) fn timer_fired(&mut self, seq: u32) {
        if self.exec.timeout.is_some_and(|t| t.timer == seq) {
            self.exec.timeout = None;
            self.end(Ending::TimedOut);
            return;
        }
        let Some(&id) = self.exec.waits.get(&seq) else {
            return;
        };
        let stage = self.exec.frames.get(&id).map(|f| f.stage.clone());
        match stage {
            Some(Stage::Wait(d)) if d.timer == seq => {
                self.take_wait(id);
                let work = self.view(id).map(|v| states::wait::finish(&v));
                match work {
                    Some(Ok(w)) => self.apply(id, w),
                    Some(Err(f)) => self.state_failed(id, f),
                    None => {}
                }
            }
            Some(Stage::Backoff(d)) if d.timer == seq => {
                self.take_wait(id);
                self.exec.enqueue(id);
            }
            Some(Stage::Activity(a)) if a.timeout.is_some_and(|t| t.timer == seq) => {
                self.activity_timed_out(id, "States.Timeout");
            }
            Some(Stage::Call(c)) if c.timeout.is_some_and(|t| t.timer == seq) => {
                self.take_wait(id);
                self.call_timed_out(id, &c, "States.Timeout");
            }
            _ => {}
        }
    }

    /// The frame whose call `seq` is out.
    pub(super) fn call_frame(&self, seq: u32) -> Option<(FrameId, CallWait)> {
        let id = *self.exec.waits.get(&seq)?;
        match self.exec.frames.get(&id).map(|f| &f.stage) {
            Some(Stage::Call(c)) if c.seq == seq => Some((id, c.clone())),
            _ => None,
        }
    }

    pub(super) fn call_failed(&mut self, id: FrameId, c: &CallWait, failure: Failure) {
        self.take_wait(id);
        if let Some(t) = c.timeout {
            self.cancel_timer(t);
        }
        self.end_call(c, false);
        let task = self.task_ref(&c.resource);
        self.emit(
            id,
            Event::TaskFailed {
                task,
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            },
        );
        self.state_failed(id, failure);
    }

    pub(super) fn call_succeeded(&mut self, id: FrameId, c: &CallWait, output: Value) {
        self.take_wait(id);
        if let Some(t) = c.timeout {
            self.cancel_timer(t);
        }
        self.end_call(c, false);
        let text = output.to_string();
        let task = self.task_ref(&c.resource);
        self.emit(
            id,
            Event::TaskSucceeded {
                task,
                output: text.clone(),
            },
        );
        let token = if c.secret.is_empty() {
            String::new()
        } else {
            Token {
                execution: self.exec.id,
                seq: c.seq,
                secret: c.secret.clone(),
            }
            .encode()
        };
        self.task_succeeded(id, &c.resource, &text, &token);
    }

    pub(super) fn submitted(&mut self, seq: u32, result: Result<super::Submission, Failure>) {
        let Some((id, c)) = self.call_frame(seq) else {
            return self.map_io_answered(seq, result);
        };
        if c.phase != CallPhase::Submitting {
            return;
        }
        match result {
            Err(f) => self.call_failed(id, &c, f),
            Ok(sub) => {
                let task = self.task_ref(&c.resource);
                self.emit(
                    id,
                    Event::TaskSubmitted {
                        task,
                        output: sub.output.to_string(),
                    },
                );
                if c.is_callback() {
                    if let Some(Stage::Call(w)) =
                        self.exec.frames.get_mut(&id).map(|f| &mut f.stage)
                    {
                        w.phase = CallPhase::AwaitingToken;
                    }
                    self.exec.touch(id);
                } else if waits_for_work(&c.resource) {
                    if let Some(Stage::Call(w)) =
                        self.exec.frames.get_mut(&id).map(|f| &mut f.stage)
                    {
                        w.phase = CallPhase::Waiting {
                            handle: sub.handle.clone(),
                        };
                    }
                    self.command(Command::AwaitCall {
                        seq,
                        resource: c.resource.clone(),
                        handle: sub.handle,
                    });
                } else {
                    self.call_succeeded(id, &c, sub.output);
                }
            }
        }
    }

    pub(super) fn call_ended(&mut self, seq: u32, result: Result<Value, Failure>) {
        let Some((id, c)) = self.call_frame(seq) else {
            return;
        };
        if !matches!(c.phase, CallPhase::Waiting { .. }) {
            return;
        }
        match result {
            Ok(v) => self.call_succeeded(id, &c, v),
            Err(f) => self.call_failed(id, &c, f),
        }
    }
}
