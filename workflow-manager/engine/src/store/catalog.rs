//! The rows of what is kept beside state machines: their published versions (each a
//! revision), their aliases (routing to versions by weight), the tags of state machines and
//! activities, and the version and alias an execution was started through.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::rows::from_ms;
use super::write::Qualifier;
use super::EngineDb;
use crate::error::EngineError;

/// A published version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    /// Its number (1, 2, ...).
    pub version: i64,
    /// The revision it runs.
    pub revision: i64,
    /// The role its executions run as (the state machine's when it was published).
    pub role_arn: String,
    /// Its description.
    pub description: Option<String>,
    /// When it was published.
    pub created: DateTime<Utc>,
}

/// An alias.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    /// `arn:...:stateMachine:NAME:ALIAS`.
    pub arn: String,
    /// Its state machine.
    pub state_machine_arn: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The routing: (version ARN, weight) pairs, as JSON text.
    pub routing: String,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last updated.
    pub updated: DateTime<Utc>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        version: r.get(0)?,
        revision: r.get(1)?,
        description: r.get(2)?,
        created: from_ms(r.get(3)?),
        role_arn: r.get(4)?,
    })
}

fn alias_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AliasRow> {
    Ok(AliasRow {
        arn: r.get(0)?,
        state_machine_arn: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        routing: r.get(4)?,
        created: from_ms(r.get(5)?),
        updated: from_ms(r.get(6)?),
    })
}

const ALIAS_COLUMNS: &str =
    "arn, state_machine_arn, name, description, routing, created_ms, updated_ms";

impl EngineDb {
    /// Publishes the state machine's current revision as its next version, unless its latest
    /// version is that revision already (then that one is returned). `accept` sees the
    /// current revision first (a caller's expected revision): `Err(current)` when it refuses.
    /// Numbers are never given twice, even after a version is deleted.
    pub fn publish_version(
        &self,
        arn: &str,
        accept: &dyn Fn(i64) -> bool,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<VersionRow, i64>, EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current: Option<(i64, String)> = tx
            .query_row(
                "SELECT revision, role_arn FROM state_machines WHERE arn = ?1 AND deleted = 0",
                params![arn],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((revision, role_arn)) = current else {
            return Err(EngineError::StateMachineDoesNotExist(format!(
                "State Machine Does Not Exist: '{arn}'"
            )));
        };
        if !accept(revision) {
            return Ok(Err(revision));
        }
        let latest = tx
            .query_row(
                "SELECT version, revision, description, created_ms, role_arn FROM versions
                 WHERE state_machine_arn = ?1 ORDER BY version DESC LIMIT 1",
                params![arn],
                version_row,
            )
            .optional()?;
        if let Some(l) = latest.filter(|l| l.revision == revision) {
            return Ok(Ok(l));
        }
        let last: i64 = tx
            .query_row(
                "SELECT last FROM version_counters WHERE state_machine_arn = ?1",
                params![arn],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let version = last + 1;
        tx.execute(
            "INSERT INTO versions (state_machine_arn, version, revision, description, created_ms, role_arn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![arn, version, revision, description, ms(now), role_arn],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO version_counters (state_machine_arn, last) VALUES (?1, ?2)",
            params![arn, version],
        )?;
        tx.commit()?;
        Ok(Ok(VersionRow {
            version,
            revision,
            role_arn,
            description: description.map(str::to_string),
            created: now,
        }))
    }

    /// A version of a state machine.
    pub fn version(&self, arn: &str, version: i64) -> Result<Option<VersionRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT version, revision, description, created_ms, role_arn FROM versions
                 WHERE state_machine_arn = ?1 AND version = ?2",
            )?
            .query_row(params![arn, version], version_row)
            .optional()?)
    }

    /// A state machine's versions, newest first, below `before` (exclusive; 0 for all).
    pub fn versions(
        &self,
        arn: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<VersionRow>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT version, revision, description, created_ms, role_arn FROM versions
             WHERE state_machine_arn = ?1 AND (?2 = 0 OR version < ?2)
             ORDER BY version DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![arn, before, limit as i64], version_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes a version unless an alias routes to it: `Some(alias name)` when one does.
    pub fn delete_version(&self, arn: &str, version: i64) -> Result<Option<String>, EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version_arn = format!("{arn}:{version}");
        let routing_to: Option<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT name, routing FROM aliases WHERE state_machine_arn = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map(params![arn], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut found = None;
            for row in rows {
                let (name, routing) = row?;
                let routes: Vec<serde_json::Value> =
                    serde_json::from_str(&routing).unwrap_or_default();
                if routes
                    .iter()
                    .any(|r| r["stateMachineVersionArn"].as_str() == Some(version_arn.as_str()))
                {
                    found = Some(name);
                    break;
                }
            }
            found
        };
        if routing_to.is_some() {
            return Ok(routing_to);
        }
        tx.execute(
            "DELETE FROM versions WHERE state_machine_arn = ?1 AND version = ?2",
            params![arn, version],
        )?;
        tx.commit()?;
        Ok(None)
    }

    /// Creates an alias; `false` when one of that ARN exists.
    pub fn insert_alias(&self, a: &AliasRow) -> Result<bool, EngineError> {
        let n = self.conn().execute(
            &format!("INSERT OR IGNORE INTO aliases ({ALIAS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                a.arn,
                a.state_machine_arn,
                a.name,
                a.description,
                a.routing,
                ms(a.created),
                ms(a.updated)
            ],
        )?;
        Ok(n == 1)
    }

    /// An alias by ARN.
    pub fn alias(&self, arn: &str) -> Result<Option<AliasRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {ALIAS_COLUMNS} FROM aliases WHERE arn = ?1"
            ))?
            .query_row(params![arn], alias_row)
            .optional()?)
    }

    /// A state machine's aliases by name, after `after` (exclusive).
    pub fn aliases(
        &self,
        state_machine_arn: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<AliasRow>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ALIAS_COLUMNS} FROM aliases WHERE state_machine_arn = ?1 AND name > ?2
             ORDER BY name LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![state_machine_arn, after, limit as i64], alias_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Replaces an alias's description and routing.
    pub fn update_alias(
        &self,
        arn: &str,
        description: Option<&str>,
        routing: &str,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.conn().execute(
            "UPDATE aliases SET description = ?2, routing = ?3, updated_ms = ?4 WHERE arn = ?1",
            params![arn, description, routing, ms(now)],
        )?;
        Ok(())
    }

    /// Deletes an alias.
    pub fn delete_alias(&self, arn: &str) -> Result<(), EngineError> {
        self.conn()
            .execute("DELETE FROM aliases WHERE arn = ?1", params![arn])?;
        Ok(())
    }

    /// A resource's tags, by key.
    pub fn tags(&self, resource_arn: &str) -> Result<Vec<(String, String)>, EngineError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached("SELECT key, value FROM tags WHERE resource_arn = ?1 ORDER BY key")?;
        let rows = stmt.query_map(params![resource_arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Sets tags of a resource (a key given again gets the new value).
    pub fn tag(&self, resource_arn: &str, tags: &[(String, String)]) -> Result<(), EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO tags (resource_arn, key, value) VALUES (?1, ?2, ?3)",
            )?;
            for (k, v) in tags {
                put.execute(params![resource_arn, k, v])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes tags of a resource by key.
    pub fn untag(&self, resource_arn: &str, keys: &[String]) -> Result<(), EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut del =
                tx.prepare_cached("DELETE FROM tags WHERE resource_arn = ?1 AND key = ?2")?;
            for k in keys {
                del.execute(params![resource_arn, k])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The version and alias an execution was started through.
    pub fn qualifier(&self, execution: i64) -> Result<Option<Qualifier>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT version_arn, alias_arn FROM qualifiers WHERE execution = ?1")?
            .query_row(params![execution], |r| {
                Ok(Qualifier {
                    version_arn: r.get(0)?,
                    alias_arn: r.get(1)?,
                })
            })
            .optional()?)
    }
}
