//! The JSONPath side of ASL data flow: selecting with Paths (`InputPath`, `OutputPath`, `.$`
//! fields, `$$` for the context object), writing with Reference Paths (`ResultPath`), and
//! expanding payload templates (`Parameters`, `ResultSelector`).
//!
//! Selection uses `serde_json_path` (RFC 9535); Reference Paths are parsed here because they are
//! a write target, which no JSONPath crate offers.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// A path that cannot be parsed or applied; the message follows Step Functions' wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is not valid JSONPath.
    #[error("Invalid path '{path}': {reason}")]
    Invalid {
        /// The path as written.
        path: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A definite path selected nothing.
    #[error("Invalid path '{path}' : No results for path: {}", bracket_form(path))]
    NoResults {
        /// The path as written.
        path: String,
    },
    /// A definite path whose parent property is missing (`$.a.b` when there is no `a`).
    #[error("Invalid path '{path}' : Missing property in path {missing}")]
    MissingProperty {
        /// The path as written.
        path: String,
        /// The path up to the missing property, in bracket form (`$['a']`).
        missing: String,
    },
    /// A payload template's `.$` field (or a Fail state's path) selected nothing.
    #[error("The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{input}'")]
    FieldNotFound {
        /// The path as written.
        path: String,
        /// The field (`name.$`, `CausePath`...).
        field: String,
        /// The input it was applied to (JSON text).
        input: String,
    },
    /// ResultPath cannot be written into the input.
    #[error("Unable to apply ResultPath '{path}' to the input: {reason}")]
    CannotWrite {
        /// The path as written.
        path: String,
        /// Why it cannot be written.
        reason: String,
    },
    /// An intrinsic function failed (bad arguments, unknown function).
    #[error("{0}")]
    Intrinsic(String),
    /// A feature the engine does not evaluate yet.
    #[error("{0}")]
    Unsupported(String),
}

/// Whether a JSONPath can select at most one node (no wildcard, descendant, filter, slice or
/// union): such a path yields its value, any other yields an array of the matches.
fn is_definite(path: &str) -> bool {
    !(path.contains('*')
        || path.contains("..")
        || path.contains("[?")
        || path.contains(',')
        || path.contains(':'))
}

fn is_shorthand_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || !c.is_ascii())
        && chars.all(|c| c.is_alphanumeric() || c == '_' || !c.is_ascii())
}

/// Rewrites a path as Step Functions reads it (Jayway JSONPath, which allows `$.a-b` and
/// `$.1st`) into RFC 9535 syntax: dot names that RFC 9535 does not allow become `['name']`.
/// With `all_brackets`, every dot name does (the normalised form AWS prints in errors).
fn rewrite_path(path: &str, all_brackets: bool) -> String {
    let chars: Vec<char> = path.chars().collect();
    let mut out = String::with_capacity(path.len() + 8);
    let mut i = 0;
    while i < chars.len() && chars[i] == '$' {
        out.push('$');
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '[' => {
                let mut quote: Option<char> = None;
                while i < chars.len() {
                    let c = chars[i];
                    out.push(c);
                    i += 1;
                    match (quote, c) {
                        (Some(q), '\\') if i < chars.len() => {
                            // Jayway reads `\"` in a single-quoted name as a backslash and a
                            // quote; RFC 9535 has no such escape, so the backslash is escaped.
                            if q == '\'' && chars[i] == '"' {
                                out.push('\\');
                            }
                            out.push(chars[i]);
                            i += 1;
                        }
                        (Some(q), c) if c == q => quote = None,
                        (None, '\'' | '"') => quote = Some(c),
                        (None, ']') => break,
                        _ => {}
                    }
                }
            }
            '.' => {
                let descendant = chars.get(i + 1) == Some(&'.');
                i += if descendant { 2 } else { 1 };
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if descendant {
                    out.push_str("..");
                }
                if name.is_empty() {
                    continue;
                }
                if name == "*" || (!all_brackets && is_shorthand_name(&name)) {
                    if !descendant {
                        out.push('.');
                    }
                    out.push_str(&name);
                } else {
                    out.push_str(&format!(
                        "['{}']",
                        name.replace('\\', "\\\\").replace('\'', "\\'")
                    ));
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The normalised (all brackets) form of a path, as Step Functions prints it in errors.
/// Why a definite path selected nothing, as Step Functions words it: a dotted path whose
/// parent property is missing names that property; otherwise there were no results.
fn nothing_at(path: &str, target: &Value) -> PathError {
    let no_results = || PathError::NoResults {
        path: path.to_string(),
    };
    let Some(rest) = path.strip_prefix("$.") else {
        return no_results();
    };
    let names: Vec<&str> = rest.split('.').collect();
    let simple = |n: &&str| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !names.iter().all(simple) {
        return no_results();
    }
    let mut at = target;
    for (i, name) in names.iter().enumerate() {
        match at.get(name) {
            Some(v) => at = v,
            None if i + 1 < names.len() => {
                let prefix: String = names[..=i].iter().map(|n| format!("['{n}']")).collect();
                return PathError::MissingProperty {
                    path: path.to_string(),
                    missing: format!("${prefix}"),
                };
            }
            None => break,
        }
    }
    no_results()
}

fn bracket_form(path: &str) -> String {
    let rest = path
        .strip_prefix("$$")
        .map(|r| format!("${r}"))
        .unwrap_or_else(|| path.to_string());
    rewrite_path(&rest, true)
}

/// The context object (`$$`) and the variables (`$name`) a path can read, borrowed in parts so
/// that nothing is copied per state: the execution's part (`Execution`, `StateMachine`, which
/// holds the execution's input) is built once per execution, the state's part (`State`,
/// `Task`, `Map`) once per state. A path reads the one part whose top-level key it names.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    parts: [&'a Value; 2],
    variables: &'a Map<String, Value>,
}

static NO_VALUE: Value = Value::Null;
static NO_VARIABLES: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Context<'a> {
    /// A context object made of two disjoint objects (their keys do not overlap), and the
    /// variables in scope.
    pub fn new(execution: &'a Value, state: &'a Value, variables: &'a Map<String, Value>) -> Self {
        Self {
            parts: [execution, state],
            variables,
        }
    }

    /// A whole context object, with no variables.
    pub fn of(context: &'a Value) -> Self {
        Self {
            parts: [context, &NO_VALUE],
            variables: &NO_VARIABLES,
        }
    }

    /// No context object and no variables.
    pub fn empty() -> Context<'static> {
        Context {
            parts: [&NO_VALUE, &NO_VALUE],
            variables: &NO_VARIABLES,
        }
    }

    /// The same context object with other variables.
    pub fn with_variables(self, variables: &'a Map<String, Value>) -> Self {
        Self { variables, ..self }
    }

    /// The variables in scope.
    pub fn variables(&self) -> &'a Map<String, Value> {
        self.variables
    }

    /// The whole context object, as one value (a copy: only for what needs all of it).
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        for part in self.parts {
            if let Value::Object(o) = part {
                out.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        Value::Object(out)
    }

    /// The value of a top-level key of the context object.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.parts.iter().find_map(|p| p.get(key))
    }

    /// The document a context path (`$...`, once `$$` became `$`) is evaluated on.
    fn document(&self, first_key: Option<&str>) -> std::borrow::Cow<'a, Value> {
        if let Some(key) = first_key {
            for part in self.parts {
                if part.get(key).is_some() {
                    return std::borrow::Cow::Borrowed(part);
                }
            }
            // Nothing has the key: any part answers "no results" alike.
            return std::borrow::Cow::Borrowed(self.parts[0]);
        }
        if self.parts[1].is_null() {
            std::borrow::Cow::Borrowed(self.parts[0])
        } else {
            std::borrow::Cow::Owned(self.to_value())
        }
    }
}

/// A path as written, parsed once: the RFC 9535 query, whether it can select at most one
/// node, and for a context path the top-level key it reads.
struct ParsedPath {
    query: JsonPath,
    definite: bool,
    context_key: Option<String>,
}

/// How many distinct paths the cache keeps before it starts over (a process runs a bounded
/// set of definitions; this bounds what a stream of one-off definitions can hold).
const PATH_CACHE_LIMIT: usize = 16_384;

type PathCache = std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<ParsedPath>>>;

static PATHS: std::sync::LazyLock<PathCache> = std::sync::LazyLock::new(Default::default);

/// The top-level key a query (`$.Key...` or `$['Key']...`) reads first, if it names one.
fn first_key(query: &str) -> Option<String> {
    let rest = query.strip_prefix('$')?;
    if let Some(name) = rest.strip_prefix('.') {
        let end = name.find(['.', '[']).unwrap_or(name.len());
        let key = &name[..end];
        return (!key.is_empty() && key != "*").then(|| key.to_string());
    }
    let quoted = rest.strip_prefix("['")?;
    let end = quoted.find("']")?;
    let key = &quoted[..end];
    (!key.contains('\\') && !key.contains('\'')).then(|| key.to_string())
}

/// `path` parsed (from the cache when it was parsed before). `context` paths start with `$$`.
fn parsed(path: &str) -> Result<std::sync::Arc<ParsedPath>, PathError> {
    if let Some(p) = PATHS.read().unwrap_or_else(|e| e.into_inner()).get(path) {
        return Ok(p.clone());
    }
    let (query, context_key) = match path.strip_prefix("$$") {
        Some(rest) => {
            let q = rewrite_path(&format!("${rest}"), false);
            let key = first_key(&q);
            (q, key)
        }
        None => (rewrite_path(path, false), None),
    };
    let parsed = JsonPath::parse(&query).map_err(|e| PathError::Invalid {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let entry = std::sync::Arc::new(ParsedPath {
        definite: is_definite(&query),
        query: parsed,
        context_key,
    });
    let mut cache = PATHS.write().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= PATH_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(path.to_string(), entry.clone());
    Ok(entry)
}

/// Selects `path` from `input`, or from the context object when the path starts with `$$`, or
/// from a variable when it starts with `$name`.
pub fn select(path: &str, input: &Value, context: &Context<'_>) -> Result<Value, PathError> {
    if let Some(rest) = path.strip_prefix('$') {
        let name_len = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum::<usize>();
        if name_len > 0 {
            let (name, tail) = rest.split_at(name_len);
            let value = context
                .variables
                .get(name)
                .ok_or_else(|| PathError::Invalid {
                    path: path.to_string(),
                    reason: format!("the variable '{name}' is not defined"),
                })?;
            if tail.is_empty() {
                return Ok(value.clone());
            }
            return select(&format!("${tail}"), value, &Context::empty());
        }
    }
    let parsed = parsed(path)?;
    let doc;
    let target = if path.starts_with("$$") {
        doc = context.document(parsed.context_key.as_deref());
        doc.as_ref()
    } else {
        input
    };
    let nodes = parsed.query.query(target);
    if parsed.definite {
        match nodes.exactly_one() {
            Ok(v) => Ok(v.clone()),
            Err(_) => Err(nothing_at(path, target)),
        }
    } else {
        Ok(Value::Array(nodes.all().into_iter().cloned().collect()))
    }
}

/// Applies an `InputPath` or `OutputPath`: absent keeps the value, `null` gives `{}`.
pub fn apply_path_filter(
    path: Option<&Value>,
    input: &Value,
    context: &Context<'_>,
) -> Result<Value, PathError> {
    match path {
        None => Ok(input.clone()),
        Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(Value::String(p)) => select(p, input, context),
        Some(other) => Err(PathError::Invalid {
            path: other.to_string(),
            reason: "a path must be a string or null".into(),
        }),
    }
}

/// Expands a payload template: every field whose name ends in `.$` is replaced by the value its
/// path selects (the name loses the suffix); other values are copied. Recurses into objects and
/// arrays.
pub fn expand_template(
    template: &Value,
    input: &Value,
    context: &Context<'_>,
) -> Result<Value, PathError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, value) in fields {
                if let Some(name) = key.strip_suffix(".$") {
                    let Value::String(expr) = value else {
                        return Err(PathError::Invalid {
                            path: value.to_string(),
                            reason: format!("the value of field '{key}' must be a path string"),
                        });
                    };
                    let value = evaluate_expression(expr, input, context).map_err(|e| match e {
                        PathError::NoResults { path } | PathError::MissingProperty { path, .. } => {
                            PathError::FieldNotFound {
                                path,
                                field: key.clone(),
                                input: input.to_string(),
                            }
                        }
                        other => other,
                    })?;
                    out.insert(name.to_string(), value);
                } else {
                    out.insert(key.clone(), expand_template(value, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|v| expand_template(v, input, context))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// Evaluates the value of a `.$` field: a path or an intrinsic function call.
pub fn evaluate_expression(
    expr: &str,
    input: &Value,
    context: &Context<'_>,
) -> Result<Value, PathError> {
    if expr.starts_with('$') {
        select(expr, input, context)
    } else if crate::intrinsics::is_intrinsic(expr) {
        crate::intrinsics::evaluate(expr, input, context)
    } else {
        Err(PathError::Invalid {
            path: expr.to_string(),
            reason: "a path must start with '$'".into(),
        })
    }
}

/// One step of a Reference Path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Parses a Reference Path: `$`, then `.name`, `['name']` or `[n]` steps.
fn parse_reference_path(path: &str) -> Result<Vec<Step>, PathError> {
    let invalid = |reason: &str| PathError::Invalid {
        path: path.to_string(),
        reason: reason.into(),
    };
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| invalid("must start with '$'"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                if end == start {
                    return Err(invalid("empty field name"));
                }
                steps.push(Step::Field(chars[start..end].iter().collect()));
                i = end;
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| invalid("unclosed '['"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Field(quoted.to_string()));
                } else {
                    let n: usize = inner
                        .parse()
                        .map_err(|_| invalid("a reference path allows only names and indexes"))?;
                    steps.push(Step::Index(n));
                }
                i = close + 1;
            }
            _ => return Err(invalid("unexpected character")),
        }
    }
    Ok(steps)
}

/// Applies a `ResultPath`: absent puts the result in place of the input, `null` discards the
/// result, a Reference Path writes the result into a copy of the input.
pub fn apply_result_path(
    result_path: Option<&Value>,
    input: &Value,
    result: Value,
) -> Result<Value, PathError> {
    let path = match result_path {
        None => return Ok(result),
        Some(Value::Null) => return Ok(input.clone()),
        Some(Value::String(p)) => p,
        Some(other) => {
            return Err(PathError::Invalid {
                path: other.to_string(),
                reason: "ResultPath must be a string or null".into(),
            })
        }
    };
    let steps = parse_reference_path(path)?;
    if steps.is_empty() {
        return Ok(result);
    }
    let mut out = input.clone();
    let mut slot = &mut out;
    let (last, parents) = steps.split_last().ok_or_else(|| PathError::Invalid {
        path: path.clone(),
        reason: "empty".into(),
    })?;
    let cannot = |reason: String| PathError::CannotWrite {
        path: path.clone(),
        reason,
    };
    for step in parents {
        slot = match step {
            Step::Field(name) => {
                let obj = slot
                    .as_object_mut()
                    .ok_or_else(|| cannot(format!("'{name}' is not inside an object")))?;
                obj.entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Step::Index(i) => slot
                .as_array_mut()
                .and_then(|a| a.get_mut(*i))
                .ok_or_else(|| cannot(format!("no array element at index {i}")))?,
        };
    }
    match last {
        Step::Field(name) => {
            let obj = slot
                .as_object_mut()
                .ok_or_else(|| cannot(format!("'{name}' is not inside an object")))?;
            obj.insert(name.clone(), result);
        }
        Step::Index(i) => {
            let item = slot
                .as_array_mut()
                .and_then(|a| a.get_mut(*i))
                .ok_or_else(|| cannot(format!("no array element at index {i}")))?;
            *item = result;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_definite_and_indefinite_paths() {
        let input = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        let ctx = json!({"Execution": {"Name": "e1"}});
        assert_eq!(select("$.a.b[1]", &input, &Context::of(&ctx)), Ok(json!(2)));
        assert_eq!(
            select("$.a.b[*]", &input, &Context::of(&ctx)),
            Ok(json!([1, 2, 3]))
        );
        assert_eq!(
            select("$$.Execution.Name", &input, &Context::of(&ctx)),
            Ok(json!("e1"))
        );
        assert!(matches!(
            select("$.zzz", &input, &Context::of(&ctx)),
            Err(PathError::NoResults { .. })
        ));
        assert_eq!(
            select("$.no.such.path", &input, &Context::of(&ctx))
                .err()
                .map(|e| e.to_string()),
            Some("Invalid path '$.no.such.path' : Missing property in path $['no']".into())
        );
    }

    #[test]
    fn a_context_in_parts_reads_each_part_and_the_whole() {
        let execution = json!({"Execution": {"Input": {"n": 1}}, "StateMachine": {"Name": "m"}});
        let state = json!({"State": {"Name": "S"}, "Map": {"Item": {"Index": 3}}});
        let vars: Map<String, Value> = [("x".to_string(), json!({"y": 2}))].into_iter().collect();
        let ctx = Context::new(&execution, &state, &vars);
        let input = json!({});
        assert_eq!(select("$$.Execution.Input.n", &input, &ctx), Ok(json!(1)));
        assert_eq!(select("$$['State']['Name']", &input, &ctx), Ok(json!("S")));
        assert_eq!(select("$$.Map.Item.Index", &input, &ctx), Ok(json!(3)));
        assert_eq!(select("$x.y", &input, &ctx), Ok(json!(2)));
        assert_eq!(select("$x", &input, &ctx), Ok(json!({"y": 2})));
        let whole = select("$$", &input, &ctx).expect("whole");
        assert_eq!(whole["StateMachine"]["Name"], "m");
        assert_eq!(whole["State"]["Name"], "S");
        assert!(
            whole.get("x").is_none(),
            "variables are not in the context object"
        );
        assert!(matches!(
            select("$$.Nope", &input, &ctx),
            Err(PathError::NoResults { .. })
        ));
        assert_eq!(first_key("$['a b'].c"), Some("a b".to_string()));
        assert_eq!(first_key("$..x"), None);
        assert_eq!(first_key("$.*"), None);
    }

    #[test]
    fn jayway_names_are_rewritten_for_rfc_9535() {
        assert_eq!(
            rewrite_path("$.delivery-partner.x", false),
            "$['delivery-partner'].x"
        );
        assert_eq!(
            rewrite_path("$.a[0]['b c']..d-e", false),
            "$.a[0]['b c']..['d-e']"
        );
        assert_eq!(bracket_form("$.NoSuch"), "$['NoSuch']");
        let input = json!({"delivery-partner": "UQS"});
        assert_eq!(
            select("$.delivery-partner", &input, &Context::empty()),
            Ok(json!("UQS"))
        );
        assert_eq!(
            select("$.missing", &input, &Context::empty()).map_err(|e| e.to_string()),
            Err("Invalid path '$.missing' : No results for path: $['missing']".to_string())
        );
    }

    #[test]
    fn input_path_null_gives_an_empty_object() {
        let v = json!({"a": 1});
        assert_eq!(
            apply_path_filter(Some(&Value::Null), &v, &Context::empty()),
            Ok(json!({}))
        );
        assert_eq!(apply_path_filter(None, &v, &Context::empty()), Ok(v));
    }

    #[test]
    fn expands_templates_recursively() {
        let input = json!({"name": "Ada", "n": [1, 2]});
        let t = json!({"greeting.$": "$.name", "fixed": 1, "nested": {"first.$": "$.n[0]"},
            "list": [{"x.$": "$.n[1]"}]});
        assert_eq!(
            expand_template(&t, &input, &Context::empty()),
            Ok(json!({"greeting": "Ada", "fixed": 1, "nested": {"first": 1}, "list": [{"x": 2}]}))
        );
    }

    #[test]
    fn result_path_writes_creating_objects() {
        let input = json!({"a": 1});
        assert_eq!(apply_result_path(None, &input, json!(5)), Ok(json!(5)));
        assert_eq!(
            apply_result_path(Some(&Value::Null), &input, json!(5)),
            Ok(input.clone())
        );
        assert_eq!(
            apply_result_path(Some(&json!("$.x.y")), &input, json!(5)),
            Ok(json!({"a": 1, "x": {"y": 5}}))
        );
        assert_eq!(
            apply_result_path(Some(&json!("$['q r']")), &input, json!(true)),
            Ok(json!({"a": 1, "q r": true}))
        );
        assert!(apply_result_path(Some(&json!("$.a.b")), &input, json!(1)).is_err());
    }
}
