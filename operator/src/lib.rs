//! # stepup-operator
//!
//! Puts `StepUpPolicy` rules into the stepup setting table. Subcommands:
//!
//! - `crd`: prints the CustomResourceDefinition (`crds/stepuppolicies.yaml` is its output);
//! - `sync -f <dir|file>`: reads manifests and makes the table say what they say, without
//!   a cluster ([`sync`]);
//! - `run [--leader-elect]`: the controller, reconciling the policies of a cluster
//!   ([`controller`], [`leader`], wired by [`run`]; logging, metrics, the admin listener
//!   and the shutdown signal are [`stepup_runtime`]'s).
//!
//! What the table should hold is computed by the pure [`stepup_core::crd::plan`]; this
//! crate reads, prints and applies it.

pub mod controller;
pub mod leader;
pub mod run;
pub mod sync;
pub mod time;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use stepup_core::clock::UnixSeconds;
use stepup_runtime::LogFormat;

/// A failure of the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest cannot be used.
    #[error(transparent)]
    Manifest(#[from] stepup_core::crd::ManifestError),
    /// The setting table cannot be read or written.
    #[error("setting table `{table}`: {source}")]
    Store {
        /// the table
        table: String,
        /// the store's error
        source: stepup_core::store::StoreError,
    },
    /// The CRD cannot be rendered.
    #[error("rendering the CRD: {0}")]
    Crd(#[from] serde_yaml::Error),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer helper failed (adding or removing the finalizer, or the reconcile
    /// step it wraps).
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The controller cannot start or stopped (configuration, leadership lost).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Manifest(_) => "manifest",
            Error::Store { source, .. } => source.metric_label(),
            Error::Crd(_) => "crd",
            Error::Output(_) => "output",
            Error::Kube(_) => "kube",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.metric_label(),
                _ => "finalizer",
            },
            Error::Runtime(_) => "runtime",
        }
    }
}

/// The operator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status of `sync` when some policy is malformed or conflicting (the others were
/// applied). 1 is a failure to run at all, 2 a usage error (clap).
pub const EXIT_POLICY_PROBLEMS: u8 = 3;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "stepup-operator",
    version,
    about = "StepUpPolicy operator for stepup"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the StepUpPolicy CustomResourceDefinition (YAML).
    Crd,
    /// Make the setting table hold exactly the rules of the given manifests.
    Sync(sync::SyncArgs),
    /// Run the controller: reconcile the StepUpPolicy objects of the cluster.
    Run(run::RunArgs),
}

impl Cli {
    /// The log format the command asks for (`run` reads `STEPUP_LOG_FORMAT`; the one-shot
    /// commands log text).
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Run(args) => args.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// Runs a parsed command line at `now` (Unix seconds), printing to stdout.
pub async fn run(cli: Cli, now: UnixSeconds) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Crd => {
            use std::io::Write;
            stdout.write_all(stepup_core::crd::crd_yaml()?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync(args) => {
            let report = sync::run(&args, now, &mut stdout).await?;
            Ok(if report.plan.has_problems() {
                ExitCode::from(EXIT_POLICY_PROBLEMS)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run(args) => {
            drop(stdout);
            run::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
