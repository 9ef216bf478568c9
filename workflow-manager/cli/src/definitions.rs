//! `wfm definitions apply|list|show`.

use std::path::Path;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use wfm_client::{types, Client};

use crate::args::{ApplyArgs, JsonFlag, ShowDefinitionArgs};
use crate::input::{answer, body, name_version};
use crate::output::{time, Out};

/// A definition file: `name`, `stateMachine`, optional `defaultTags`.
struct DefinitionFile {
    name: String,
    state_machine: Value,
    default_tags: Value,
}

fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, DefinitionFile)>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            matches!(ext, "yaml" | "yml" | "json") && file != "workers.yaml"
        })
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let shown = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("?")
            .to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| anyhow!("{shown}: {e}"))?;
        let name = doc["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| anyhow!("{shown}: 'name' is required"))?
            .to_string();
        let state_machine = doc
            .get("stateMachine")
            .cloned()
            .ok_or_else(|| anyhow!("{shown}: 'stateMachine' is required"))?;
        let default_tags = doc.get("defaultTags").cloned().unwrap_or_else(|| json!({}));
        files.push((
            shown,
            DefinitionFile {
                name,
                state_machine,
                default_tags,
            },
        ));
    }
    Ok(files)
}

/// What a definition looks like once it went through the API's model, as pretty JSON: the
/// same normalisation for the stored and the local one, so only real changes show.
fn normalized(state_machine: &Value, default_tags: &Value) -> anyhow::Result<String> {
    let machine: types::SlStateMachine =
        serde_json::from_value(state_machine.clone()).map_err(|e| anyhow!("stateMachine: {e}"))?;
    let both = json!({"stateMachine": machine, "defaultTags": default_tags});
    Ok(serde_json::to_string_pretty(&sorted(both))?)
}

/// `v` with every object's keys sorted.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn print_diff(out: &Out, old: &str, new: &str) {
    use anstyle::AnsiColor;
    let diff = similar::TextDiff::from_lines(old, new);
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        out.data(&out.styled(
            anstyle::Style::new().fg_color(Some(AnsiColor::Cyan.into())),
            hunk.header().to_string().trim_end(),
        ));
        for change in hunk.iter_changes() {
            let (sign, color) = match change.tag() {
                similar::ChangeTag::Delete => ("-", Some(AnsiColor::Red)),
                similar::ChangeTag::Insert => ("+", Some(AnsiColor::Green)),
                similar::ChangeTag::Equal => (" ", None),
            };
            let text = format!("{sign}{}", change.value().trim_end_matches('\n'));
            out.data(&out.styled(anstyle::Style::new().fg_color(color.map(Into::into)), &text));
        }
    }
}

/// `definitions apply DIR`.
pub async fn apply(client: &Client, out: &Out, args: ApplyArgs) -> anyhow::Result<u8> {
    let files = read_dir(&args.dir)?;
    if files.is_empty() {
        anyhow::bail!(
            "{}: no definition files (.yaml, .yml, .json)",
            args.dir.display()
        );
    }
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for (file, def) in files {
        let local =
            normalized(&def.state_machine, &def.default_tags).with_context(|| file.clone())?;
        let request: types::NewWorkflowDefinitionRequest = body(json!({
            "name": def.name, "stateMachine": def.state_machine, "defaultTags": def.default_tags,
        }))?;
        let stored = match client
            .get_workflow_definition_versions_by_name()
            .name(&def.name)
            .latest(true)
            .send()
            .await
        {
            Ok(v) => v.into_inner().into_iter().next(),
            Err(wfm_client::Error::ErrorResponse(e)) if e.status().as_u16() == 404 => None,
            Err(e) => return answer::<()>(Err(e)).map(|_| 1),
        };
        match stored {
            None => {
                if args.dry_run {
                    out.data(&format!(
                        "would create {} (version 0) from {file}",
                        def.name
                    ));
                } else {
                    let made = answer(
                        client
                            .new_workflow_definition()
                            .body(request.clone())
                            .send()
                            .await,
                    )
                    .with_context(|| format!("creating {} from {file}", def.name))?;
                    out.data(&format!(
                        "created {} version {}",
                        def.name,
                        made.version.unwrap_or(0)
                    ));
                }
                created += 1;
            }
            Some(current) => {
                let current_json = serde_json::to_value(&current.state_machine)?;
                let current_tags = serde_json::to_value(&current.default_tags)?;
                let remote = normalized(&current_json, &current_tags)?;
                let version = current.version.unwrap_or(0);
                if remote == local {
                    out.data(&format!("unchanged {} version {version}", def.name));
                    unchanged += 1;
                    continue;
                }
                out.data(&format!(
                    "{} {} version {version} -> {} ({file})",
                    if args.dry_run {
                        "would update"
                    } else {
                        "updating"
                    },
                    def.name,
                    version + 1
                ));
                print_diff(out, &remote, &local);
                if !args.dry_run {
                    let made = answer(
                        client
                            .update_workflow_definition()
                            .name(&def.name)
                            .body(request.clone())
                            .send()
                            .await,
                    )
                    .with_context(|| format!("updating {} from {file}", def.name))?;
                    out.data(&format!(
                        "updated {} version {}",
                        def.name,
                        made.version.unwrap_or(0)
                    ));
                }
                updated += 1;
            }
        }
    }
    if args.dry_run {
        out.message(&format!(
            "dry run: {created} to create, {updated} to update, {unchanged} unchanged"
        ));
    } else {
        out.message(&format!(
            "{created} created, {updated} updated, {unchanged} unchanged"
        ));
    }
    Ok(0)
}

/// `definitions list`.
pub async fn list(client: &Client, out: &Out, args: JsonFlag) -> anyhow::Result<u8> {
    let mut defs = answer(client.get_workflow_definitions().send().await)?;
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        out.json(&serde_json::to_value(&defs)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = defs
        .iter()
        .map(|d| {
            let states = d
                .state_machine
                .as_ref()
                .map(|m| m.states.len())
                .unwrap_or(0);
            vec![
                d.name.clone().unwrap_or_default(),
                d.version.unwrap_or(0).to_string(),
                states.to_string(),
                time(d.created_at),
            ]
        })
        .collect();
    out.table(&["NAME", "VERSION", "STATES", "CREATED"], &rows, None);
    Ok(0)
}

/// `definitions show NAME[:VERSION]`: the definition as JSON.
pub async fn show(client: &Client, out: &Out, args: ShowDefinitionArgs) -> anyhow::Result<u8> {
    let (name, version) = name_version(&args.name)?;
    let def = match version {
        Some(v) => answer(
            client
                .get_workflow_definition_by_name_and_version()
                .name(&name)
                .version(v)
                .send()
                .await,
        )?,
        None => answer(
            client
                .get_workflow_definition_versions_by_name()
                .name(&name)
                .latest(true)
                .send()
                .await,
        )?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no definition named {name}"))?,
    };
    out.json(&serde_json::to_value(&def)?);
    Ok(0)
}
