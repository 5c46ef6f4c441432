//! `stepup-api`: the step-up API (`/initiate-auth`, `/respond-to-challenge`) on Lambda,
//! the sidecar's axum router served through `lambda_http`.

use std::process::ExitCode;
use stepup_lambda::{Config, build_api_state, exit};
use stepup_runtime::logging::{LogOptions, init_logging_with};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = init_logging_with(LogOptions::lambda()) {
        return exit::failure(&e);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return exit::usage(&e),
    };
    let (state, _jwks_refresh) = match build_api_state(&config).await {
        Ok(s) => s,
        Err(e) => return exit::failure(&*e),
    };
    match lambda_http::run(stepup_core::api::router(state)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::failure(&*e),
    }
}
