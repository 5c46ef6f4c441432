//! `stepup-api`: the step-up API (`/initiate-auth`, `/respond-to-challenge`) on Lambda,
//! the sidecar's axum router served through `lambda_http`.

use std::process::ExitCode;
use stepup_lambda::{Config, build_api_state};
use stepup_runtime::exit;
use stepup_runtime::logging::{LogOptions, init_logging_with};

const BINARY: &str = "stepup-api";

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = init_logging_with(LogOptions::lambda()) {
        return exit::failure(BINARY, &e);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return exit::usage(BINARY, &e),
    };
    let (state, _jwks_refresh) = match build_api_state(&config).await {
        Ok(s) => s,
        Err(e) => return exit::failure(BINARY, &*e),
    };
    match lambda_http::run(stepup_core::api::router(state)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::failure(BINARY, &*e),
    }
}
