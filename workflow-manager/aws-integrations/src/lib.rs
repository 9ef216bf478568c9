//! The Task integrations of the embedded engine beyond activities and Batch: SQS, SNS,
//! DynamoDB, EventBridge, Lambda and S3 (also the Distributed Map's item reader and result
//! writer) (optimized, and every action as `aws-sdk:SERVICE:ACTION`),
//! Lambda functions run as local commands from `functions.yaml`, and the HTTP Task. AWS calls
//! use the standard AWS configuration (so `AWS_ENDPOINT_URL_SQS` and friends point them at
//! moto or LocalStack); the engine itself stays free of AWS and HTTP. Nested executions
//! (`states:startExecution`, `aws-sdk:sfn:*`) are the engine's own.
//!
//! Register with [`register`]; the `aws-sdk:` integration of any other service fails its
//! state with `States.Runtime` naming it.

pub mod aws;
pub mod failure;
pub mod http_task;
pub mod lambda;
pub mod query;
pub mod s3;
pub mod services;

use std::sync::Arc;

use wfm_engine::Engine;

pub use aws::{Aws, ConfigLoader};
pub use http_task::{HttpPolicy, HttpTask};
pub use lambda::{LambdaIntegration, LocalFunctions};
pub use s3::S3Integration;
pub use services::{Api, Optimized, Sdk, UnsupportedSdk};

/// Registers every integration of this crate with the engine (before its `recover`).
pub fn register(engine: &Engine, aws: Arc<Aws>, functions: LocalFunctions, http: HttpPolicy) {
    for api in [Api::Sqs, Api::Sns, Api::DynamoDb, Api::Events] {
        engine.register_integration(Arc::new(Optimized::new(aws.clone(), api)));
    }
    engine.register_integration(Arc::new(LambdaIntegration::new(aws.clone(), functions)));
    for api in Api::ALL {
        engine.register_integration(Arc::new(Sdk::new(aws.clone(), api)));
    }
    engine.register_integration(Arc::new(S3Integration::new(aws.clone())));
    engine.register_integration(Arc::new(HttpTask::new(http)));
    // Last: claims whatever `aws-sdk:` resource no integration before it did.
    engine.register_integration(Arc::new(UnsupportedSdk));
}
