//! The step machine: the States Language as a pure function. [`advance`] takes an execution's
//! state and what happened (a start, a timer, a worker's answer, a stop...) and changes the
//! state in place, returning the history events written and the commands to carry out
//! (schedule an activity task, start or cancel a timer, call a service integration). It knows
//! no clock, database, task runtime or randomness other than what its [`Env`] hands it; the
//! runtime commits its events and state changes in one transaction before acting on them.
//!
//! Every state type is a module of [`states`]; data flow, the context object, retries and
//! catchers, and Choice rules have modules of their own.

mod choice_rules;
pub mod compiled;
mod completions;
mod context;
mod dataflow;
mod distributed;
pub mod event;
pub mod execution;
mod fanout;
mod frames;
mod retry;
mod states;
pub mod token;

use serde_json::Value;

use compiled::Compiled;
use event::Recorded;
use execution::{Deadline, Execution};

pub use retry::Failure;

/// What happened to an execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// It was just created: enter its first state.
    Start,
    /// Nothing new: move on what is waiting to run (after a round that ran out of budget).
    Continue,
    /// It was loaded after a restart: carry out again what was in flight (service calls).
    Recover,
    /// A timer is due.
    Timer {
        /// The timer's number.
        seq: u32,
    },
    /// A worker was handed an activity task.
    Handout {
        /// The task's number.
        seq: u32,
        /// The secret of the token the worker got.
        secret: String,
        /// The worker's name.
        worker: Option<String>,
    },
    /// A worker answered an activity task.
    Answer {
        /// The task's number.
        seq: u32,
        /// The secret of the token it answered with.
        secret: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A handed-out task sent no heartbeat in time.
    HeartbeatLost {
        /// The task's number.
        seq: u32,
        /// The secret of its token.
        secret: String,
    },
    /// A service integration answered the submission of a call.
    Submitted {
        /// The call's number.
        seq: u32,
        /// Its handle and answer, or its failure.
        result: Result<Submission, Failure>,
    },
    /// The work of a `.sync` call ended.
    CallEnded {
        /// The call's number.
        seq: u32,
        /// The work's result, or its failure.
        result: Result<Value, Failure>,
    },
    /// StopExecution.
    Stop {
        /// Error.
        error: Option<String>,
        /// Cause.
        cause: Option<String>,
    },
}

/// A worker's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// SendTaskSuccess with this output (JSON text).
    Success(String),
    /// SendTaskFailure.
    Failure {
        /// Error.
        error: Option<String>,
        /// Cause.
        cause: Option<String>,
    },
}

/// What a service integration's submission returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// What the work is known by (to wait on or cancel it).
    pub handle: String,
    /// The call's answer (the task's result when the resource does not wait).
    pub output: Value,
}

/// Why a completion was refused (the caller's request fails with this).
#[derive(Debug, Clone, PartialEq)]
pub enum Reject {
    /// The token is not (or no longer) the task's.
    InvalidToken(String),
    /// The task is over (answered, timed out, or its execution ended).
    TaskTimedOut(String),
}

/// An activity task to make available to workers.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The task's number.
    pub seq: u32,
    /// The activity.
    pub activity: String,
    /// The task input (JSON text).
    pub input: String,
    /// The secret of its token.
    pub secret: String,
    /// `HeartbeatSeconds`.
    pub heartbeat: Option<u64>,
    /// When it was scheduled (epoch ms).
    pub scheduled_ms: i64,
}

/// What the runtime must do once the round is committed (the writes of each command are
/// part of the round's transaction).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Store an activity task and hand it to a worker.
    Schedule(NewTask),
    /// An activity task is over (answered, timed out, or its execution ended): forget it.
    Unschedule {
        /// The task's number.
        seq: u32,
        /// Its activity.
        activity: String,
        /// When it was scheduled.
        scheduled_ms: i64,
    },
    /// Store a timer and fire it when due.
    StartTimer(Deadline),
    /// A timer is no longer wanted.
    CancelTimer(Deadline),
    /// Call a service integration (record the call, then submit).
    Submit {
        /// The call's number.
        seq: u32,
        /// The resource ARN.
        resource: String,
        /// The effective parameters.
        parameters: Value,
        /// Unique to this call, the same after a restart (an idempotency key).
        key: String,
    },
    /// Wait for the work of a submitted `.sync` call.
    AwaitCall {
        /// The call's number.
        seq: u32,
        /// The resource ARN.
        resource: String,
        /// The work's handle.
        handle: String,
    },
    /// A callback task is out: hold it for its heartbeats (and, after a restart, again).
    Hold {
        /// The task's number.
        seq: u32,
        /// The secret of its token.
        secret: String,
        /// `HeartbeatSeconds`.
        heartbeat: Option<u64>,
        /// An activity-shaped ARN whose namespace scopes the token (access control): the
        /// execution's state machine name under `activity:`.
        scope: String,
    },
    /// A call is over: forget it, and cancel its work if `cancel` names it.
    EndCall {
        /// The call's number.
        seq: u32,
        /// The resource ARN.
        resource: String,
        /// The work to cancel (the state timed out or the execution was stopped).
        cancel: Option<String>,
    },
}

/// What the step machine needs from outside: the time, fresh secrets, and what exists.
pub trait Env {
    /// Now, in epoch milliseconds.
    fn now_ms(&self) -> i64;
    /// A new unguessable token secret.
    fn secret(&mut self) -> String;
    /// Whether an activity exists.
    fn activity_exists(&self, arn: &str) -> bool;
    /// The service integration that runs `resource`, if one is registered.
    fn integration(&self, resource: &str) -> Option<IntegrationInfo>;
}

/// A registered service integration, as its history events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationInfo {
    /// The service (`batch`).
    pub resource_type: String,
    /// The region its calls go to.
    pub region: String,
}

/// What one call of [`advance`] produced.
#[derive(Debug, Default)]
pub struct Round {
    /// History events, in id order.
    pub events: Vec<Recorded>,
    /// Commands, in order.
    pub commands: Vec<Command>,
    /// The answer to each completion given, in order.
    pub replies: Vec<Result<(), Reject>>,
    /// Whether frames are still waiting to run (the budget ran out).
    pub more: bool,
}

/// Applies `completions` to `exec`, then moves its frames on until they all wait or about
/// `budget` events are written.
pub fn advance(
    exec: &mut Execution,
    machine: &Compiled,
    completions: Vec<Completion>,
    env: &mut dyn Env,
    budget: usize,
) -> Round {
    let now = env.now_ms();
    let mut step = frames::Step {
        exec,
        machine,
        env,
        round: Round::default(),
        now,
        budget: budget.max(1),
    };
    for c in completions {
        let reply = step.complete(c);
        step.round.replies.push(reply);
    }
    step.run();
    step.round.more = step.exec.ended.is_none() && !step.exec.queue.is_empty();
    step.round
}

#[cfg(test)]
mod tests;
