//! Versions, aliases and tags, as the Step Functions API has them. A version is a published
//! revision of a state machine (`...:stateMachine:NAME:1`); an alias
//! (`...:stateMachine:NAME:live`) routes executions to one version, or to two by weight. An
//! execution started through either runs that version's definition and remembers the ARNs it
//! was started through. Tags belong to state machines and activities.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::machines::machine_info;
use super::{check_name, decode_name_token, next_name_token, page_size};
use crate::error::EngineError;
use crate::runtime::blocking;
use crate::store::catalog::{AliasRow, VersionRow};
use crate::store::write::Qualifier;
use crate::{Engine, StateMachineInfo};

/// The most tags a resource may have (as on AWS).
const MAX_TAGS: usize = 50;

/// A revision's `revisionId`: opaque, the same for the same revision.
pub fn revision_id(revision: i64) -> String {
    let r = revision.max(0) as u64;
    format!("{:08x}-0000-4000-8000-{:012x}", (r >> 48) & 0xffff, r)
}

/// A state machine ARN and what qualifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualified {
    /// `...:stateMachine:NAME`.
    Machine(String),
    /// `...:stateMachine:NAME:3`.
    Version {
        /// The state machine's ARN.
        machine: String,
        /// The version.
        version: i64,
    },
    /// `...:stateMachine:NAME:ALIAS`.
    Alias {
        /// The state machine's ARN.
        machine: String,
    },
}

impl Qualified {
    /// Reads a state machine ARN with or without a qualifier.
    pub fn parse(arn: &str) -> Self {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() == 8 && parts.get(5) == Some(&"stateMachine") {
            let machine = parts[..7].join(":");
            // Versions are written `1`, `2`, ... (no sign, no leading zero).
            let q = parts[7];
            let canonical =
                !q.is_empty() && !q.starts_with('0') && q.bytes().all(|b| b.is_ascii_digit());
            return match q.parse::<i64>() {
                Ok(version) if canonical => Qualified::Version { machine, version },
                _ => Qualified::Alias { machine },
            };
        }
        Qualified::Machine(arn.to_string())
    }

    /// The state machine's own ARN.
    pub fn machine(&self) -> &str {
        match self {
            Qualified::Machine(m) | Qualified::Version { machine: m, .. } => m,
            Qualified::Alias { machine } => machine,
        }
    }
}

/// One route of an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The version's ARN.
    pub state_machine_version_arn: String,
    /// Its share of executions, in percent.
    pub weight: u32,
}

/// A version as ListStateMachineVersions and DescribeStateMachine show it.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// Its ARN.
    pub arn: String,
    /// Its description.
    pub description: Option<String>,
    /// When it was published.
    pub created: DateTime<Utc>,
}

/// An alias as DescribeStateMachineAlias shows it.
#[derive(Debug, Clone)]
pub struct AliasInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its routes.
    pub routing: Vec<Route>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last updated.
    pub updated: DateTime<Utc>,
}

fn alias_info(a: AliasRow) -> AliasInfo {
    AliasInfo {
        routing: serde_json::from_str(&a.routing).unwrap_or_default(),
        arn: a.arn,
        name: a.name,
        description: a.description,
        created: a.created,
        updated: a.updated,
    }
}

/// Tags as AWS takes them: keys of 1 to 128 characters, values of at most 256, at most 50.
pub fn check_tags(tags: &[(String, String)]) -> Result<(), EngineError> {
    if tags.len() > MAX_TAGS {
        return Err(EngineError::TooManyTags(format!(
            "Too many tags: a resource may have at most {MAX_TAGS}"
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(EngineError::Validation(format!(
                "tag keys are 1 to 128 characters and values at most 256: '{k}'"
            )));
        }
    }
    Ok(())
}

fn not_found(what: &str, arn: &str) -> EngineError {
    EngineError::ResourceNotFound(format!("Resource not found: {what} '{arn}'"))
}

impl Engine {
    /// Publishes the state machine's current revision as a version (the latest version again
    /// when it is that revision); `revision_id` must be the current one when given.
    pub async fn publish_state_machine_version(
        &self,
        arn: &str,
        revision_id: Option<&str>,
        description: Option<&str>,
    ) -> Result<VersionInfo, EngineError> {
        if !matches!(Qualified::parse(arn), Qualified::Machine(_)) {
            return Err(EngineError::Validation(format!(
                "stateMachineArn must be a state machine's ARN, not a version's or an alias's: '{arn}'"
            )));
        }
        if description.is_some_and(|d| d.chars().count() > 256) {
            return Err(EngineError::Validation(
                "description must be at most 256 characters".into(),
            ));
        }
        let (a, d, now) = (
            arn.to_string(),
            description.map(str::to_string),
            self.rt.clock.now(),
        );
        let expected = revision_id.map(str::to_string);
        // The revision is checked and published in one transaction.
        let published = blocking(&self.rt.db, move |db| {
            let accept = |current: i64| {
                expected
                    .as_deref()
                    .is_none_or(|e| e == self::revision_id(current))
            };
            db.publish_version(&a, &accept, d.as_deref(), now)
        })
        .await?;
        match published {
            Ok(v) => Ok(VersionInfo {
                arn: format!("{arn}:{}", v.version),
                description: v.description,
                created: v.created,
            }),
            Err(current) => Err(EngineError::Conflict(format!(
                "Failed to publish the State Machine version for revision {}. The current State \
                 Machine revision is {}.",
                revision_id.unwrap_or_default(),
                self::revision_id(current)
            ))),
        }
    }

    /// A state machine's versions, newest first.
    pub async fn list_state_machine_versions(
        &self,
        arn: &str,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<VersionInfo>, Option<String>), EngineError> {
        self.describe_state_machine(arn).await?;
        let limit = page_size(max_results)?;
        let before = match next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("v.")
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| EngineError::InvalidToken(format!("Invalid Token: '{t}'")))?,
        };
        let a = arn.to_string();
        let mut rows = blocking(&self.rt.db, move |db| db.versions(&a, before, limit + 1)).await?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| format!("v.{}", r.version))
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|v| VersionInfo {
                arn: format!("{arn}:{}", v.version),
                description: v.description,
                created: v.created,
            })
            .collect();
        Ok((items, next))
    }

    async fn version_row(&self, machine: &str, version: i64) -> Result<VersionRow, EngineError> {
        let (m, full) = (machine.to_string(), format!("{machine}:{version}"));
        blocking(&self.rt.db, move |db| db.version(&m, version))
            .await?
            .ok_or_else(|| not_found("state machine version", &full))
    }

    /// Deletes a version; refused while an alias routes to it.
    pub async fn delete_state_machine_version(&self, version_arn: &str) -> Result<(), EngineError> {
        let Qualified::Version { machine, version } = Qualified::parse(version_arn) else {
            return Err(EngineError::Validation(format!(
                "'{version_arn}' is not a state machine version's ARN"
            )));
        };
        // Deleting a version that does not exist succeeds, as on AWS; one an alias routes to
        // is refused (checked and deleted in one transaction).
        let routed = blocking(&self.rt.db, move |db| db.delete_version(&machine, version)).await?;
        match routed {
            None => Ok(()),
            Some(alias) => Err(EngineError::Conflict(format!(
                "Version to be deleted must not be referenced by an alias. Current list of \
                 aliases referencing this version: [{alias}]"
            ))),
        }
    }

    /// Describes a state machine, a version of it (its definition, `description`) or an
    /// alias's machine.
    pub async fn describe_qualified_state_machine(
        &self,
        arn: &str,
    ) -> Result<(StateMachineInfo, Option<VersionInfo>), EngineError> {
        match Qualified::parse(arn) {
            Qualified::Machine(m) => Ok((self.describe_state_machine(&m).await?, None)),
            Qualified::Alias { .. } => Err(EngineError::Validation(format!(
                "'{arn}' is an alias: DescribeStateMachineAlias describes it"
            ))),
            Qualified::Version { machine, version } => {
                let base = self.describe_state_machine(&machine).await?;
                let v = self.version_row(&machine, version).await?;
                let revision = v.revision;
                let definition = blocking(&self.rt.db, move |db| db.revision(revision))
                    .await?
                    .unwrap_or_default();
                let info = StateMachineInfo {
                    arn: arn.to_string(),
                    definition,
                    revision_id: revision_id(v.revision),
                    role_arn: v.role_arn.clone(),
                    ..base
                };
                Ok((
                    info,
                    Some(VersionInfo {
                        arn: arn.to_string(),
                        description: v.description,
                        created: v.created,
                    }),
                ))
            }
        }
    }

    async fn check_routing(&self, machine: &str, routing: &[Route]) -> Result<(), EngineError> {
        if routing.is_empty() || routing.len() > 2 {
            return Err(EngineError::Validation(
                "routingConfiguration must have one or two entries".into(),
            ));
        }
        if routing.iter().map(|r| u64::from(r.weight)).sum::<u64>() != 100 {
            return Err(EngineError::Validation(
                "the weights of routingConfiguration must add up to 100".into(),
            ));
        }
        if routing.len() == 2
            && routing[0].state_machine_version_arn == routing[1].state_machine_version_arn
        {
            return Err(EngineError::Validation(
                "routingConfiguration must name two different versions".into(),
            ));
        }
        self.describe_state_machine(machine).await?;
        for r in routing {
            match Qualified::parse(&r.state_machine_version_arn) {
                Qualified::Version {
                    machine: m,
                    version,
                } if m == machine => {
                    self.version_row(&m, version).await?;
                }
                _ => {
                    return Err(EngineError::Validation(format!(
                        "'{}' is not a version of '{machine}'",
                        r.state_machine_version_arn
                    )))
                }
            }
        }
        Ok(())
    }

    /// Creates an alias routing to one or two versions of one state machine.
    pub async fn create_state_machine_alias(
        &self,
        name: &str,
        description: Option<&str>,
        routing: Vec<Route>,
    ) -> Result<AliasInfo, EngineError> {
        check_name(name, "alias")?;
        if name.parse::<i64>().is_ok() {
            return Err(EngineError::InvalidName(format!(
                "Invalid Name: '{name}' (an alias name cannot be a number)"
            )));
        }
        let machine = routing
            .first()
            .map(|r| {
                Qualified::parse(&r.state_machine_version_arn)
                    .machine()
                    .to_string()
            })
            .unwrap_or_default();
        self.check_routing(&machine, &routing).await?;
        let now = self.rt.clock.now();
        let row = AliasRow {
            arn: format!("{machine}:{name}"),
            state_machine_arn: machine,
            name: name.to_string(),
            description: description.map(str::to_string),
            routing: serde_json::to_string(&routing)
                .map_err(|e| EngineError::Storage(e.to_string()))?,
            created: now,
            updated: now,
        };
        let r = row.clone();
        if !blocking(&self.rt.db, move |db| db.insert_alias(&r)).await? {
            let existing = self.describe_state_machine_alias(&row.arn).await?;
            // The same alias again is the same creation (idempotent), as on AWS.
            if existing.routing == routing && existing.description == row.description {
                return Ok(existing);
            }
            return Err(EngineError::Conflict(format!(
                "Failed to create alias because an alias with the same name and a different \
                 routing configuration already exists: '{}'",
                row.arn
            )));
        }
        Ok(alias_info(row))
    }

    /// Describes an alias.
    pub async fn describe_state_machine_alias(&self, arn: &str) -> Result<AliasInfo, EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.alias(&a))
            .await?
            .map(alias_info)
            .ok_or_else(|| not_found("state machine alias", arn))
    }

    /// Changes an alias's description and/or routing.
    pub async fn update_state_machine_alias(
        &self,
        arn: &str,
        description: Option<&str>,
        routing: Option<Vec<Route>>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let current = self.describe_state_machine_alias(arn).await?;
        if description.is_none() && routing.is_none() {
            return Err(EngineError::Validation(
                "either description or routingConfiguration must be given".into(),
            ));
        }
        let machine = Qualified::parse(arn).machine().to_string();
        let routing = routing.unwrap_or(current.routing);
        self.check_routing(&machine, &routing).await?;
        let text =
            serde_json::to_string(&routing).map_err(|e| EngineError::Storage(e.to_string()))?;
        let description = description.map(str::to_string).or(current.description);
        let (a, now) = (arn.to_string(), self.rt.clock.now());
        blocking(&self.rt.db, move |db| {
            db.update_alias(&a, description.as_deref(), &text, now)
        })
        .await?;
        Ok(now)
    }

    /// A state machine's aliases, by name.
    pub async fn list_state_machine_aliases(
        &self,
        arn: &str,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<AliasInfo>, Option<String>), EngineError> {
        self.describe_state_machine(arn).await?;
        let limit = page_size(max_results)?;
        let after = decode_name_token(next_token)?;
        let a = arn.to_string();
        let mut rows = blocking(&self.rt.db, move |db| db.aliases(&a, &after, limit + 1)).await?;
        let next = next_name_token(&mut rows, limit, |r| &r.name);
        Ok((rows.into_iter().map(alias_info).collect(), next))
    }

    /// Deletes an alias (deleting one that does not exist succeeds, as on AWS).
    pub async fn delete_state_machine_alias(&self, arn: &str) -> Result<(), EngineError> {
        if !matches!(Qualified::parse(arn), Qualified::Alias { .. }) {
            return Err(EngineError::Validation(format!(
                "'{arn}' is not a state machine alias's ARN"
            )));
        }
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.delete_alias(&a)).await
    }

    /// What a start through `arn` runs: the state machine's ARN, the revision and role of a
    /// version (`None`: its current ones) and the version and alias it goes through.
    pub(crate) async fn resolve_start(
        &self,
        arn: &str,
    ) -> Result<(String, Option<(i64, String)>, Option<Qualifier>), EngineError> {
        match Qualified::parse(arn) {
            Qualified::Machine(m) => Ok((m, None, None)),
            Qualified::Version { machine, version } => {
                self.describe_state_machine(&machine).await?;
                let v = self.version_row(&machine, version).await.map_err(|_| {
                    EngineError::StateMachineDoesNotExist(format!(
                        "State Machine Does Not Exist: '{arn}'"
                    ))
                })?;
                Ok((
                    machine,
                    Some((v.revision, v.role_arn)),
                    Some(Qualifier {
                        version_arn: Some(arn.to_string()),
                        alias_arn: None,
                    }),
                ))
            }
            Qualified::Alias { machine } => {
                self.describe_state_machine(&machine).await?;
                let alias = self.describe_state_machine_alias(arn).await.map_err(|_| {
                    EngineError::StateMachineDoesNotExist(format!(
                        "State Machine Does Not Exist: '{arn}'"
                    ))
                })?;
                let roll = rand::random_range(0..100u32);
                let mut acc = 0;
                let chosen = alias
                    .routing
                    .iter()
                    .find(|r| {
                        acc += r.weight;
                        roll < acc
                    })
                    .or(alias.routing.first())
                    .map(|r| r.state_machine_version_arn.clone())
                    .ok_or_else(|| not_found("state machine alias", arn))?;
                let Qualified::Version { version, .. } = Qualified::parse(&chosen) else {
                    return Err(not_found("state machine version", &chosen));
                };
                let v = self.version_row(&machine, version).await?;
                Ok((
                    machine,
                    Some((v.revision, v.role_arn)),
                    Some(Qualifier {
                        version_arn: Some(chosen),
                        alias_arn: Some(arn.to_string()),
                    }),
                ))
            }
        }
    }

    /// The version and alias an execution was started through.
    pub async fn execution_qualifier(&self, execution_arn: &str) -> Result<Qualifier, EngineError> {
        let a = execution_arn.to_string();
        blocking(&self.rt.db, move |db| {
            let Some(row) = db.execution(&a)? else {
                return Ok(None);
            };
            db.qualifier(row.id)
        })
        .await
        .map(Option::unwrap_or_default)
    }

    /// The state machine as the execution runs it: the definition of its revision.
    pub async fn describe_state_machine_for_execution(
        &self,
        execution_arn: &str,
    ) -> Result<StateMachineInfo, EngineError> {
        let a = execution_arn.to_string();
        let found = blocking(&self.rt.db, move |db| {
            let Some(row) = db.execution(&a)? else {
                return Ok(None);
            };
            let machine = db.state_machine(&row.state_machine_arn)?;
            let definition = db.revision(row.revision)?;
            Ok(Some((row.revision, machine, definition)))
        })
        .await?;
        let Some((revision, Some(machine), definition)) = found else {
            return Err(EngineError::ExecutionDoesNotExist(format!(
                "Execution Does Not Exist: '{execution_arn}'"
            )));
        };
        let info = StateMachineInfo {
            definition: definition.unwrap_or_else(|| machine.definition.clone()),
            revision_id: revision_id(revision),
            ..machine_info(machine)
        };
        Ok(info)
    }

    async fn taggable(&self, arn: &str) -> Result<(), EngineError> {
        let a = arn.to_string();
        let exists = blocking(&self.rt.db, move |db| {
            Ok(match Qualified::parse(&a) {
                Qualified::Machine(m) if m.contains(":stateMachine:") => {
                    db.state_machine(&m)?.is_some_and(|r| !r.deleted)
                }
                Qualified::Machine(m) if m.contains(":activity:") => db.activity(&m)?.is_some(),
                _ => false,
            })
        })
        .await?;
        if exists {
            Ok(())
        } else {
            Err(not_found("resource", arn))
        }
    }

    /// Adds (or replaces) tags of a state machine or activity.
    pub async fn tag_resource(
        &self,
        arn: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), EngineError> {
        self.taggable(arn).await?;
        check_tags(&tags)?;
        let a = arn.to_string();
        let existing = blocking(&self.rt.db, move |db| db.tags(&a)).await?;
        let mut keys: std::collections::BTreeSet<&str> =
            existing.iter().map(|(k, _)| k.as_str()).collect();
        keys.extend(tags.iter().map(|(k, _)| k.as_str()));
        if keys.len() > MAX_TAGS {
            return Err(EngineError::TooManyTags(format!(
                "Too many tags: a resource may have at most {MAX_TAGS} ('{arn}')"
            )));
        }
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.tag(&a, &tags)).await
    }

    /// Removes tags of a state machine or activity by key.
    pub async fn untag_resource(&self, arn: &str, keys: Vec<String>) -> Result<(), EngineError> {
        self.taggable(arn).await?;
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.untag(&a, &keys)).await
    }

    /// The tags of a state machine or activity.
    pub async fn list_tags_for_resource(
        &self,
        arn: &str,
    ) -> Result<Vec<(String, String)>, EngineError> {
        self.taggable(arn).await?;
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.tags(&a)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_arns_name_a_version_or_an_alias() {
        let m = "arn:aws:states:us-east-1:1:stateMachine:sm";
        assert_eq!(Qualified::parse(m), Qualified::Machine(m.into()));
        assert_eq!(
            Qualified::parse(&format!("{m}:3")),
            Qualified::Version {
                machine: m.into(),
                version: 3
            }
        );
        assert_eq!(
            Qualified::parse(&format!("{m}:live")),
            Qualified::Alias { machine: m.into() }
        );
        assert_eq!(
            Qualified::parse(&format!("{m}:01")),
            Qualified::Alias { machine: m.into() },
            "versions are written without leading zeros"
        );
        assert_ne!(revision_id(1), revision_id(2));
    }
}
