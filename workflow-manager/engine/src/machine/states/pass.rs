//! `Pass`: its input (or `Result`) shaped by its data flow.

use wfm_asl::State;

use super::{finish_step, View, Work};
use crate::machine::dataflow::{effective_input, Fields};
use crate::machine::retry::Failure;

/// The Pass state's output.
pub fn run(v: &View<'_>) -> Result<Work, Failure> {
    let State::Pass(s) = &v.node.state else {
        return Err(v.runtime("not a Pass state"));
    };
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective =
        effective_input(&f, v.node.jsonata, &v.frame.input, &ctx).map_err(|e| v.flow(e))?;
    let result = if v.node.jsonata {
        None
    } else {
        Some(s.result.clone().unwrap_or_else(|| effective.clone()))
    };
    finish_step(v, &effective, result, &ctx, v.node.next)
}
