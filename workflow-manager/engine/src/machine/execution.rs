//! The state of one execution, as the step machine reads and changes it: a tree of frames
//! (the top level, each running Parallel branch and Map iteration), each at one state and one
//! stage of it, plus the counters that number events, tasks and timers. It is plain data: the
//! store keeps each frame as a row, a finished branch or iteration as its result only, and a
//! Map's items once, so that an execution is loaded, never re-run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::compiled::{MachineId, StateId};

/// A frame's number within its execution (0 is the top level).
pub type FrameId = u32;

/// Where a branch or iteration reports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The Parallel or Map state's frame.
    pub frame: FrameId,
    /// The branch or item index.
    pub slot: u32,
}

/// A deadline: a timer's number and when it is due (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// The timer's number (from the execution's sequence).
    pub timer: u32,
    /// Due, in epoch milliseconds.
    pub due_ms: i64,
}

/// An activity task that is out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityWait {
    /// The task's number (from the execution's sequence).
    pub seq: u32,
    /// The activity.
    pub activity: String,
    /// The secret part of the task's current token (hex).
    pub secret: String,
    /// Whether a worker was handed the task (its token then changes when it is handed out
    /// again after a restart).
    pub handed_out: bool,
    /// The ActivityScheduled event.
    pub scheduled_event: i64,
    /// When it was scheduled (epoch ms).
    pub scheduled_ms: i64,
    /// The ActivityStarted event, once a worker took it.
    pub started_event: Option<i64>,
    /// `TimeoutSeconds`, as a timer.
    pub timeout: Option<Deadline>,
    /// `HeartbeatSeconds`.
    pub heartbeat: Option<u64>,
}

/// Where a service integration's call is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallPhase {
    /// Submitted (or about to be): no answer recorded yet.
    Submitting,
    /// The submission was answered; waiting for the work to end (`.sync`).
    Waiting {
        /// What the work is known by.
        handle: String,
    },
    /// `.waitForTaskToken`: the submission was answered; waiting for SendTaskSuccess or
    /// SendTaskFailure with the task's token.
    AwaitingToken,
}

/// A service integration call that is out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallWait {
    /// The call's number (from the execution's sequence).
    pub seq: u32,
    /// The resource ARN.
    pub resource: String,
    /// The effective parameters.
    pub parameters: Value,
    /// Where it is.
    pub phase: CallPhase,
    /// `TimeoutSeconds`, as a timer.
    pub timeout: Option<Deadline>,
    /// The secret of the task's token (`$$.Task.Token`; a callback answers with it).
    #[serde(default)]
    pub secret: String,
    /// `HeartbeatSeconds` (of a callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
}

impl CallWait {
    /// The handle of work that runs until it ends (`.sync`), once the submission was answered.
    pub fn handle(&self) -> Option<String> {
        match &self.phase {
            CallPhase::Waiting { handle } => Some(handle.clone()),
            CallPhase::Submitting | CallPhase::AwaitingToken => None,
        }
    }

    /// Whether the task waits for a callback with its token (`.waitForTaskToken`).
    pub fn is_callback(&self) -> bool {
        matches!(
            super::compiled::Resource::parse(&self.resource),
            super::compiled::Resource::Service {
                pattern: super::compiled::Pattern::WaitForTaskToken,
                ..
            }
        )
    }
}

/// A Parallel's branches or a Map's iterations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fanout {
    /// Branches (Parallel) or items (Map).
    pub total: u32,
    /// The next item to start (a Parallel starts all at once).
    pub next: u32,
    /// Children running now (counted again when loaded).
    #[serde(skip)]
    pub running: u32,
    /// At most this many at once.
    pub limit: u32,
    /// Failed iterations so far (tolerated ones).
    pub failed: u32,
    /// `ToleratedFailureCount`.
    pub tolerated_count: Option<i64>,
    /// `ToleratedFailurePercentage`.
    pub tolerated_percentage: Option<f64>,
    /// The ParallelStateStarted or MapStateStarted event.
    pub started_event: i64,
    /// Results of finished children by slot (stored as rows of their own).
    #[serde(skip)]
    pub results: Vec<Option<Value>>,
    /// A Map's items and effective input (stored once, as a row of its own).
    #[serde(skip)]
    pub items: Option<Arc<MapItems>>,
    /// The slots of iterations that failed within tolerance (a result writer lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_slots: Vec<u32>,
    /// A Distributed Map's run id (the last part of its map run ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run: Option<String>,
}

/// What a Map's iterations are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapItems {
    /// The items.
    pub items: Vec<Value>,
    /// The Map state's effective input (its ItemSelector reads it).
    pub effective: Value,
    /// The items are iterations' inputs already (batches of selected items).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prepared: bool,
}

/// A Distributed Map's call to read its items or write its results (through the integration
/// registry, like a Task's call, but with no Task events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapIo {
    /// The call's number (from the execution's sequence).
    pub seq: u32,
    /// The resource ARN (`arn:aws:states:::s3:getObject`, ...).
    pub resource: String,
    /// Its parameters.
    pub parameters: Value,
    /// What the call is part of.
    pub step: MapIoStep,
}

/// What a Distributed Map's call is part of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapIoStep {
    /// Reading the items (a listing page by page).
    Read {
        /// How the answers become items.
        config: super::states::map_io::ReaderConfig,
        /// The items of the pages read so far.
        items: Vec<Value>,
    },
    /// Writing the result files, one at a time.
    Write {
        /// The bucket.
        bucket: String,
        /// The files still to write after this one (key, body).
        files: Vec<(String, String)>,
        /// The Map's output once they are written.
        output: Value,
    },
}

/// How far a frame's current state has got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Stage {
    /// About to enter the state (its StateEntered is not written yet).
    Enter,
    /// Entered; its work is to be done (again, after a retry's wait).
    Run,
    /// A Wait state waiting for its time.
    Wait(Deadline),
    /// Waiting before a retry.
    Backoff(Deadline),
    /// Waiting for an activity task's answer.
    Activity(ActivityWait),
    /// Waiting for a service integration.
    Call(CallWait),
    /// Waiting for its branches or iterations.
    Fanout(Fanout),
    /// A Distributed Map reading its items or writing its results.
    MapIo(MapIo),
}

/// One thread of control: the top level, a Parallel branch or a Map iteration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    /// Where it reports (`None` for the top level).
    pub parent: Option<Parent>,
    /// Its machine.
    pub machine: MachineId,
    /// Its current state.
    pub state: StateId,
    /// The state's raw input.
    pub input: Value,
    /// The variables in scope.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    /// The last event of this frame (the next one links to it).
    pub chain: i64,
    /// When the current state was entered (epoch ms).
    pub entered_ms: i64,
    /// The current state's StateEntered event.
    pub entered_event: i64,
    /// Retries used per retrier of the current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<u32>,
    /// Retries of the current state in all.
    #[serde(default)]
    pub retries: u32,
    /// How far the state has got.
    pub stage: Stage,
    /// Whether the store holds this frame (set when loaded or committed).
    #[serde(skip)]
    pub stored: bool,
    /// Whether it is in the execution's run queue.
    #[serde(skip)]
    pub queued: bool,
}

impl Frame {
    /// A frame about to enter `state` of `machine` with `input`.
    pub fn new(
        parent: Option<Parent>,
        machine: MachineId,
        state: StateId,
        input: Value,
        vars: Map<String, Value>,
        chain: i64,
    ) -> Frame {
        Frame {
            parent,
            machine,
            state,
            input,
            vars,
            chain,
            entered_ms: 0,
            entered_event: 0,
            attempts: Vec::new(),
            retries: 0,
            stage: Stage::Enter,
            stored: false,
            queued: false,
        }
    }

    /// The numbers of the task, call and timers the frame waits for.
    pub fn waits_for(&self) -> Vec<u32> {
        self.stage.waits()
    }

    /// Whether its stage is one the run queue moves on.
    pub fn is_runnable(&self) -> bool {
        match &self.stage {
            Stage::Enter | Stage::Run => true,
            Stage::Fanout(f) => f.next < f.total && f.running < f.limit,
            _ => false,
        }
    }
}

impl Stage {
    /// The numbers of the task, call and timers this stage waits for.
    pub fn waits(&self) -> Vec<u32> {
        match self {
            Stage::Wait(d) | Stage::Backoff(d) => vec![d.timer],
            Stage::Activity(a) => [Some(a.seq), a.timeout.map(|t| t.timer)]
                .into_iter()
                .flatten()
                .collect(),
            Stage::Call(c) => [Some(c.seq), c.timeout.map(|t| t.timer)]
                .into_iter()
                .flatten()
                .collect(),
            Stage::MapIo(io) => vec![io.seq],
            _ => Vec::new(),
        }
    }
}

/// A row of the store's `frames` table: a running frame, or the result of a finished branch or
/// iteration whose Parallel or Map is still running.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Rows are made one at a time to be written or read: boxing the frame would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum FrameRow {
    /// A running frame.
    Live(Frame),
    /// A finished child's result.
    Result {
        /// Its branch or item index.
        slot: u32,
        /// Its output (or, for a tolerated failure, the error object).
        value: Value,
    },
}

/// The fixed facts of an execution and its context object's execution part.
#[derive(Debug)]
pub struct Meta {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The state machine's name.
    pub state_machine_name: String,
    /// The role.
    pub role_arn: String,
    /// EXPRESS (no redrive count in the context object).
    pub express: bool,
    /// Start, epoch ms.
    pub start_ms: i64,
    /// The execution's input.
    pub input: Value,
    /// `{"Execution": {...}, "StateMachine": {...}}`, built once.
    pub context: Value,
}

impl Meta {
    /// The facts, with the context object's execution part built from them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        arn: String,
        name: String,
        state_machine_arn: String,
        state_machine_name: String,
        role_arn: String,
        express: bool,
        start_ms: i64,
        input: Value,
    ) -> Meta {
        let start = super::context::iso_ms(start_ms);
        let mut execution = serde_json::json!({
            "Id": arn,
            "Input": input,
            "Name": name,
            "RoleArn": role_arn,
            "StartTime": start,
        });
        if !express {
            // Standard executions can be redriven; express ones cannot and have no count.
            execution["RedriveCount"] = Value::from(0);
        }
        let context = serde_json::json!({
            "Execution": execution,
            "StateMachine": {"Id": state_machine_arn, "Name": state_machine_name},
        });
        Meta {
            arn,
            name,
            state_machine_arn,
            state_machine_name,
            role_arn,
            express,
            start_ms,
            input,
            context,
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// With this output.
    Succeeded(String),
    /// With this error and cause.
    Failed {
        /// Error name.
        error: String,
        /// Cause.
        cause: String,
    },
    /// Stopped.
    Aborted {
        /// Error given to StopExecution.
        error: Option<String>,
        /// Cause given to StopExecution.
        cause: Option<String>,
    },
    /// Its `TimeoutSeconds` ran out.
    TimedOut,
}

impl Ending {
    /// The execution status it gives.
    pub fn status(&self) -> &'static str {
        match self {
            Ending::Succeeded(_) => "SUCCEEDED",
            Ending::Failed { .. } => "FAILED",
            Ending::Aborted { .. } => "ABORTED",
            Ending::TimedOut => "TIMED_OUT",
        }
    }
}

/// One execution's state.
#[derive(Debug)]
pub struct Execution {
    /// Its number in the store.
    pub id: i64,
    /// Its fixed facts.
    pub meta: Arc<Meta>,
    /// Live frames.
    pub frames: BTreeMap<FrameId, Frame>,
    /// The next frame number.
    pub next_frame: FrameId,
    /// The id of the next event.
    pub next_event: i64,
    /// The next task or timer number.
    pub next_seq: u32,
    /// The execution's `TimeoutSeconds`, as a timer.
    pub timeout: Option<Deadline>,
    /// Set once it has ended.
    pub ended: Option<Ending>,
    /// Frames to move on, in order.
    pub queue: VecDeque<FrameId>,
    /// Which frame waits for which task, call or timer number.
    pub waits: HashMap<u32, FrameId>,
    /// What changed since the last commit.
    pub changes: Changes,
}

/// What the store must write after a round.
#[derive(Debug, Default)]
pub struct Changes {
    /// Live frames changed (or new).
    pub frames: BTreeSet<FrameId>,
    /// Results of branches and iterations that finished while their parent goes on:
    /// (parent, key, slot, result, the fanout's started event).
    pub results: Vec<(FrameId, FrameId, u32, Value, i64)>,
    /// Fanouts that ended: every row under them goes.
    pub fanouts_ended: Vec<FrameId>,
    /// Map items to store, by the Map's frame.
    pub items: Vec<(FrameId, Arc<MapItems>)>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
            && self.results.is_empty()
            && self.fanouts_ended.is_empty()
            && self.items.is_empty()
    }
}

impl Execution {
    /// A new execution about to enter its first state.
    pub fn new(id: i64, meta: Arc<Meta>, start: StateId) -> Execution {
        let input = meta.input.clone();
        let mut exec = Execution {
            id,
            meta,
            frames: BTreeMap::new(),
            next_frame: 1,
            next_event: 1,
            next_seq: 1,
            timeout: None,
            ended: None,
            queue: VecDeque::new(),
            waits: HashMap::new(),
            changes: Changes::default(),
        };
        exec.frames
            .insert(0, Frame::new(None, 0, start, input, Map::new(), 0));
        exec
    }

    /// Rebuilds the run queue and the index of waits from the frames (after loading).
    pub fn reindex(&mut self) {
        self.queue.clear();
        self.waits.clear();
        let mut running: HashMap<FrameId, u32> = HashMap::new();
        for f in self.frames.values() {
            if let Some(p) = f.parent {
                *running.entry(p.frame).or_default() += 1;
            }
        }
        for (id, f) in self.frames.iter_mut() {
            if let Stage::Fanout(fan) = &mut f.stage {
                fan.running = running.get(id).copied().unwrap_or(0);
            }
            for w in f.waits_for() {
                self.waits.insert(w, *id);
            }
            f.queued = false;
        }
        let runnable: Vec<FrameId> = self
            .frames
            .iter()
            .filter(|(_, f)| f.is_runnable())
            .map(|(id, _)| *id)
            .collect();
        for id in runnable {
            self.enqueue(id);
        }
    }

    /// Puts a frame at the back of the run queue (once).
    pub fn enqueue(&mut self, id: FrameId) {
        if let Some(f) = self.frames.get_mut(&id) {
            if !f.queued {
                f.queued = true;
                self.queue.push_back(id);
            }
        }
    }

    /// Puts a frame at the front of the run queue (it runs next).
    pub fn enqueue_first(&mut self, id: FrameId) {
        if let Some(f) = self.frames.get_mut(&id) {
            if f.queued {
                self.queue.retain(|q| *q != id);
            }
            f.queued = true;
            self.queue.push_front(id);
        }
    }

    /// A new task or timer number.
    pub fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Marks a frame changed.
    pub fn touch(&mut self, id: FrameId) {
        self.changes.frames.insert(id);
    }
}
