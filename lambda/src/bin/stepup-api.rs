//! `stepup-api`: the step-up API (`/initiate-auth`, `/respond-to-challenge`) on Lambda,
//! the sidecar's axum router served through `lambda_http`.

use stepup_lambda::{Config, build_api_state};
use stepup_runtime::logging::{LogOptions, init_logging_with};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging_with(LogOptions::lambda())?;
    let config = Config::from_env()?;
    let (state, _jwks_refresh) = build_api_state(&config).await?;
    lambda_http::run(stepup_core::api::router(state)).await
}
