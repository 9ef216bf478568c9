//! Intrinsic functions of the JSONPath query language (`States.Format(...)` and the rest):
//! a parser for the call syntax and an evaluator with Step Functions' semantics. No crate
//! implements them, so both are written here.
//!
//! Arguments are string literals in single quotes (`\'`, `\{`, `\}`, `\\` escapes), numbers,
//! `true`, `false`, `null`, paths (`$.a`, `$$.Execution.Id`) and nested calls.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::path::{select, Context, PathError};

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(Value),
    Path(String),
    Call(Call),
}

/// A parsed call.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    name: String,
    args: Vec<Arg>,
}

fn failure(message: impl Into<String>) -> PathError {
    PathError::Intrinsic(message.into())
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
            text,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> PathError {
        PathError::Invalid {
            path: self.text.to_string(),
            reason: format!("{what} at position {}", self.pos),
        }
    }

    fn call(&mut self) -> Result<Call, PathError> {
        self.skip_ws();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !name.starts_with("States.") {
            return Err(self.error("expected an intrinsic function name"));
        }
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(self.error("expected ',' or ')'")),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, PathError> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string().map(|s| Arg::Literal(Value::String(s))),
            Some('$') => Ok(Arg::Path(self.path())),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Arg::Literal),
            Some(_) if self.rest_starts_with("States.") => self.call().map(Arg::Call),
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest_starts_with(word) {
                        self.pos += word.len();
                        return Ok(Arg::Literal(value));
                    }
                }
                Err(self.error("unexpected argument"))
            }
            None => Err(self.error("unexpected end")),
        }
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        self.chars[self.pos..]
            .iter()
            .take(s.len())
            .copied()
            .eq(s.chars())
    }

    fn string(&mut self) -> Result<String, PathError> {
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => {
                    let Some(n) = self.peek() else { break };
                    self.pos += 1;
                    match n {
                        '\'' | '\\' => out.push(n),
                        // `\{` and `\}` stay escaped for States.Format to see.
                        '{' | '}' => {
                            out.push('\\');
                            out.push(n);
                        }
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                '\'' => return Ok(out),
                c => out.push(c),
            }
        }
        Err(self.error("unterminated string"))
    }

    /// A path runs to the next `,` or `)` outside brackets and quotes.
    fn path(&mut self) -> String {
        let start = self.pos;
        let mut depth = 0;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']') => depth -= 1,
                (None, ')') if depth == 0 => break,
                (None, ')') => depth -= 1,
                (None, ',') if depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    }

    fn number(&mut self) -> Result<Value, PathError> {
        let start = self.pos;
        self.pos += 1;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || ".eE+-".contains(c))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        serde_json::from_str::<Number>(&text)
            .map(Value::Number)
            .map_err(|_| self.error("invalid number"))
    }
}

/// Whether an expression is an intrinsic function call.
pub fn is_intrinsic(expr: &str) -> bool {
    expr.trim_start().starts_with("States.")
}

/// How many distinct calls the parse cache keeps before it starts over.
const CALL_CACHE_LIMIT: usize = 8_192;

type CallCache = std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Call>>>;

static CALLS: std::sync::LazyLock<CallCache> = std::sync::LazyLock::new(Default::default);

/// `expr` parsed once (later evaluations of the same text reuse it).
fn parsed_call(expr: &str) -> Result<std::sync::Arc<Call>, PathError> {
    if let Some(c) = CALLS.read().unwrap_or_else(|e| e.into_inner()).get(expr) {
        return Ok(c.clone());
    }
    let mut p = Parser::new(expr);
    let call = p.call()?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(p.error("unexpected text after the call"));
    }
    let call = std::sync::Arc::new(call);
    let mut cache = CALLS.write().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CALL_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(expr.to_string(), call.clone());
    Ok(call)
}

/// Evaluates an intrinsic function call against the input and the context object.
pub fn evaluate(expr: &str, input: &Value, context: &Context<'_>) -> Result<Value, PathError> {
    let call = parsed_call(expr)?;
    eval_call(&call, input, context)
}

fn eval_arg(arg: &Arg, input: &Value, context: &Context<'_>) -> Result<Value, PathError> {
    match arg {
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Path(p) => select(p, input, context),
        Arg::Call(c) => eval_call(c, input, context),
    }
}

/// The JSON type name of a value, as Step Functions names it in error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn want_args(
    name: &str,
    args: &[Value],
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), PathError> {
    if range.contains(&args.len()) {
        Ok(())
    } else {
        Err(failure(format!(
            "Function {name} takes {} arguments, got {}",
            if range.start() == range.end() {
                range.start().to_string()
            } else {
                format!("{} to {}", range.start(), range.end())
            },
            args.len()
        )))
    }
}

fn as_str<'v>(name: &str, v: &'v Value) -> Result<&'v str, PathError> {
    v.as_str().ok_or_else(|| {
        failure(format!(
            "Function {name} expects a string, got {}",
            type_name(v)
        ))
    })
}

fn as_array<'v>(name: &str, v: &'v Value) -> Result<&'v Vec<Value>, PathError> {
    v.as_array().ok_or_else(|| {
        failure(format!(
            "Function {name} expects an array, got {}",
            type_name(v)
        ))
    })
}

/// Integers as Step Functions reads them: numbers rounded half up.
fn as_int(name: &str, v: &Value) -> Result<i64, PathError> {
    match v.as_f64() {
        Some(f) if f.is_finite() => Ok((f + 0.5).floor() as i64),
        _ => Err(failure(format!(
            "Function {name} expects an integer, got {}",
            type_name(v)
        ))),
    }
}

fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn eval_call(call: &Call, input: &Value, context: &Context<'_>) -> Result<Value, PathError> {
    let args: Vec<Value> = call
        .args
        .iter()
        .map(|a| eval_arg(a, input, context))
        .collect::<Result<_, _>>()?;
    let name = call.name.as_str();
    match name {
        "States.Format" => {
            if args.is_empty() {
                return Err(failure("Function States.Format needs a template"));
            }
            let template = as_str(name, &args[0])?;
            let mut out = String::new();
            let mut next = 1;
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(n) => out.push(n),
                        None => out.push('\\'),
                    },
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        let v = args.get(next).ok_or_else(|| {
                            failure("Number of arguments in States.Format does not match the number of placeholders")
                        })?;
                        out.push_str(&format_value(v));
                        next += 1;
                    }
                    c => out.push(c),
                }
            }
            if next != args.len() {
                return Err(failure("Number of arguments in States.Format does not match the number of placeholders"));
            }
            Ok(Value::String(out))
        }
        "States.StringToJson" => {
            want_args(name, &args, 1..=1)?;
            let s = as_str(name, &args[0])?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(s).map_err(|e| {
                failure(format!(
                    "Function States.StringToJson cannot parse its argument: {e}"
                ))
            })
        }
        "States.JsonToString" => {
            want_args(name, &args, 1..=1)?;
            Ok(Value::String(args[0].to_string()))
        }
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            want_args(name, &args, 2..=2)?;
            let items = as_array(name, &args[0])?;
            let size = as_int(name, &args[1])?;
            if size <= 0 {
                return Err(failure(
                    "Function States.ArrayPartition needs a chunk size greater than 0",
                ));
            }
            Ok(Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "States.ArrayContains" => {
            want_args(name, &args, 2..=2)?;
            Ok(Value::Bool(as_array(name, &args[0])?.contains(&args[1])))
        }
        "States.ArrayRange" => {
            want_args(name, &args, 3..=3)?;
            let (start, end, step) = (
                as_int(name, &args[0])?,
                as_int(name, &args[1])?,
                as_int(name, &args[2])?,
            );
            if step == 0 {
                return Err(failure("Function States.ArrayRange needs a non-zero step"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                if out.len() > 1000 {
                    return Err(failure(
                        "Function States.ArrayRange makes at most 1000 items",
                    ));
                }
                i += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            want_args(name, &args, 2..=2)?;
            let items = as_array(name, &args[0])?;
            let index = as_int(name, &args[1])?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    failure(format!(
                        "Function States.ArrayGetItem: index {index} is out of bounds"
                    ))
                })
        }
        "States.ArrayLength" => {
            want_args(name, &args, 1..=1)?;
            Ok(Value::from(as_array(name, &args[0])?.len()))
        }
        "States.ArrayUnique" => {
            want_args(name, &args, 1..=1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in as_array(name, &args[0])? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            want_args(name, &args, 1..=1)?;
            Ok(Value::String(BASE64.encode(as_str(name, &args[0])?)))
        }
        "States.Base64Decode" => {
            want_args(name, &args, 1..=1)?;
            let bytes = BASE64
                .decode(as_str(name, &args[0])?)
                .map_err(|e| failure(format!("Function States.Base64Decode: not base64: {e}")))?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| {
                failure("Function States.Base64Decode: the decoded bytes are not UTF-8")
            })
        }
        "States.Hash" => {
            want_args(name, &args, 2..=2)?;
            let data = format_value(&args[0]);
            let algorithm = as_str(name, &args[1])?;
            use sha2::Digest;
            let hex = match algorithm {
                "MD5" => format!("{:x}", md5::Md5::digest(data.as_bytes())),
                "SHA-1" => format!("{:x}", sha1::Sha1::digest(data.as_bytes())),
                "SHA-256" => format!("{:x}", sha2::Sha256::digest(data.as_bytes())),
                "SHA-384" => format!("{:x}", sha2::Sha384::digest(data.as_bytes())),
                "SHA-512" => format!("{:x}", sha2::Sha512::digest(data.as_bytes())),
                other => {
                    return Err(failure(format!(
                        "Function States.Hash: unknown algorithm '{other}' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
                    )))
                }
            };
            Ok(Value::String(hex))
        }
        "States.JsonMerge" => {
            want_args(name, &args, 3..=3)?;
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err(failure("Function States.JsonMerge merges two objects"));
            };
            if args[2].as_bool() != Some(false) {
                return Err(failure(
                    "Function States.JsonMerge supports only a shallow merge (false)",
                ));
            }
            let mut out: Map<String, Value> = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            want_args(name, &args, 2..=3)?;
            let (start, end) = (as_int(name, &args[0])?, as_int(name, &args[1])?);
            if end <= start {
                return Err(failure("Function States.MathRandom needs start < end"));
            }
            use rand::{Rng, SeedableRng};
            let value = match args.get(2) {
                Some(seed) => rand::rngs::StdRng::seed_from_u64(as_int(name, seed)? as u64)
                    .random_range(start..end),
                None => crate::entropy::range(start, end),
            };
            Ok(Value::from(value))
        }
        "States.MathAdd" => {
            want_args(name, &args, 2..=2)?;
            Ok(Value::from(
                as_int(name, &args[0])? + as_int(name, &args[1])?,
            ))
        }
        "States.StringSplit" => {
            want_args(name, &args, 2..=2)?;
            let s = as_str(name, &args[0])?;
            let delimiters: Vec<char> = as_str(name, &args[1])?.chars().collect();
            Ok(Value::Array(
                s.split(|c| delimiters.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "States.UUID" => {
            want_args(name, &args, 0..=0)?;
            Ok(Value::String(crate::entropy::uuid()))
        }
        other => Err(failure(format!("Unknown intrinsic function {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, input: Value) -> Result<Value, PathError> {
        evaluate(
            expr,
            &input,
            &Context::of(&json!({"Execution": {"Name": "e"}})),
        )
    }

    #[test]
    fn functions() {
        let input = json!({"a": [1, 2, 2, 3], "s": "x,y", "n": 2, "o": {"k": 1}});
        let cases = [
            (
                "States.Format('Hi {} and {}', $.s, $.n)",
                json!("Hi x,y and 2"),
            ),
            (
                "States.Format('esc \\{\\} {}', $$.Execution.Name)",
                json!("esc {} e"),
            ),
            ("States.StringToJson('{\"q\": 1}')", json!({"q": 1})),
            ("States.JsonToString($.o)", json!("{\"k\":1}")),
            (
                "States.Array(1, 'two', true, null, $.n)",
                json!([1, "two", true, null, 2]),
            ),
            ("States.ArrayPartition($.a, 3)", json!([[1, 2, 2], [3]])),
            ("States.ArrayContains($.a, 3)", json!(true)),
            ("States.ArrayRange(1, 9, 3)", json!([1, 4, 7])),
            ("States.ArrayGetItem($.a, 3)", json!(3)),
            ("States.ArrayLength($.a)", json!(4)),
            ("States.ArrayUnique($.a)", json!([1, 2, 3])),
            (
                "States.Base64Encode('Hello World')",
                json!("SGVsbG8gV29ybGQ="),
            ),
            (
                "States.Base64Decode('SGVsbG8gV29ybGQ=')",
                json!("Hello World"),
            ),
            (
                "States.Hash('input data', 'MD5')",
                json!("812f45842bc6d66ee14572ce20db8e86"),
            ),
            (
                "States.JsonMerge($.o, States.StringToJson('{\"z\": 2}'), false)",
                json!({"k": 1, "z": 2}),
            ),
            ("States.MathAdd(1.49, 1.5)", json!(3)),
            ("States.MathAdd($.n, -5)", json!(-3)),
            ("States.StringSplit($.s, ',')", json!(["x", "y"])),
        ];
        for (expr, expected) in cases {
            assert_eq!(eval(expr, input.clone()), Ok(expected), "{expr}");
        }
        let r = eval("States.MathRandom(1, 3)", json!({})).expect("random");
        assert!(r == json!(1) || r == json!(2));
        assert_eq!(
            eval("States.UUID()", json!({}))
                .expect("uuid")
                .as_str()
                .map(str::len),
            Some(36)
        );
    }

    #[test]
    fn errors() {
        assert!(eval("States.Nope()", json!({})).is_err());
        assert!(eval("States.Format('{} {}', 1)", json!({})).is_err());
        assert!(eval("States.ArrayGetItem(States.Array(1), 5)", json!({})).is_err());
        assert!(eval("States.Format('x'", json!({})).is_err());
    }
}
