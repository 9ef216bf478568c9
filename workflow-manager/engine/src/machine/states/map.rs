//! `Map`: the items (`ItemsPath`, JSONata `Items`, or what a Distributed Map's `ItemReader`
//! read), each turned into an iteration's input by `ItemSelector` (or the legacy `Parameters`)
//! with `$$.Map.Item` and, with an `ItemBatcher`, grouped into batches; run by the processor
//! at most `MaxConcurrency` at a time, with `ToleratedFailureCount` and
//! `ToleratedFailurePercentage`; the output is the array of the iterations' outputs (or,
//! with a `ResultWriter`, where they were written).

use std::sync::Arc;

use serde_json::{json, Value};
use wfm_asl::path::{expand_template, select, Context};
use wfm_asl::State;

use super::map_io;
use super::{Plan, View, Work};
use crate::machine::context;
use crate::machine::dataflow::{effective_input, Bindings, Fields};
use crate::machine::execution::MapItems;
use crate::machine::retry::Failure;

fn shown(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// A Map field that is a number, or (JSONata) an expression giving one.
fn number(
    v: &View<'_>,
    ctx: Context<'_>,
    value: Option<&Value>,
    field: &str,
) -> Result<Option<Value>, Failure> {
    match value {
        Some(Value::String(t)) if v.node.jsonata => Ok(Some(
            Bindings::new(&v.frame.input, ctx)
                .eval(&Value::String(t.clone()), field)
                .map_err(|e| v.flow(e))?,
        )),
        other => Ok(other.cloned()),
    }
}

/// A non-negative integer from a literal or a path, named for error messages.
fn integer_field(
    v: &View<'_>,
    literal: Option<&Value>,
    path: Option<&String>,
    field: &str,
    input: &Value,
    ctx: &Context<'_>,
) -> Result<Option<i64>, Failure> {
    if let Some(value) = literal {
        return value
            .as_i64()
            .map(Some)
            .ok_or_else(|| v.runtime(format!("{field} must be an integer")));
    }
    let Some(p) = path else { return Ok(None) };
    let value = select(p, input, ctx).map_err(|e| v.runtime(e))?;
    let n = match &value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        v.runtime(format!(
            "The {field}Path field refers to value \"{}\" which is not a valid integer: {p}",
            shown(&value)
        ))
    })
}

/// The iterations to run.
pub fn run(v: &View<'_>) -> Result<Work, Failure> {
    let State::Map(s) = &v.node.state else {
        return Err(v.runtime("not a Map state"));
    };
    let raw = &v.frame.input;
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective = effective_input(&f, v.node.jsonata, raw, &ctx).map_err(|e| v.flow(e))?;
    // A Distributed Map's reader reads the items first (ItemsPath is not applied to them).
    if let Some(reader) = &s.item_reader {
        return Ok(Work::ReadItems(map_io::read_plan(
            v, reader, &effective, &ctx,
        )?));
    }
    let items_value = if v.node.jsonata {
        match &s.items {
            Some(t) => {
                let value = Bindings::new(raw, ctx)
                    .eval(t, "Items")
                    .map_err(|e| v.flow(e))?;
                if !value.is_array() {
                    let expr = t
                        .as_str()
                        .and_then(wfm_asl::jsonata::expression)
                        .unwrap_or("");
                    return Err(Failure::new(
                        "States.QueryEvaluationError",
                        v.message(format!(
                            "The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {value}",
                            wfm_asl::intrinsics::type_name(&value)
                        )),
                    ));
                }
                value
            }
            None => effective.clone(),
        }
    } else {
        match &s.items_path {
            Some(p) => select(p, &effective, &ctx).map_err(|e| v.runtime(e))?,
            None => effective.clone(),
        }
    };
    let Value::Array(items) = items_value else {
        let error = if v.node.jsonata {
            "States.QueryEvaluationError"
        } else {
            "States.Runtime"
        };
        return Err(Failure::new(
            error,
            v.message(format!(
                "Map state input must be an array but was: {items_value}"
            )),
        ));
    };
    plan(v, items, effective, &ctx)
}

/// The iterations of the items an `ItemReader` read.
pub fn with_items(v: &View<'_>, items: Vec<Value>) -> Result<Work, Failure> {
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    let f = Fields::of(&v.node.state);
    let effective =
        effective_input(&f, v.node.jsonata, &v.frame.input, &ctx).map_err(|e| v.flow(e))?;
    plan(v, items, effective, &ctx)
}

/// The fanout over `items`: concurrency, tolerance and (with an `ItemBatcher`) batches.
fn plan(
    v: &View<'_>,
    items: Vec<Value>,
    effective: Value,
    ctx: &Context<'_>,
) -> Result<Work, Failure> {
    let State::Map(s) = &v.node.state else {
        return Err(v.runtime("not a Map state"));
    };
    let ctx = *ctx;
    let max_concurrency = number(v, ctx, s.max_concurrency.as_ref(), "MaxConcurrency")?;
    let max_concurrency = integer_field(
        v,
        max_concurrency.as_ref(),
        s.max_concurrency_path.as_ref(),
        "MaxConcurrency",
        &effective,
        &ctx,
    )?;
    let tolerated_count = number(
        v,
        ctx,
        s.tolerated_failure_count.as_ref(),
        "ToleratedFailureCount",
    )?;
    let tolerated_count = integer_field(
        v,
        tolerated_count.as_ref(),
        s.tolerated_failure_count_path.as_ref(),
        "ToleratedFailureCount",
        &effective,
        &ctx,
    )?;
    if tolerated_count.is_some_and(|c| c < 0) {
        return Err(v.runtime("ToleratedFailureCount cannot be negative."));
    }
    let tolerated_percentage = number(
        v,
        ctx,
        s.tolerated_failure_percentage.as_ref(),
        "ToleratedFailurePercentage",
    )?;
    let tolerated_percentage = match (&tolerated_percentage, &s.tolerated_failure_percentage_path) {
        (Some(value), _) => value.as_f64(),
        (None, Some(p)) => {
            let value = select(p, &effective, &ctx).map_err(|e| v.runtime(e))?;
            // A number, or a string holding one.
            let number = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|t| t.trim().parse().ok()));
            Some(number.ok_or_else(|| {
                v.runtime(format!(
                    "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {p}",
                    shown(&value)
                ))
            })?)
        }
        (None, None) => None,
    };
    if tolerated_percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        return Err(v.runtime("ToleratedFailurePercentage must be between 0 and 100."));
    }
    if s.processor().is_none() {
        return Err(v.runtime("a Map state needs an ItemProcessor"));
    }
    // Batches are made of items through the ItemSelector; each batch is an iteration's input.
    let (items, prepared) = if s.item_batcher.is_some() {
        let selected = items
            .iter()
            .enumerate()
            .map(|(i, item)| select_item(v, item, i as u32, &effective))
            .collect::<Result<Vec<_>, _>>()?;
        (map_io::batches(v, selected, &effective, &ctx)?, true)
    } else {
        (items, false)
    };
    let total = items.len() as u32;
    let limit = match max_concurrency {
        Some(n) if n > 0 => n.min(i64::from(u32::MAX)) as u32,
        _ => total.max(1),
    };
    Ok(Work::Fanout(Plan {
        total,
        limit,
        branch_input: None,
        items: Some(Arc::new(MapItems {
            items,
            effective,
            prepared,
        })),
        tolerated_count,
        tolerated_percentage,
    }))
}

/// The input of iteration `index`: its item through the ItemSelector, which sees
/// `$$.Map.Item`.
pub fn iteration_input(v: &View<'_>, items: &MapItems, index: u32) -> Result<Value, Failure> {
    let value = items
        .items
        .get(index as usize)
        .ok_or_else(|| v.runtime(format!("the Map has no item {index}")))?;
    if items.prepared {
        return Ok(value.clone());
    }
    select_item(v, value, index, &items.effective)
}

/// An item through the ItemSelector (which sees `$$.Map.Item`).
fn select_item(
    v: &View<'_>,
    value: &Value,
    index: u32,
    effective: &Value,
) -> Result<Value, Failure> {
    let State::Map(s) = &v.node.state else {
        return Err(v.runtime("not a Map state"));
    };
    let Some(template) = s.item_selector.as_ref().or(s.parameters.as_ref()) else {
        return Ok(value.clone());
    };
    let item = json!({"Index": index, "Value": value});
    let part = context::state_part(&v.node.name, v.frame.entered_ms, None, Some(item));
    let ctx = v.ctx(&part);
    if v.node.jsonata {
        Bindings::new(&v.frame.input, ctx)
            .eval(template, "ItemSelector")
            .map_err(|e| v.flow(e))
    } else {
        expand_template(template, effective, &ctx).map_err(|e| v.runtime(e))
    }
}
