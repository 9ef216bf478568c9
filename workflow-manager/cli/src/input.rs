//! What the user gives: `NAME[:VERSION]`, `KEY=VALUE` tags, JSON inline or from `@FILE`; and
//! the API's answers turned into results whose errors say what the server said.

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use wfm_client::{types, Error, ResponseValue};

/// `NAME` or `NAME:VERSION`.
pub fn name_version(text: &str) -> anyhow::Result<(String, Option<i64>)> {
    match text.rsplit_once(':') {
        Some((name, version)) if !name.is_empty() => {
            let v = version
                .parse()
                .map_err(|_| anyhow!("'{text}': the version after ':' must be an integer"))?;
            Ok((name.to_string(), Some(v)))
        }
        _ if text.is_empty() => bail!("a definition name is required"),
        _ => Ok((text.to_string(), None)),
    }
}

/// `KEY=VALUE` pairs.
pub fn tags(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("--tag '{p}': expected KEY=VALUE")),
        })
        .collect()
}

/// JSON given inline or as `@FILE` (`@-` for stdin); checked, and returned as text.
pub fn json_text(flag: &str, given: &str) -> anyhow::Result<String> {
    let text = match given.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin()).context("reading stdin")?,
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("{flag}: reading {path}"))?
        }
        None => given.to_string(),
    };
    serde_json::from_str::<Value>(&text).map_err(|e| anyhow!("{flag}: not JSON: {e}"))?;
    Ok(text.trim().to_string())
}

/// The value of an answer, or an error with the server's message.
pub fn answer<T>(result: Result<ResponseValue<T>, Error<types::Error>>) -> anyhow::Result<T> {
    match result {
        Ok(v) => Ok(v.into_inner()),
        Err(Error::ErrorResponse(e)) => {
            let status = e.status();
            Err(anyhow!("{} ({})", e.into_inner().message, status))
        }
        Err(Error::CommunicationError(e)) => Err(anyhow!("cannot reach the service: {e}")),
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// A typed request body from JSON.
pub fn body<T: serde::de::DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).map_err(|e| anyhow!("invalid request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_tags() {
        assert_eq!(name_version("a").expect("ok"), ("a".into(), None));
        assert_eq!(name_version("a:3").expect("ok"), ("a".into(), Some(3)));
        assert!(name_version("a:x").is_err());
        assert_eq!(
            tags(&["k=v=w".into()]).expect("ok"),
            [("k".into(), "v=w".into())]
        );
        assert!(tags(&["=v".into()]).is_err());
        assert!(json_text("--input", "{").is_err());
    }
}
