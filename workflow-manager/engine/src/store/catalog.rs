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
    /// Publishes `revision` as the state machine's next version, unless its latest version
    /// is that revision already (then that one is returned); returns the version.
    pub fn publish_version(
        &self,
        arn: &str,
        revision: i64,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<VersionRow, EngineError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let latest = tx
            .query_row(
                "SELECT version, revision, description, created_ms FROM versions
                 WHERE state_machine_arn = ?1 ORDER BY version DESC LIMIT 1",
                params![arn],
                version_row,
            )
            .optional()?;
        if let Some(l) = latest.as_ref().filter(|l| l.revision == revision) {
            return Ok(l.clone());
        }
        let version = latest.map(|l| l.version + 1).unwrap_or(1);
        tx.execute(
            "INSERT INTO versions (state_machine_arn, version, revision, description, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![arn, version, revision, description, ms(now)],
        )?;
        tx.commit()?;
        Ok(VersionRow {
            version,
            revision,
            description: description.map(str::to_string),
            created: now,
        })
    }

    /// A version of a state machine.
    pub fn version(&self, arn: &str, version: i64) -> Result<Option<VersionRow>, EngineError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT version, revision, description, created_ms FROM versions
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
            "SELECT version, revision, description, created_ms FROM versions
             WHERE state_machine_arn = ?1 AND (?2 = 0 OR version < ?2)
             ORDER BY version DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![arn, before, limit as i64], version_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes a version.
    pub fn delete_version(&self, arn: &str, version: i64) -> Result<(), EngineError> {
        self.conn().execute(
            "DELETE FROM versions WHERE state_machine_arn = ?1 AND version = ?2",
            params![arn, version],
        )?;
        Ok(())
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
