//! How frames move: the run queue, entering and leaving states, what a state's work turns
//! into (a wait, a task, a call, branches), retries and catchers, a frame's end and its report
//! to its Parallel or Map, and the execution's end. The state modules compute; this module
//! changes the execution and writes the events and commands.

use serde_json::{json, Map, Value};
use wfm_asl::path::apply_result_path;
use wfm_asl::path::expand_template;

use super::compiled::{Compiled, Node, StateId};
use super::dataflow::Bindings;
use super::event::{Event, Recorded, StateKind, TaskRef};
use super::execution::{
    ActivityWait, CallPhase, CallWait, Deadline, Ending, Execution, Fanout, Frame, FrameId, Stage,
};
use super::retry::{matches_error, retry_delay_ms, Failure};
use super::states::{self, Plan, View, Work};
use super::token::Token;
use super::{Command, Completion, Env, NewTask, Outcome, Reject, Round};

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
    resource.rsplit(':').next().unwrap_or(resource)
}

/// Whether the resource waits for the work to end (`.sync`).
pub fn waits_for_work(resource: &str) -> bool {
    resource.ends_with(".sync")
}

fn task_gone() -> Reject {
    Reject::TaskDoesNotExist("Task Does Not Exist: 'Provided task does not exist anymore'".into())
}

fn stale_token() -> Reject {
    Reject::InvalidToken(
        "Invalid Token: 'Provided task token is invalid: the task was handed out again'".into(),
    )
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
    fn emit_last(&mut self, event: Event) -> i64 {
        let previous = self.exec.next_event - 1;
        self.emit_after(previous, event)
    }

    fn command(&mut self, c: Command) {
        self.round.commands.push(c);
    }

    fn start_timer(&mut self, frame: FrameId, due_ms: i64) -> Deadline {
        let d = Deadline {
            timer: self.exec.seq(),
            due_ms,
        };
        self.exec.waits.insert(d.timer, frame);
        self.command(Command::StartTimer(d));
        d
    }

    fn cancel_timer(&mut self, d: Deadline) {
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
    fn step_frame(&mut self, id: FrameId) {
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

    fn view(&self, id: FrameId) -> Option<View<'_>> {
        let frame = self.exec.frames.get(&id)?;
        Some(View {
            frame,
            node: self.machine.node(frame.machine, frame.state),
            machine: self.machine.machine(frame.machine),
            meta: &self.exec.meta,
        })
    }

    fn node_of(&self, id: FrameId) -> Option<&Node> {
        let f = self.exec.frames.get(&id)?;
        Some(self.machine.node(f.machine, f.state))
    }

    // ---- entering and leaving states ----

    fn enter(&mut self, id: FrameId) {
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
    fn run_state(&mut self, id: FrameId) {
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

    fn apply(&mut self, id: FrameId, work: Work) {
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
            Work::Fanout(plan) => self.begin_fanout(id, plan),
        }
    }

    fn set_stage(&mut self, id: FrameId, stage: Stage) {
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
            let caught = self.view(id).map(|v| catch_output(&v, c, &failure));
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

    fn machine_of(&self, id: FrameId) -> Option<&super::compiled::Machine> {
        let f = self.exec.frames.get(&id)?;
        Some(self.machine.machine(f.machine))
    }

    // ---- frames ending ----

    /// The frame's machine ended (with its output) or failed.
    fn frame_done(&mut self, id: FrameId, result: Result<Value, Failure>) {
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
    fn release(&mut self, frame: &Frame) {
        for w in frame.waits_for() {
            self.exec.waits.remove(&w);
        }
        match &frame.stage {
            Stage::Wait(d) | Stage::Backoff(d) => self.command(Command::CancelTimer(*d)),
            Stage::Activity(a) => {
                self.command(Command::Unschedule {
                    seq: a.seq,
                    activity: a.activity.clone(),
                    scheduled_ms: a.scheduled_ms,
                });
                if let Some(t) = a.timeout {
                    self.command(Command::CancelTimer(t));
                }
            }
            Stage::Call(c) => {
                let cancel = match &c.phase {
                    CallPhase::Waiting { handle } => Some(handle.clone()),
                    CallPhase::Submitting => None,
                };
                self.command(Command::EndCall {
                    seq: c.seq,
                    resource: c.resource.clone(),
                    cancel,
                });
                if let Some(t) = c.timeout {
                    self.command(Command::CancelTimer(t));
                }
            }
            _ => {}
        }
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

    fn schedule_activity(&mut self, id: FrameId, a: states::ActivityPlan) {
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

    fn call(&mut self, id: FrameId, c: states::CallPlan) {
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
        self.command(Command::Submit {
            seq,
            resource: c.resource.clone(),
            parameters: c.parameters.clone(),
        });
        self.set_stage(
            id,
            Stage::Call(CallWait {
                seq,
                resource: c.resource,
                parameters: c.parameters,
                phase: CallPhase::Submitting,
                timeout,
            }),
        );
    }

    /// The frame's wait is over: its stage goes back to Run (the state decides what next);
    /// returns the stage it had.
    fn take_wait(&mut self, id: FrameId) -> Option<Stage> {
        let f = self.exec.frames.get_mut(&id)?;
        let stage = std::mem::replace(&mut f.stage, Stage::Run);
        self.exec.touch(id);
        for w in stage.waits() {
            self.exec.waits.remove(&w);
        }
        Some(stage)
    }

    fn task_ref(&self, resource: &str) -> TaskRef {
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
    fn task_succeeded(&mut self, id: FrameId, result: &str, token: &str) {
        let work = self
            .view(id)
            .map(|v| states::task::finish(&v, result, token));
        match work {
            Some(Ok(w)) => self.apply(id, w),
            Some(Err(f)) => self.state_failed(id, f),
            None => {}
        }
    }

    // ---- Parallel and Map ----

    fn begin_fanout(&mut self, id: FrameId, plan: Plan) {
        let started = match &plan.items {
            None => self.emit(id, Event::ParallelStateStarted),
            Some(items) => self.emit(
                id,
                Event::MapStateStarted {
                    length: items.items.len(),
                },
            ),
        };
        let fan = Fanout {
            total: plan.total,
            next: 0,
            running: 0,
            limit: plan.limit.max(1),
            failed: 0,
            tolerated_count: plan.tolerated_count,
            tolerated_percentage: plan.tolerated_percentage,
            started_event: started,
            results: vec![None; plan.total as usize],
            items: plan.items.clone(),
        };
        if let Some(items) = &plan.items {
            self.exec.changes.items.push((id, items.clone()));
        }
        self.set_stage(id, Stage::Fanout(fan));
        if plan.total == 0 {
            self.fanout_complete(id);
            return;
        }
        match plan.branch_input {
            // A Parallel starts every branch at once, the first one first.
            Some(input) => {
                let children: Vec<FrameId> = (0..plan.total)
                    .filter_map(|i| self.new_child(id, i, input.clone(), started))
                    .collect();
                if let Some(Stage::Fanout(f)) = self.exec.frames.get_mut(&id).map(|f| &mut f.stage)
                {
                    f.next = plan.total;
                    f.running = children.len() as u32;
                }
                for c in children.into_iter().rev() {
                    self.exec.enqueue_first(c);
                }
            }
            None => self.exec.enqueue_first(id),
        }
    }

    /// A new branch or iteration frame of the fanout in `parent`, at `slot`.
    fn new_child(
        &mut self,
        parent: FrameId,
        slot: u32,
        input: Value,
        chain: i64,
    ) -> Option<FrameId> {
        let (machine, vars) = {
            let f = self.exec.frames.get(&parent)?;
            let node = self.machine.node(f.machine, f.state);
            let machine = if node.kind == StateKind::Parallel {
                *node.children.get(slot as usize)?
            } else {
                *node.children.first()?
            };
            (machine, f.vars.clone())
        };
        let start = self.machine.machine(machine).start;
        let child = self.exec.next_frame;
        self.exec.next_frame += 1;
        self.exec.frames.insert(
            child,
            Frame::new(
                Some(super::execution::Parent {
                    frame: parent,
                    slot,
                }),
                machine,
                start,
                input,
                vars,
                chain,
            ),
        );
        self.exec.touch(child);
        Some(child)
    }

    /// Starts the Map's next iteration if its concurrency allows; the iteration runs first,
    /// then the Map is looked at again (depth first: one iteration's frames at a time while
    /// they do not wait).
    fn spawn_iterations(&mut self, id: FrameId) {
        let (slot, items, name, started) = {
            let Some(f) = self.exec.frames.get_mut(&id) else {
                return;
            };
            let Stage::Fanout(fan) = &mut f.stage else {
                return;
            };
            if fan.next >= fan.total || fan.running >= fan.limit {
                return;
            }
            let Some(items) = fan.items.clone() else {
                return;
            };
            let slot = fan.next;
            fan.next += 1;
            fan.running += 1;
            let node = self.machine.node(f.machine, f.state);
            (slot, items, node.name.clone(), fan.started_event)
        };
        self.exec.touch(id);
        let input = self
            .view(id)
            .map(|v| states::map::iteration_input(&v, &items, slot));
        match input {
            Some(Ok(input)) => {
                let chain = self.emit_after(
                    started,
                    Event::MapIterationStarted {
                        name,
                        index: slot as usize,
                    },
                );
                if let Some(child) = self.new_child(id, slot, input, chain) {
                    self.exec.enqueue_first(id);
                    self.exec.enqueue_first(child);
                }
            }
            // Its ItemSelector failed: the iteration fails before it starts.
            Some(Err(f)) => self.child_finished(id, u32::MAX, slot, None, Err(f)),
            None => {}
        }
    }

    /// A branch or iteration ended.
    fn child_finished(
        &mut self,
        parent: FrameId,
        child: FrameId,
        slot: u32,
        chain: Option<i64>,
        result: Result<Value, Failure>,
    ) {
        let Some(node) = self.node_of(parent) else {
            return;
        };
        let (is_map, name) = (node.kind == StateKind::Map, node.name.clone());
        if let (true, Some(chain)) = (is_map, chain) {
            let (name, index) = (name, slot as usize);
            let event = if result.is_ok() {
                Event::MapIterationSucceeded { name, index }
            } else {
                Event::MapIterationFailed { name, index }
            };
            self.emit_after(chain, event);
        }
        let Some(Stage::Fanout(fan)) = self.exec.frames.get_mut(&parent).map(|f| &mut f.stage)
        else {
            return;
        };
        fan.running = fan.running.saturating_sub(1);
        let value = match result {
            Ok(v) => v,
            Err(f) if !is_map => return self.fanout_failed(parent, f),
            Err(f) => {
                fan.failed += 1;
                let total = fan.total as f64;
                let failed = fan.failed;
                let by_count = fan.tolerated_count.is_some_and(|c| i64::from(failed) <= c);
                let by_pct = fan
                    .tolerated_percentage
                    .is_some_and(|p| total > 0.0 && f64::from(failed) * 100.0 / total <= p);
                if !(by_count || by_pct) {
                    let failure =
                        if fan.tolerated_count.is_some() || fan.tolerated_percentage.is_some() {
                            Failure::new(
                                "States.ExceedToleratedFailureThreshold",
                                "The specified tolerated failure threshold was exceeded",
                            )
                        } else {
                            f
                        };
                    return self.fanout_failed(parent, failure);
                }
                json!({"Error": f.error, "Cause": f.cause})
            }
        };
        if let Some(r) = fan.results.get_mut(slot as usize) {
            *r = Some(value.clone());
        }
        let done = fan.running == 0 && fan.next >= fan.total;
        let more = fan.next < fan.total && fan.running < fan.limit;
        let generation = fan.started_event;
        self.exec.touch(parent);
        let key = if child != u32::MAX {
            child
        } else {
            // No frame: the result is kept under a frame number of its own.
            let key = self.exec.next_frame;
            self.exec.next_frame += 1;
            key
        };
        self.exec
            .changes
            .results
            .push((parent, key, slot, value, generation));
        if done {
            self.fanout_complete(parent);
        } else if more {
            self.exec.enqueue(parent);
        }
    }

    /// Every branch or iteration succeeded (or failed within tolerance).
    fn fanout_complete(&mut self, id: FrameId) {
        let Some(f) = self.exec.frames.get_mut(&id) else {
            return;
        };
        let Stage::Fanout(fan) = std::mem::replace(&mut f.stage, Stage::Run) else {
            return;
        };
        let is_map = fan.items.is_some();
        self.exec.changes.fanouts_ended.push(id);
        self.emit(
            id,
            if is_map {
                Event::MapStateSucceeded
            } else {
                Event::ParallelStateSucceeded
            },
        );
        let results: Vec<Value> = fan
            .results
            .into_iter()
            .map(|r| r.unwrap_or(Value::Null))
            .collect();
        let work = self
            .view(id)
            .map(|v| states::fanout_finish(&v, Value::Array(results)));
        match work {
            Some(Ok(w)) => self.apply(id, w),
            Some(Err(f)) => self.state_failed(id, f),
            None => {}
        }
    }

    /// A branch failed (or too many iterations): the others are withdrawn.
    fn fanout_failed(&mut self, id: FrameId, failure: Failure) {
        self.abort_children(id);
        let is_map = matches!(self.node_of(id).map(|n| n.kind), Some(StateKind::Map));
        self.exec.changes.fanouts_ended.push(id);
        self.set_stage(id, Stage::Run);
        self.emit(
            id,
            if is_map {
                Event::MapStateFailed
            } else {
                Event::ParallelStateFailed
            },
        );
        self.state_failed(id, failure);
    }

    /// Removes every frame below `parent`, withdrawing what they wait for.
    fn abort_children(&mut self, parent: FrameId) {
        let mut below = vec![parent];
        let mut i = 0;
        while i < below.len() {
            let p = below[i];
            below.extend(
                self.exec
                    .frames
                    .iter()
                    .filter(|(_, f)| f.parent.is_some_and(|x| x.frame == p))
                    .map(|(id, _)| *id),
            );
            i += 1;
        }
        for id in below.into_iter().skip(1) {
            if let Some(f) = self.exec.frames.remove(&id) {
                self.exec.changes.frames.remove(&id);
                if matches!(f.stage, Stage::Fanout(_)) {
                    self.exec.changes.fanouts_ended.push(id);
                }
                self.release(&f);
            }
        }
    }

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
                let calls: Vec<(u32, String, CallPhase, Value)> = self
                    .exec
                    .frames
                    .values()
                    .filter_map(|f| match &f.stage {
                        Stage::Call(c) => Some((
                            c.seq,
                            c.resource.clone(),
                            c.phase.clone(),
                            c.parameters.clone(),
                        )),
                        _ => None,
                    })
                    .collect();
                for (seq, resource, phase, parameters) in calls {
                    self.command(match phase {
                        CallPhase::Submitting => Command::Submit {
                            seq,
                            resource,
                            parameters,
                        },
                        CallPhase::Waiting { handle } => Command::AwaitCall {
                            seq,
                            resource,
                            handle,
                        },
                    });
                }
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
                let id = self.activity_frame(seq, &secret)?;
                if let Some(taken) = self.take_wait(id) {
                    self.activity_over(&taken);
                }
                self.emit(
                    id,
                    Event::ActivityTimedOut {
                        error: Some("States.HeartbeatTimeout".into()),
                        cause: None,
                    },
                );
                self.state_failed(id, Failure::new("States.HeartbeatTimeout", ""));
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

    /// The frame whose activity task `seq` is out with this secret.
    fn activity_frame(&self, seq: u32, secret: &str) -> Result<FrameId, Reject> {
        let id = *self.exec.waits.get(&seq).ok_or_else(task_gone)?;
        match self.exec.frames.get(&id).map(|f| &f.stage) {
            Some(Stage::Activity(a)) if a.seq == seq => {
                if a.secret == secret {
                    Ok(id)
                } else {
                    Err(stale_token())
                }
            }
            _ => Err(task_gone()),
        }
    }

    /// An activity task is over: forget it and its time-out.
    fn activity_over(&mut self, taken: &Stage) {
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

    fn handout(&mut self, seq: u32, secret: String, worker: Option<String>) -> Result<(), Reject> {
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

    fn answer(&mut self, seq: u32, secret: &str, outcome: Outcome) -> Result<(), Reject> {
        let id = self.activity_frame(seq, secret)?;
        let Some(taken) = self.take_wait(id) else {
            return Err(task_gone());
        };
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
                self.task_succeeded(id, &text, &token);
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

    fn timer_fired(&mut self, seq: u32) {
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
                if let Some(taken) = self.take_wait(id) {
                    self.activity_over(&taken);
                }
                self.emit(
                    id,
                    Event::ActivityTimedOut {
                        error: Some("States.Timeout".into()),
                        cause: None,
                    },
                );
                self.state_failed(id, Failure::new("States.Timeout", ""));
            }
            Some(Stage::Call(c)) if c.timeout.is_some_and(|t| t.timer == seq) => {
                self.take_wait(id);
                let cancel = match &c.phase {
                    CallPhase::Waiting { handle } => Some(handle.clone()),
                    CallPhase::Submitting => None,
                };
                self.command(Command::EndCall {
                    seq: c.seq,
                    resource: c.resource.clone(),
                    cancel,
                });
                let task = self.task_ref(&c.resource);
                self.emit(
                    id,
                    Event::TaskTimedOut {
                        task,
                        error: "States.Timeout".into(),
                        cause: String::new(),
                    },
                );
                self.state_failed(id, Failure::new("States.Timeout", ""));
            }
            _ => {}
        }
    }

    /// The frame whose call `seq` is out.
    fn call_frame(&self, seq: u32) -> Option<(FrameId, CallWait)> {
        let id = *self.exec.waits.get(&seq)?;
        match self.exec.frames.get(&id).map(|f| &f.stage) {
            Some(Stage::Call(c)) if c.seq == seq => Some((id, c.clone())),
            _ => None,
        }
    }

    fn call_failed(&mut self, id: FrameId, c: &CallWait, failure: Failure) {
        self.take_wait(id);
        if let Some(t) = c.timeout {
            self.cancel_timer(t);
        }
        self.command(Command::EndCall {
            seq: c.seq,
            resource: c.resource.clone(),
            cancel: None,
        });
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

    fn call_succeeded(&mut self, id: FrameId, c: &CallWait, output: Value) {
        self.take_wait(id);
        if let Some(t) = c.timeout {
            self.cancel_timer(t);
        }
        self.command(Command::EndCall {
            seq: c.seq,
            resource: c.resource.clone(),
            cancel: None,
        });
        let text = output.to_string();
        let task = self.task_ref(&c.resource);
        self.emit(
            id,
            Event::TaskSucceeded {
                task,
                output: text.clone(),
            },
        );
        self.task_succeeded(id, &text, "");
    }

    fn submitted(&mut self, seq: u32, result: Result<super::Submission, Failure>) {
        let Some((id, c)) = self.call_frame(seq) else {
            return;
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
                if waits_for_work(&c.resource) {
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

    fn call_ended(&mut self, seq: u32, result: Result<Value, Failure>) {
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

/// A catcher's output and assignments for `failure`.
fn catch_output(
    v: &View<'_>,
    c: &wfm_asl::definition::Catcher,
    failure: &Failure,
) -> Result<(Value, Map<String, Value>), Failure> {
    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
    let raw = &v.frame.input;
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let mut assigned = Map::new();
    if v.node.jsonata {
        let bindings = Bindings::new(raw, ctx).with("errorOutput", &error_output);
        if let Some(a) = &c.assign {
            if let Value::Object(o) = bindings.eval(a, "Assign").map_err(|e| v.flow(e))? {
                assigned = o;
            }
        }
        let output = match &c.output {
            Some(t) => bindings.eval(t, "Output").map_err(|e| v.flow(e))?,
            None => error_output,
        };
        return Ok((output, assigned));
    }
    if let Some(a) = &c.assign {
        if let Value::Object(o) =
            expand_template(a, &error_output, &ctx).map_err(|e| v.runtime(e))?
        {
            assigned = o;
        }
    }
    let output =
        apply_result_path(c.result_path.as_ref(), raw, error_output).map_err(|e| v.runtime(e))?;
    Ok((output, assigned))
}
