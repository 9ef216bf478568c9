//! Turning Step Functions history events into jobs: one job per state entered, followed
//! through its events by `previousEventId`, with attempts when a task is scheduled again after
//! failing. Written once for every backend, since all produce the same event shape.

use std::collections::HashMap;

use wfm_asl::{HistoryEvent, State};

use crate::conventions::is_short_resource;
use crate::model::{Job, JobAttempt, JobStatus, StateResource, StateResourceType, Workflow};

/// How many trailing lines of a cause a status reason keeps.
const REASON_LINES: usize = 3;

/// Reason given when the whole workflow timed out.
pub const REASON_WORKFLOW_TIMED_OUT: &str = "Workflow timed out";
/// Reason given when a job timed out.
pub const REASON_JOB_TIMED_OUT: &str = "Job timed out";

/// The last three non-empty lines of a cause.
pub fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .trim()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(REASON_LINES);
    lines[start..].join("\n")
}

fn reason(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

fn state_resource(
    workflow: &Workflow,
    state_name: &str,
    event: &HistoryEvent,
) -> Option<StateResource> {
    let state = find_state(&workflow.workflow_definition.state_machine, state_name)?;
    let State::Task(task) = state else {
        return None;
    };
    let resource = task.resource.clone().unwrap_or_default();
    let resource_type = if resource.starts_with("lambda:") {
        StateResourceType::LambdaFunctionARN
    } else if resource.starts_with("batch:") {
        StateResourceType::JobDefinitionARN
    } else if is_short_resource(&resource) || resource.contains(":activity:") {
        StateResourceType::ActivityARN
    } else {
        StateResourceType::TaskARN
    };
    let name = resource
        .split_once(':')
        .filter(|_| !resource.starts_with("arn:"))
        .map(|(_, n)| n.to_string())
        .unwrap_or(resource.clone());
    Some(StateResource {
        name,
        namespace: workflow.namespace.clone(),
        uri: String::new(),
        last_updated: event.timestamp,
        resource_type: Some(resource_type),
    })
}

/// Finds a state by name, in the machine or any nested branch or processor.
pub(crate) fn find_state<'a>(machine: &'a wfm_asl::StateMachine, name: &str) -> Option<&'a State> {
    if let Some(s) = machine.states.get(name) {
        return Some(s);
    }
    machine.states.values().find_map(|s| match s {
        State::Parallel(p) => p
            .branches
            .iter()
            .flatten()
            .find_map(|b| find_state(b, name)),
        State::Map(m) => m.processor().and_then(|p| find_state(p, name)),
        _ => None,
    })
}

/// Builds the jobs of `workflow` from its execution history (all pages, in order).
pub fn jobs_from_history(events: &[HistoryEvent], workflow: &Workflow) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of_event: HashMap<i64, usize> = HashMap::new();

    for event in events {
        let t = event.event_type.as_str();
        if let Some(kind) = t.strip_suffix("StateEntered") {
            let details = event
                .state_entered_event_details
                .clone()
                .unwrap_or_default();
            let is_task = kind == "Task";
            jobs.push(Job {
                id: event.id.to_string(),
                attempts: Vec::new(),
                container: String::new(),
                created_at: event.timestamp,
                started_at: if is_task { None } else { Some(event.timestamp) },
                stopped_at: None,
                input: details.input.unwrap_or_default(),
                output: String::new(),
                state_resource: state_resource(workflow, &details.name, event),
                state: details.name,
                status: if is_task {
                    JobStatus::Created
                } else {
                    JobStatus::Running
                },
                status_reason: String::new(),
            });
            job_of_event.insert(event.id, jobs.len() - 1);
            continue;
        }
        if matches!(
            t,
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
        ) {
            let Some(job) = jobs.last_mut() else { continue };
            let details = event.error_details().unwrap_or_default();
            let error = details.error.unwrap_or_default();
            let cause = details.cause.unwrap_or_default();
            match t {
                "ExecutionAborted" => {
                    if !matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
                        job.status = JobStatus::AbortedByUser;
                        job.status_reason = cause;
                    }
                }
                "ExecutionTimedOut" => {
                    job.status = JobStatus::Failed;
                    job.status_reason =
                        reason(&[REASON_WORKFLOW_TIMED_OUT, &error, &last_lines(&cause)]);
                }
                _ => {
                    if job.status != JobStatus::Failed {
                        job.status = JobStatus::Failed;
                        job.status_reason = reason(&[&last_lines(&cause), &error]);
                    }
                }
            }
            if job.stopped_at.is_none() {
                job.stopped_at = Some(event.timestamp);
            }
            continue;
        }
        let Some(&index) = job_of_event.get(&event.previous_event_id) else {
            continue;
        };
        job_of_event.insert(event.id, index);
        let job = &mut jobs[index];
        match t {
            "ActivityScheduled" | "TaskScheduled" | "LambdaFunctionScheduled" => {
                if job.status == JobStatus::Failed {
                    job.attempts.push(JobAttempt {
                        created_at: Some(job.created_at),
                        started_at: job.started_at,
                        stopped_at: job.stopped_at,
                        task_arn: job.container.clone(),
                        reason: job.status_reason.clone(),
                        ..JobAttempt::default()
                    });
                    job.created_at = event.timestamp;
                    job.started_at = None;
                    job.stopped_at = None;
                    job.status_reason.clear();
                    job.container.clear();
                }
                job.status = JobStatus::Queued;
            }
            "ActivityStarted" | "TaskStarted" | "LambdaFunctionStarted" => {
                job.status = JobStatus::Running;
                job.started_at = Some(event.timestamp);
                if let Some(worker) = event
                    .activity_started_event_details
                    .as_ref()
                    .and_then(|d| d.worker_name.clone())
                {
                    job.container = worker;
                }
            }
            "TaskSubmitted" => {
                // A Batch job (or other service work): the job's ARN, else its id.
                if let Some(out) = event
                    .task_submitted_event_details
                    .as_ref()
                    .and_then(|d| d.output.as_deref())
                    .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                {
                    // A Batch job's ARN (else its id), a nested execution's ARN.
                    if let Some(id) = out["JobArn"]
                        .as_str()
                        .or(out["JobId"].as_str())
                        .or(out["ExecutionArn"].as_str())
                    {
                        job.container = id.to_string();
                    }
                }
            }
            "ActivitySucceeded" | "TaskSucceeded" | "LambdaFunctionSucceeded" => {
                job.status = JobStatus::Succeeded;
            }
            "ActivityFailed"
            | "ActivityScheduleFailed"
            | "TaskFailed"
            | "TaskSubmitFailed"
            | "LambdaFunctionFailed" => {
                let d = event.error_details().unwrap_or_default();
                job.status = JobStatus::Failed;
                job.stopped_at = Some(event.timestamp);
                job.status_reason = reason(&[
                    &last_lines(d.cause.as_deref().unwrap_or("")),
                    d.error.as_deref().unwrap_or(""),
                ]);
            }
            "ActivityTimedOut" | "TaskTimedOut" | "LambdaFunctionTimedOut" => {
                let d = event.error_details().unwrap_or_default();
                job.status = JobStatus::Failed;
                job.stopped_at = Some(event.timestamp);
                job.status_reason = reason(&[
                    REASON_JOB_TIMED_OUT,
                    d.error.as_deref().unwrap_or(""),
                    &last_lines(d.cause.as_deref().unwrap_or("")),
                ]);
            }
            other if other.ends_with("StateExited") => {
                job.stopped_at = Some(event.timestamp);
                if let Some(out) = event
                    .state_exited_event_details
                    .as_ref()
                    .and_then(|d| d.output.clone())
                {
                    job.output = out;
                }
                if job.status != JobStatus::Failed {
                    job.status = JobStatus::Succeeded;
                }
            }
            _ => {}
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_three_lines() {
        assert_eq!(
            last_lines("line1\nline2\n\nline3\nline4\nline5\nline6\n"),
            "line4\nline5\nline6"
        );
        assert_eq!(last_lines("only"), "only");
    }
}
