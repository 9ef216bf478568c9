//! Building and reading DynamoDB attribute values.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use wfm_core::StoreError;

use crate::error::corrupt;

/// An item as the SDK hands it over.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The string attribute `name` of an item.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt("item", format!("no string attribute {name}"))),
    }
}

/// The string attribute `name` of an item, if present.
pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// The number attribute `name` of an item.
pub fn get_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|e| corrupt("item", format!("attribute {name}: {e}"))),
        _ => Err(corrupt("item", format!("no number attribute {name}"))),
    }
}

/// An instant as a fixed-width UTC string, so that string order is time order (DynamoDB
/// compares strings byte by byte).
pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// A sort key that orders by time first, then by id: unique, and stable for paging.
pub fn time_key(t: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", instant(t))
}

/// Decodes the JSON in string attribute `name`.
pub fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let text = get_s(item, name)?;
    serde_json::from_str(text).map_err(|e| corrupt(name, e))
}

/// Encodes a value as JSON for a string attribute.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

/// Every item a Query returns, all pages read.
pub async fn all_items(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = query
            .clone()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(crate::error::backend)?;
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(out);
        }
    }
}
