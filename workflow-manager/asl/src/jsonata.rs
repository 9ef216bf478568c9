//! The JSONata query language of ASL: `{% expression %}` strings evaluated with `$states`
//! (input, result, errorOutput, context) and the execution's variables bound. Evaluation is
//! done by the `jsonata-core` crate behind the two functions of this module, so that it can be
//! swapped for another implementation without touching the engine.

use jsonata_core::evaluator::{Context, Evaluator};
use jsonata_core::value::JValue;
use serde_json::{Map, Number, Value};

/// A JSONata failure, with the error name Step Functions raises for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsonataError {
    /// `States.QueryEvaluationError` (or `States.Runtime` for malformed templates).
    pub error: &'static str,
    /// Step Functions' wording.
    pub message: String,
}

fn query_error(message: String) -> JsonataError {
    JsonataError {
        error: "States.QueryEvaluationError",
        message,
    }
}

/// The expression inside `{% ... %}`, if `s` is one.
pub fn expression(s: &str) -> Option<&str> {
    // Exactly `{%...%}`: a string with spaces around it is a literal (as on AWS).
    s.strip_prefix("{%")
        .and_then(|r| r.strip_suffix("%}"))
        .map(str::trim)
}

fn to_json(v: &JValue) -> Option<Value> {
    Some(match v {
        JValue::Undefined => return None,
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Value::from(*n as i64)
            } else {
                Number::from_f64(*n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => Value::Array(items.iter().filter_map(to_json).collect()),
        JValue::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| to_json(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
        _ => Value::Null,
    })
}

/// Step Functions' own JSONata functions: `$partition`, `$range`, `$hash`, `$random`,
/// `$uuid`, `$parse`, computed by the intrinsic functions of the JSONPath language.
fn register_step_functions_extensions(evaluator: &mut Evaluator) {
    use jsonata_core::evaluator::EvaluatorError;
    fn call(name: &str, args: &[JValue]) -> Result<JValue, EvaluatorError> {
        let args: Vec<Value> = args
            .iter()
            .map(|a| to_json(a).unwrap_or(Value::Null))
            .collect();
        let quoted: Vec<String> = args
            .iter()
            .map(|a| match a {
                Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
                other => format!(
                    "States.StringToJson('{}')",
                    other.to_string().replace('\\', "\\\\").replace('\'', "\\'")
                ),
            })
            .collect();
        let expr = format!("{name}({})", quoted.join(", "));
        crate::intrinsics::evaluate(&expr, &Value::Null, &crate::path::Context::empty())
            .map(JValue::from)
            .map_err(|e| EvaluatorError::EvaluationError(e.to_string()))
    }
    let table: [(&str, &str); 5] = [
        ("partition", "States.ArrayPartition"),
        ("range", "States.ArrayRange"),
        ("hash", "States.Hash"),
        ("uuid", "States.UUID"),
        ("parse", "States.StringToJson"),
    ];
    for (name, intrinsic) in table {
        let _ = evaluator.register_fn(name, move |args: &[JValue]| {
            let result = call(intrinsic, args)?;
            // `$range` yields a JSONata sequence: one number is that number, as in Step Functions.
            match result {
                JValue::Array(items) if name == "range" && items.len() == 1 => Ok(items[0].clone()),
                other => Ok(other),
            }
        });
    }
    // `$random` is also JSONata's own: replace it, so a seeded engine controls it too.
    let _ = evaluator.register_fn_override("random", |args: &[JValue]| {
        use rand::{Rng, SeedableRng};
        let value: f64 = match args.first().and_then(to_json).and_then(|v| v.as_f64()) {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed as u64).random(),
            None => crate::entropy::unit(),
        };
        Ok(JValue::Number(value))
    });
}

/// Evaluates one expression; `None` when it yields nothing (undefined).
pub fn evaluate(expr: &str, bindings: &[(&str, &Value)]) -> Result<Option<Value>, JsonataError> {
    let ast = jsonata_core::parser::parse(expr)
        .map_err(|e| query_error(format!("The JSONata expression '{expr}' is invalid: {e}")))?;
    let mut context = Context::new();
    for (name, value) in bindings {
        context.bind((*name).to_string(), JValue::from((*value).clone()));
    }
    let mut evaluator = Evaluator::with_context(context);
    register_step_functions_extensions(&mut evaluator);
    let result = evaluator.evaluate(&ast, &JValue::Null).map_err(|e| {
        query_error(format!(
            "The JSONata expression '{expr}' returned an error: {e}"
        ))
    })?;
    Ok(to_json(&result))
}

/// Evaluates a template: `{% %}` strings anywhere inside are replaced by their values, other
/// values are kept. `field` names where the template sits, for errors (`Output/result`).
pub fn evaluate_template(
    template: &Value,
    field: &str,
    bindings: &[(&str, &Value)],
) -> Result<Value, JsonataError> {
    match template {
        Value::String(s) => match expression(s) {
            Some(expr) => evaluate(expr, bindings)?.ok_or_else(|| {
                query_error(format!(
                    "The JSONata expression '{expr}' specified for the field '{field}' returned nothing (undefined)."
                ))
            }),
            None => Ok(template.clone()),
        },
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (k, v) in fields {
                out.insert(k.clone(), evaluate_template(v, &format!("{field}/{k}"), bindings)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| evaluate_template(v, &format!("{field}[{i}]"), bindings))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_with_states_and_variables() {
        let states = json!({"input": {"a": [1, 2, 3]}, "context": {"Execution": {"Name": "e"}}});
        let x = json!(10);
        let b = [("states", &states), ("x", &x)];
        assert_eq!(
            evaluate("$sum($states.input.a) + $x", &b),
            Ok(Some(json!(16)))
        );
        assert_eq!(
            evaluate("$states.context.Execution.Name", &b),
            Ok(Some(json!("e")))
        );
        assert_eq!(evaluate("$nothing", &b), Ok(None));
        let t =
            json!({"total": "{% $sum($states.input.a) %}", "fixed": 1, "list": ["{% $x / 4 %}"]});
        assert_eq!(
            evaluate_template(&t, "Output", &b),
            Ok(json!({"total": 6, "fixed": 1, "list": [2.5]}))
        );
        let err =
            evaluate_template(&json!({"r": "{% $nope %}"}), "Output", &b).expect_err("undefined");
        assert!(err.message.contains("'Output/r' returned nothing"), "{err}");
        assert_eq!(
            evaluate("$partition([1,2,3], 2)", &b),
            Ok(Some(json!([[1, 2], [3]])))
        );
        assert_eq!(
            evaluate("$range(0, 9, 3)", &b),
            Ok(Some(json!([0, 3, 6, 9])))
        );
        assert_eq!(
            evaluate("$parse('{\"a\": 1}')", &b),
            Ok(Some(json!({"a": 1})))
        );
        assert_eq!(
            evaluate("$hash('input data', 'MD5')", &b),
            Ok(Some(json!("812f45842bc6d66ee14572ce20db8e86")))
        );
    }
}
