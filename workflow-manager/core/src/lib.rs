//! The workflow manager's domain: the model as Clever's API names it ([`model`]), the [`Store`]
//! and [`StepFunctions`] traits every backend implements, the naming conventions shared by the
//! backends ([`conventions`]), history-to-jobs ([`jobs`]) and the [`WorkflowManager`] written
//! once over the two traits.
//!
//! This crate must not know about HTTP, SQLite, the embedded engine or any AWS SDK.

pub mod access;
mod children;
pub mod conventions;
pub mod jobs;
pub mod manager;
pub mod model;
pub mod repair;
pub mod sfn;
mod state_machines;
pub mod store;
pub mod store_suite;

pub use access::{AccessStore, Role};
pub use manager::{ManagerConfig, ManagerError, WorkflowManager};
pub use sfn::{SfnError, StepFunctions};
pub use store::{Store, StoreError, WorkflowPage, WorkflowQuery};
