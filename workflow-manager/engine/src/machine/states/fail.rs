//! `Fail`: ends its machine with an error and a cause (literal, from paths, or JSONata).

use serde_json::Value;
use wfm_asl::path::{evaluate_expression, PathError};
use wfm_asl::State;

use super::View;
use crate::machine::dataflow::Bindings;
use crate::machine::retry::Failure;

fn text(v: Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The Fail state's failure (`Err` only when computing it failed).
pub fn run(v: &View<'_>) -> Result<Failure, Failure> {
    let State::Fail(s) = &v.node.state else {
        return Err(v.runtime("not a Fail state"));
    };
    let raw = &v.frame.input;
    let part = v.state_part(None);
    let ctx = v.ctx(&part);
    if v.node.jsonata {
        let bindings = Bindings::new(raw, ctx);
        let eval = |t: &Option<String>, field: &str| -> Result<Option<String>, Failure> {
            match t {
                Some(t) => Ok(Some(text(
                    bindings
                        .eval(&Value::String(t.clone()), field)
                        .map_err(|e| v.flow(e))?,
                ))),
                None => Ok(None),
            }
        };
        return Ok(Failure {
            error: eval(&s.error, "Error")?.unwrap_or_default(),
            cause: eval(&s.cause, "Cause")?.unwrap_or_default(),
            unset: false,
        });
    }
    let from_path = |p: &Option<String>, field: &str| -> Result<Option<String>, Failure> {
        match p {
            Some(p) => {
                let value = evaluate_expression(p, raw, &ctx).map_err(|e| match e {
                    PathError::NoResults { path } | PathError::MissingProperty { path, .. } => v
                        .runtime(PathError::FieldNotFound {
                            path,
                            field: field.to_string(),
                            input: raw.to_string(),
                        }),
                    other => v.runtime(other),
                })?;
                Ok(Some(text(value)))
            }
            None => Ok(None),
        }
    };
    let error = match &s.error {
        Some(e) => Some(e.clone()),
        None => from_path(&s.error_path, "ErrorPath")?,
    };
    let cause = match &s.cause {
        Some(c) => Some(c.clone()),
        None => from_path(&s.cause_path, "CausePath")?,
    };
    Ok(Failure {
        error: error.unwrap_or_default(),
        cause: cause.unwrap_or_default(),
        unset: false,
    })
}
