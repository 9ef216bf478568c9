//! Serde types for the whole Amazon States Language: a state machine, every state type, choice
//! rules, retriers and catchers. Field names are exactly the ASL's (PascalCase); unknown fields
//! are rejected, as Step Functions rejects them. Values that the language leaves free-form
//! (`Parameters`, `Result`, `Assign`, JSONata expressions...) are kept as JSON values.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// A state machine (also the shape of a Parallel branch and a Map's processor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateMachine {
    /// Name of the first state.
    #[serde(rename = "StartAt")]
    pub start_at: String,
    /// Free text.
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// ASL version, "1.0".
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Execution timeout.
    #[serde(
        rename = "TimeoutSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_seconds: Option<u64>,
    /// `JSONPath` (default) or `JSONata`.
    #[serde(
        rename = "QueryLanguage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub query_language: Option<QueryLanguage>,
    /// Map processors only: `{"Mode": "INLINE" | "DISTRIBUTED", "ExecutionType": ...}`.
    #[serde(
        rename = "ProcessorConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub processor_config: Option<Value>,
    /// The states, in definition order.
    #[serde(rename = "States")]
    pub states: IndexMap<String, State>,
}

/// The query language of a state machine or state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryLanguage {
    /// Paths, Parameters, ResultSelector, ResultPath (the default).
    #[serde(rename = "JSONPath")]
    JsonPath,
    /// JSONata expressions, `Arguments` and `Output`.
    #[serde(rename = "JSONata")]
    Jsonata,
}

/// One state, tagged by its `Type`.
// States live once per definition, so the variants' size difference costs nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    /// Passes its input (or `Result`) on.
    Pass(PassState),
    /// Does work through a `Resource`.
    Task(TaskState),
    /// Branches on rules.
    Choice(ChoiceState),
    /// Waits for a time.
    Wait(WaitState),
    /// Ends the execution successfully.
    Succeed(SucceedState),
    /// Ends the execution with an error.
    Fail(FailState),
    /// Runs branches in parallel.
    Parallel(ParallelState),
    /// Runs a processor for each item.
    Map(MapState),
}

/// What follows a state: `Next` or `End`.
pub trait Transition {
    /// The next state's name, if any.
    fn next(&self) -> Option<&str>;
    /// Whether the state is marked `End: true`.
    fn is_end(&self) -> bool;
}

macro_rules! transition_impl {
    ($($t:ty),*) => {$(
        impl Transition for $t {
            fn next(&self) -> Option<&str> { self.next.as_deref() }
            fn is_end(&self) -> bool { self.end.unwrap_or(false) }
        }
    )*};
}

/// A field that is present: `null` stays `Some(Value::Null)` (an explicit `"ResultPath": null`
/// means something else than no ResultPath), where plain `Option` would read it as absent.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A retrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retrier {
    /// Error names this retrier matches.
    #[serde(rename = "ErrorEquals")]
    pub error_equals: Vec<String>,
    /// Seconds before the first retry (default 1).
    #[serde(
        rename = "IntervalSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interval_seconds: Option<u64>,
    /// Retries at most (default 3).
    #[serde(
        rename = "MaxAttempts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u64>,
    /// Multiplier of the interval (default 2.0).
    #[serde(
        rename = "BackoffRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub backoff_rate: Option<f64>,
    /// Upper bound of the interval.
    #[serde(
        rename = "MaxDelaySeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_delay_seconds: Option<u64>,
    /// `FULL` or `NONE`.
    #[serde(
        rename = "JitterStrategy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter_strategy: Option<String>,
    /// Free text.
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A catcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catcher {
    /// Error names this catcher matches.
    #[serde(rename = "ErrorEquals")]
    pub error_equals: Vec<String>,
    /// State to go to.
    #[serde(rename = "Next")]
    pub next: String,
    /// Where the error output goes in the input.
    #[serde(
        rename = "ResultPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub result_path: Option<Value>,
    /// Variables to assign.
    #[serde(rename = "Assign", default, skip_serializing_if = "Option::is_none")]
    pub assign: Option<Value>,
    /// JSONata output.
    #[serde(rename = "Output", default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Free text.
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Fields every state may carry. Written out per state type (not flattened) so that unknown
/// fields are still rejected.
macro_rules! state_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty = $json:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Free text.
            #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
            pub comment: Option<String>,
            /// Overrides the machine's query language for this state.
            #[serde(rename = "QueryLanguage", default, skip_serializing_if = "Option::is_none")]
            pub query_language: Option<QueryLanguage>,
            /// Variables to assign.
            #[serde(rename = "Assign", default, skip_serializing_if = "Option::is_none")]
            pub assign: Option<Value>,
            $(
                $(#[$fdoc])*
                #[serde(
                    rename = $json,
                    default,
                    deserialize_with = "present",
                    skip_serializing_if = "Option::is_none"
                )]
                pub $field: Option<$ty>,
            )*
        }
    };
}

state_struct!(
    /// `Type: Pass`.
    PassState {
        /// Next state.
        next: String = "Next",
        /// Last state.
        end: bool = "End",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// Where the result goes.
        result_path: Value = "ResultPath",
        /// Payload template.
        parameters: Value = "Parameters",
        /// Fixed result.
        result: Value = "Result",
        /// JSONata output.
        output: Value = "Output",
    }
);

state_struct!(
    /// `Type: Task`.
    TaskState {
        /// Next state.
        next: String = "Next",
        /// Last state.
        end: bool = "End",
        /// The work: an activity ARN, an integration ARN, or a short name expanded by the manager.
        resource: String = "Resource",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// Where the result goes.
        result_path: Value = "ResultPath",
        /// Payload template.
        parameters: Value = "Parameters",
        /// JSONata arguments.
        arguments: Value = "Arguments",
        /// Template over the result.
        result_selector: Value = "ResultSelector",
        /// JSONata output.
        output: Value = "Output",
        /// Retriers.
        retry: Vec<Retrier> = "Retry",
        /// Catchers.
        catch: Vec<Catcher> = "Catch",
        /// Task timeout (a number, or a JSONata string).
        timeout_seconds: Value = "TimeoutSeconds",
        /// Task timeout from the input.
        timeout_seconds_path: String = "TimeoutSecondsPath",
        /// Heartbeat timeout (a number, or a JSONata string).
        heartbeat_seconds: Value = "HeartbeatSeconds",
        /// Heartbeat timeout from the input.
        heartbeat_seconds_path: String = "HeartbeatSecondsPath",
        /// Role to assume.
        credentials: Value = "Credentials",
    }
);

state_struct!(
    /// `Type: Choice`.
    ChoiceState {
        /// The rules, tried in order.
        choices: Vec<ChoiceRule> = "Choices",
        /// State when no rule matches.
        default: String = "Default",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// JSONata output.
        output: Value = "Output",
    }
);

state_struct!(
    /// `Type: Wait`.
    WaitState {
        /// Next state.
        next: String = "Next",
        /// Last state.
        end: bool = "End",
        /// Seconds to wait (a number, or a JSONata string).
        seconds: Value = "Seconds",
        /// Instant to wait for (RFC 3339, or a JSONata string).
        timestamp: String = "Timestamp",
        /// Seconds from the input.
        seconds_path: String = "SecondsPath",
        /// Instant from the input.
        timestamp_path: String = "TimestampPath",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// JSONata output.
        output: Value = "Output",
    }
);

state_struct!(
    /// `Type: Succeed`.
    SucceedState {
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// JSONata output.
        output: Value = "Output",
        /// Not allowed: present only so validation can name it.
        next: String = "Next",
        /// Not allowed: present only so validation can name it.
        end: bool = "End",
    }
);

state_struct!(
    /// `Type: Fail`.
    FailState {
        /// Error name.
        error: String = "Error",
        /// Error cause.
        cause: String = "Cause",
        /// Error name from the input.
        error_path: String = "ErrorPath",
        /// Cause from the input.
        cause_path: String = "CausePath",
        /// Not allowed: present only so validation can name it.
        next: String = "Next",
        /// Not allowed: present only so validation can name it.
        end: bool = "End",
    }
);

state_struct!(
    /// `Type: Parallel`.
    ParallelState {
        /// Next state.
        next: String = "Next",
        /// Last state.
        end: bool = "End",
        /// The branches.
        branches: Vec<StateMachine> = "Branches",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// Where the result goes.
        result_path: Value = "ResultPath",
        /// Payload template.
        parameters: Value = "Parameters",
        /// JSONata arguments.
        arguments: Value = "Arguments",
        /// Template over the result.
        result_selector: Value = "ResultSelector",
        /// JSONata output.
        output: Value = "Output",
        /// Retriers.
        retry: Vec<Retrier> = "Retry",
        /// Catchers.
        catch: Vec<Catcher> = "Catch",
    }
);

state_struct!(
    /// `Type: Map`.
    MapState {
        /// Next state.
        next: String = "Next",
        /// Last state.
        end: bool = "End",
        /// The processor (legacy name).
        iterator: StateMachine = "Iterator",
        /// The processor.
        item_processor: StateMachine = "ItemProcessor",
        /// JSONPath selecting the items.
        items_path: String = "ItemsPath",
        /// JSONata items.
        items: Value = "Items",
        /// Template per item.
        item_selector: Value = "ItemSelector",
        /// Template per item (legacy name).
        parameters: Value = "Parameters",
        /// Distributed map reader.
        item_reader: Value = "ItemReader",
        /// Distributed map batching.
        item_batcher: Value = "ItemBatcher",
        /// Distributed map writer.
        result_writer: Value = "ResultWriter",
        /// Distributed map label.
        label: String = "Label",
        /// Concurrency bound (0 = unbounded).
        max_concurrency: Value = "MaxConcurrency",
        /// Concurrency bound from the input.
        max_concurrency_path: String = "MaxConcurrencyPath",
        /// Failures tolerated.
        tolerated_failure_count: Value = "ToleratedFailureCount",
        /// Failures tolerated from the input.
        tolerated_failure_count_path: String = "ToleratedFailureCountPath",
        /// Failure percentage tolerated.
        tolerated_failure_percentage: Value = "ToleratedFailurePercentage",
        /// Failure percentage tolerated from the input.
        tolerated_failure_percentage_path: String = "ToleratedFailurePercentagePath",
        /// JSONPath selecting the input.
        input_path: Value = "InputPath",
        /// JSONPath selecting the output.
        output_path: Value = "OutputPath",
        /// Where the result goes.
        result_path: Value = "ResultPath",
        /// Template over the result.
        result_selector: Value = "ResultSelector",
        /// JSONata output.
        output: Value = "Output",
        /// Retriers.
        retry: Vec<Retrier> = "Retry",
        /// Catchers.
        catch: Vec<Catcher> = "Catch",
    }
);

transition_impl!(
    PassState,
    TaskState,
    WaitState,
    SucceedState,
    FailState,
    ParallelState,
    MapState
);

impl MapState {
    /// The processor, whichever of `ItemProcessor` or `Iterator` is given.
    pub fn processor(&self) -> Option<&StateMachine> {
        self.item_processor.as_ref().or(self.iterator.as_ref())
    }
}

/// One rule of a Choice state: a comparison, a combination (`And`, `Or`, `Not`) or, in
/// JSONata, a `Condition`. Top-level rules carry `Next`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ChoiceRule {
    #[serde(rename = "Variable", default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    #[serde(rename = "Next", default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "Assign", default, skip_serializing_if = "Option::is_none")]
    pub assign: Option<Value>,
    #[serde(rename = "Output", default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(rename = "And", default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<ChoiceRule>>,
    #[serde(rename = "Or", default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<ChoiceRule>>,
    #[serde(rename = "Not", default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ChoiceRule>>,
    #[serde(
        rename = "StringEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_equals: Option<String>,
    #[serde(
        rename = "StringEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_equals_path: Option<String>,
    #[serde(
        rename = "StringLessThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_less_than: Option<String>,
    #[serde(
        rename = "StringLessThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_less_than_path: Option<String>,
    #[serde(
        rename = "StringGreaterThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_greater_than: Option<String>,
    #[serde(
        rename = "StringGreaterThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_greater_than_path: Option<String>,
    #[serde(
        rename = "StringLessThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_less_than_equals: Option<String>,
    #[serde(
        rename = "StringLessThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_less_than_equals_path: Option<String>,
    #[serde(
        rename = "StringGreaterThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_greater_than_equals: Option<String>,
    #[serde(
        rename = "StringGreaterThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_greater_than_equals_path: Option<String>,
    #[serde(
        rename = "StringMatches",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_matches: Option<String>,
    #[serde(
        rename = "NumericEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_equals: Option<Number>,
    #[serde(
        rename = "NumericEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_equals_path: Option<String>,
    #[serde(
        rename = "NumericLessThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_less_than: Option<Number>,
    #[serde(
        rename = "NumericLessThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_less_than_path: Option<String>,
    #[serde(
        rename = "NumericGreaterThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_greater_than: Option<Number>,
    #[serde(
        rename = "NumericGreaterThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_greater_than_path: Option<String>,
    #[serde(
        rename = "NumericLessThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_less_than_equals: Option<Number>,
    #[serde(
        rename = "NumericLessThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_less_than_equals_path: Option<String>,
    #[serde(
        rename = "NumericGreaterThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_greater_than_equals: Option<Number>,
    #[serde(
        rename = "NumericGreaterThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub numeric_greater_than_equals_path: Option<String>,
    #[serde(
        rename = "BooleanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub boolean_equals: Option<bool>,
    #[serde(
        rename = "BooleanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub boolean_equals_path: Option<String>,
    #[serde(
        rename = "TimestampEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_equals: Option<String>,
    #[serde(
        rename = "TimestampEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_equals_path: Option<String>,
    #[serde(
        rename = "TimestampLessThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_less_than: Option<String>,
    #[serde(
        rename = "TimestampLessThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_less_than_path: Option<String>,
    #[serde(
        rename = "TimestampGreaterThan",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_greater_than: Option<String>,
    #[serde(
        rename = "TimestampGreaterThanPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_greater_than_path: Option<String>,
    #[serde(
        rename = "TimestampLessThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_less_than_equals: Option<String>,
    #[serde(
        rename = "TimestampLessThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_less_than_equals_path: Option<String>,
    #[serde(
        rename = "TimestampGreaterThanEquals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_greater_than_equals: Option<String>,
    #[serde(
        rename = "TimestampGreaterThanEqualsPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_greater_than_equals_path: Option<String>,
    #[serde(rename = "IsPresent", default, skip_serializing_if = "Option::is_none")]
    pub is_present: Option<bool>,
    #[serde(rename = "IsNull", default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
    #[serde(rename = "IsNumeric", default, skip_serializing_if = "Option::is_none")]
    pub is_numeric: Option<bool>,
    #[serde(rename = "IsString", default, skip_serializing_if = "Option::is_none")]
    pub is_string: Option<bool>,
    #[serde(rename = "IsBoolean", default, skip_serializing_if = "Option::is_none")]
    pub is_boolean: Option<bool>,
    #[serde(
        rename = "IsTimestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_timestamp: Option<bool>,
}

impl State {
    /// The ASL type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Pass(_) => "Pass",
            State::Task(_) => "Task",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }

    /// `Next` of a state that has one.
    pub fn next(&self) -> Option<&str> {
        match self {
            State::Pass(s) => s.next(),
            State::Task(s) => s.next(),
            State::Wait(s) => s.next(),
            State::Parallel(s) => s.next(),
            State::Map(s) => s.next(),
            State::Succeed(s) => s.next(),
            State::Fail(s) => s.next(),
            State::Choice(_) => None,
        }
    }

    /// Whether the state is marked `End: true`.
    pub fn is_end(&self) -> bool {
        match self {
            State::Pass(s) => s.is_end(),
            State::Task(s) => s.is_end(),
            State::Wait(s) => s.is_end(),
            State::Parallel(s) => s.is_end(),
            State::Map(s) => s.is_end(),
            State::Succeed(s) => s.is_end(),
            State::Fail(s) => s.is_end(),
            State::Choice(_) => false,
        }
    }

    /// Whether the state ends an execution by its type (Succeed, Fail).
    pub fn is_terminal_type(&self) -> bool {
        matches!(self, State::Succeed(_) | State::Fail(_))
    }

    /// Every state name this state can transition to: Next, Choice targets and Default, Catch.
    pub fn successors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.next().into_iter().collect();
        let catchers = match self {
            State::Task(s) => s.catch.as_deref(),
            State::Parallel(s) => s.catch.as_deref(),
            State::Map(s) => s.catch.as_deref(),
            State::Choice(c) => {
                for rule in c.choices.iter().flatten() {
                    if let Some(n) = rule.next.as_deref() {
                        out.push(n);
                    }
                }
                if let Some(d) = c.default.as_deref() {
                    out.push(d);
                }
                None
            }
            _ => None,
        };
        for c in catchers.into_iter().flatten() {
            out.push(&c.next);
        }
        out
    }
}
