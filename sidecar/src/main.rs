//! `stepup-sidecar`: parse and check the configuration, install logging and metrics, run.

use std::process::ExitCode;
use stepup_runtime::init_logging;
use stepup_sidecar::{Config, run, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // Flags and `STEPUP_*` variables; an empty variable counts as unset.
    let config: Config = stepup_runtime::env::parse();
    if let Err(e) = config.validate() {
        eprintln!("stepup-sidecar: {e}");
        return ExitCode::from(2);
    }
    let started = async {
        init_logging(config.log_format)?;
        run(config, Some(telemetry::install_metrics()?)).await
    };
    match started.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stepup-sidecar failed");
            eprintln!("stepup-sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}
