//! The runtime around the step machine: it delivers what happens (starts, answers, timers,
//! stops) to each execution in order, one round at a time; loads an execution from the store
//! when it is not in memory; commits each round's events and state changes in one unit
//! before acting on them; then carries out the round's commands (hand out tasks, arm timers,
//! call integrations). An execution that waits is not kept in memory (only large ones are,
//! within a bound): what waits is the index of timers and the activity queues.

pub mod activities;
pub mod calls;
pub mod due;
pub mod persist;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::error::EngineError;
use crate::machine::compiled::Compiled;
use crate::machine::event::Event;
use crate::machine::execution::Execution;
use crate::machine::{self, Command, Completion, Env, IntegrationInfo};
use crate::store::EngineDb;
use crate::{EngineConfig, ExecutionObserver};

use activities::Activities;
use calls::Calls;
use due::DueSet;
use persist::MachineFacts;

/// Events one round writes at most (about; a state's own events are not split).
pub const DEFAULT_ROUND_EVENTS: usize = 8192;

/// At most this many waiting executions stay in memory, the most recently active ones (an
/// answer that comes soon after a round then needs no load); the others are in the store only.
const MAX_KEPT: usize = 1024;

/// An acknowledgement of a completion, sent once its round is committed.
pub type Ack = oneshot::Sender<Result<(), EngineError>>;

/// An execution in memory with the definition it runs.
pub struct Resident {
    /// Its state.
    pub exec: Execution,
    /// Its definition.
    pub compiled: Arc<Compiled>,
}

/// What the runtime keeps for an execution that has work or stays in memory.
#[derive(Default)]
struct Hot {
    mailbox: Vec<(Completion, Option<Ack>)>,
    /// A task is driving it.
    running: bool,
    /// Its state, when it stays in memory between rounds.
    kept: Option<Box<Resident>>,
}

/// A state machine's facts, cached.
#[derive(Clone)]
pub struct MachineEntry {
    /// Name.
    pub name: String,
    /// Role.
    pub role_arn: String,
    /// STANDARD or EXPRESS.
    pub machine_type: String,
    /// Its current definition's revision.
    pub revision: i64,
}

/// Everything the engine shares.
pub struct Runtime {
    /// Region and account.
    pub config: EngineConfig,
    /// The clock.
    pub clock: Clock,
    /// The store.
    pub db: Arc<EngineDb>,
    /// Told of every committed round.
    pub observer: Option<Arc<dyn ExecutionObserver>>,
    /// Randomness of intrinsics, JSONata and retry jitter.
    pub entropy: RwLock<Arc<dyn wfm_asl::entropy::Entropy>>,
    /// Bumped whenever an execution ends (StartSyncExecution waits on it).
    pub finished: tokio::sync::watch::Sender<u64>,
    /// Set when the service shuts down: long polls answer "no task" at once.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// Set by [`halt`](Runtime::halt): nothing more is written.
    pub halted: AtomicBool,
    /// Events per round.
    pub round_events: AtomicUsize,
    /// Commits so far.
    pub commits: std::sync::atomic::AtomicU64,
    /// Fault injection: halt right after this many more commits (`usize::MAX`: never).
    pub crash_after: AtomicUsize,
    /// The next execution number.
    pub next_execution: AtomicI64,
    /// State machines by ARN.
    pub machines: Mutex<HashMap<String, MachineEntry>>,
    /// Definitions by revision.
    pub compiled: Mutex<HashMap<i64, Arc<Compiled>>>,
    /// Activity ARNs that exist.
    pub known_activities: RwLock<HashSet<String>>,
    hot: Mutex<HashMap<i64, Hot>>,
    kept: AtomicUsize,
    /// Kept executions, oldest first (may name some that are no longer kept).
    recent: Mutex<std::collections::VecDeque<i64>>,
    /// Activity queues and held tasks.
    pub activities: Activities,
    /// Timers.
    pub timers: Arc<DueSet>,
    /// Heartbeat deadlines of held tasks.
    pub heartbeats: Arc<DueSet>,
    /// Service integration calls.
    pub calls: Arc<Calls>,
    drivers: AtomicBool,
    /// Who waits for an execution to end (a `.sync` nested execution's parent).
    end_waiters: Mutex<HashMap<i64, Vec<tokio::sync::oneshot::Sender<()>>>>,
    me: std::sync::OnceLock<std::sync::Weak<Runtime>>,
}

/// What the step machine is handed: the time, secrets from the operating system, and what
/// exists.
struct RuntimeEnv<'a> {
    now: i64,
    activities: &'a HashSet<String>,
    calls: &'a Calls,
    region: &'a str,
}

impl Env for RuntimeEnv<'_> {
    fn now_ms(&self) -> i64 {
        self.now
    }

    fn secret(&mut self) -> String {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        machine::token::secret_from(bytes)
    }

    fn activity_exists(&self, arn: &str) -> bool {
        self.activities.contains(arn)
    }

    fn integration(&self, resource: &str) -> Option<IntegrationInfo> {
        let _ = self.region;
        self.calls.for_resource(resource).map(|i| IntegrationInfo {
            resource_type: i.resource_type().to_string(),
            region: i.region(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a store call that may wait on SQLite on the blocking pool (an in-memory database,
/// which never waits on a file, runs it at once).
pub async fn blocking<T: Send + 'static>(
    db: &Arc<EngineDb>,
    f: impl FnOnce(&EngineDb) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    if db.is_in_memory() || tokio::runtime::Handle::try_current().is_err() {
        return f(db);
    }
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| EngineError::Storage(format!("a store call failed: {e}")))?
}

impl Runtime {
    /// A runtime over `db`.
    pub fn new(
        db: EngineDb,
        config: EngineConfig,
        observer: Option<Arc<dyn ExecutionObserver>>,
        clock: Clock,
    ) -> Result<Arc<Runtime>, EngineError> {
        let next = db.max_execution_id()? + 1;
        let machines = db
            .all_state_machines()?
            .into_iter()
            .map(|r| {
                (
                    r.arn.clone(),
                    MachineEntry {
                        name: r.name,
                        role_arn: r.role_arn,
                        machine_type: r.machine_type,
                        revision: r.revision,
                    },
                )
            })
            .collect();
        let known = db.activity_arns()?.into_iter().collect();
        let rt = Arc::new(Runtime {
            config,
            clock,
            db: Arc::new(db),
            observer,
            entropy: RwLock::new(Arc::new(wfm_asl::entropy::OsEntropy)),
            finished: tokio::sync::watch::channel(0).0,
            draining: tokio::sync::watch::channel(false).0,
            halted: AtomicBool::new(false),
            round_events: AtomicUsize::new(DEFAULT_ROUND_EVENTS),
            commits: std::sync::atomic::AtomicU64::new(0),
            crash_after: AtomicUsize::new(usize::MAX),
            next_execution: AtomicI64::new(next),
            machines: Mutex::new(machines),
            compiled: Mutex::new(HashMap::new()),
            known_activities: RwLock::new(known),
            hot: Mutex::new(HashMap::new()),
            kept: AtomicUsize::new(0),
            recent: Mutex::new(std::collections::VecDeque::new()),
            activities: Activities::default(),
            timers: Arc::new(DueSet::default()),
            heartbeats: Arc::new(DueSet::default()),
            calls: Arc::new(Calls::default()),
            drivers: AtomicBool::new(false),
            end_waiters: Mutex::new(HashMap::new()),
            me: std::sync::OnceLock::new(),
        });
        let _ = rt.me.set(Arc::downgrade(&rt));
        Ok(rt)
    }

    /// Fires when the execution's end is committed (check its row after subscribing: it may
    /// have ended before). Waiters that went away are dropped as new ones come.
    pub fn when_ended(&self, execution: i64) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut waiters = lock(&self.end_waiters);
        let list = waiters.entry(execution).or_default();
        list.retain(|w| !w.is_closed());
        list.push(tx);
        rx
    }

    /// How many executions have someone waiting for their end.
    pub fn waiting_for_ends(&self) -> usize {
        lock(&self.end_waiters).len()
    }

    /// Drops the waiters of an execution that went away (an ended execution's list is
    /// removed when it ends; one that ended before a waiter came keeps the waiter until now).
    pub fn forget_gone_waiters(&self, execution: i64) {
        let mut waiters = lock(&self.end_waiters);
        if let Some(list) = waiters.get_mut(&execution) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(&execution);
            }
        }
    }

    fn me(&self) -> Option<Arc<Runtime>> {
        self.me.get().and_then(|w| w.upgrade())
    }

    /// Starts the timer and heartbeat drivers (once, inside a tokio runtime).
    pub fn ensure_drivers(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.drivers.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(self.timers.clone().drive(
            self.clock,
            weak.clone(),
            |rt: &Runtime| rt.halted.load(Ordering::Acquire),
            |rt: &Arc<Runtime>, (_, execution, seq)| {
                rt.deliver(execution, Completion::Timer { seq }, None)
            },
        ));
        tokio::spawn(self.heartbeats.clone().drive(
            self.clock,
            weak,
            |rt: &Runtime| rt.halted.load(Ordering::Acquire),
            |rt: &Arc<Runtime>, (due, execution, seq)| {
                // Only a deadline that was not moved by a heartbeat since.
                if let Some(held) = rt.activities.held(execution, seq) {
                    if held.deadline_ms == Some(due) {
                        let secret = held.secret;
                        rt.deliver(execution, Completion::HeartbeatLost { seq, secret }, None);
                    }
                }
            },
        ));
    }

    /// The definition of a revision, prepared once (`text` read from the store).
    pub fn compile(
        &self,
        revision: i64,
        text: Option<String>,
    ) -> Result<Arc<Compiled>, EngineError> {
        if let Some(c) = lock(&self.compiled).get(&revision) {
            return Ok(c.clone());
        }
        let text = text.ok_or_else(|| {
            EngineError::Storage(format!("the definition revision {revision} is missing"))
        })?;
        let machine = wfm_asl::parse_definition(&text)
            .map_err(|e| EngineError::Storage(format!("stored definition is invalid: {e}")))?;
        let compiled = Arc::new(
            Compiled::new(Arc::new(machine))
                .map_err(|e| EngineError::Storage(format!("stored definition is invalid: {e}")))?,
        );
        lock(&self.compiled).insert(revision, compiled.clone());
        Ok(compiled)
    }

    /// Caches a definition prepared when its state machine was created or updated.
    pub fn remember(&self, revision: i64, compiled: Arc<Compiled>) {
        lock(&self.compiled).insert(revision, compiled);
    }

    /// Hands `completion` to execution `id`; `ack` hears once its round is committed.
    pub fn deliver(&self, id: i64, completion: Completion, ack: Option<Ack>) {
        if self.halted.load(Ordering::Acquire) {
            if let Some(a) = ack {
                let _ = a.send(Err(EngineError::Storage("the engine is stopped".into())));
            }
            return;
        }
        let spawn = {
            let mut hot = lock(&self.hot);
            let h = hot.entry(id).or_default();
            h.mailbox.push((completion, ack));
            !std::mem::replace(&mut h.running, true)
        };
        if spawn {
            if let Some(rt) = self.me() {
                tokio::spawn(rt.drive(id));
            }
        }
    }

    /// Delivers a completion and waits for its round's commit.
    pub async fn deliver_and_wait(
        &self,
        id: i64,
        completion: Completion,
    ) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.deliver(id, completion, Some(tx));
        rx.await
            .map_err(|_| EngineError::Storage("the engine is stopped".into()))?
    }

    /// Runs rounds of execution `id` while it has work.
    async fn drive(self: Arc<Self>, id: i64) {
        let mut resident: Option<Box<Resident>> = None;
        loop {
            if self.halted.load(Ordering::Acquire) {
                let dropped = lock(&self.hot).remove(&id);
                for (_, ack) in dropped.map(|h| h.mailbox).unwrap_or_default() {
                    if let Some(a) = ack {
                        let _ = a.send(Err(EngineError::Storage("the engine is stopped".into())));
                    }
                }
                return;
            }
            let batch = {
                let mut hot = lock(&self.hot);
                let Some(h) = hot.get_mut(&id) else { return };
                if resident.is_none() {
                    if let Some(k) = h.kept.take() {
                        self.kept.fetch_sub(1, Ordering::Relaxed);
                        resident = Some(k);
                    }
                }
                std::mem::take(&mut h.mailbox)
            };
            let queued = resident.as_ref().is_some_and(|r| !r.exec.queue.is_empty());
            if batch.is_empty() && !queued {
                if self.settle(id, resident.take()) {
                    continue;
                }
                return;
            }
            let mut r = match resident.take() {
                Some(r) => r,
                None => match self.load(id).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.refuse_ended(id, batch).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(execution = id, error = %e, "cannot load an execution");
                        for (_, ack) in batch {
                            if let Some(a) = ack {
                                let _ = a.send(Err(e.clone()));
                            }
                        }
                        continue;
                    }
                },
            };
            let (completions, acks): (Vec<Completion>, Vec<Option<Ack>>) =
                batch.into_iter().unzip();
            match self.round(&mut r, completions, None).await {
                Ok(replies) => {
                    for (ack, reply) in acks.into_iter().zip(replies) {
                        if let Some(a) = ack {
                            let _ = a.send(reply);
                        }
                    }
                    if r.exec.ended.is_none() {
                        resident = Some(r);
                    }
                }
                Err(e) => {
                    for a in acks.into_iter().flatten() {
                        let _ = a.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// The executions's work is done for now: keep it in memory or forget it. Returns true
    /// when work came in meanwhile (the caller goes on driving).
    fn settle(&self, id: i64, resident: Option<Box<Resident>>) -> bool {
        let mut hot = lock(&self.hot);
        let Some(h) = hot.get_mut(&id) else {
            return false;
        };
        let queued = resident.as_ref().is_some_and(|r| !r.exec.queue.is_empty());
        if !h.mailbox.is_empty() || queued {
            if let Some(r) = resident {
                h.kept = Some(r);
                self.kept.fetch_add(1, Ordering::Relaxed);
            }
            return true;
        }
        match resident {
            Some(r) => {
                h.kept = Some(r);
                h.running = false;
                self.kept.fetch_add(1, Ordering::Relaxed);
                drop(hot);
                self.keep_recent(id);
            }
            None => {
                hot.remove(&id);
            }
        }
        false
    }

    /// Notes that `id` stays in memory; forgets the least recently active beyond the bound.
    fn keep_recent(&self, id: i64) {
        let mut recent = lock(&self.recent);
        recent.push_back(id);
        while self.kept.load(Ordering::Relaxed) > MAX_KEPT || recent.len() > 4 * MAX_KEPT {
            let Some(old) = recent.pop_front() else { break };
            let mut hot = lock(&self.hot);
            let idle = hot
                .get(&old)
                .is_some_and(|h| !h.running && h.kept.is_some() && h.mailbox.is_empty());
            if idle {
                hot.remove(&old);
                self.kept.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands a new execution's state to the runtime after its first round.
    pub fn adopt(&self, resident: Option<Box<Resident>>, id: i64) {
        if self.settle(id, resident) {
            if let Some(rt) = self.me() {
                tokio::spawn(rt.drive(id));
            }
        }
    }

    /// Claims a new execution's entry before its first round (nothing else knows its number).
    pub fn claim(&self, id: i64) {
        lock(&self.hot).insert(
            id,
            Hot {
                running: true,
                ..Hot::default()
            },
        );
    }

    /// Gives up a new execution's entry (its start was refused).
    pub fn release(&self, id: i64) {
        lock(&self.hot).remove(&id);
    }

    /// Runs a new execution's first round (committed with its row) and hands it to the
    /// runtime; returns its status after the round.
    pub async fn start(
        self: Arc<Self>,
        mut resident: Resident,
        insert: crate::store::write::NewExecution,
    ) -> Result<&'static str, EngineError> {
        let id = resident.exec.id;
        self.claim(id);
        match self
            .round(&mut resident, vec![Completion::Start], Some(insert))
            .await
        {
            Ok(_) => {
                let status = resident
                    .exec
                    .ended
                    .as_ref()
                    .map(|e| e.status())
                    .unwrap_or("RUNNING");
                let keep = resident.exec.ended.is_none().then(|| Box::new(resident));
                self.adopt(keep, id);
                Ok(status)
            }
            Err(e) => {
                self.release(id);
                Err(e)
            }
        }
    }

    /// Answers the completions of an execution that is not running.
    async fn refuse_ended(&self, id: i64, batch: Vec<(Completion, Option<Ack>)>) {
        let status = blocking(&self.db, move |db| db.execution_by_id(id))
            .await
            .ok()
            .flatten()
            .map(|r| r.status);
        for (c, ack) in batch {
            let reply = match c {
                Completion::Answer { .. }
                | Completion::Handout { .. }
                | Completion::HeartbeatLost { .. } => Err(match status {
                    None => EngineError::InvalidToken("Invalid Token: 'Invalid token'".into()),
                    // Its execution ended (and with it the task), as Step Functions answers.
                    Some(_) => EngineError::TaskTimedOut(
                        "Task Timed Out: 'Provided task does not exist anymore'".into(),
                    ),
                }),
                _ => Ok(()),
            };
            if let Some(a) = ack {
                let _ = a.send(reply);
            }
        }
    }

    /// Loads a running execution; `None` when it is not running.
    async fn load(&self, id: i64) -> Result<Option<Box<Resident>>, EngineError> {
        let Some(loaded) = blocking(&self.db, move |db| db.load(id)).await? else {
            return Ok(None);
        };
        if loaded.row.status != "RUNNING" {
            return Ok(None);
        }
        let facts = {
            let machines = lock(&self.machines);
            let m = machines.get(&loaded.row.state_machine_arn);
            MachineFacts {
                name: m.map(|m| m.name.clone()).unwrap_or_default(),
                role_arn: m.map(|m| m.role_arn.clone()).unwrap_or_default(),
                express: m.is_some_and(|m| m.machine_type == "EXPRESS"),
            }
        };
        let revision = loaded.row.revision;
        let cached = lock(&self.compiled).get(&revision).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let text = blocking(&self.db, move |db| db.revision(revision)).await?;
                self.compile(revision, text)?
            }
        };
        let exec = persist::rebuild(loaded, &facts)?;
        Ok(Some(Box::new(Resident { exec, compiled })))
    }

    /// Runs one round of `r` with `completions`, commits it (with `insert` for a new
    /// execution), then carries out its commands. Returns the completions' replies.
    pub async fn round(
        &self,
        r: &mut Resident,
        completions: Vec<Completion>,
        insert: Option<crate::store::write::NewExecution>,
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let budget = self.round_events.load(Ordering::Relaxed);
        let round = self.advance(r, completions.clone(), budget);
        let mut completions = completions;
        let mut round = round;
        let reserved = self.hand_out_now(r, &mut completions, &mut round, budget);
        let (write, stored) = match persist::write_set(&r.exec, &round, &completions, insert) {
            Ok(w) => w,
            Err(e) => {
                self.unreserve(reserved);
                return Err(e);
            }
        };
        if self.halted.load(Ordering::Acquire) {
            self.unreserve(reserved);
            return Err(EngineError::Storage("the engine is stopped".into()));
        }
        match self.db.commit(write).await {
            Ok(crate::store::Committed::Yes) => {}
            Ok(crate::store::Committed::ExecutionExists) => {
                self.unreserve(reserved);
                return Err(EngineError::ExecutionAlreadyExists(format!(
                    "Execution Already Exists: '{}'",
                    r.exec.meta.arn
                )));
            }
            Err(e) => {
                self.unreserve(reserved);
                return Err(e);
            }
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("wfm_engine_rounds_total").increment(1);
        if self.crash_after.load(Ordering::Acquire) != usize::MAX
            && self.crash_after.fetch_sub(1, Ordering::AcqRel) <= 1
        {
            // As if the process died right after this commit: nothing of it is acted on.
            self.halt();
            self.db.unlock();
            return Err(EngineError::Storage("the engine is stopped".into()));
        }
        for id in stored {
            if let Some(f) = r.exec.frames.get_mut(&id) {
                f.stored = true;
            }
        }
        r.exec.changes = Default::default();
        let handed: HashSet<u32> = reserved.iter().map(|(t, _)| t.seq).collect();
        self.after_commit(&r.exec, &round, &handed);
        for (t, reservation) in reserved {
            self.give(r.exec.id, t, reservation);
        }
        Ok(round
            .replies
            .into_iter()
            .map(|reply| reply.map_err(persist::rejection))
            .collect())
    }

    /// Runs the step machine on `r` with the runtime's clock, secrets, activities,
    /// integrations and randomness.
    fn advance(
        &self,
        r: &mut Resident,
        completions: Vec<Completion>,
        budget: usize,
    ) -> machine::Round {
        let known = self
            .known_activities
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let mut env = RuntimeEnv {
            now: self.clock.now_ms(),
            activities: &known,
            calls: &self.calls,
            region: &self.config.region,
        };
        let entropy = self
            .entropy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        wfm_asl::entropy::with(entropy, || {
            machine::advance(&mut r.exec, &r.compiled, completions, &mut env, budget)
        })
    }

    /// Tasks the round schedules for which a poller is waiting are handed out in the same
    /// round (one commit from scheduling to the worker): returns the pollers taken.
    fn hand_out_now(
        &self,
        r: &mut Resident,
        completions: &mut Vec<Completion>,
        round: &mut machine::Round,
        budget: usize,
    ) -> Vec<(machine::NewTask, activities::Reservation)> {
        let mut reserved = Vec::new();
        for c in &round.commands {
            if let Command::Schedule(t) = c {
                if let Some(res) = self.activities.reserve(&t.activity) {
                    reserved.push((t.clone(), res));
                }
            }
        }
        if reserved.is_empty() {
            return reserved;
        }
        let handouts: Vec<Completion> = reserved
            .iter()
            .map(|(t, res)| Completion::Handout {
                seq: t.seq,
                secret: t.secret.clone(),
                worker: res.worker(),
            })
            .collect();
        let second = self.advance(r, handouts.clone(), budget);
        completions.extend(handouts);
        round.events.extend(second.events);
        round.commands.extend(second.commands);
        round.replies.extend(second.replies);
        round.more = second.more;
        reserved
    }

    fn unreserve(&self, reserved: Vec<(machine::NewTask, activities::Reservation)>) {
        for (_, res) in reserved {
            res.cancel(&self.activities);
        }
    }

    /// Gives a task handed out in its round to the poller that waited for it.
    fn give(&self, execution: i64, t: machine::NewTask, res: activities::Reservation) {
        let deadline_ms = t.heartbeat.map(|h| self.clock.now_ms() + (h as i64) * 1000);
        if let Some(d) = deadline_ms {
            self.heartbeats.insert((d, execution, t.seq));
        }
        self.activities.hold(
            execution,
            t.seq,
            activities::Held {
                activity: t.activity.clone(),
                secret: t.secret.clone(),
                heartbeat: t.heartbeat,
                deadline_ms,
            },
        );
        let token = machine::token::Token {
            execution,
            seq: t.seq,
            secret: t.secret.clone(),
        }
        .encode();
        res.fill(
            &self.activities,
            (t.scheduled_ms, execution, t.seq),
            crate::ActivityTask {
                task_token: token,
                input: t.input,
            },
        );
    }

    /// Carries out a committed round's commands.
    fn after_commit(&self, exec: &Execution, round: &machine::Round, handed: &HashSet<u32>) {
        let id = exec.id;
        for c in &round.commands {
            match c {
                Command::Schedule(t) => {
                    if !handed.contains(&t.seq) {
                        self.activities
                            .schedule(&t.activity, (t.scheduled_ms, id, t.seq));
                    }
                }
                Command::Unschedule {
                    seq,
                    activity,
                    scheduled_ms,
                } => {
                    self.release_held(id, *seq);
                    self.activities
                        .unschedule(activity, (*scheduled_ms, id, *seq));
                }
                Command::StartTimer(d) => self.timers.insert((d.due_ms, id, d.timer)),
                Command::CancelTimer(d) => self.timers.remove((d.due_ms, id, d.timer)),
                Command::Submit {
                    seq,
                    resource,
                    parameters,
                    key,
                } => self.calls.submit(
                    id,
                    exec.meta.arn.clone(),
                    *seq,
                    resource.clone(),
                    parameters.clone(),
                    key.clone(),
                    self.deliverer(),
                ),
                Command::AwaitCall {
                    seq,
                    resource,
                    handle,
                } => self
                    .calls
                    .wait(id, *seq, resource.clone(), handle.clone(), self.deliverer()),
                Command::Hold {
                    seq,
                    secret,
                    heartbeat,
                    scope,
                } => {
                    self.release_held(id, *seq);
                    let deadline_ms = heartbeat.map(|h| self.clock.now_ms() + (h as i64) * 1000);
                    if let Some(d) = deadline_ms {
                        self.heartbeats.insert((d, id, *seq));
                    }
                    self.activities.hold(
                        id,
                        *seq,
                        activities::Held {
                            activity: scope.clone(),
                            secret: secret.clone(),
                            heartbeat: *heartbeat,
                            deadline_ms,
                        },
                    );
                }
                Command::EndCall {
                    seq,
                    resource,
                    cancel,
                } => {
                    self.release_held(id, *seq);
                    self.calls.end(id, *seq, Some(resource), cancel.clone());
                }
            }
        }
        let entered = round
            .events
            .iter()
            .filter(|e| matches!(e.event, Event::StateEntered { .. }))
            .count();
        if entered > 0 {
            metrics::counter!("wfm_state_transitions_total").increment(entered as u64);
        }
        if !round.events.is_empty() {
            if let Some(o) = &self.observer {
                o.execution_changed(&exec.meta.arn, &exec.meta.name);
            }
        }
        if exec.ended.is_some() {
            self.finished.send_modify(|n| *n = n.wrapping_add(1));
            let waiters = lock(&self.end_waiters).remove(&id);
            for w in waiters.into_iter().flatten() {
                let _ = w.send(());
            }
        }
    }

    /// Forgets a held task (an activity task or a callback) and its heartbeat deadline.
    fn release_held(&self, execution: i64, seq: u32) {
        if let Some(d) = self
            .activities
            .release(execution, seq)
            .and_then(|h| h.deadline_ms)
        {
            self.heartbeats.remove((d, execution, seq));
        }
    }

    fn deliverer(&self) -> calls::Deliver {
        let weak = self.me.get().cloned().unwrap_or_default();
        Arc::new(move |execution, completion| {
            if let Some(rt) = weak.upgrade() {
                rt.deliver(execution, completion, None);
            }
        })
    }

    /// Stops everything at once without writing anything more, as a crash would.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        self.draining.send_replace(true);
        self.activities.clear();
        self.calls.clear();
        lock(&self.hot).clear();
        lock(&self.end_waiters).clear();
        self.timers.wake();
        self.heartbeats.wake();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The drivers hold only a weak handle: woken, they find it gone and end.
        self.timers.wake();
        self.heartbeats.wake();
    }
}
