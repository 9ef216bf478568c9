//! `wfm workflows follow ID`: watches a workflow until it ends. On a terminal it redraws a live
//! table of its states (waiting, running, succeeded, failed, with timings); piped, it prints a
//! line as each state finishes, so logs read in order. The exit code tells the outcome.

use std::collections::HashSet;
use std::time::Duration;

use wfm_client::{types, Client};

use crate::args::FollowArgs;
use crate::exit;
use crate::output::{duration, Out};
use crate::workflows::{fetch, job_row};

fn is_finished(job: &types::Job) -> bool {
    matches!(
        job.status,
        Some(types::JobStatus::Succeeded)
            | Some(types::JobStatus::Failed)
            | Some(types::JobStatus::AbortedByUser)
            | Some(types::JobStatus::AbortedDepsFailed)
    )
}

fn is_terminal(status: Option<types::WorkflowStatus>) -> bool {
    matches!(
        status,
        Some(types::WorkflowStatus::Succeeded)
            | Some(types::WorkflowStatus::Failed)
            | Some(types::WorkflowStatus::Cancelled)
    )
}

/// `workflows follow ID`.
pub async fn follow(client: &Client, out: &Out, args: FollowArgs) -> anyhow::Result<u8> {
    let live = out.is_terminal();
    let mut reported: HashSet<String> = HashSet::new();
    let mut drawn_lines = 0usize;
    loop {
        let wf = fetch(client, &args.id).await?;
        let status = wf
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let elapsed = wf
            .created_at
            .map(|c| duration(wf.stopped_at.unwrap_or_else(chrono::Utc::now) - c))
            .unwrap_or_default();
        if live {
            if drawn_lines > 0 {
                // Back to the top of the last drawing, and clear it.
                print!("\x1b[{drawn_lines}A\x1b[J");
            }
            out.data(&format!("{}  {}  {elapsed}", args.id, out.status(&status)));
            let mut rows: Vec<Vec<String>> = wf.jobs.iter().map(job_row).collect();
            if rows.is_empty() {
                rows.push(vec![
                    "(waiting)".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            out.table(
                &["STATE", "STATUS", "ATTEMPTS", "STARTED", "TOOK"],
                &rows,
                Some(1),
            );
            drawn_lines = rows.len() + 2;
        } else {
            for (i, job) in wf.jobs.iter().enumerate() {
                let key = job.id.clone().unwrap_or_else(|| i.to_string());
                if is_finished(job) && reported.insert(key) {
                    let row = job_row(job);
                    out.data(&format!(
                        "{} {} (took {})",
                        row[0],
                        out.status(&row[1]),
                        if row[4].is_empty() { "-" } else { &row[4] }
                    ));
                }
            }
        }
        if is_terminal(wf.status) {
            if !live {
                out.data(&format!(
                    "workflow {} {} after {elapsed}",
                    args.id,
                    out.status(&status)
                ));
            }
            if let Some(reason) = wf.status_reason.as_deref().filter(|r| !r.is_empty()) {
                out.message(reason);
            }
            return Ok(match wf.status {
                Some(types::WorkflowStatus::Succeeded) => 0,
                Some(types::WorkflowStatus::Cancelled) => exit::CANCELLED,
                _ => exit::FAILED,
            });
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms.max(50))).await;
    }
}
