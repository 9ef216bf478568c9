//! Activity tasks for workers: long polls, answers and heartbeats. A task handed out is
//! recorded (ActivityStarted, committed) before the worker gets it; an answer is committed
//! before it is acknowledged. A task whose answer was committed is never handed out again;
//! one handed out and not answered may be, after a restart (at-least-once delivery, as Step
//! Functions), with another token: the old one then answers `InvalidToken`.

use std::time::Duration;

use serde_json::Value;

use crate::error::EngineError;
use crate::machine::token::Token;
use crate::machine::{Completion, Outcome};
use crate::runtime::activities::{Delivery, Held};
use crate::runtime::blocking;
use crate::{ActivityTask, Engine};

fn malformed() -> EngineError {
    EngineError::InvalidToken("Invalid Token: 'Invalid token'".into())
}

fn decode(token: &str) -> Result<Token, EngineError> {
    Token::decode(token).ok_or_else(malformed)
}

/// A task taken from its queue and not yet given to a worker: put back if dropped.
struct Requeue<'a> {
    engine: &'a Engine,
    activity: &'a str,
    task: Option<(i64, i64, u32)>,
}

impl Drop for Requeue<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            if !self.engine.halted() {
                self.engine.rt.activities.schedule(self.activity, t);
            }
        }
    }
}

impl Engine {
    /// Waits up to `wait` for a task of the activity; `None` when none came.
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<&str>,
        wait: Duration,
    ) -> Result<Option<ActivityTask>, EngineError> {
        let rt = &self.rt;
        rt.ensure_drivers();
        let known = rt
            .known_activities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(activity_arn);
        if !known {
            let a = activity_arn.to_string();
            if blocking(&rt.db, move |db| db.activity(&a)).await?.is_none() {
                return Err(EngineError::ActivityDoesNotExist(format!(
                    "Activity Does Not Exist: '{activity_arn}'"
                )));
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut draining = rt.draining.subscribe();
        loop {
            if *draining.borrow() {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let delivery = rt
                .activities
                .poll(activity_arn, worker_name, left, &mut draining)
                .await;
            let (scheduled_ms, execution, seq) = match delivery {
                None => return Ok(None),
                // Handed out in the round that scheduled it (this poller was waiting).
                Some(Delivery::Handed { ready, task }) => {
                    metrics::histogram!("wfm_activity_dispatch_seconds")
                        .record((rt.clock.now_ms() - ready.0).max(0) as f64 / 1000.0);
                    return Ok(Some(task));
                }
                Some(Delivery::Ready(ready)) => ready,
            };
            // Until the worker has it: if this request is dropped (its client went away), the
            // task goes back to the queue (handed out again with another token).
            let mut requeue = Requeue {
                engine: self,
                activity: activity_arn,
                task: Some((scheduled_ms, execution, seq)),
            };
            let Some(task) = blocking(&rt.db, move |db| db.task(execution, seq)).await? else {
                // Withdrawn (its execution stopped) since it was queued.
                requeue.task = None;
                continue;
            };
            // A task handed out before (and not answered) gets another token.
            let secret = match (&task.secret, task.handed_out) {
                (Some(s), false) => s.clone(),
                _ => {
                    let mut bytes = [0u8; 16];
                    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                    crate::machine::token::secret_from(bytes)
                }
            };
            let started = rt
                .deliver_and_wait(
                    execution,
                    Completion::Handout {
                        seq,
                        secret: secret.clone(),
                        worker: worker_name.map(str::to_string),
                    },
                )
                .await;
            if started.is_err() {
                requeue.task = None;
                continue;
            }
            metrics::histogram!("wfm_activity_dispatch_seconds")
                .record((rt.clock.now_ms() - scheduled_ms).max(0) as f64 / 1000.0);
            let deadline_ms = task
                .heartbeat
                .map(|h| rt.clock.now_ms() + (h as i64) * 1000);
            if let Some(d) = deadline_ms {
                rt.heartbeats.insert((d, execution, seq));
            }
            rt.activities.hold(
                execution,
                seq,
                Held {
                    activity: activity_arn.to_string(),
                    secret: secret.clone(),
                    heartbeat: task.heartbeat,
                    deadline_ms,
                },
            );
            requeue.task = None;
            return Ok(Some(ActivityTask {
                task_token: Token {
                    execution,
                    seq,
                    secret,
                }
                .encode(),
                input: task.input.unwrap_or_else(|| "{}".into()),
            }));
        }
    }

    /// Ends every waiting GetActivityTask long poll with "no task", now and from now on: the
    /// service is shutting down, and a poll must not hold its answer (or the shutdown) for a
    /// minute. Executions and their tasks are untouched.
    pub fn drain_polls(&self) {
        self.rt.draining.send_replace(true);
    }

    /// Reports a task's success (`output` must be JSON); returns once it is committed.
    pub async fn send_task_success(&self, token: &str, output: &str) -> Result<(), EngineError> {
        let t = decode(token)?;
        serde_json::from_str::<Value>(output)
            .map_err(|e| EngineError::InvalidOutput(format!("Invalid Output: '{e}'")))?;
        self.answer(t, Outcome::Success(output.to_string())).await
    }

    /// Reports a task's failure; returns once it is committed.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), EngineError> {
        let t = decode(token)?;
        self.answer(
            t,
            Outcome::Failure {
                error: error.map(str::to_string),
                cause: cause.map(str::to_string),
            },
        )
        .await
    }

    async fn answer(&self, t: Token, outcome: Outcome) -> Result<(), EngineError> {
        self.rt.ensure_drivers();
        self.rt
            .deliver_and_wait(
                t.execution,
                Completion::Answer {
                    seq: t.seq,
                    secret: t.secret,
                    outcome,
                },
            )
            .await
    }

    /// The activity ARN of a task a worker holds, by its token.
    pub fn task_activity(&self, token: &str) -> Option<String> {
        let t = Token::decode(token)?;
        let held = self.rt.activities.held(t.execution, t.seq)?;
        (held.secret == t.secret).then_some(held.activity)
    }

    /// Records a heartbeat of a task a worker holds.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        let t = decode(token)?;
        let rt = &self.rt;
        match rt.activities.held(t.execution, t.seq) {
            Some(h) if h.secret == t.secret => {
                if let Some((old, new)) = rt.activities.beat(t.execution, t.seq, rt.clock.now_ms())
                {
                    rt.heartbeats.remove((old, t.execution, t.seq));
                    rt.heartbeats.insert((new, t.execution, t.seq));
                }
                Ok(())
            }
            Some(_) => Err(EngineError::InvalidToken(
                "Invalid Token: 'Provided task token is invalid: the task was handed out again'"
                    .into(),
            )),
            None => {
                let (x, seq) = (t.execution, t.seq);
                let (row, task) = blocking(&rt.db, move |db| {
                    Ok((db.execution_by_id(x)?, db.task(x, seq)?))
                })
                .await?;
                match (row, task) {
                    (None, _) => Err(EngineError::InvalidToken(
                        "Invalid Token: 'Invalid token'".into(),
                    )),
                    (_, Some(task)) if task.secret.as_deref() == Some(t.secret.as_str()) => Ok(()),
                    _ => Err(EngineError::TaskTimedOut(
                        "Task Timed Out: 'Provided task does not exist anymore'".into(),
                    )),
                }
            }
        }
    }

    /// Activity tasks no worker has taken yet, and how long the oldest has waited.
    pub fn waiting_tasks(&self) -> (usize, Option<Duration>) {
        let (count, oldest) = self.rt.activities.waiting();
        let now = self.rt.clock.now_ms();
        (
            count,
            oldest.map(|at| Duration::from_millis((now - at).max(0) as u64)),
        )
    }

    /// Number of activity tasks scheduled and not yet answered.
    pub fn outstanding_tasks(&self) -> usize {
        self.rt.activities.waiting().0 + self.rt.activities.held_count()
    }
}
