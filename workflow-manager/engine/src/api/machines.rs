//! State machines (each definition kept as a revision, so a running execution keeps the one it
//! started with) and activities.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use wfm_asl::StateMachine;

use super::{check_name, decode_name_token, next_name_token, page_size};
use crate::error::EngineError;
use crate::machine::compiled::{Compiled, Pattern, Resource};
use crate::runtime::{blocking, MachineEntry};
use crate::store::StateMachineRow;
use crate::{ActivityInfo, Engine, StateMachineInfo};

pub(super) fn machine_info(r: StateMachineRow) -> StateMachineInfo {
    StateMachineInfo {
        arn: r.arn,
        name: r.name,
        definition: r.definition,
        role_arn: r.role_arn,
        machine_type: r.machine_type,
        created: r.created,
        revision_id: super::catalog::revision_id(r.revision),
    }
}

/// Parses, validates and prepares a definition.
pub(super) fn prepare(definition: &str) -> Result<(StateMachine, Arc<Compiled>), EngineError> {
    let machine = wfm_asl::parse_definition(definition)
        .and_then(|m| wfm_asl::validate(&m).map(|()| m))
        .map_err(|e| {
            EngineError::InvalidDefinition(format!("Invalid State Machine Definition: '{e}'"))
        })?;
    let compiled = Compiled::new(Arc::new(machine.clone())).map_err(|e| {
        EngineError::InvalidDefinition(format!("Invalid State Machine Definition: '{e}'"))
    })?;
    Ok((machine, Arc::new(compiled)))
}

/// The integration patterns of the optimized integrations Step Functions documents (a
/// service not listed here is not checked: it fails at run time if nothing runs it).
fn patterns_of(service: &str, action: &str) -> Option<&'static [Pattern]> {
    use Pattern::*;
    const RR_WAIT: &[Pattern] = &[RequestResponse, WaitForTaskToken];
    const ALL: &[Pattern] = &[RequestResponse, Sync, Sync2, WaitForTaskToken];
    Some(match (service, action) {
        ("lambda", "invoke") | ("sqs", "sendMessage") | ("sns", "publish") => RR_WAIT,
        ("events", "putEvents") => RR_WAIT,
        ("dynamodb", "getItem" | "putItem" | "updateItem" | "deleteItem") => &[RequestResponse],
        ("http", "invoke") => &[RequestResponse],
        ("states", "startExecution") => ALL,
        ("batch", "submitJob") | ("ecs", "runTask") | ("glue", "startJobRun") => {
            &[RequestResponse, Sync, WaitForTaskToken]
        }
        ("aws-sdk", _) => RR_WAIT,
        _ => return None,
    })
}

/// Task resources Step Functions refuses: an integration pattern the service does not have,
/// and in EXPRESS machines anything that waits (activities, `.sync`, `.waitForTaskToken`).
pub(super) fn check_tasks(
    machine: &StateMachine,
    path: &str,
    express: bool,
) -> Result<(), EngineError> {
    use wfm_asl::State;
    let invalid = |message: String| {
        EngineError::InvalidDefinition(format!(
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {message}'"
        ))
    };
    for (name, state) in &machine.states {
        let here = format!("{path}/States/{name}");
        match state {
            State::Task(t) => {
                let r = t.resource.as_deref().unwrap_or("");
                let parsed = Resource::parse(r);
                if let Resource::Service {
                    service,
                    action,
                    pattern,
                    ..
                } = &parsed
                {
                    let known = patterns_of(service, action);
                    let bad_suffix = action.contains('.') && service != "aws-sdk";
                    if bad_suffix || known.is_some_and(|p| !p.contains(pattern)) {
                        return Err(invalid(format!(
                            "The resource provided {r} is not recognized. The value is not a valid \
                             resource ARN, or the resource is not available in this region. at \
                             {here}/Resource"
                        )));
                    }
                }
                if !express {
                    continue;
                }
                let problem = match &parsed {
                    Resource::Activity(_) => Some("Activity ARN".to_string()),
                    Resource::Service { pattern, .. } => match pattern {
                        Pattern::RequestResponse => None,
                        Pattern::Sync => Some("'.sync' service integration ".into()),
                        Pattern::Sync2 => Some("'.sync:2' service integration ".into()),
                        Pattern::WaitForTaskToken => {
                            Some("'.waitForTaskToken' service integration ".into())
                        }
                    },
                    Resource::Other(_) => None,
                };
                if let Some(p) = problem {
                    return Err(invalid(format!(
                        "Express state machine does not support {p} at {here}/Resource"
                    )));
                }
            }
            State::Parallel(p) => {
                for (i, b) in p.branches.iter().flatten().enumerate() {
                    check_tasks(b, &format!("{here}/Branches[{i}]"), express)?;
                }
            }
            State::Map(m) => {
                if let Some(p) = m.processor() {
                    check_tasks(p, &format!("{here}/ItemProcessor"), express)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Engine {
    /// Creates a state machine; the same name with the same definition returns the existing one.
    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: &str,
        machine_type: &str,
    ) -> Result<StateMachineInfo, EngineError> {
        check_name(name, "state machine")?;
        let (machine, compiled) = prepare(definition)?;
        if machine_type != "STANDARD" && machine_type != "EXPRESS" {
            return Err(EngineError::Validation(format!(
                "invalid type '{machine_type}'"
            )));
        }
        check_tasks(&machine, "", machine_type == "EXPRESS")?;
        let arn = self.state_machine_arn(name);
        if let Some(existing) = self.rt.db.state_machine(&arn)? {
            let same: bool = serde_json::from_str::<Value>(&existing.definition).ok()
                == serde_json::from_str::<Value>(definition).ok()
                && existing.role_arn == role_arn;
            return if same {
                Ok(machine_info(existing))
            } else {
                Err(EngineError::StateMachineAlreadyExists(format!(
                    "State Machine Already Exists: '{arn}'"
                )))
            };
        }
        let row = StateMachineRow {
            arn: arn.clone(),
            name: name.to_string(),
            definition: definition.to_string(),
            role_arn: role_arn.to_string(),
            machine_type: machine_type.to_string(),
            created: self.rt.clock.now(),
            deleted: false,
            revision: 0,
        };
        let revision = self.rt.db.insert_state_machine(&row)?;
        self.rt.remember(revision, compiled);
        self.rt
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                arn,
                MachineEntry {
                    name: row.name.clone(),
                    role_arn: row.role_arn.clone(),
                    machine_type: row.machine_type.clone(),
                    revision,
                },
            );
        Ok(machine_info(StateMachineRow { revision, ..row }))
    }

    /// State machines by name, a page after `next_token`; returns the page and the next token.
    pub async fn list_state_machines(
        &self,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<StateMachineInfo>, Option<String>), EngineError> {
        let limit = page_size(max_results)?;
        let after = decode_name_token(next_token)?;
        let mut rows =
            blocking(&self.rt.db, move |db| db.state_machines(&after, limit + 1)).await?;
        let next = next_name_token(&mut rows, limit, |r| &r.name);
        Ok((rows.into_iter().map(machine_info).collect(), next))
    }

    /// Replaces a state machine's definition and/or role; running executions keep the old one.
    pub async fn update_state_machine(
        &self,
        arn: &str,
        definition: Option<&str>,
        role_arn: Option<&str>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let current = self.describe_state_machine(arn).await?;
        if definition.is_none() && role_arn.is_none() {
            return Err(EngineError::Validation(
                "either definition or roleArn must be given".into(),
            ));
        }
        let definition = definition.unwrap_or(&current.definition).to_string();
        let (machine, compiled) = prepare(&definition)?;
        check_tasks(&machine, "", current.machine_type == "EXPRESS")?;
        let now = self.rt.clock.now();
        let role = role_arn.unwrap_or(&current.role_arn).to_string();
        let (a, r) = (arn.to_string(), role.clone());
        let revision = blocking(&self.rt.db, move |db| {
            db.update_state_machine(&a, &definition, &r, now)
        })
        .await?;
        self.rt.remember(revision, compiled);
        if let Some(m) = self
            .rt
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(arn)
        {
            m.role_arn = role;
            m.revision = revision;
        }
        Ok(now)
    }

    /// Deletes a state machine; its running executions go on.
    pub async fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        self.describe_state_machine(arn).await?;
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.delete_state_machine(&a)).await
    }

    /// Describes a state machine.
    pub async fn describe_state_machine(&self, arn: &str) -> Result<StateMachineInfo, EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.state_machine(&a))
            .await?
            .filter(|r| !r.deleted)
            .map(machine_info)
            .ok_or_else(|| {
                EngineError::StateMachineDoesNotExist(format!(
                    "State Machine Does Not Exist: '{arn}'"
                ))
            })
    }

    /// Creates an activity (idempotent); returns its ARN and creation time.
    pub fn create_activity(&self, name: &str) -> Result<(String, DateTime<Utc>), EngineError> {
        check_name(name, "activity")?;
        let arn = self.activity_arn(name);
        let created = self
            .rt
            .db
            .ensure_activity(&arn, name, self.rt.clock.now())?;
        self.rt
            .known_activities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.clone());
        Ok((arn, created))
    }

    /// An activity's name and creation time.
    pub async fn describe_activity(
        &self,
        arn: &str,
    ) -> Result<(String, DateTime<Utc>), EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.activity(&a))
            .await?
            .ok_or_else(|| {
                EngineError::ActivityDoesNotExist(format!("Activity Does Not Exist: '{arn}'"))
            })
    }

    /// Activities by name, a page after `next_token`.
    pub async fn list_activities(
        &self,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ActivityInfo>, Option<String>), EngineError> {
        let limit = page_size(max_results)?;
        let after = decode_name_token(next_token)?;
        let mut rows = blocking(&self.rt.db, move |db| db.activities(&after, limit + 1)).await?;
        let next = next_name_token(&mut rows, limit, |r| &r.1);
        let activities = rows
            .into_iter()
            .map(|(arn, name, created)| ActivityInfo { arn, name, created })
            .collect();
        Ok((activities, next))
    }

    /// Deletes an activity.
    pub async fn delete_activity(&self, arn: &str) -> Result<(), EngineError> {
        let a = arn.to_string();
        blocking(&self.rt.db, move |db| db.delete_activity(&a)).await?;
        self.rt
            .known_activities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(arn);
        Ok(())
    }
}
