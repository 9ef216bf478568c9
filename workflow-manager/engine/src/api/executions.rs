//! Executions: start (its first round committed with its row), describe, list, stop, history,
//! and what a restart does: read back what is due and what is out, and move on what was left
//! to run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{check_name, page_size};
use crate::error::EngineError;
use crate::machine::execution::{Execution, Meta};
use crate::machine::Completion;
use crate::runtime::{blocking, Resident};
use crate::store::write::{NewExecution, Parent};
use crate::{Engine, ExecutionInfo, HistoryPage};

impl Engine {
    /// Starts an execution. A name already used with the same input returns the running
    /// execution; with another input it is `ExecutionAlreadyExists`.
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionInfo, EngineError> {
        self.start_execution_from(state_machine_arn, name, input, None)
            .await
    }

    /// Starts an execution for a Task of another (`parent`): the same call starting it
    /// again (after a restart) gets the execution it started, whatever its status.
    pub(crate) async fn start_execution_from(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
        parent: Option<Parent>,
    ) -> Result<ExecutionInfo, EngineError> {
        let rt = &self.rt;
        rt.ensure_drivers();
        // A version's or alias's ARN runs that version's revision of the state machine.
        let (base_arn, pinned, qualifier) = self.resolve_start(state_machine_arn).await?;
        let state_machine_arn = base_arn.as_str();
        // Every state machine of the database is in the runtime's cache (read at open, kept
        // on every change); its rows are read only when it is not.
        let cached = rt
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(state_machine_arn)
            .cloned();
        let machine = match cached {
            Some(m) => m,
            None => {
                let arn_in = state_machine_arn.to_string();
                let row = blocking(&rt.db, move |db| db.state_machine(&arn_in))
                    .await?
                    .ok_or_else(|| {
                        EngineError::StateMachineDoesNotExist(format!(
                            "State Machine Does Not Exist: '{state_machine_arn}'"
                        ))
                    })?;
                crate::runtime::MachineEntry {
                    name: row.name,
                    role_arn: row.role_arn,
                    machine_type: row.machine_type,
                    revision: row.revision,
                }
            }
        };
        let name = match name {
            Some(n) => n.to_string(),
            // Time-ordered, like the service's workflow ids: new keys go to the end of the
            // executions' index.
            None => uuid::Uuid::now_v7().to_string(),
        };
        check_name(&name, "execution")?;
        let input_text = input.unwrap_or("{}");
        let input_value: Value = serde_json::from_str(input_text).map_err(|e| {
            EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: '{e}'"
            ))
        })?;
        // An EXPRESS execution's ARN has AWS's form: `...:express:MACHINE:NAME:UUID`.
        let arn = if machine.machine_type == "EXPRESS" {
            self.arn(
                "express",
                &format!("{}:{name}:{}", machine.name, uuid::Uuid::new_v4()),
            )
        } else {
            self.arn("execution", &format!("{}:{name}", machine.name))
        };
        let machine_arn = state_machine_arn.to_string();
        let (revision, role_arn) = match pinned {
            Some((revision, role)) => (revision, role),
            None => (machine.revision, machine.role_arn.clone()),
        };
        let compiled = match rt.compile(revision, None) {
            Ok(c) => c,
            Err(_) => {
                let text = blocking(&rt.db, move |db| db.revision(revision)).await?;
                rt.compile(revision, text)?
            }
        };
        // Milliseconds, as stored: the start date reads back the same.
        let start_ms = rt.clock.now_ms();
        let meta = Arc::new(Meta::new(
            arn.clone(),
            name.clone(),
            machine_arn.clone(),
            machine.name.clone(),
            role_arn,
            machine.machine_type == "EXPRESS",
            start_ms,
            input_value.clone(),
        ));
        let id = rt
            .next_execution
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let start = compiled.machine(0).start;
        let resident = Resident {
            exec: Execution::new(id, meta, start),
            compiled,
        };
        let insert = NewExecution {
            id,
            arn: arn.clone(),
            state_machine_arn: machine_arn.clone(),
            name: name.clone(),
            input: input_text.to_string(),
            start_ms,
            revision,
            parent: parent.clone(),
            qualifier,
        };
        // The first round runs in a task of its own: a caller that goes away meanwhile (a
        // dropped request) cannot leave the new execution half started.
        let started = tokio::spawn(rt.clone().start(resident, insert))
            .await
            .map_err(|e| EngineError::Storage(format!("the start was interrupted: {e}")))?;
        match started {
            Ok(status) => {
                let info = ExecutionInfo {
                    execution_arn: arn,
                    state_machine_arn: machine_arn,
                    name,
                    status: status.to_string(),
                    input: input_text.to_string(),
                    output: None,
                    error: None,
                    cause: None,
                    start_date: crate::store::from_ms(start_ms),
                    stop_date: None,
                };
                Ok(info)
            }
            // The name is taken: the same input while it runs is the same start (idempotent).
            Err(EngineError::ExecutionAlreadyExists(m)) => {
                let a = arn.clone();
                let found = blocking(&rt.db, move |db| {
                    let Some(row) = db.execution(&a)? else {
                        return Ok(None);
                    };
                    let by = db.parent(row.id)?;
                    Ok(Some((row, by)))
                })
                .await?;
                match found {
                    Some((existing, by)) if parent.is_some() && by == parent => Ok(existing.into()),
                    Some((existing, _))
                        if existing.status == "RUNNING"
                            && serde_json::from_str::<Value>(&existing.input).ok()
                                == Some(input_value) =>
                    {
                        Ok(existing.into())
                    }
                    _ => Err(EngineError::ExecutionAlreadyExists(m)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The execution whose Task started this one (a nested execution), if any.
    pub async fn parent_execution(&self, arn: &str) -> Result<Option<String>, EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| {
            let Some(row) = db.execution(&a)? else {
                return Ok(None);
            };
            Ok(db.parent(row.id)?.map(|p| p.execution_arn))
        })
        .await
    }

    /// The executions this one's Tasks started, oldest first.
    pub async fn child_executions(&self, arn: &str) -> Result<Vec<String>, EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.children(&a)).await
    }

    /// Runs an EXPRESS state machine's execution to its end and returns it.
    pub async fn start_sync_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionInfo, EngineError> {
        let machine = self.describe_state_machine(state_machine_arn).await?;
        if machine.machine_type != "EXPRESS" {
            return Err(EngineError::StateMachineTypeNotSupported(
                "This operation is only supported by EXPRESS state machines".into(),
            ));
        }
        let mut changes = self.rt.finished.subscribe();
        let started = self.start_execution(state_machine_arn, name, input).await?;
        loop {
            let e = self.describe_execution(&started.execution_arn).await?;
            if e.status != "RUNNING" {
                return Ok(e);
            }
            // Woken by any execution ending; a missed wake-up costs at most the poll interval.
            let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
        }
    }

    /// Describes an execution.
    pub async fn describe_execution(&self, arn: &str) -> Result<ExecutionInfo, EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.execution(&a))
            .await?
            .map(Into::into)
            .ok_or_else(|| {
                EngineError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
            })
    }

    /// Executions of a state machine, newest first, optionally of one status.
    pub async fn list_executions(
        &self,
        state_machine_arn: &str,
        status: Option<&str>,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ExecutionInfo>, Option<String>), EngineError> {
        // A version's or alias's ARN lists the executions started through it.
        let qualified = crate::catalog::Qualified::parse(state_machine_arn);
        let through = match &qualified {
            crate::catalog::Qualified::Machine(_) => None,
            _ => Some(state_machine_arn.to_string()),
        };
        let state_machine_arn = qualified.machine();
        self.describe_state_machine(state_machine_arn).await?;
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
        let (machine, status) = (state_machine_arn.to_string(), status.map(str::to_string));
        let mut rows = blocking(&self.rt.db, move |db| {
            db.executions(
                &machine,
                status.as_deref(),
                through.as_deref(),
                before,
                limit + 1,
            )
        })
        .await?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| format!("x.{}.{}", r.start.timestamp_millis(), r.arn))
        } else {
            None
        };
        Ok((rows.into_iter().map(Into::into).collect(), next))
    }

    /// Stops a running execution: it ends ABORTED once that is committed; its outstanding
    /// tasks are withdrawn (their tokens answer InvalidToken) and its service work cancelled.
    pub async fn stop_execution(
        &self,
        arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let a = arn.to_string();
        let row = blocking(&self.rt.db, move |db| db.execution(&a))
            .await?
            .ok_or_else(|| {
                EngineError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
            })?;
        if row.status != "RUNNING" {
            return Ok(row.stop.unwrap_or_else(|| self.rt.clock.now()));
        }
        self.rt.ensure_drivers();
        self.rt
            .deliver_and_wait(
                row.id,
                Completion::Stop {
                    error: error.map(str::to_string),
                    cause: cause.map(str::to_string),
                },
            )
            .await?;
        Ok(self.rt.clock.now())
    }

    /// A page of an execution's history. `next_token` continues a previous page.
    pub async fn get_execution_history(
        &self,
        arn: &str,
        max_results: Option<usize>,
        next_token: Option<&str>,
        reverse: bool,
    ) -> Result<HistoryPage, EngineError> {
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
        let a = arn.to_string();
        let events = blocking(&self.rt.db, move |db| {
            let Some(row) = db.execution(&a)? else {
                return Ok(None);
            };
            db.events(row.id, from, to, reverse, limit + 1).map(Some)
        })
        .await?
        .ok_or_else(|| {
            EngineError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
        })?;
        let mut events: Vec<_> = events.iter().map(|e| e.to_wire()).collect();
        let next_token = if events.len() > limit {
            events.pop().map(|e| format!("h.{}", e.id))
        } else {
            None
        };
        Ok(HistoryPage { events, next_token })
    }

    /// Continues every execution a previous process left RUNNING: arms its timers again (they
    /// keep their deadlines), makes its activity tasks available again (a task a worker held
    /// is handed out again with another token), waits again for the service work it had
    /// submitted, and moves on frames left waiting to run. Nothing is run again. Call once
    /// after opening, inside the runtime, after registering integrations. Returns how many
    /// executions are running.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let rt = &self.rt;
        rt.ensure_drivers();
        // Streamed into the indexes in batches: a restart reads millions of rows.
        let index = rt.clone();
        let calls = blocking(&rt.db, move |db| {
            let mut due = Vec::with_capacity(4096);
            db.each_timer(|x, seq, at| {
                due.push((at, x, seq));
                if due.len() == due.capacity() {
                    index.timers.extend(due.drain(..));
                }
            })?;
            index.timers.extend(due);
            let mut calls = BTreeSet::new();
            let mut ready: std::collections::HashMap<String, Vec<(i64, i64, u32)>> =
                Default::default();
            db.each_task_ref(
                |x, seq, kind, activity, scheduled_ms| match (kind, activity) {
                    (0, Some(activity)) => {
                        let key = (scheduled_ms, x, seq);
                        match ready.get_mut(activity) {
                            Some(list) => list.push(key),
                            None => {
                                ready.insert(activity.to_string(), vec![key]);
                            }
                        }
                    }
                    _ => {
                        calls.insert(x);
                    }
                },
            )?;
            for (activity, tasks) in ready {
                index.activities.restore(&activity, tasks);
            }
            Ok(calls)
        })
        .await?;
        for x in calls {
            rt.deliver(x, Completion::Recover, None);
        }
        for x in blocking(&rt.db, |db| db.runnable_executions()).await? {
            rt.deliver(x, Completion::Continue, None);
        }
        blocking(&rt.db, |db| db.running_count()).await
    }

    /// Stops running every execution at once without recording anything more, as a crash
    /// would: what was committed stays, and [`recover`](Self::recover) (in this or a new
    /// process) continues from it. Used at shutdown and by tests of recovery.
    pub fn halt(&self) {
        self.rt.halt();
        if let Err(e) = self.rt.db.flush_blocking() {
            tracing::error!(error = %e, "cannot flush the engine's writes at halt");
        }
        self.rt.db.unlock();
    }

    /// How many executions are running.
    pub async fn running_executions(&self) -> Result<usize, EngineError> {
        blocking(&self.rt.db, |db| db.running_count()).await
    }
}
