//! JSON bodies of any size. A body that fits in an item (under [`INLINE_LIMIT`]) is kept in
//! its item's `body` attribute. A larger one (a workflow with many jobs, a definition of
//! thousands of states) is cut into pieces stored in the `workflow-parts` table under an
//! owner key and a fresh generation, and the item keeps only `parts = OWNER|GENERATION|COUNT`.
//! Pieces are written before the item that points at them and deleted after it stops
//! pointing at them, so a reader never follows a pointer to missing or half-written pieces.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use wfm_core::StoreError;

use crate::attrs::{get_s, opt_s, s, Item};
use crate::error::{backend, corrupt};
use crate::DynamoStore;

/// Bodies longer than this (in bytes) are stored in pieces. DynamoDB's item limit is 400 KB,
/// attribute names and the other attributes included.
pub const INLINE_LIMIT: usize = 300_000;
/// The size of one piece.
pub const PIECE: usize = 300_000;
/// BatchWriteItem takes at most 25 requests.
pub const BATCH_WRITE_MAX: usize = 25;

/// Where an item's body lives.
pub enum Stored {
    /// In the item.
    Inline(String),
    /// In pieces: (owner, generation, count).
    Pieces(String, String, usize),
}

impl Stored {
    /// The attributes the item gets: `body`, or `parts`.
    pub fn attributes(&self) -> (&'static str, AttributeValue) {
        match self {
            Stored::Inline(body) => ("body", s(body.clone())),
            Stored::Pieces(owner, generation, count) => {
                ("parts", s(format!("{owner}|{generation}|{count}")))
            }
        }
    }
}

fn split_pieces(body: &str, piece: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let mut end = rest.len().min(piece);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // A piece smaller than the first character still takes the whole character.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

fn piece_key(generation: &str, i: usize) -> String {
    format!("{generation}#{i:05}")
}

/// Stores `body` for an item owned by `owner`: inline if small, else as pieces written now.
pub async fn store(store: &DynamoStore, owner: &str, body: String) -> Result<Stored, StoreError> {
    if body.len() <= store.inline_limit {
        return Ok(Stored::Inline(body));
    }
    let generation = uuid::Uuid::new_v4().simple().to_string();
    let pieces = split_pieces(&body, store.piece);
    // One piece per request: a batch of several 300 KB pieces exceeds BatchWriteItem's 16 MB
    // only at 53 of them, but each PutItem keeps a failure local and retriable.
    for (i, piece) in pieces.iter().enumerate() {
        store
            .client
            .put_item()
            .table_name(&store.tables.workflow_parts)
            .item("workflowId", s(owner))
            .item("part", s(piece_key(&generation, i)))
            .item("data", s(*piece))
            .send()
            .await
            .map_err(backend)?;
    }
    Ok(Stored::Pieces(owner.to_string(), generation, pieces.len()))
}

/// The pieces an item points at, if it points at any: (owner, generation, count).
pub fn pieces_of(item: &Item) -> Result<Option<(String, String, usize)>, StoreError> {
    let Some(parts) = opt_s(item, "parts") else {
        return Ok(None);
    };
    let mut fields = parts.rsplitn(3, '|');
    let (Some(count), Some(generation), Some(owner)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(corrupt("parts pointer", parts));
    };
    let count = count.parse().map_err(|e| corrupt("parts pointer", e))?;
    Ok(Some((owner.to_string(), generation.to_string(), count)))
}

/// The body of an item, read from its pieces if it has them.
pub async fn load(store: &DynamoStore, item: &Item) -> Result<String, StoreError> {
    let Some((owner, generation, count)) = pieces_of(item)? else {
        return get_s(item, "body").map(str::to_string);
    };
    let mut body = String::new();
    let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
    let mut read = 0;
    loop {
        let out = store
            .client
            .query()
            .table_name(&store.tables.workflow_parts)
            .key_condition_expression("workflowId = :o AND begins_with(part, :g)")
            .expression_attribute_values(":o", s(&owner))
            .expression_attribute_values(":g", s(format!("{generation}#")))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        for piece in out.items() {
            body.push_str(get_s(piece, "data")?);
            read += 1;
        }
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    if read != count {
        return Err(corrupt(
            "body",
            format!("{owner} has {read} of its {count} pieces"),
        ));
    }
    Ok(body)
}

/// The body of an item, decoded from JSON; `what` names it in the error if it does not decode.
pub async fn load_json<T: serde::de::DeserializeOwned>(
    store: &DynamoStore,
    item: &Item,
    what: &str,
) -> Result<T, StoreError> {
    let body = load(store, item).await?;
    serde_json::from_str(&body).map_err(|e| corrupt(what, e))
}

/// Deletes the pieces of one generation (what an item pointed at before it was replaced or
/// deleted). Failures are logged, not returned: the item no longer points at them, so they
/// are garbage, not data.
pub async fn delete(store: &DynamoStore, owner: &str, generation: &str, count: usize) {
    let keys: Vec<WriteRequest> = (0..count)
        .filter_map(|i| {
            DeleteRequest::builder()
                .key("workflowId", s(owner))
                .key("part", s(piece_key(generation, i)))
                .build()
                .ok()
                .map(|d| WriteRequest::builder().delete_request(d).build())
        })
        .collect();
    if let Err(e) = batch_write(store, &store.tables.workflow_parts, keys).await {
        tracing::warn!(owner, generation, error = %e, "cannot delete replaced body pieces");
    }
}

/// BatchWriteItem in groups of at most 25, retrying what DynamoDB leaves unprocessed.
pub async fn batch_write(
    store: &DynamoStore,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), StoreError> {
    for chunk in requests.chunks(BATCH_WRITE_MAX) {
        let mut pending = chunk.to_vec();
        let mut delay = std::time::Duration::from_millis(25);
        for _ in 0..10 {
            let out = store
                .client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await
                .map_err(backend)?;
            pending = out
                .unprocessed_items()
                .and_then(|m| m.get(table))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        if !pending.is_empty() {
            return Err(StoreError::Backend(format!(
                "{} writes to {table} left unprocessed after retries",
                pending.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_on_character_boundaries_and_rejoin() {
        let body = "é".repeat(PIECE); // two bytes each: two pieces and a bit
        let pieces = split_pieces(&body, PIECE);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() <= PIECE));
        assert_eq!(pieces.concat(), body);
        assert!(split_pieces("", PIECE).is_empty());
        let tiny = split_pieces("aé€b", 1);
        assert_eq!(tiny, ["a", "é", "€", "b"]);
    }
}
