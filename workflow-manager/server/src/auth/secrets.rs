//! Secrets this service makes and how it keeps them: API tokens and session cookies are 256
//! random bits, stored only as their SHA-256 (a fast hash is right for secrets of that
//! entropy: there is nothing to guess); access keys look like AWS's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix of API tokens (so that secret scanners and people can recognise them).
pub const TOKEN_PREFIX: &str = "wfm_";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A new API token secret.
pub fn new_token() -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// A new session cookie value.
pub fn new_session() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A new id for a token.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How a token or session secret is stored and looked up.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session: derived from its secret, so it needs no storage, and a page
/// that shows it gives away nothing of the cookie.
pub fn csrf_token(session: &str) -> String {
    hash(&format!("csrf:{session}"))
}

/// A new access key: an id of 20 upper-case letters and digits starting `WFMK`, and a secret
/// of 40 characters, as AWS's look.
pub fn new_access_key() -> (String, String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = random_bytes::<16>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<30>());
    (format!("WFMK{id}"), secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_shaped() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 4 + 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(csrf_token(&a), hash(&a));
        let (id, secret) = new_access_key();
        assert!(id.starts_with("WFMK") && id.len() == 20, "{id}");
        assert_eq!(secret.len(), 40);
    }
}
