//! `stepup-operator`: parse the command line, install logging, run.

use std::process::ExitCode;
use stepup_operator::{Cli, run};
use stepup_runtime::init_logging;

#[tokio::main]
async fn main() -> ExitCode {
    // Flags and variables; an empty variable counts as unset.
    let cli: Cli = stepup_runtime::env::parse();
    if let Err(e) = init_logging(cli.log_format()) {
        return stepup_runtime::exit::failure("stepup-operator", &e);
    }
    let one_shot = cli.is_one_shot();
    match run(cli, stepup_core::clock::now()).await {
        Ok(code) => code,
        Err(e) => {
            // One line for a person (the full chain only at debug); a log record for the
            // controller's collector.
            tracing::debug!(error = ?e, "stepup-operator failed");
            if one_shot {
                eprintln!("stepup-operator: {e}");
            } else {
                tracing::error!(error = %e, "stepup-operator failed");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
