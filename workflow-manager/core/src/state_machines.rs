//! The state machine a workflow definition runs on in a namespace: its definition expanded
//! for execution (activities, Batch job definitions, and `workflow:` children, whose own
//! state machines are made first, recursively; a definition that starts itself, directly or
//! not, names its own state machine), created if it does not exist.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::conventions::{
    batch_resources, expand_for_execution, state_machine_name, workflow_resource,
    workflow_resources,
};
use crate::manager::{state_machine_tags, ManagerError, WorkflowManager};
use crate::model::WorkflowDefinition;
use crate::store::StoreError;

impl WorkflowManager {
    /// The definition a `workflow:NAME[:VERSION]` resource starts.
    pub(crate) async fn child_definition(
        &self,
        resource: &str,
    ) -> Result<WorkflowDefinition, ManagerError> {
        let Some((name, version)) = workflow_resource(resource) else {
            return Err(ManagerError::BadRequest(format!(
                "{resource} is not a workflow: resource"
            )));
        };
        let found = match version {
            Some(v) => self.store.get_workflow_definition(name, v).await,
            None => self.store.latest_workflow_definition(name).await,
        };
        match found {
            Ok(d) => Ok(d),
            Err(StoreError::NotFound(_)) => Err(ManagerError::BadRequest(format!(
                "{resource} starts the workflow definition {name}{}, which does not exist",
                version.map(|v| format!(" version {v}")).unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The ARN of the state machine `definition` runs on in `namespace`, created (with those of
    /// its children) if needed. `visiting` holds the state machines being made above it.
    pub(crate) fn state_machine_for<'a>(
        &'a self,
        definition: &'a WorkflowDefinition,
        namespace: &'a str,
        visiting: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<String, ManagerError>> {
        Box::pin(async move {
            let sm_name = state_machine_name(
                &definition.name,
                definition.version,
                namespace,
                &definition.state_machine.start_at,
            );
            if visiting.contains(&sm_name) {
                return Ok(self.sfn.state_machine_arn(&sm_name));
            }
            visiting.push(sm_name.clone());
            let mut job_definitions = BTreeMap::new();
            for name in batch_resources(&definition.state_machine) {
                match self.store.get_state_resource(namespace, &name).await {
                    Ok(r) => {
                        job_definitions.insert(name, r.uri);
                    }
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut children = BTreeMap::new();
            for resource in workflow_resources(&definition.state_machine) {
                let child = self.child_definition(&resource).await?;
                let arn = self.state_machine_for(&child, namespace, visiting).await?;
                children.insert(resource, arn);
            }
            let sfn = self.sfn.clone();
            let activity_arn = move |name: &str| sfn.activity_arn(name);
            let expanded = expand_for_execution(
                &definition.state_machine,
                namespace,
                &activity_arn,
                &job_definitions,
                &children,
            )
            .map_err(ManagerError::BadRequest)?;
            let arn = self
                .sfn
                .ensure_state_machine(
                    &sm_name,
                    &expanded,
                    &state_machine_tags(definition, namespace),
                )
                .await?;
            visiting.pop();
            Ok(arn)
        })
    }
}
