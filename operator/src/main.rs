//! `stepup-operator`: parse the command line, install logging, run.

use std::process::ExitCode;
use stepup_operator::{Cli, run};
use stepup_runtime::init_logging;

#[tokio::main]
async fn main() -> ExitCode {
    // Flags and variables; an empty variable counts as unset.
    let cli: Cli = stepup_runtime::env::parse();
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
