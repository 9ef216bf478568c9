//! The history log of one running execution: hands out event ids, links each event to the one
//! before it, writes every event to the database before anyone acts on it, tells the observer,
//! and refuses further events once the execution has ended (so a stop wins over a late result).

use std::sync::{Arc, Mutex};

use wfm_asl::HistoryEvent;

use crate::clock::Clock;
use crate::db::{AfterCommit, EngineDb};
use crate::error::EngineError;
use crate::ExecutionObserver;

struct LogState {
    last_id: i64,
    finished: bool,
}

/// How an execution ended.
pub(crate) struct Ending<'a> {
    pub status: &'a str,
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
}

/// Appends events to one execution's history.
pub(crate) struct ExecutionLog {
    pub arn: String,
    pub name: String,
    db: Arc<EngineDb>,
    observer: Option<Arc<dyn ExecutionObserver>>,
    state: Mutex<LogState>,
    clock: Clock,
}

impl ExecutionLog {
    pub fn new(
        arn: String,
        name: String,
        db: Arc<EngineDb>,
        observer: Option<Arc<dyn ExecutionObserver>>,
        last_id: i64,
        clock: Clock,
    ) -> Self {
        Self {
            arn,
            name,
            db,
            observer,
            state: Mutex::new(LogState {
                last_id,
                finished: false,
            }),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event of `event_type`, filled in by `fill`, with `previousEventId` set to
    /// `previous` (the last event of the same branch of work; `None` for the last event of the
    /// whole execution), so that concurrent branches of a Parallel or Map stay linked as Step
    /// Functions links them. Returns its id, or `None` when the execution has already ended
    /// and the event was dropped.
    pub fn emit_after(
        &self,
        previous: Option<i64>,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
    ) -> Result<Option<i64>, EngineError> {
        self.append(previous, event_type, fill, false)
    }

    /// Like [`emit_after`](Self::emit_after), returning only once the event is committed: for
    /// what is acknowledged to someone (a worker's answer).
    pub fn emit_durable_after(
        &self,
        previous: Option<i64>,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
    ) -> Result<Option<i64>, EngineError> {
        self.append(previous, event_type, fill, true)
    }

    fn append(
        &self,
        previous: Option<i64>,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
        wait: bool,
    ) -> Result<Option<i64>, EngineError> {
        let mut st = self.lock();
        if st.finished {
            return Ok(None);
        }
        if event_type.ends_with("StateEntered") {
            metrics::counter!("wfm_state_transitions_total").increment(1);
        }
        let prev = previous.unwrap_or(st.last_id);
        let mut event = HistoryEvent::new(st.last_id + 1, prev, event_type, self.clock.now());
        fill(&mut event);
        // Observers hear of the event once it is committed, so what they read is there.
        let after: Option<AfterCommit> = self.observer.clone().map(|o| {
            let (arn, name) = (self.arn.clone(), self.name.clone());
            Box::new(move || o.execution_changed(&arn, &name)) as AfterCommit
        });
        // The lock is held while queueing, so events are queued in id order.
        self.db.append_event(&self.arn, &event, wait, after)?;
        st.last_id = event.id;
        Ok(Some(event.id))
    }

    /// Appends the closing event and stores the terminal status, unless the execution has
    /// already ended, and returns once it is committed (for a stop, which is acknowledged).
    /// Returns whether this call ended it.
    pub fn finish(
        &self,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
        ending: Ending<'_>,
    ) -> Result<bool, EngineError> {
        let ended = self.close(event_type, fill, ending, true, None)?;
        if ended {
            self.notify();
        }
        Ok(ended)
    }

    /// Like [`finish`](Self::finish) without waiting for the commit (the natural end of a run,
    /// which nobody waits for): the observer hears of it, and then `then` runs, once it is
    /// committed. Until then the execution reads as RUNNING.
    pub fn finish_queued(
        &self,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
        ending: Ending<'_>,
        then: AfterCommit,
    ) -> Result<bool, EngineError> {
        let observer = self.observer.clone();
        let (arn, name) = (self.arn.clone(), self.name.clone());
        let after: AfterCommit = Box::new(move || {
            if let Some(o) = observer {
                o.execution_changed(&arn, &name);
            }
            then();
        });
        self.close(event_type, fill, ending, false, Some(after))
    }

    fn close(
        &self,
        event_type: &str,
        fill: impl FnOnce(&mut HistoryEvent),
        ending: Ending<'_>,
        wait: bool,
        after: Option<AfterCommit>,
    ) -> Result<bool, EngineError> {
        let mut st = self.lock();
        if st.finished {
            return Ok(false);
        }
        let mut event = HistoryEvent::new(st.last_id + 1, st.last_id, event_type, self.clock.now());
        fill(&mut event);
        self.db.finish_execution(
            &self.arn,
            &event,
            ending.status,
            ending.output,
            ending.error,
            ending.cause,
            wait,
            after,
        )?;
        st.last_id = event.id;
        st.finished = true;
        Ok(true)
    }

    fn notify(&self) {
        if let Some(o) = &self.observer {
            o.execution_changed(&self.arn, &self.name);
        }
    }
}
