//! The AWS SDK configuration of the service: the standard chain (`AWS_REGION`, profiles,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SFN`, `AWS_ENDPOINT_URL_DYNAMODB`, ...), so the same
//! binary runs against AWS or an emulator without code changes; `--region` overrides the
//! region.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the SDK configuration; fails when no region is known.
pub async fn sdk_config(region: Option<&str>) -> Result<SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(
            "no AWS region: set AWS_REGION (or a profile's region), or pass --region".into(),
        );
    }
    Ok(config)
}
