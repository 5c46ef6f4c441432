//! `stepup-operator`: parse the command line, install logging, run.

use clap::Parser;
use std::process::ExitCode;
use stepup_operator::{Cli, init_logging, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_format()) {
        eprintln!("stepup-operator: {e}");
        return ExitCode::FAILURE;
    }
    match run(cli, stepup_core::clock::now()).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %e, "stepup-operator failed");
            eprintln!("stepup-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
