//! The workflow-manager service: the REST API of `api-spec/openapi.yaml`, the web UI under
//! `/ui`, access control in front of both (and of `/sfn`), the Step Functions wire protocol
//! under `/sfn`, the embedded engine behind the manager's `StepFunctions` trait, the sync path
//! from engine to store, definition loading and local workers, and configuration.
//!
//! This is the top of the dependency graph: it may use every crate below it, and none of them
//! may use it. Handlers stay thin; behaviour lives in `wfm-core`'s manager.

pub mod api;
pub mod app;
pub mod auth;
pub mod aws;
pub mod background;
pub mod config;
pub mod embedded;
pub mod events;
pub mod limits;
pub mod loader;
pub mod local_workers;
pub mod ops;
pub mod reconcile;
pub mod sfn_wire;
pub mod sync;
pub mod ui;

pub use app::{start, AppState, Running, StartError};
pub use config::Config;

#[cfg(test)]
mod api_fuzz_tests;
#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod aws_sfn_tests;
#[cfg(test)]
mod sfn_auth_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod ui_tests;
