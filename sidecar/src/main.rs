//! `stepup-sidecar`: parse and check the configuration, install logging and metrics, run.

use std::process::ExitCode;
use stepup_runtime::{exit, init_logging};
use stepup_sidecar::{Config, run, telemetry};

const BINARY: &str = "stepup-sidecar";

#[tokio::main]
async fn main() -> ExitCode {
    // Flags and `STEPUP_*` variables; an empty variable counts as unset.
    let config: Config = stepup_runtime::env::parse();
    if let Err(e) = config.validate() {
        return exit::usage(BINARY, &e);
    }
    let started = async {
        init_logging(config.log_format)?;
        run(config, Some(telemetry::install_metrics()?)).await
    };
    match started.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::failure(BINARY, &*e),
    }
}
