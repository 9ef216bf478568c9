//! The engine's operations, as the Step Functions API has them: state machines and activities
//! ([`machines`]), executions and their histories ([`executions`]), activity tasks
//! ([`tasks`]), versions, aliases and tags ([`catalog`]). Reads and writes that wait on SQLite
//! run on the blocking pool or the writer.

pub mod catalog;
mod executions;
mod machines;
mod tasks;
pub mod validation;

use crate::error::EngineError;

/// Step Functions' rule for names of state machines, executions and activities.
fn check_name(name: &str, what: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 80
        && name.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !"<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidName(format!(
            "Invalid Name: '{name}' is not a valid {what} name (1 to 80 characters, no \
             whitespace, brackets, wildcards or special characters)"
        )))
    }
}

/// A page size (default 100, at most 1000).
fn page_size(max_results: Option<usize>) -> Result<usize, EngineError> {
    match max_results {
        None | Some(0) => Ok(100),
        Some(n) if n > 1000 => Err(EngineError::Validation(
            "maxResults must be at most 1000".into(),
        )),
        Some(n) => Ok(n),
    }
}

/// Paging by name: tokens are `n.` and the last name of the previous page.
fn decode_name_token(token: Option<&str>) -> Result<String, EngineError> {
    match token {
        None => Ok(String::new()),
        Some(t) => t
            .strip_prefix("n.")
            .map(str::to_string)
            .ok_or_else(|| EngineError::InvalidToken(format!("Invalid Token: '{t}'"))),
    }
}

fn next_name_token<T>(
    rows: &mut Vec<T>,
    limit: usize,
    name: impl Fn(&T) -> &String,
) -> Option<String> {
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| format!("n.{}", name(r)))
    } else {
        None
    }
}
