//! Loads the workflow definitions of a directory (`*.json`, `*.yaml`, `*.yml`; `workers.yaml`,
//! `functions.yaml` and `connections.yaml` are the local workers', local Lambda functions' and
//! HTTP connections' files, not definitions) into the store at start: a new name becomes
//! version 0, a changed definition the next version, an unchanged one is left alone.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wfm_core::model::NewWorkflowDefinitionRequest;
use wfm_core::{ManagerError, WorkflowManager};

/// A definition file that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// What happened to one definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A new definition (version 0).
    Created(String),
    /// A new version of an existing definition.
    Updated(String, i64),
    /// Same as the latest stored version.
    Unchanged(String),
}

/// Whether a file in the definitions directory is a definition.
fn is_definition_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    const NOT_DEFINITIONS: [&str; 3] = ["workers.", "functions.", "connections."];
    matches!(ext, "json" | "yaml" | "yml") && !NOT_DEFINITIONS.iter().any(|p| name.starts_with(p))
}

/// Reads a JSON or YAML file into a JSON value.
pub fn read_document(path: &Path) -> Result<Value, LoadError> {
    let err = |message: String| LoadError {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))
    } else {
        serde_yaml::from_str(&text).map_err(|e| err(format!("not valid YAML: {e}")))
    }
}

/// Loads every definition file of `dir`, in name order.
pub async fn load_definitions(
    manager: &WorkflowManager,
    dir: &Path,
) -> Result<Vec<Loaded>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_definition_file(p))
        .collect();
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let err = |message: String| LoadError {
            path: path.clone(),
            message,
        };
        let doc = read_document(&path)?;
        let req: NewWorkflowDefinitionRequest = serde_json::from_value(doc)
            .map_err(|e| err(format!("not a workflow definition: {e}")))?;
        let store = manager.store();
        let outcome = match store.latest_workflow_definition(&req.name).await {
            Ok(latest) => {
                let stored_machine =
                    serde_json::to_value(&latest.state_machine).map_err(|e| err(e.to_string()))?;
                let parsed = req
                    .state_machine
                    .as_ref()
                    .and_then(|v| wfm_asl::parse_definition_value(v).ok())
                    .and_then(|m| serde_json::to_value(m).ok());
                let same_tags = wfm_core::manager::string_tags(&req.default_tags, "defaultTags")
                    .map(|t| t == latest.default_tags)
                    .unwrap_or(false);
                if parsed.as_ref() == Some(&stored_machine) && same_tags {
                    Loaded::Unchanged(req.name.clone())
                } else {
                    let def = manager
                        .update_workflow_definition(&req.name, &req)
                        .await
                        .map_err(|e| err(e.to_string()))?;
                    Loaded::Updated(def.name, def.version)
                }
            }
            Err(wfm_core::StoreError::NotFound(_)) => {
                let def = manager
                    .new_workflow_definition(&req)
                    .await
                    .map_err(|e: ManagerError| err(e.to_string()))?;
                Loaded::Created(def.name)
            }
            Err(e) => return Err(err(e.to_string())),
        };
        tracing::info!(file = %path.display(), outcome = ?outcome, "definition loaded");
        loaded.push(outcome);
    }
    Ok(loaded)
}
