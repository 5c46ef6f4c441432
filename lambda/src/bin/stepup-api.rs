//! `stepup-api`: the step-up API (`/initiate-auth`, `/respond-to-challenge`) on Lambda,
//! the sidecar's axum router served through `lambda_http`.

use stepup_lambda::{Config, build_api_state, init_logging};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    let config = Config::from_env()?;
    let (mut state, _jwks_refresh) = build_api_state(&config).await?;
    if let Ok(origin) = std::env::var("STEPUP_CORS_ALLOW_ORIGIN") {
        state = state.with_cors_allow_origin(origin);
    }
    lambda_http::run(stepup_core::api::router(state)).await
}
