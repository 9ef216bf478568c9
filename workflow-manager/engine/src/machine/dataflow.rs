//! A state's data flow in either query language: what the state works on (JSONPath's
//! InputPath and Parameters, or JSONata's Arguments), what it outputs (ResultSelector,
//! ResultPath and OutputPath, or JSONata's Output) and which variables it assigns (Assign, in
//! both). The state modules run a state's work; this module shapes what goes in and out.

use serde_json::{Map, Value};
use wfm_asl::definition::State;
use wfm_asl::jsonata;
use wfm_asl::path::{apply_path_filter, apply_result_path, expand_template, Context, PathError};

/// The data-flow fields of one state, whatever its type.
#[derive(Default)]
pub(crate) struct Fields<'a> {
    pub input_path: Option<&'a Value>,
    pub parameters: Option<&'a Value>,
    pub arguments: Option<&'a Value>,
    pub result_selector: Option<&'a Value>,
    pub result_path: Option<&'a Value>,
    pub output_path: Option<&'a Value>,
    pub output: Option<&'a Value>,
    pub assign: Option<&'a Value>,
}

impl<'a> Fields<'a> {
    pub fn of(state: &'a State) -> Self {
        match state {
            State::Pass(s) => Fields {
                input_path: s.input_path.as_ref(),
                parameters: s.parameters.as_ref(),
                result_path: s.result_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
            State::Task(s) => Fields {
                input_path: s.input_path.as_ref(),
                parameters: s.parameters.as_ref(),
                arguments: s.arguments.as_ref(),
                result_selector: s.result_selector.as_ref(),
                result_path: s.result_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
            },
            State::Choice(s) => Fields {
                input_path: s.input_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
            State::Wait(s) => Fields {
                input_path: s.input_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
            State::Succeed(s) => Fields {
                input_path: s.input_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
            State::Fail(s) => Fields {
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
            State::Parallel(s) => Fields {
                input_path: s.input_path.as_ref(),
                parameters: s.parameters.as_ref(),
                arguments: s.arguments.as_ref(),
                result_selector: s.result_selector.as_ref(),
                result_path: s.result_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
            },
            State::Map(s) => Fields {
                input_path: s.input_path.as_ref(),
                parameters: None,
                result_selector: s.result_selector.as_ref(),
                result_path: s.result_path.as_ref(),
                output_path: s.output_path.as_ref(),
                output: s.output.as_ref(),
                assign: s.assign.as_ref(),
                ..Fields::default()
            },
        }
    }
}

/// A data-flow failure: the error name and Step Functions' message (without the state prefix).
pub(crate) struct FlowError {
    pub error: &'static str,
    pub message: String,
}

impl From<PathError> for FlowError {
    fn from(e: PathError) -> Self {
        FlowError {
            error: "States.Runtime",
            message: e.to_string(),
        }
    }
}

impl From<jsonata::JsonataError> for FlowError {
    fn from(e: jsonata::JsonataError) -> Self {
        FlowError {
            error: e.error,
            message: e.message,
        }
    }
}

/// What JSONata expressions see: `$states` (the input, the context object and, where given,
/// the result or the error output) and the variables.
pub(crate) struct Bindings<'a> {
    input: &'a Value,
    context: Context<'a>,
    extra: Vec<(&'static str, &'a Value)>,
}

/// Whether any JSONata expression in `template` mentions `needle`.
fn mentions(template: &Value, needle: &str) -> bool {
    match template {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|v| mentions(v, needle)),
        Value::Object(o) => o.values().any(|v| mentions(v, needle)),
        _ => false,
    }
}

impl<'a> Bindings<'a> {
    pub fn new(input: &'a Value, context: Context<'a>) -> Self {
        Bindings {
            input,
            context,
            extra: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: &'a Value) -> Self {
        self.extra.push((key, value));
        self
    }

    pub fn eval(&self, template: &Value, field: &str) -> Result<Value, FlowError> {
        let mut states = Map::with_capacity(2 + self.extra.len());
        states.insert("input".into(), self.input.clone());
        // The context object holds the execution's input: copied only for what reads it.
        if mentions(template, "context") {
            states.insert("context".into(), self.context.to_value());
        }
        for (k, v) in &self.extra {
            states.insert((*k).to_string(), (*v).clone());
        }
        let states = Value::Object(states);
        let vars = self.context.variables();
        let mut list: Vec<(&str, &Value)> = Vec::with_capacity(vars.len() + 1);
        list.push(("states", &states));
        list.extend(vars.iter().map(|(k, v)| (k.as_str(), v)));
        Ok(jsonata::evaluate_template(template, field, &list)?)
    }
}

/// The effective input of a state: InputPath then Parameters (JSONPath), or Arguments
/// (JSONata; the raw input when absent).
pub(crate) fn effective_input(
    f: &Fields<'_>,
    jsonata_mode: bool,
    raw: &Value,
    ctx: &Context<'_>,
) -> Result<Value, FlowError> {
    if jsonata_mode {
        return match f.arguments {
            Some(t) => Bindings::new(raw, *ctx).eval(t, "Arguments"),
            None => Ok(raw.clone()),
        };
    }
    let effective = apply_path_filter(f.input_path, raw, ctx)?;
    Ok(match f.parameters {
        Some(t) => expand_template(t, &effective, ctx)?,
        None => effective,
    })
}

/// A state's output and assignments from its result (`result` is `None` for states that
/// produce none: then the result is the effective input).
pub(crate) fn output_and_assign(
    f: &Fields<'_>,
    jsonata_mode: bool,
    raw: &Value,
    effective: &Value,
    result: Option<Value>,
    ctx: &Context<'_>,
) -> Result<(Value, Map<String, Value>), FlowError> {
    if jsonata_mode {
        let has_result = result.is_some();
        let result = result.unwrap_or_else(|| raw.clone());
        let bindings = if has_result {
            Bindings::new(raw, *ctx).with("result", &result)
        } else {
            Bindings::new(raw, *ctx)
        };
        let assign = match f.assign {
            Some(t) => match bindings.eval(t, "Assign")? {
                Value::Object(o) => o,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let output = match f.output {
            Some(t) => bindings.eval(t, "Output")?,
            None => result,
        };
        return Ok((output, assign));
    }
    let result = match (result, f.result_selector) {
        (Some(r), Some(selector)) => Some(expand_template(selector, &r, ctx)?),
        (r, _) => r,
    };
    // Assign sees the (selected) result of states that have one, else the effective input.
    let assign_basis = result.as_ref().unwrap_or(effective);
    let assign = match f.assign {
        Some(t) => match expand_template(t, assign_basis, ctx)? {
            Value::Object(o) => o,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    let combined = match result {
        Some(r) => apply_result_path(f.result_path, raw, r)?,
        None => effective.clone(),
    };
    Ok((apply_path_filter(f.output_path, &combined, ctx)?, assign))
}
