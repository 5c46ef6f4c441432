//! `stepup-operator`: parse the command line, install logging, run.

use clap::Parser;
use std::process::ExitCode;
use stepup_operator::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse(), stepup_core::clock::now()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stepup-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
