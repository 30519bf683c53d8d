//! `kubectl-tenant`: the kubectl plugin for Landlord's tenants (`kubectl tenant ...`).
//!
//! Each module is one command or one concern; the pure parts (tables, summaries, the apply
//! document, the state a command may set, whether `--wait` is done) are unit-tested, and
//! `tests/plugin.rs` runs the binary against kube-test.

mod cli;
mod cluster;
mod complete;
mod delete;
mod describe;
mod document;
mod edit;
mod failure;
mod follow;
mod format;
mod life;
mod list;
mod plans;
mod progress;
mod stats;
mod transition;
mod usage;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, ObjectOutput};
use failure::Failure;
use transition::Action;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // kubectl's plugin completion (through kubectl_complete-tenant), before clap sees it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("__complete", words)) = args.split_first().map(|(a, w)| (a.as_str(), w)) {
        complete::run(&Cli::command(), words).await;
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {f}");
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "kubectl-tenant",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let client = cluster::client(cli.kubeconfig.as_deref(), cli.context.as_deref()).await?;
    let c = &client;
    match &cli.command {
        Command::List { output, selector } => list::run(c, *output, selector.as_deref()).await,
        Command::Get { name, output } => get(c, name, *output).await,
        Command::Plans { output } => plans::run(c, *output).await,
        Command::Create(args) => edit::create(c, args).await,
        Command::Update(args) => edit::update(c, args).await,
        Command::Delete(args) => delete::run(c, args).await,
        Command::Suspend(args) => life::set_state(c, Action::Suspend, args).await,
        Command::Resume(args) => life::set_state(c, Action::Resume, args).await,
        Command::Hibernate(args) => life::set_state(c, Action::Hibernate, args).await,
        Command::Wake(args) => life::set_state(c, Action::Wake, args).await,
        Command::Archive(args) => life::set_state(c, Action::Archive, args).await,
        Command::Restore(args) => life::set_state(c, Action::Restore, args).await,
        Command::Migrate(args) => life::migrate(c, args).await,
        Command::Usage {
            name,
            period,
            output,
        } => usage::run(c, name, period.as_deref(), *output).await,
        Command::Stats { name } => stats::run(c, name).await,
        Command::Completion { .. } => unreachable!("handled before connecting"),
    }
}

async fn get(
    client: &kube::Client,
    name: &str,
    output: Option<ObjectOutput>,
) -> Result<(), Failure> {
    let fetched = cluster::tenant(client, name).await?;
    let text = match output {
        None => describe::describe(
            &fetched.tenant,
            fetched.migration_error(),
            jiff::Timestamp::now(),
        ),
        Some(ObjectOutput::Name) => format!("{}\n", format::tenant_ref(name)),
        Some(o) => cluster::render(&cluster::printable(&fetched.raw), o == ObjectOutput::Yaml)?,
    };
    print!("{text}");
    Ok(())
}
