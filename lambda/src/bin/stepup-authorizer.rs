//! `stepup-authorizer`: the API Gateway Lambda authorizer (REST v1 REQUEST and HTTP API
//! v2). Builds [`Deps`] once per execution environment, then answers invocations.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use stepup_core::clock;
use stepup_lambda::{Config, Deps, handle_event};
use stepup_runtime::logging::{LogOptions, init_logging_with};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Init time for the cold-start benchmark (a measurement, not a decision input).
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    init_logging_with(LogOptions::lambda())?;
    let config = Config::from_env()?;
    let deps = Deps::build(&config).await?;
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "authorizer ready"
    );
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_event(&deps.engine, event.payload, clock::now()).await
    }))
    .await
}
