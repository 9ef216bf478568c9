//! One module per state type. Each computes, from a [`View`] of the frame at that state, what
//! the state's work comes to ([`Work`]): its output and successor, or what it must wait for.
//! They change nothing; the frames module carries their answers out.

pub mod choice;
pub mod fail;
pub mod map;
pub mod map_io;
pub mod parallel;
pub mod pass;
pub mod succeed;
pub mod task;
pub mod wait;

use std::sync::Arc;

use serde_json::{Map, Value};
use wfm_asl::path::{apply_result_path, expand_template, Context};

use super::compiled::{Machine, Node, StateId};
use super::context;
use super::dataflow::{output_and_assign, Bindings, Fields, FlowError};
use super::execution::{Frame, MapItems, Meta};
use super::retry::Failure;
use super::IntegrationInfo;

/// A frame at its state, with what its state's work reads.
pub struct View<'a> {
    /// The frame.
    pub frame: &'a Frame,
    /// Its state.
    pub node: &'a Node,
    /// Its machine (for Choice targets).
    pub machine: &'a Machine,
    /// The execution's facts.
    pub meta: &'a Meta,
}

impl<'a> View<'a> {
    /// The state's part of the context object (with a task's token and retry count).
    pub fn state_part(&self, task: Option<&str>) -> Value {
        context::state_part(
            &self.node.name,
            self.frame.entered_ms,
            task.map(|t| (t, self.frame.retries)),
            None,
        )
    }

    /// The context object, from the state's part.
    pub fn ctx<'c>(&'c self, part: &'c Value) -> Context<'c> {
        Context::new(&self.meta.context, part, &self.frame.vars)
    }

    /// Step Functions' wording of an error in this state.
    pub fn message(&self, err: impl std::fmt::Display) -> String {
        context::message(&self.node.name, self.frame.entered_event, err)
    }

    /// `States.Runtime` in this state.
    pub fn runtime(&self, err: impl std::fmt::Display) -> Failure {
        Failure::new("States.Runtime", self.message(err))
    }

    /// A data-flow failure in this state.
    pub fn flow(&self, e: FlowError) -> Failure {
        Failure::new(e.error, self.message(e.message))
    }

    /// The state's successor by name.
    pub fn target(&self, name: &str) -> Result<StateId, Failure> {
        self.machine
            .find(name)
            .ok_or_else(|| Failure::new("States.Runtime", format!("State '{name}' does not exist")))
    }
}

/// An activity task to schedule.
#[derive(Debug)]
pub struct ActivityPlan {
    /// The activity ARN.
    pub activity: String,
    /// The task input (JSON text).
    pub input: String,
    /// `TimeoutSeconds`.
    pub timeout: Option<u64>,
    /// `HeartbeatSeconds`.
    pub heartbeat: Option<u64>,
    /// The token's secret (filled in by the caller, which made the token).
    pub secret: String,
}

/// A service integration call to make.
#[derive(Debug)]
pub struct CallPlan {
    /// The resource ARN.
    pub resource: String,
    /// The effective parameters.
    pub parameters: Value,
    /// `TimeoutSeconds`.
    pub timeout: Option<u64>,
    /// `HeartbeatSeconds` (callbacks).
    pub heartbeat: Option<u64>,
    /// The integration.
    pub info: IntegrationInfo,
    /// The token's secret (filled in by the caller, which made the token).
    pub secret: String,
}

/// Branches or iterations to run.
#[derive(Debug)]
pub struct Plan {
    /// How many.
    pub total: u32,
    /// At most this many at once.
    pub limit: u32,
    /// A Parallel's input to every branch (`None` for a Map).
    pub branch_input: Option<Value>,
    /// A Map's items.
    pub items: Option<Arc<MapItems>>,
    /// `ToleratedFailureCount`.
    pub tolerated_count: Option<i64>,
    /// `ToleratedFailurePercentage`.
    pub tolerated_percentage: Option<f64>,
}

/// What a state's work comes to.
#[derive(Debug)]
pub enum Work {
    /// Done: its output, what it assigns, and its successor (`None`: its machine ends).
    Exit {
        /// The state's output.
        output: Value,
        /// Variables it assigns.
        assigned: Map<String, Value>,
        /// Where it leads.
        next: Option<StateId>,
    },
    /// Wait until then (epoch ms).
    Sleep {
        /// When the wait ends.
        until_ms: i64,
    },
    /// Hand a task to a worker.
    Activity(ActivityPlan),
    /// The activity does not exist.
    ScheduleFailed(Failure),
    /// Call a service integration.
    Call(CallPlan),
    /// A Distributed Map reads its items first.
    ReadItems(map_io::ReadPlan),
    /// Run branches or iterations.
    Fanout(Plan),
}

/// Ends a state: its output and assignments from `result` (or from its effective input when
/// `None`), shaped by its data flow, and where it leads.
pub fn finish_step(
    v: &View<'_>,
    effective: &Value,
    result: Option<Value>,
    ctx: &Context<'_>,
    next: Option<StateId>,
) -> Result<Work, Failure> {
    let f = Fields::of(&v.node.state);
    let (output, assigned) =
        output_and_assign(&f, v.node.jsonata, &v.frame.input, effective, result, ctx)
            .map_err(|e| v.flow(e))?;
    Ok(Work::Exit {
        output,
        assigned,
        next,
    })
}

/// A Parallel's or Map's output once all of its branches or iterations gave `results`.
pub fn fanout_finish(v: &View<'_>, results: Value) -> Result<Work, Failure> {
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    // With a result, the data flow does not read the effective input.
    finish_step(v, &v.frame.input, Some(results), &ctx, v.node.next)
}

/// A catcher's output and assignments for `failure`.
pub fn catch_output(
    v: &View<'_>,
    c: &wfm_asl::definition::Catcher,
    failure: &Failure,
) -> Result<(Value, Map<String, Value>), Failure> {
    let error_output = failure.output();
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
