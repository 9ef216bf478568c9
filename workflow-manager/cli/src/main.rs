//! `wfm`: the workflow-manager command line. Every call goes through the client generated from
//! `api-spec/openapi.yaml` (`wfm-client`). Data goes to stdout, messages to stderr; colours and
//! live progress only on a terminal; a non-zero exit on any failure (and, for `workflows
//! follow`, one per outcome).

mod args;
mod definitions;
mod follow;
mod input;
mod output;
mod resources;
mod workflows;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, DefinitionsCommand, ResourcesCommand, WorkflowsCommand};
use output::Out;

/// Exit codes besides 0: a failed call, and the outcomes `follow` reports.
pub mod exit {
    /// A request failed, or the input was wrong.
    pub const ERROR: u8 = 1;
    /// The followed workflow failed.
    pub const FAILED: u8 = 3;
    /// The followed workflow was cancelled.
    pub const CANCELLED: u8 = 4;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.color);
    let client = match cli.client() {
        Ok(c) => c,
        Err(e) => {
            out.error(&format!("{e:#}"));
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = match cli.command {
        Command::Definitions(DefinitionsCommand::Apply(a)) => {
            definitions::apply(&client, &out, a).await
        }
        Command::Definitions(DefinitionsCommand::List(a)) => {
            definitions::list(&client, &out, a).await
        }
        Command::Definitions(DefinitionsCommand::Show(a)) => {
            definitions::show(&client, &out, a).await
        }
        Command::Start(a) => workflows::start(&client, &out, a).await,
        Command::Workflows(WorkflowsCommand::List(a)) => workflows::list(&client, &out, a).await,
        Command::Workflows(WorkflowsCommand::Show(a)) => workflows::show(&client, &out, a).await,
        Command::Workflows(WorkflowsCommand::Follow(a)) => follow::follow(&client, &out, a).await,
        Command::Cancel(a) => workflows::cancel(&client, &out, a).await,
        Command::Resume(a) => workflows::resume(&client, &out, a).await,
        Command::Resolve(a) => workflows::resolve(&client, &out, a).await,
        Command::Resources(ResourcesCommand::Put(a)) => resources::put(&client, &out, a).await,
        Command::Resources(ResourcesCommand::Get(a)) => resources::get(&client, &out, a).await,
        Command::Resources(ResourcesCommand::Delete(a)) => {
            resources::delete(&client, &out, a).await
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            out.error(&format!("{e:#}"));
            ExitCode::from(exit::ERROR)
        }
    }
}
