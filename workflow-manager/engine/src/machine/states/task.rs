//! `Task`: its effective input goes to an activity's workers or to a registered service
//! integration; `TimeoutSeconds` and `HeartbeatSeconds` (literal, from a path, or JSONata)
//! bound the wait; the result is shaped by `ResultSelector`, `ResultPath` and `OutputPath`
//! (or JSONata's `Output`).

use serde_json::Value;
use wfm_asl::path::select;
use wfm_asl::State;

use super::{finish_step, ActivityPlan, CallPlan, View, Work};
use crate::machine::compiled::Resource;
use crate::machine::dataflow::{effective_input, Bindings, Fields};
use crate::machine::retry::Failure;
use crate::machine::Env;

/// The Task state's work: a task to hand out or a call to make. `token` is the task's token
/// (`$$.Task.Token`).
pub fn run(v: &View<'_>, token: &str, env: &dyn Env) -> Result<Work, Failure> {
    let State::Task(s) = &v.node.state else {
        return Err(v.runtime("not a Task state"));
    };
    let raw = &v.frame.input;
    let part = v.state_part(Some(token));
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective = effective_input(&f, v.node.jsonata, raw, &ctx).map_err(|e| v.flow(e))?;
    let seconds = |value: &Option<Value>, path: &Option<String>| -> Result<Option<u64>, Failure> {
        if let Some(value) = value {
            if v.node.jsonata {
                let value = Bindings::new(raw, ctx)
                    .eval(value, "TimeoutSeconds")
                    .map_err(|e| v.flow(e))?;
                return Ok(value.as_u64());
            }
            return Ok(value.as_u64());
        }
        if let Some(p) = path {
            let value = select(p, raw, &ctx).map_err(|e| v.runtime(e))?;
            return value
                .as_u64()
                .map(Some)
                .ok_or_else(|| v.runtime(format!("{p} must select a non-negative integer")));
        }
        Ok(None)
    };
    let timeout = seconds(&s.timeout_seconds, &s.timeout_seconds_path)?;
    let heartbeat = seconds(&s.heartbeat_seconds, &s.heartbeat_seconds_path)?;
    match v.node.resource.as_ref() {
        Some(Resource::Activity(arn)) => {
            if !env.activity_exists(arn) {
                return Ok(Work::ScheduleFailed(
                    v.runtime(format!("The activity {arn} does not exist.")),
                ));
            }
            Ok(Work::Activity(ActivityPlan {
                activity: arn.clone(),
                input: effective.to_string(),
                timeout,
                heartbeat,
                secret: String::new(),
            }))
        }
        Some(r @ (Resource::Service { .. } | Resource::Other(_))) => {
            let resource = r.arn();
            match env.integration(resource) {
                Some(info) => Ok(Work::Call(CallPlan {
                    resource: resource.to_string(),
                    parameters: effective,
                    timeout,
                    heartbeat,
                    info,
                    secret: String::new(),
                })),
                None => Err(v.runtime(format!(
                    "The resource '{resource}' is not supported by the embedded engine: only activity ARNs and the registered service integrations are"
                ))),
            }
        }
        None => Err(v.runtime("a Task state needs a Resource")),
    }
}

/// The Task state's output from its task's result (JSON text).
pub fn finish(v: &View<'_>, result: &str, token: &str) -> Result<Work, Failure> {
    let part = v.state_part((!token.is_empty()).then_some(token));
    let ctx = v.ctx(&part);
    let result: Value = serde_json::from_str(result)
        .map_err(|e| v.runtime(format!("task output is not JSON: {e}")))?;
    // With a result, the data flow does not read the effective input.
    finish_step(v, &v.frame.input, Some(result), &ctx, v.node.next)
}
