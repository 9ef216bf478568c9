//! How frames move: the run queue, entering and leaving states, what a state's work turns
//! into (a wait, a task, a call, branches), retries and catchers, a frame's end and its report
//! to its Parallel or Map, and the execution's end. The state modules compute; this module
//! changes the execution and writes the events and commands.

use serde_json::{Map, Value};

use super::compiled::{Compiled, Node, StateId};
use super::event::{Event, Recorded, StateKind, TaskRef};
use super::execution::{
    ActivityWait, CallPhase, CallWait, Deadline, Ending, Execution, Frame, FrameId, Stage,
};
use super::retry::{matches_error, retry_delay_ms, Failure};
use super::states::{self, View, Work};
use super::token::Token;
use super::{Command, Env, NewTask, Reject, Round};

/// Largest state input or output Step Functions accepts (256 KiB).
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// One call of [`advance`](super::advance) in progress.
pub(super) struct Step<'a> {
    pub exec: &'a mut Execution,
    pub machine: &'a Compiled,
    pub env: &'a mut dyn Env,
    pub round: Round,
    pub now: i64,
    pub budget: usize,
}

/// The operation part of an integration resource: `submitJob.sync` of
/// `arn:aws:states:::batch:submitJob.sync`.
pub fn operation(resource: &str) -> &str {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let rest = match parts.as_slice() {
        ["arn", _, "states", "", "", rest] => *rest,
        _ => return resource,
    };
    // `sqs:sendMessage`, `states:startExecution.sync:2`, `aws-sdk:dynamodb:getItem`.
    let skip = if rest.starts_with("aws-sdk:") { 2 } else { 1 };
    rest.splitn(skip + 1, ':').nth(skip).unwrap_or(rest)
}

/// Whether the resource waits for the work to end (`.sync`, `.sync:2`).
pub fn waits_for_work(resource: &str) -> bool {
    super::compiled::Resource::parse(resource).waits_for_work()
}

pub(super) fn task_gone() -> Reject {
    Reject::TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'".into())
}

impl Step<'_> {
    // ---- events ----

    /// Writes an event that follows `previous`.
    pub fn emit_after(&mut self, previous: i64, event: Event) -> i64 {
        let id = self.exec.next_event;
        self.exec.next_event += 1;
        self.round.events.push(Recorded {
            id,
            previous,
            at_ms: self.now,
            event,
        });
        id
    }

    /// Writes an event of a frame (linked to its last one).
    pub fn emit(&mut self, frame: FrameId, event: Event) -> i64 {
        let previous = self
            .exec
            .frames
            .get(&frame)
            .map(|f| f.chain)
            .unwrap_or(self.exec.next_event - 1);
        let id = self.emit_after(previous, event);
        if let Some(f) = self.exec.frames.get_mut(&frame) {
            f.chain = id;
        }
        self.exec.touch(frame);
        id
    }

    /// Writes an event of the execution as a whole (linked to the last event).
    pub(super) fn emit_last(&mut self, event: Event) -> i64 {
        let previous = self.exec.next_event - 1;
        self.emit_after(previous, event)
    }

    pub(super) fn command(&mut self, c: Command) {
        self.round.commands.push(c);
    }

    pub(super) fn start_timer(&mut self, frame: FrameId, due_ms: i64) -> Deadline {
        let d = Deadline {
            timer: self.exec.seq(),
            due_ms,
        };
        self.exec.waits.insert(d.timer, frame);
        self.command(Command::StartTimer(d));
        d
    }

    pub(super) fn cancel_timer(&mut self, d: Deadline) {
        self.exec.waits.remove(&d.timer);
        self.command(Command::CancelTimer(d));
    }

    // ---- the run queue ----

    pub fn run(&mut self) {
        while self.exec.ended.is_none() && self.round.events.len() < self.budget {
            let Some(id) = self.exec.queue.pop_front() else {
                break;
            };
            match self.exec.frames.get_mut(&id) {
                Some(f) => f.queued = false,
                None => continue,
            }
            self.step_frame(id);
        }
    }

    /// Moves a frame on until it waits, ends, or the budget is spent.
    pub(super) fn step_frame(&mut self, id: FrameId) {
        loop {
            if self.exec.ended.is_some() {
                return;
            }
            let Some(frame) = self.exec.frames.get(&id) else {
                return;
            };
            match &frame.stage {
                Stage::Enter => self.enter(id),
                Stage::Run => self.run_state(id),
                Stage::Fanout(_) => {
                    self.spawn_iterations(id);
                    return;
                }
                _ => return,
            }
            if self.round.events.len() >= self.budget {
                if self.exec.frames.get(&id).is_some_and(Frame::is_runnable) {
                    self.exec.enqueue_first(id);
                }
                return;
            }
        }
    }

    pub(super) fn view(&self, id: FrameId) -> Option<View<'_>> {
        let frame = self.exec.frames.get(&id)?;
        Some(View {
            frame,
            node: self.machine.node(frame.machine, frame.state),
            machine: self.machine.machine(frame.machine),
            meta: &self.exec.meta,
        })
    }

    pub(super) fn node_of(&self, id: FrameId) -> Option<&Node> {
        let f = self.exec.frames.get(&id)?;
        Some(self.machine.node(f.machine, f.state))
    }

    // ---- entering and leaving states ----

    pub(super) fn enter(&mut self, id: FrameId) {
        let Some(v) = self.view(id) else { return };
        let event = Event::StateEntered {
            kind: v.node.kind,
            name: v.node.name.clone(),
            input: v.frame.input.to_string(),
        };
        let entered = self.emit(id, event);
        let now = self.now;
        if let Some(f) = self.exec.frames.get_mut(&id) {
            f.entered_ms = now;
            f.entered_event = entered;
            f.attempts.clear();
            f.retries = 0;
            f.stage = Stage::Run;
        }
    }

    /// Does the work of the frame's state.
    pub(super) fn run_state(&mut self, id: FrameId) {
        let Some(kind) = self.node_of(id).map(|n| n.kind) else {
            return;
        };
        // A Task state's new task (also on each retry): its token is in the context object.
        let task = (kind == StateKind::Task).then(|| {
            let secret = self.env.secret();
            let token = Token {
                execution: self.exec.id,
                seq: self.exec.next_seq,
                secret: secret.clone(),
            }
            .encode();
            (secret, token)
        });
        let Some(v) = self.view(id) else { return };
        let work = match (kind, task) {
            (StateKind::Pass, _) => states::pass::run(&v),
            (StateKind::Choice, _) => states::choice::run(&v),
            (StateKind::Succeed, _) => states::succeed::run(&v),
            (StateKind::Fail, _) => states::fail::run(&v).and_then(Err),
            (StateKind::Wait, _) => states::wait::run(&v, self.now),
            (StateKind::Parallel, _) => states::parallel::run(&v),
            (StateKind::Map, _) => states::map::run(&v),
            (StateKind::Task, Some((secret, token))) => {
                match states::task::run(&v, &token, &*self.env) {
                    Ok(Work::Activity(mut a)) => {
                        a.secret = secret;
                        Ok(Work::Activity(a))
                    }
                    Ok(Work::Call(mut c)) => {
                        c.secret = secret;
                        Ok(Work::Call(c))
                    }
                    other => other,
                }
            }
            (StateKind::Task, None) => Err(v.runtime("a Task state without its task")),
        };
        match work {
            Ok(w) => self.apply(id, w),
            Err(failure) => self.state_failed(id, failure),
        }
    }

    pub(super) fn apply(&mut self, id: FrameId, work: Work) {
        match work {
            Work::Exit {
                output,
                assigned,
                next,
            } => self.exit(id, output, assigned, next),
            Work::Sleep { until_ms } => {
                let d = self.start_timer(id, until_ms);
                self.set_stage(id, Stage::Wait(d));
            }
            Work::ScheduleFailed(failure) => {
                self.emit(
                    id,
                    Event::ActivityScheduleFailed {
                        error: Some(failure.error.clone()),
                        cause: Some(failure.cause.clone()),
                    },
                );
                self.state_failed(id, failure);
            }
            Work::Activity(a) => self.schedule_activity(id, a),
            Work::Call(c) => self.call(id, c),
            Work::ReadItems(plan) => self.begin_read(id, plan),
            Work::Fanout(plan) => self.begin_fanout(id, plan),
        }
    }

    pub(super) fn set_stage(&mut self, id: FrameId, stage: Stage) {
        if let Some(f) = self.exec.frames.get_mut(&id) {
            f.stage = stage;
        }
        self.exec.touch(id);
    }

    /// Leaves the frame's state with `output` for `next` (or the end of its machine).
    pub fn exit(
        &mut self,
        id: FrameId,
        output: Value,
        assigned: Map<String, Value>,
        next: Option<StateId>,
    ) {
        let Some(node) = self.node_of(id) else { return };
        let (kind, name) = (node.kind, node.name.clone());
        let output_text = output.to_string();
        if output_text.len() > MAX_PAYLOAD_BYTES {
            let failure = Failure::new(
                "States.DataLimitExceeded",
                format!(
                    "The state/task '{name}' returned a result with a size exceeding the \
                     maximum number of bytes service limit."
                ),
            );
            self.frame_done(id, Err(failure));
            return;
        }
        let assigned_text = (!assigned.is_empty()).then(|| {
            assigned
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        });
        self.emit(
            id,
            Event::StateExited {
                kind,
                name,
                output: output_text,
                assigned: assigned_text,
            },
        );
        let Some(f) = self.exec.frames.get_mut(&id) else {
            return;
        };
        f.vars.extend(assigned);
        match next {
            Some(n) => {
                f.state = n;
                f.input = output;
                f.stage = Stage::Enter;
                self.exec.enqueue(id);
            }
            None => self.frame_done(id, Ok(output)),
        }
    }

    // ---- errors ----

    /// The state failed: retry it, catch the error, or end the frame with it.
    pub fn state_failed(&mut self, id: FrameId, failure: Failure) {
        let Some(node) = self.node_of(id) else { return };
        let retriers = node.retriers();
        if let Some(i) = retriers
            .iter()
            .position(|r| matches_error(&r.error_equals, &failure.error))
        {
            let r = &retriers[i];
            let count = retriers.len();
            let used = self
                .exec
                .frames
                .get(&id)
                .and_then(|f| f.attempts.get(i).copied())
                .unwrap_or(0);
            if u64::from(used) < r.max_attempts.unwrap_or(3) {
                let unit = if r.jitter_strategy.as_deref() == Some("FULL") {
                    wfm_asl::entropy::unit()
                } else {
                    0.0
                };
                let delay = retry_delay_ms(r, used, unit);
                if let Some(f) = self.exec.frames.get_mut(&id) {
                    f.attempts.resize(count, 0);
                    f.attempts[i] += 1;
                    f.retries += 1;
                }
                if delay <= 0 {
                    self.set_stage(id, Stage::Run);
                    self.exec.enqueue(id);
                } else {
                    let d = self.start_timer(id, self.now + delay);
                    self.set_stage(id, Stage::Backoff(d));
                }
                return;
            }
        }
        if let Some(c) = node
            .catchers()
            .iter()
            .find(|c| matches_error(&c.error_equals, &failure.error))
        {
            let next = self.machine_of(id).and_then(|m| m.find(&c.next));
            let caught = self.view(id).map(|v| states::catch_output(&v, c, &failure));
            match (caught, next) {
                (Some(Ok((output, assigned))), Some(next)) => {
                    self.set_stage(id, Stage::Run);
                    self.exit(id, output, assigned, Some(next));
                }
                (Some(Err(f)), _) => self.frame_done(id, Err(f)),
                _ => self.frame_done(
                    id,
                    Err(Failure::new(
                        "States.Runtime",
                        format!("the catcher's Next state '{}' does not exist", c.next),
                    )),
                ),
            }
            return;
        }
        self.frame_done(id, Err(failure));
    }

    pub(super) fn machine_of(&self, id: FrameId) -> Option<&super::compiled::Machine> {
        let f = self.exec.frames.get(&id)?;
        Some(self.machine.machine(f.machine))
    }

    // ---- frames ending ----

    /// The frame's machine ended (with its output) or failed.
    pub(super) fn frame_done(&mut self, id: FrameId, result: Result<Value, Failure>) {
        let Some(frame) = self.exec.frames.remove(&id) else {
            return;
        };
        self.exec.changes.frames.remove(&id);
        self.release(&frame);
        match frame.parent {
            None => self.end(match result {
                Ok(v) => Ending::Succeeded(v.to_string()),
                Err(f) => Ending::Failed {
                    error: f.error,
                    cause: f.cause,
                },
            }),
            Some(p) => self.child_finished(p.frame, id, p.slot, Some(frame.chain), result),
        }
    }

    /// Withdraws what a frame waits for (its tasks, calls and timers).
    pub(super) fn release(&mut self, frame: &Frame) {
        for w in frame.waits_for() {
            self.exec.waits.remove(&w);
        }
        match &frame.stage {
            Stage::Wait(d) | Stage::Backoff(d) => self.command(Command::CancelTimer(*d)),
            Stage::Activity(_) => self.activity_over(&frame.stage),
            Stage::Call(c) => {
                self.end_call(c, true);
                if let Some(t) = c.timeout {
                    self.command(Command::CancelTimer(t));
                }
            }
            Stage::MapIo(io) => self.command(Command::EndCall {
                seq: io.seq,
                resource: io.resource.clone(),
                cancel: None,
            }),
            _ => {}
        }
    }

    /// A call is over; with `cancel`, its work (if it has started) is cancelled too.
    pub(super) fn end_call(&mut self, c: &CallWait, cancel: bool) {
        self.command(Command::EndCall {
            seq: c.seq,
            resource: c.resource.clone(),
            cancel: if cancel { c.handle() } else { None },
        });
    }

    /// Ends the execution: its closing event, and everything it waits for withdrawn.
    pub fn end(&mut self, ending: Ending) {
        if self.exec.ended.is_some() {
            return;
        }
        let event = match &ending {
            Ending::Succeeded(output) => Event::ExecutionSucceeded {
                output: output.clone(),
            },
            Ending::Failed { error, cause } => Event::ExecutionFailed {
                error: Some(error.clone()),
                cause: Some(cause.clone()),
            },
            Ending::Aborted { error, cause } => Event::ExecutionAborted {
                error: error.clone(),
                cause: cause.clone(),
            },
            Ending::TimedOut => Event::ExecutionTimedOut {
                error: Some("States.Timeout".into()),
                cause: None,
            },
        };
        // A map run still going is aborted with the execution (before its last event).
        let running_runs: Vec<FrameId> = self
            .exec
            .frames
            .iter()
            .filter(|(_, f)| matches!(&f.stage, Stage::Fanout(fan) if fan.map_run.is_some()))
            .map(|(id, _)| *id)
            .collect();
        for id in running_runs {
            self.emit(id, Event::MapRunAborted);
        }
        self.emit_last(event);
        let frames: Vec<Frame> = std::mem::take(&mut self.exec.frames)
            .into_values()
            .collect();
        for f in &frames {
            self.release(f);
        }
        if let Some(t) = self.exec.timeout.take() {
            self.command(Command::CancelTimer(t));
        }
        self.exec.queue.clear();
        self.exec.waits.clear();
        self.exec.changes = Default::default();
        self.exec.ended = Some(ending);
    }

    // ---- activity tasks and service calls ----

    pub(super) fn schedule_activity(&mut self, id: FrameId, a: states::ActivityPlan) {
        let seq = self.exec.seq();
        let scheduled = self.emit(
            id,
            Event::ActivityScheduled {
                resource: a.activity.clone(),
                input: a.input.clone(),
                timeout: a.timeout,
                heartbeat: a.heartbeat,
            },
        );
        let timeout = a
            .timeout
            .map(|t| self.start_timer(id, self.now + (t as i64) * 1000));
        self.exec.waits.insert(seq, id);
        self.command(Command::Schedule(NewTask {
            seq,
            activity: a.activity.clone(),
            input: a.input,
            secret: a.secret.clone(),
            heartbeat: a.heartbeat,
            scheduled_ms: self.now,
        }));
        self.set_stage(
            id,
            Stage::Activity(ActivityWait {
                seq,
                activity: a.activity,
                secret: a.secret,
                handed_out: false,
                scheduled_event: scheduled,
                scheduled_ms: self.now,
                started_event: None,
                timeout,
                heartbeat: a.heartbeat,
            }),
        );
    }

    pub(super) fn call(&mut self, id: FrameId, c: states::CallPlan) {
        let task = TaskRef {
            resource_type: c.info.resource_type.clone(),
            resource: operation(&c.resource).to_string(),
        };
        self.emit(
            id,
            Event::TaskScheduled {
                task: task.clone(),
                region: c.info.region.clone(),
                parameters: c.parameters.to_string(),
                timeout: c.timeout,
            },
        );
        self.emit(id, Event::TaskStarted { task });
        let seq = self.exec.seq();
        let timeout = c
            .timeout
            .map(|t| self.start_timer(id, self.now + (t as i64) * 1000));
        self.exec.waits.insert(seq, id);
        let key = self.call_key(seq, &c.secret);
        self.command(Command::Submit {
            seq,
            resource: c.resource.clone(),
            parameters: c.parameters.clone(),
            key,
        });
        let wait = CallWait {
            seq,
            resource: c.resource,
            parameters: c.parameters,
            phase: CallPhase::Submitting,
            timeout,
            secret: c.secret,
            heartbeat: c.heartbeat,
        };
        if wait.is_callback() {
            // Its token may come back before the submission's answer does.
            self.hold(&wait);
        }
        self.set_stage(id, Stage::Call(wait));
    }

    /// A call's idempotency key: its token's secret (random, stored with the call).
    pub(super) fn call_key(&self, seq: u32, secret: &str) -> String {
        if secret.is_empty() {
            format!("{}#{seq}", self.exec.meta.arn)
        } else {
            secret.to_string()
        }
    }

    /// Holds a callback task for its heartbeats.
    pub(super) fn hold(&mut self, c: &CallWait) {
        let scope = self
            .exec
            .meta
            .state_machine_arn
            .replace(":stateMachine:", ":activity:");
        self.command(Command::Hold {
            seq: c.seq,
            secret: c.secret.clone(),
            heartbeat: c.heartbeat,
            scope,
        });
    }

    /// The frame's wait is over: its stage goes back to Run (the state decides what next);
    /// returns the stage it had.
    pub(super) fn take_wait(&mut self, id: FrameId) -> Option<Stage> {
        let f = self.exec.frames.get_mut(&id)?;
        let stage = std::mem::replace(&mut f.stage, Stage::Run);
        self.exec.touch(id);
        for w in stage.waits() {
            self.exec.waits.remove(&w);
        }
        Some(stage)
    }

    pub(super) fn task_ref(&self, resource: &str) -> TaskRef {
        let resource_type = self
            .env
            .integration(resource)
            .map(|i| i.resource_type)
            .unwrap_or_default();
        TaskRef {
            resource_type,
            resource: operation(resource).to_string(),
        }
    }

    /// A task's or call's result: the state's output from it.
    pub(super) fn task_succeeded(
        &mut self,
        id: FrameId,
        resource: &str,
        result: &str,
        token: &str,
    ) {
        // A result over the limit fails the state (a catcher of States.ALL catches it, as on
        // AWS; the same limit on a state's output is not catchable).
        if result.len() > MAX_PAYLOAD_BYTES {
            self.state_failed(
                id,
                Failure::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The state/task '{resource}' returned a result with a size exceeding the \
                         maximum number of bytes service limit."
                    ),
                ),
            );
            return;
        }
        let work = self
            .view(id)
            .map(|v| states::task::finish(&v, result, token));
        match work {
            Some(Ok(w)) => self.apply(id, w),
            Some(Err(f)) => self.state_failed(id, f),
            None => {}
        }
    }
}
