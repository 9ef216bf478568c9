//! Evaluation of Choice rules (JSONPath query language): every comparison operator, their
//! `*Path` forms, the type tests and `And`/`Or`/`Not`. A comparison between values of different
//! types is false, as in Step Functions.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use wfm_asl::definition::ChoiceRule;
use wfm_asl::path::{select, Context, PathError};

/// Whether `rule` matches `input`.
pub fn evaluate(
    rule: &ChoiceRule,
    input: &Value,
    context: &Context<'_>,
) -> Result<bool, PathError> {
    if let Some(rules) = &rule.and {
        for r in rules {
            if !evaluate(r, input, context)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(rules) = &rule.or {
        for r in rules {
            if evaluate(r, input, context)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(r) = &rule.not {
        return Ok(!evaluate(r, input, context)?);
    }
    if rule.condition.is_some() {
        return Err(PathError::Unsupported(
            "JSONata Condition is not supported by this engine yet".into(),
        ));
    }
    let Some(variable) = rule.variable.as_deref() else {
        return Err(PathError::Invalid {
            path: String::new(),
            reason: "a comparison needs a Variable".into(),
        });
    };
    let value = match select(variable, input, context) {
        Ok(v) => Some(v),
        Err(PathError::NoResults { .. } | PathError::MissingProperty { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(expected) = rule.is_present {
        return Ok(value.is_some() == expected);
    }
    let Some(value) = value else {
        return Err(PathError::Invalid {
            path: variable.to_string(),
            reason: "The choice state's condition path references an invalid value.".into(),
        });
    };
    let other = |path: &str| select(path, input, context);

    if let Some(b) = rule.is_null {
        return Ok(value.is_null() == b);
    }
    if let Some(b) = rule.is_numeric {
        return Ok(value.is_number() == b);
    }
    if let Some(b) = rule.is_string {
        return Ok(value.is_string() == b);
    }
    if let Some(b) = rule.is_boolean {
        return Ok(value.is_boolean() == b);
    }
    if let Some(b) = rule.is_timestamp {
        return Ok(as_timestamp(&value).is_some() == b);
    }
    if let Some(pattern) = &rule.string_matches {
        return Ok(value.as_str().is_some_and(|s| glob_matches(pattern, s)));
    }

    macro_rules! string_cmp {
        ($lit:ident, $path:ident, $ok:expr) => {
            if let Some(expected) = &rule.$lit {
                return Ok(cmp_strings(&value, &Value::String(expected.clone())).is_some_and($ok));
            }
            if let Some(p) = &rule.$path {
                return Ok(cmp_strings(&value, &other(p)?).is_some_and($ok));
            }
        };
    }
    macro_rules! numeric_cmp {
        ($lit:ident, $path:ident, $ok:expr) => {
            if let Some(expected) = &rule.$lit {
                return Ok(cmp_numbers(&value, &Value::Number(expected.clone())).is_some_and($ok));
            }
            if let Some(p) = &rule.$path {
                return Ok(cmp_numbers(&value, &other(p)?).is_some_and($ok));
            }
        };
    }
    macro_rules! timestamp_cmp {
        ($lit:ident, $path:ident, $ok:expr) => {
            if let Some(expected) = &rule.$lit {
                return Ok(
                    cmp_timestamps(&value, &Value::String(expected.clone())).is_some_and($ok)
                );
            }
            if let Some(p) = &rule.$path {
                return Ok(cmp_timestamps(&value, &other(p)?).is_some_and($ok));
            }
        };
    }

    string_cmp!(string_equals, string_equals_path, |o| o == Ordering::Equal);
    string_cmp!(string_less_than, string_less_than_path, |o| o
        == Ordering::Less);
    string_cmp!(string_greater_than, string_greater_than_path, |o| o
        == Ordering::Greater);
    string_cmp!(string_less_than_equals, string_less_than_equals_path, |o| o
        != Ordering::Greater);
    string_cmp!(
        string_greater_than_equals,
        string_greater_than_equals_path,
        |o| o != Ordering::Less
    );
    numeric_cmp!(numeric_equals, numeric_equals_path, |o| o
        == Ordering::Equal);
    numeric_cmp!(numeric_less_than, numeric_less_than_path, |o| o
        == Ordering::Less);
    numeric_cmp!(numeric_greater_than, numeric_greater_than_path, |o| o
        == Ordering::Greater);
    numeric_cmp!(
        numeric_less_than_equals,
        numeric_less_than_equals_path,
        |o| o != Ordering::Greater
    );
    numeric_cmp!(
        numeric_greater_than_equals,
        numeric_greater_than_equals_path,
        |o| o != Ordering::Less
    );
    timestamp_cmp!(timestamp_equals, timestamp_equals_path, |o| o
        == Ordering::Equal);
    timestamp_cmp!(timestamp_less_than, timestamp_less_than_path, |o| o
        == Ordering::Less);
    timestamp_cmp!(timestamp_greater_than, timestamp_greater_than_path, |o| o
        == Ordering::Greater);
    timestamp_cmp!(
        timestamp_less_than_equals,
        timestamp_less_than_equals_path,
        |o| o != Ordering::Greater
    );
    timestamp_cmp!(
        timestamp_greater_than_equals,
        timestamp_greater_than_equals_path,
        |o| o != Ordering::Less
    );

    if let Some(expected) = rule.boolean_equals {
        return Ok(value.as_bool() == Some(expected));
    }
    if let Some(p) = &rule.boolean_equals_path {
        let o = other(p)?;
        return Ok(value.as_bool().is_some() && value.as_bool() == o.as_bool());
    }
    Err(PathError::Invalid {
        path: variable.to_string(),
        reason: "the choice rule has no comparison operator".into(),
    })
}

fn cmp_strings(a: &Value, b: &Value) -> Option<Ordering> {
    Some(a.as_str()?.cmp(b.as_str()?))
}

fn cmp_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn as_timestamp(v: &Value) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(v.as_str()?).ok()
}

fn cmp_timestamps(a: &Value, b: &Value) -> Option<Ordering> {
    Some(as_timestamp(a)?.cmp(&as_timestamp(b)?))
}

/// `StringMatches`: `*` matches any run of characters, `\*` a literal star, `\\` a backslash.
fn glob_matches(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => toks.push(Tok::Char(n)),
                None => toks.push(Tok::Char('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Iterative wildcard matching with backtracking to the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < toks.len() && toks[p] == Tok::Char(text[t]) {
            t += 1;
            p += 1;
        } else if p < toks.len() && toks[p] == Tok::Star {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < toks.len() && toks[p] == Tok::Star {
        p += 1;
    }
    p == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> ChoiceRule {
        serde_json::from_value(v).expect("rule")
    }

    #[test]
    fn comparisons_and_combinators() {
        let input = json!({"n": 5, "s": "abc", "b": true, "t": "2024-01-01T00:00:00Z", "m": 7});
        let ctx = Context::empty();
        let cases = [
            (json!({"Variable": "$.n", "NumericEquals": 5}), true),
            (
                json!({"Variable": "$.n", "NumericLessThanPath": "$.m"}),
                true,
            ),
            (json!({"Variable": "$.n", "NumericGreaterThan": 5}), false),
            (json!({"Variable": "$.s", "StringEquals": "abc"}), true),
            (json!({"Variable": "$.s", "NumericEquals": 1}), false),
            (json!({"Variable": "$.s", "StringMatches": "a*c"}), true),
            (json!({"Variable": "$.s", "StringMatches": "a\\*c"}), false),
            (json!({"Variable": "$.b", "BooleanEquals": true}), true),
            (
                json!({"Variable": "$.t", "TimestampLessThan": "2025-01-01T00:00:00Z"}),
                true,
            ),
            (json!({"Variable": "$.zz", "IsPresent": false}), true),
            (json!({"Variable": "$.t", "IsTimestamp": true}), true),
            (
                json!({"Not": {"Variable": "$.b", "BooleanEquals": true}}),
                false,
            ),
            (
                json!({"And": [{"Variable": "$.n", "IsNumeric": true},
                            {"Variable": "$.s", "IsString": true}]}),
                true,
            ),
            (
                json!({"Or": [{"Variable": "$.n", "IsNull": true},
                           {"Variable": "$.s", "StringGreaterThan": "abb"}]}),
                true,
            ),
        ];
        for (r, expected) in cases {
            assert_eq!(
                evaluate(&rule(r.clone()), &input, &ctx),
                Ok(expected),
                "{r}"
            );
        }
    }

    #[test]
    fn a_missing_variable_is_a_runtime_error() {
        let r = rule(json!({"Variable": "$.missing", "StringEquals": "x"}));
        assert!(evaluate(&r, &json!({}), &Context::empty()).is_err());
    }
}
