//! Task tokens: which execution and task a token answers, and the task's secret (16 random
//! bytes, so a token cannot be guessed from another). `wfm2.` then URL-safe base64 of the
//! execution number (8 bytes), the task number (4 bytes) and the secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

const PREFIX: &str = "wfm2.";
const SECRET_BYTES: usize = 16;

/// What a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The execution's number.
    pub execution: i64,
    /// The task's number within it.
    pub seq: u32,
    /// The secret (hex).
    pub secret: String,
}

/// A new secret from 16 random bytes.
pub fn secret_from(bytes: [u8; SECRET_BYTES]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Token {
    /// The token's text.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(12 + SECRET_BYTES);
        bytes.extend_from_slice(&self.execution.to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        for i in 0..self.secret.len() / 2 {
            bytes.push(u8::from_str_radix(&self.secret[2 * i..2 * i + 2], 16).unwrap_or(0));
        }
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Reads a token; `None` when it is not one this engine issues.
    pub fn decode(text: &str) -> Option<Token> {
        let body = text.strip_prefix(PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() != 12 + SECRET_BYTES {
            return None;
        }
        let execution = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let seq = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
        let secret = secret_from(bytes[12..].try_into().ok()?);
        Some(Token {
            execution,
            seq,
            secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let t = Token {
            execution: 42,
            seq: 7,
            secret: secret_from([0xab; 16]),
        };
        let text = t.encode();
        assert!(text.starts_with("wfm2."));
        assert_eq!(Token::decode(&text), Some(t));
        assert_eq!(Token::decode("bogus"), None);
        assert_eq!(Token::decode("wfm2.AAAA"), None);
        assert_eq!(Token::decode("wfm1.AAAA"), None);
    }
}
