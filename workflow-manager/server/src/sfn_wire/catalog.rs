//! The `/sfn` operations on versions, aliases and tags, and the state machine an execution
//! runs: `PublishStateMachineVersion`, `ListStateMachineVersions`,
//! `DeleteStateMachineVersion`, `Create/Describe/Update/List/DeleteStateMachineAlias`,
//! `TagResource`, `UntagResource`, `ListTagsForResource`, `DescribeStateMachineForExecution`,
//! and `ValidateStateMachineDefinition`.

use serde::Deserialize;
use serde_json::{json, Value};
use wfm_engine::catalog::Route;
use wfm_engine::Engine;

use super::{epoch, parse, with_token, WireError};
use crate::limits::MAX_DEFINITION_BYTES;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Publish {
    state_machine_arn: String,
    revision_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MachinePage {
    state_machine_arn: String,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionArn {
    state_machine_version_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAlias {
    name: String,
    description: Option<String>,
    routing_configuration: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AliasArn {
    state_machine_alias_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateAlias {
    state_machine_alias_arn: String,
    description: Option<String>,
    routing_configuration: Option<Vec<Route>>,
}

/// A tag as the API writes it.
#[derive(Deserialize)]
pub(super) struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

/// Tags as (key, value) pairs.
pub(super) fn pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResource {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResource {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceArn {
    resource_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Validate {
    definition: String,
    #[serde(rename = "type")]
    machine_type: Option<String>,
    max_results: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionArn {
    execution_arn: String,
}

fn alias_json(a: &wfm_engine::catalog::AliasInfo) -> Value {
    let mut v = json!({
        "stateMachineAliasArn": a.arn,
        "name": a.name,
        "routingConfiguration": a.routing,
        "creationDate": epoch(a.created),
        "updateDate": epoch(a.updated),
    });
    if let Some(d) = &a.description {
        v["description"] = json!(d);
    }
    v
}

/// Carries out `operation` if it is one of this module's (`None`: it is not).
pub(super) async fn handle(
    engine: &Engine,
    operation: &str,
    body: &[u8],
) -> Option<Result<Value, WireError>> {
    Some(match operation {
        "PublishStateMachineVersion" => publish(engine, body).await,
        "ListStateMachineVersions" => list_versions(engine, body).await,
        "DeleteStateMachineVersion" => {
            async {
                let r: VersionArn = parse(body)?;
                engine
                    .delete_state_machine_version(&r.state_machine_version_arn)
                    .await?;
                Ok(json!({}))
            }
            .await
        }
        "CreateStateMachineAlias" => {
            async {
                let r: CreateAlias = parse(body)?;
                let a = engine
                    .create_state_machine_alias(
                        &r.name,
                        r.description.as_deref(),
                        r.routing_configuration,
                    )
                    .await?;
                Ok(json!({"stateMachineAliasArn": a.arn, "creationDate": epoch(a.created)}))
            }
            .await
        }
        "DescribeStateMachineAlias" => {
            async {
                let r: AliasArn = parse(body)?;
                let a = engine
                    .describe_state_machine_alias(&r.state_machine_alias_arn)
                    .await?;
                Ok(alias_json(&a))
            }
            .await
        }
        "UpdateStateMachineAlias" => {
            async {
                let r: UpdateAlias = parse(body)?;
                let at = engine
                    .update_state_machine_alias(
                        &r.state_machine_alias_arn,
                        r.description.as_deref(),
                        r.routing_configuration,
                    )
                    .await?;
                Ok(json!({"updateDate": epoch(at)}))
            }
            .await
        }
        "ListStateMachineAliases" => {
            async {
                let r: MachinePage = parse(body)?;
                let (aliases, next) = engine
                    .list_state_machine_aliases(
                        &r.state_machine_arn,
                        r.max_results,
                        r.next_token.as_deref(),
                    )
                    .await?;
                let items: Vec<Value> = aliases
                .iter()
                .map(|a| json!({"stateMachineAliasArn": a.arn, "creationDate": epoch(a.created)}))
                .collect();
                Ok(with_token(json!({"stateMachineAliases": items}), next))
            }
            .await
        }
        "DeleteStateMachineAlias" => {
            async {
                let r: AliasArn = parse(body)?;
                engine
                    .delete_state_machine_alias(&r.state_machine_alias_arn)
                    .await?;
                Ok(json!({}))
            }
            .await
        }
        "TagResource" => {
            async {
                let r: TagResource = parse(body)?;
                engine.tag_resource(&r.resource_arn, pairs(r.tags)).await?;
                Ok(json!({}))
            }
            .await
        }
        "UntagResource" => {
            async {
                let r: UntagResource = parse(body)?;
                engine.untag_resource(&r.resource_arn, r.tag_keys).await?;
                Ok(json!({}))
            }
            .await
        }
        "ListTagsForResource" => {
            async {
                let r: ResourceArn = parse(body)?;
                let tags = engine.list_tags_for_resource(&r.resource_arn).await?;
                let items: Vec<Value> = tags
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect();
                Ok(json!({ "tags": items }))
            }
            .await
        }
        "DescribeStateMachineForExecution" => {
            async {
                let r: ExecutionArn = parse(body)?;
                let sm = engine
                    .describe_state_machine_for_execution(&r.execution_arn)
                    .await?;
                Ok(json!({
                    "stateMachineArn": sm.arn, "name": sm.name, "definition": sm.definition,
                    "roleArn": sm.role_arn, "updateDate": epoch(sm.created),
                    "revisionId": sm.revision_id,
                }))
            }
            .await
        }
        "ValidateStateMachineDefinition" => {
            async {
                let r: Validate = parse(body)?;
                // The service's 1 MiB definition limit, counted in characters as AWS does.
                if r.definition.chars().count() > MAX_DEFINITION_BYTES {
                    return Err(WireError::client(
                        "ValidationException",
                        format!(
                            "1 validation error detected: Value at 'definition' failed to satisfy \
                             constraint: Member must have length less than or equal to \
                             {MAX_DEFINITION_BYTES}"
                        ),
                    ));
                }
                let machine_type = r.machine_type.as_deref().unwrap_or("STANDARD");
                if machine_type != "STANDARD" && machine_type != "EXPRESS" {
                    return Err(WireError::client(
                        "ValidationException",
                        format!(
                            "1 validation error detected: Value '{machine_type}' at 'type' failed \
                             to satisfy constraint: Member must satisfy enum value set: \
                             [STANDARD, EXPRESS]"
                        ),
                    ));
                }
                let mut diagnostics =
                    engine.validate_state_machine_definition(&r.definition, machine_type);
                let limit = r.max_results.filter(|n| *n > 0).unwrap_or(100);
                let truncated = diagnostics.len() > limit;
                diagnostics.truncate(limit);
                let result = if diagnostics.is_empty() { "OK" } else { "FAIL" };
                Ok(json!({"result": result, "diagnostics": diagnostics, "truncated": truncated}))
            }
            .await
        }
        _ => return None,
    })
}

async fn publish(engine: &Engine, body: &[u8]) -> Result<Value, WireError> {
    let r: Publish = parse(body)?;
    let v = engine
        .publish_state_machine_version(
            &r.state_machine_arn,
            r.revision_id.as_deref(),
            r.description.as_deref(),
        )
        .await?;
    Ok(json!({"stateMachineVersionArn": v.arn, "creationDate": epoch(v.created)}))
}

async fn list_versions(engine: &Engine, body: &[u8]) -> Result<Value, WireError> {
    let r: MachinePage = parse(body)?;
    let (versions, next) = engine
        .list_state_machine_versions(&r.state_machine_arn, r.max_results, r.next_token.as_deref())
        .await?;
    let items: Vec<Value> = versions
        .iter()
        .map(|v| json!({"stateMachineVersionArn": v.arn, "creationDate": epoch(v.created)}))
        .collect();
    Ok(with_token(json!({"stateMachineVersions": items}), next))
}
