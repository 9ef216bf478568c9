//! `Succeed`: ends its machine with its (shaped) input.

use super::{finish_step, View, Work};
use crate::machine::dataflow::{effective_input, Fields};
use crate::machine::retry::Failure;

/// The Succeed state's output.
pub fn run(v: &View<'_>) -> Result<Work, Failure> {
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective =
        effective_input(&f, v.node.jsonata, &v.frame.input, &ctx).map_err(|e| v.flow(e))?;
    finish_step(v, &effective, None, &ctx, None)
}
