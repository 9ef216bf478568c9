//! Property tests of the parser and the data-flow languages on hostile input: whatever the
//! definition, path or intrinsic, they answer `Ok` or an error, and never panic. Definitions
//! are generated three ways: any JSON at all, ASL-shaped machines with random fields and
//! values (which reach deep into the per-state parsing and validation), and random text.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use wfm_asl::{intrinsics, parse_definition, parse_definition_value, path, validate};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        asl_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Strings the languages care about: paths, intrinsics, JSONata, ARNs, error names.
fn asl_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("$".to_string()),
        "\\$(\\.[a-z]{1,3}|\\[[0-9*]\\]|\\['[a-z]{0,2}'\\]|\\.\\.|\\[\\?\\(@\\.[a-z] ?[<>=]{1,2} ?[0-9]\\)\\]){0,4}",
        "\\$\\$(\\.[A-Za-z]{1,8}){0,3}",
        "States\\.(Format|StringToJson|JsonToString|Array|ArrayPartition|ArrayContains|ArrayRange|ArrayGetItem|ArrayLength|ArrayUnique|Base64Encode|Base64Decode|Hash|JsonMerge|MathRandom|MathAdd|StringSplit|UUID)\\(([^()]{0,8}|'[^']{0,4}'|\\$\\.[a-z]|[0-9-]{1,3})?(, ?([^()]{0,6}|\\$\\.[a-z]|[0-9-]{1,4}|'\\{\\}'))*\\)",
        "\\{%.{0,16}%\\}",
        "arn:aws:states:::[a-z:.]{0,20}",
        "States\\.(ALL|TaskFailed|Timeout|Runtime|[A-Za-z]{0,6})",
        "[0-9T:.Z-]{0,24}",
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Type",
            "Next",
            "End",
            "Comment",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Result",
            "Resource",
            "Retry",
            "Catch",
            "ErrorEquals",
            "IntervalSeconds",
            "MaxAttempts",
            "BackoffRate",
            "MaxDelaySeconds",
            "JitterStrategy",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Choices",
            "Default",
            "Variable",
            "StringEquals",
            "NumericGreaterThan",
            "NumericLessThanPath",
            "BooleanEquals",
            "IsPresent",
            "StringMatches",
            "TimestampEquals",
            "And",
            "Or",
            "Not",
            "Condition",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Branches",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "MaxConcurrency",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Error",
            "Cause",
            "ErrorPath",
            "CausePath",
            "StartAt",
            "States",
            "QueryLanguage",
            "Arguments",
            "Output",
            "Assign",
            "ProcessorConfig",
            "Mode",
            "a.$",
            "b",
            "Version",
        ])
        .prop_map(str::to_string),
        "[A-Za-z.$]{0,6}",
    ]
}

fn state_type() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map", "Nope",
    ])
    .prop_map(|t| json!(t))
}

/// An ASL-shaped machine: states with a type, transitions among them, and random fields,
/// with Parallel branches and Map processors nested inside.
fn machine() -> impl Strategy<Value = Value> {
    let leaf = state_machine_of(Just(Value::Null).boxed());
    leaf.prop_recursive(2, 12, 3, |inner| state_machine_of(inner.boxed()))
}

fn state_machine_of(nested: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec!["A", "B", "C", "D"]);
    let state = (
        state_type(),
        prop::collection::vec((field_name(), any_json()), 0..5),
        prop::option::of(names.clone()),
        any::<bool>(),
        prop::option::of(nested.clone()),
        prop::option::of(prop::collection::vec(nested, 0..3)),
    )
        .prop_map(|(ty, fields, next, end, processor, branches)| {
            let mut s: Map<String, Value> = fields.into_iter().collect();
            s.insert("Type".into(), ty);
            if let Some(n) = next {
                s.insert("Next".into(), json!(n));
            }
            if end {
                s.insert("End".into(), json!(true));
            }
            if let Some(p) = processor.filter(|p| !p.is_null()) {
                s.insert("ItemProcessor".into(), p);
            }
            if let Some(b) = branches {
                s.insert(
                    "Branches".into(),
                    Value::Array(b.into_iter().filter(|b| !b.is_null()).collect()),
                );
            }
            Value::Object(s)
        });
    (
        names,
        prop::collection::vec(
            (prop::sample::select(vec!["A", "B", "C", "D", ""]), state),
            0..5,
        ),
        prop::collection::vec((field_name(), any_json()), 0..2),
    )
        .prop_map(|(start, states, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("StartAt".into(), json!(start));
            m.insert(
                "States".into(),
                Value::Object(
                    states
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                ),
            );
            Value::Object(m)
        })
}

fn check(value: &Value) {
    if let Ok(machine) = parse_definition_value(value) {
        let _ = validate(&machine);
    }
    let _ = parse_definition(&value.to_string());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn asl_shaped_machines_never_panic(m in machine()) {
        check(&m);
    }

    #[test]
    fn any_json_never_panics(v in any_json()) {
        check(&v);
        check(&json!({"StartAt": "A", "States": {"A": v}}));
    }

    #[test]
    fn any_text_never_panics(text in ".{0,200}") {
        let _ = parse_definition(&text);
    }

    #[test]
    fn paths_and_intrinsics_never_panic(expr in asl_string(), input in any_json()) {
        let execution = json!({"Execution": {"Id": "x", "Input": input.clone()}});
        let state = json!({"State": {"Name": "A"}});
        let vars: serde_json::Map<String, serde_json::Value> =
            [("v".to_string(), input.clone())].into_iter().collect();
        let context = path::Context::new(&execution, &state, &vars);
        let _ = path::select(&expr, &input, &context);
        let _ = path::evaluate_expression(&expr, &input, &context);
        if intrinsics::is_intrinsic(&expr) {
            let _ = intrinsics::evaluate(&expr, &input, &context);
        }
        let template = json!({"a.$": expr, "b": [1, {"c.$": "$"}]});
        let _ = path::expand_template(&template, &input, &context);
    }
}
