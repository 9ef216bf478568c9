//! Child workflows: a `workflow:NAME` Task of a workflow starts an execution of the child
//! definition's state machine (see [`crate::conventions`]); the sync learns each child from
//! the parent's history (the execution ARN its Task submitted) and records it as a workflow of
//! its own, linked both ways (`parentWorkflowId`, `childWorkflowIds`), on every backend.

use crate::conventions::{state_machine_name, workflow_resource};
use crate::manager::{queued_workflow, ManagerError, WorkflowManager};
use crate::model::{Workflow, WorkflowDefinition, WorkflowStatus};
use crate::store::StoreError;
use wfm_asl::State;

impl WorkflowManager {
    /// Records the children the `workflow:` Tasks of `wf` started (a job of such a state whose
    /// work is an execution), creating each child's record the first time it is seen.
    pub(crate) async fn adopt_children(&self, wf: &mut Workflow) -> Result<(), ManagerError> {
        let mut found: Vec<(String, String, String)> = Vec::new();
        for job in &wf.jobs {
            let resource =
                match crate::jobs::find_state(&wf.workflow_definition.state_machine, &job.state) {
                    Some(State::Task(t)) => t.resource.clone().unwrap_or_default(),
                    _ => continue,
                };
            if workflow_resource(&resource).is_none() {
                continue;
            }
            let executions = std::iter::once(job.container.as_str())
                .chain(job.attempts.iter().map(|a| a.task_arn.as_str()))
                .filter(|a| a.contains(":execution:"));
            for arn in executions {
                let id = arn.rsplit(':').next().unwrap_or_default().to_string();
                if !id.is_empty()
                    && !wf.child_workflow_ids.contains(&id)
                    && !found.iter().any(|(_, _, i)| *i == id)
                {
                    found.push((resource.clone(), arn.to_string(), id));
                }
            }
        }
        for (resource, arn, id) in found {
            // A child that cannot be recorded now is tried again at the next sync; the
            // parent's own sync goes on.
            match self.register_child(wf, &resource, &arn, &id).await {
                Ok(()) => wf.child_workflow_ids.push(id),
                Err(e) => {
                    tracing::warn!(workflow_id = %wf.id, child = %id, error = %e, "cannot record a child workflow yet")
                }
            }
        }
        Ok(())
    }

    /// The version of the child definition an execution runs: the one whose state machine
    /// name is the one in the execution's ARN (`workflow:NAME` means the latest version when
    /// the parent's state machine was made, which may not be the latest now).
    async fn child_definition_of(
        &self,
        resource: &str,
        execution_arn: &str,
        namespace: &str,
    ) -> Result<WorkflowDefinition, ManagerError> {
        let Some((name, None)) = workflow_resource(resource) else {
            return self.child_definition(resource).await;
        };
        let machine = execution_arn
            .rsplit_once(':')
            .and_then(|(rest, _)| rest.rsplit_once(':'))
            .map(|(_, m)| m)
            .unwrap_or_default();
        let versions = self.store.workflow_definition_versions(name).await?;
        versions
            .into_iter()
            .find(|d| {
                state_machine_name(&d.name, d.version, namespace, &d.state_machine.start_at)
                    == machine
            })
            .ok_or_else(|| {
                ManagerError::BadRequest(format!(
                    "no version of {name} runs on the state machine of {execution_arn}"
                ))
            })
    }

    async fn register_child(
        &self,
        parent: &Workflow,
        resource: &str,
        execution_arn: &str,
        id: &str,
    ) -> Result<(), ManagerError> {
        match self.store.get_workflow(id).await {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let definition = self
            .child_definition_of(resource, execution_arn, &parent.namespace)
            .await?;
        let input = self
            .sfn
            .describe_execution(execution_arn)
            .await
            .ok()
            .and_then(|d| d.input)
            .unwrap_or_else(|| "{}".into());
        let mut child = queued_workflow(
            id.to_string(),
            definition,
            &parent.namespace,
            &parent.queue,
            input,
            parent.tags.clone(),
            None,
        );
        child.status = WorkflowStatus::Running;
        child.parent_workflow_id = Some(parent.id.clone());
        match self.store.save_workflow(&child).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
