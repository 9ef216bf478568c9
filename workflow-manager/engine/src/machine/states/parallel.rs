//! `Parallel`: every branch runs on the state's effective input; the output is the array of
//! the branches' outputs, in branch order, shaped by the state's data flow.

use wfm_asl::State;

use super::{Plan, View, Work};
use crate::machine::dataflow::{effective_input, Fields};
use crate::machine::retry::Failure;

/// The branches to run.
pub fn run(v: &View<'_>) -> Result<Work, Failure> {
    let State::Parallel(s) = &v.node.state else {
        return Err(v.runtime("not a Parallel state"));
    };
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective =
        effective_input(&f, v.node.jsonata, &v.frame.input, &ctx).map_err(|e| v.flow(e))?;
    let total = s.branches.as_ref().map_or(0, Vec::len) as u32;
    Ok(Work::Fanout(Plan {
        total,
        limit: total.max(1),
        branch_input: Some(effective),
        items: None,
        tolerated_count: None,
        tolerated_percentage: None,
    }))
}
