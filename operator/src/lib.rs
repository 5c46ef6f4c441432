//! # stepup-operator
//!
//! Puts `StepUpPolicy` rules into the stepup setting table. Subcommands:
//!
//! - `crd`: prints the CustomResourceDefinition (`crds/stepuppolicies.yaml` is its output);
//! - `validate -f <dir|file>`: checks manifests offline as the API server would
//!   ([`validate`]);
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
pub mod validate;

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
    /// The setting table cannot be read or written. An AWS failure names the table itself
    /// ([`stepup_core::aws_error::AwsError`]); other store errors are prefixed with it.
    #[error("{}", store_message(table, source))]
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
    /// A setting that cannot work (a usage error: exit 2).
    #[error(transparent)]
    Usage(#[from] stepup_runtime::Error),
}

fn store_message(table: &str, source: &stepup_core::store::StoreError) -> String {
    match source {
        stepup_core::store::StoreError::Aws(e) => e.to_string(),
        other => format!("setting table `{table}`: {other}"),
    }
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
            Error::Usage(_) => "usage",
        }
    }

    /// The exit status for this failure: [`EXIT_USAGE`] for a setting that cannot work,
    /// [`EXIT_FAILURE`] for everything that failed while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// The operator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status of a failure while running (AWS, the Kubernetes API, a file that cannot
/// be read), and of a usage error (an unknown flag, clap's own status, or a setting that
/// cannot work): the statuses every stepup binary uses.
pub use stepup_runtime::exit::{FAILURE as EXIT_FAILURE, USAGE as EXIT_USAGE};
/// Exit status of `validate` when some manifest has a problem, and of `sync` when some
/// policy is malformed or conflicting (the others were applied) or some document cannot
/// be read as a policy (nothing was applied).
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
    /// Check StepUpPolicy manifests offline, as the API server would (no cluster, no AWS).
    Validate(validate::ValidateArgs),
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

    /// A command a person runs at a terminal (not the controller): its failure is one line
    /// on stderr rather than a log record.
    pub fn is_one_shot(&self) -> bool {
        !matches!(self.command, Command::Run(_))
    }
}

fn status(problems: bool) -> ExitCode {
    if problems {
        ExitCode::from(EXIT_POLICY_PROBLEMS)
    } else {
        ExitCode::SUCCESS
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
        Command::Validate(args) => {
            let report = validate::run(&args, &mut stdout)?;
            Ok(status(!report.is_valid()))
        }
        Command::Sync(args) => {
            args.dynamo.validate()?;
            let report = sync::run(&args, now, &mut stdout).await?;
            if let Some(e) = &report.table_unreadable {
                eprintln!("stepup-operator: {e}; planned against an empty table");
            }
            Ok(status(report.has_problems()))
        }
        Command::Run(args) => {
            drop(stdout);
            run::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
