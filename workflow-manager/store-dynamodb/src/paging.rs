//! Page tokens of workflow listings: the sort key of the last row of a page, so that the next
//! page starts right after it (rows inserted meanwhile never shift a page), and the index it
//! belongs to, so a token cannot be replayed against another listing.

use base64::Engine as _;
use wfm_core::StoreError;

const PREFIX: &str = "ddb1|";

/// Encodes where the next page starts.
pub fn encode(index: &str, sort_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{PREFIX}{index}|{sort_key}"))
}

/// Decodes a token issued for `index`; returns the sort key to start after.
pub fn decode(index: &str, token: &str) -> Result<String, StoreError> {
    let bad = || StoreError::InvalidPageToken(token.to_string());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix(PREFIX).ok_or_else(bad)?;
    let (token_index, key) = rest.split_once('|').ok_or_else(bad)?;
    if token_index != index || !key.contains('#') {
        return Err(bad());
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_other_indexes_and_garbage() {
        let t = encode("all", "2026-01-01T00:00:00.000000000Z#wf-1");
        assert_eq!(
            decode("all", &t).expect("decodes"),
            "2026-01-01T00:00:00.000000000Z#wf-1"
        );
        assert!(decode("by-status", &t).is_err());
        assert!(decode("all", "not-a-token").is_err());
        assert!(decode("all", "").is_err());
    }
}
