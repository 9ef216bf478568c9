//! Activity tasks: a queue per activity that hands a scheduled task to a waiting poller at once
//! (or keeps it until one asks), the outstanding tasks by token, and the tokens themselves
//! (32 random bytes from the OS-seeded CSPRNG, so they cannot be guessed).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use tokio::sync::oneshot;
use tokio::time::Instant;

use wfm_asl::history::{ErrorDetails, OutputDetails, PayloadDetails};

use crate::error::EngineError;
use crate::log::ExecutionLog;

const TOKEN_PREFIX: &str = "wfm1.";

/// A new unguessable task token.
pub(crate) fn new_task_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks that a token is one this engine could have issued.
pub(crate) fn check_token_format(token: &str) -> Result<(), EngineError> {
    let malformed =
        || EngineError::InvalidToken("Invalid Token: 'Provided task token is malformed'".into());
    let body = token.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
    match URL_SAFE_NO_PAD.decode(body) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(malformed()),
    }
}

/// What a worker reported for a task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskOutcome {
    Success(String),
    Failure {
        error: Option<String>,
        cause: Option<String>,
    },
}

/// A task handed to a poller.
#[derive(Debug, Clone)]
pub struct ActivityTask {
    /// The token to answer with.
    pub task_token: String,
    /// The task input (JSON text).
    pub input: String,
}

/// An outstanding task.
pub(crate) struct TaskSlot {
    pub log: Arc<ExecutionLog>,
    /// The activity the task is for (access control checks answers against it).
    pub activity_arn: Arc<str>,
    /// The ActivityScheduled event (ActivityStarted follows it).
    pub scheduled_event_id: i64,
    /// The ActivityStarted event, once a worker took the task.
    pub started_event_id: Mutex<Option<i64>>,
    /// The waiting run, or `None` for a parked execution (the board's resumer continues it).
    outcome: Mutex<Option<oneshot::Sender<(TaskOutcome, i64)>>>,
    /// When a worker took it (the heartbeat clock starts then).
    pub started: Mutex<Option<Instant>>,
    pub last_heartbeat: Mutex<Option<Instant>>,
    /// When it was put on the board (dispatch latency and waiting age are measured from it).
    pub scheduled_at: Instant,
}

impl TaskSlot {
    /// A slot whose answer wakes the run waiting on `outcome`, or (`None`) resumes the parked
    /// execution through the board's resumer.
    pub fn new(
        log: Arc<ExecutionLog>,
        activity_arn: &str,
        scheduled_event_id: i64,
        outcome: Option<oneshot::Sender<(TaskOutcome, i64)>>,
    ) -> Self {
        Self {
            log,
            activity_arn: activity_arn.into(),
            scheduled_event_id,
            started_event_id: Mutex::new(None),
            outcome: Mutex::new(outcome),
            started: Mutex::new(None),
            last_heartbeat: Mutex::new(None),
            scheduled_at: Instant::now(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct ActivityQueue {
    ready: VecDeque<ActivityTask>,
    waiters: VecDeque<oneshot::Sender<ActivityTask>>,
}

/// Continues a parked execution, given its ARN.
pub(crate) type Resumer = Box<dyn Fn(&str) + Send + Sync>;

/// All activity queues and outstanding tasks.
#[derive(Default)]
pub(crate) struct ActivityBoard {
    queues: Mutex<HashMap<String, ActivityQueue>>,
    tasks: Mutex<HashMap<String, Arc<TaskSlot>>>,
    /// Tokens of tasks withdrawn because their execution stopped.
    retired: Mutex<HashSet<String>>,
    /// Continues a parked execution (by ARN) once its task's answer is recorded.
    resumer: std::sync::OnceLock<Resumer>,
}

impl ActivityBoard {
    /// Makes a task available to pollers of `activity_arn`.
    pub fn schedule(&self, activity_arn: &str, task: ActivityTask, slot: Arc<TaskSlot>) {
        lock(&self.tasks).insert(task.task_token.clone(), slot);
        let mut queues = lock(&self.queues);
        let queue = queues.entry(activity_arn.to_string()).or_default();
        let mut task = task;
        while let Some(waiter) = queue.waiters.pop_front() {
            match waiter.send(task) {
                Ok(()) => return,
                Err(back) => task = back,
            }
        }
        queue.ready.push_back(task);
    }

    fn take_ready(&self, activity_arn: &str) -> Option<ActivityTask> {
        let mut queues = lock(&self.queues);
        let queue = queues.get_mut(activity_arn)?;
        let tasks = lock(&self.tasks);
        while let Some(t) = queue.ready.pop_front() {
            if tasks.contains_key(&t.task_token) {
                return Some(t);
            }
        }
        None
    }

    /// Waits up to `wait` for a task of `activity_arn`.
    /// Waits up to `wait` for a task of the activity, or until `stop` turns true. Either way
    /// a task handed over meanwhile is kept, never dropped.
    pub async fn poll(
        &self,
        activity_arn: &str,
        wait: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<ActivityTask> {
        let mut rx = {
            let mut queues = lock(&self.queues);
            let queue = queues.entry(activity_arn.to_string()).or_default();
            let tasks = lock(&self.tasks);
            while let Some(t) = queue.ready.pop_front() {
                if tasks.contains_key(&t.task_token) {
                    return Some(t);
                }
            }
            let (tx, rx) = oneshot::channel();
            queue.waiters.push_back(tx);
            rx
        };
        let received = tokio::select! {
            r = &mut rx => r.ok(),
            _ = tokio::time::sleep(wait) => {
                // A task may have been handed over just as the wait ended: keep it.
                rx.close();
                rx.try_recv().ok()
            }
            _ = stop.wait_for(|s| *s) => {
                rx.close();
                rx.try_recv().ok()
            }
        };
        match received {
            Some(t) if lock(&self.tasks).contains_key(&t.task_token) => Some(t),
            // A task cancelled while in flight to this poller: look again without waiting.
            Some(_) => self.take_ready(activity_arn),
            None => None,
        }
    }

    /// The outstanding task with this token.
    pub fn slot(&self, token: &str) -> Result<Arc<TaskSlot>, EngineError> {
        check_token_format(token)?;
        let slot = lock(&self.tasks).get(token).cloned();
        slot.ok_or_else(|| self.gone(token))
    }

    /// Takes the outstanding task out of the board: of a worker's answer, a time-out and a
    /// stop, only the first to take it acts on it.
    pub fn take(&self, token: &str) -> Option<Arc<TaskSlot>> {
        lock(&self.tasks).remove(token)
    }

    /// The error for a token that is well formed but has no outstanding task: a task of a
    /// stopped execution is an invalid token (as in Step Functions), any other a finished one.
    fn gone(&self, token: &str) -> EngineError {
        if lock(&self.retired).contains(token) {
            EngineError::InvalidToken(
                "Invalid Token: 'Provided task token is invalid: the execution was stopped'".into(),
            )
        } else {
            EngineError::TaskDoesNotExist(
                "Task Does Not Exist: 'Provided task does not exist anymore'".into(),
            )
        }
    }

    /// Records the worker's answer in the history (before the answer is acknowledged, so no
    /// reported result is lost to a crash) and wakes the execution.
    pub fn complete(&self, token: &str, outcome: TaskOutcome) -> Result<(), EngineError> {
        check_token_format(token)?;
        let slot = self.take(token).ok_or_else(|| self.gone(token))?;
        let previous = read(&slot.started_event_id).unwrap_or(slot.scheduled_event_id);
        let recorded = match &outcome {
            TaskOutcome::Success(text) => {
                slot.log
                    .emit_durable_after(Some(previous), "ActivitySucceeded", |e| {
                        e.activity_succeeded_event_details = Some(OutputDetails {
                            output: Some(text.clone()),
                            output_details: Some(PayloadDetails { truncated: false }),
                        })
                    })?
            }
            TaskOutcome::Failure { error, cause } => {
                slot.log
                    .emit_durable_after(Some(previous), "ActivityFailed", |e| {
                        e.activity_failed_event_details = Some(ErrorDetails {
                            error: error.clone(),
                            cause: cause.clone(),
                        })
                    })?
            }
        };
        let Some(event_id) = recorded else {
            // The execution ended (stopped or timed out) while the worker was busy.
            return Err(self.gone(token));
        };
        let waiting = lock(&slot.outcome).take();
        match waiting {
            // The run may have been dropped meanwhile; then nobody listens.
            Some(tx) => {
                let _ = tx.send((outcome, event_id));
            }
            None => {
                if let Some(resume) = self.resumer.get() {
                    resume(&slot.log.arn);
                }
            }
        }
        Ok(())
    }

    /// Sets how parked executions are continued (once, by the engine).
    pub fn set_resumer(&self, resume: Resumer) {
        let _ = self.resumer.set(resume);
    }

    /// Withdraws every task (the engine halts); their tokens become invalid.
    pub fn retire_all(&self) {
        let mut tasks = lock(&self.tasks);
        lock(&self.retired).extend(tasks.drain().map(|(token, _)| token));
    }

    /// Forgets a task (its wait ended).
    pub fn remove(&self, token: &str) {
        lock(&self.tasks).remove(token);
    }

    /// Withdraws every task of a stopped execution; their tokens become invalid.
    pub fn remove_execution(&self, execution_arn: &str) {
        let mut tasks = lock(&self.tasks);
        let mut retired = lock(&self.retired);
        if retired.len() > 100_000 {
            retired.clear();
        }
        tasks.retain(|token, slot| {
            let keep = slot.log.arn != execution_arn;
            if !keep {
                retired.insert(token.clone());
            }
            keep
        });
    }

    /// Number of outstanding tasks.
    pub fn outstanding(&self) -> usize {
        lock(&self.tasks).len()
    }

    /// Tasks no worker has taken yet, and how long the oldest of them has waited.
    pub fn waiting(&self) -> (usize, Option<Duration>) {
        let now = Instant::now();
        let tasks = lock(&self.tasks);
        let mut count = 0;
        let mut oldest: Option<Duration> = None;
        for slot in tasks.values() {
            if read(&slot.started).is_none() {
                count += 1;
                let age = now.saturating_duration_since(slot.scheduled_at);
                oldest = Some(oldest.map_or(age, |o| o.max(age)));
            }
        }
        (count, oldest)
    }
}

/// Reads a slot's mutex-guarded field.
pub(crate) fn read<T: Copy>(m: &Mutex<T>) -> T {
    *lock(m)
}

/// Writes a slot's mutex-guarded field.
pub(crate) fn write<T>(m: &Mutex<T>, v: T) {
    *lock(m) = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_checked() {
        let a = new_task_token();
        let b = new_task_token();
        assert_ne!(a, b);
        assert!(check_token_format(&a).is_ok());
        assert!(check_token_format("bogus").is_err());
        assert!(check_token_format("wfm1.AAAA").is_err());
    }
}
