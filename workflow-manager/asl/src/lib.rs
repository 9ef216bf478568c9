//! The Amazon States Language and the Step Functions data model, with no I/O: serde types for
//! every state type and field ([`definition`]), a parser whose errors name the JSON path of the
//! problem ([`parse`]), structural validation ([`validate`]), JSONPath data flow ([`path`]) and
//! execution history events in the Step Functions API's shape ([`history`]).
//!
//! This crate must not depend on an engine, a store, HTTP or an AWS SDK: everything above it
//! shares these types.

pub mod definition;
pub mod entropy;
pub mod history;
pub mod intrinsics;
pub mod jsonata;
pub mod parse;
pub mod path;
pub mod validate;

pub use definition::{State, StateMachine};
pub use history::HistoryEvent;
pub use parse::{parse_definition, parse_definition_value, DefinitionError};
pub use validate::validate;
