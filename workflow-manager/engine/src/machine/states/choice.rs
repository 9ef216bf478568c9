//! `Choice`: the first rule that matches (JSONPath comparisons or a JSONata `Condition`) picks
//! the successor, else `Default`; a matched rule's `Assign` and `Output` replace the state's.

use serde_json::Value;
use wfm_asl::State;

use super::{View, Work};
use crate::machine::choice_rules;
use crate::machine::dataflow::{effective_input, Bindings, Fields};
use crate::machine::retry::Failure;

/// The Choice state's successor and output.
pub fn run(v: &View<'_>) -> Result<Work, Failure> {
    let State::Choice(s) = &v.node.state else {
        return Err(v.runtime("not a Choice state"));
    };
    let raw = &v.frame.input;
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective = effective_input(&f, v.node.jsonata, raw, &ctx).map_err(|e| v.flow(e))?;
    let mut chosen = None;
    for rule in s.choices.as_deref().unwrap_or(&[]) {
        let matched = if v.node.jsonata {
            let condition = rule
                .condition
                .as_ref()
                .ok_or_else(|| v.runtime("a JSONata choice rule needs a Condition"))?;
            match Bindings::new(raw, ctx)
                .eval(condition, "Condition")
                .map_err(|e| v.flow(e))?
            {
                Value::Bool(b) => b,
                other => {
                    return Err(Failure::new(
                        "States.QueryEvaluationError",
                        v.message(format!(
                            "The Condition field must evaluate to a boolean, but was: {other}"
                        )),
                    ))
                }
            }
        } else {
            choice_rules::evaluate(rule, &effective, &ctx).map_err(|e| v.runtime(e))?
        };
        if matched {
            chosen = Some(rule);
            break;
        }
    }
    let next = match chosen {
        Some(rule) => rule.next.clone(),
        None => s.default.clone(),
    };
    let next = next.ok_or_else(|| {
        Failure::new(
            "States.NoChoiceMatched",
            format!(
                "No Matches! (no choice rule of state '{}' matched and it has no Default)",
                v.node.name
            ),
        )
    })?;
    let next = v.target(&next)?;
    // A matched rule's own Assign and Output take the place of the state's.
    let rule_fields;
    let fields = match chosen.filter(|r| r.assign.is_some() || r.output.is_some()) {
        Some(rule) => {
            rule_fields = Fields {
                input_path: f.input_path,
                output_path: f.output_path,
                output: rule.output.as_ref().or(f.output),
                assign: rule.assign.as_ref().or(f.assign),
                ..Fields::default()
            };
            &rule_fields
        }
        None => &f,
    };
    let (output, assigned) = crate::machine::dataflow::output_and_assign(
        fields,
        v.node.jsonata,
        raw,
        &effective,
        None,
        &ctx,
    )
    .map_err(|e| v.flow(e))?;
    Ok(Work::Exit {
        output,
        assigned,
        next: Some(next),
    })
}
