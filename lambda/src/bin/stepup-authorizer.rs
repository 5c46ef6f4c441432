//! `stepup-authorizer`: the API Gateway Lambda authorizer (REST v1 REQUEST and HTTP API
//! v2). Builds [`Deps`] once per execution environment, then answers invocations.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::process::ExitCode;
use stepup_core::clock;
use stepup_lambda::{Config, Deps, handle_event};
use stepup_runtime::exit;
use stepup_runtime::logging::{LogOptions, init_logging_with};

const BINARY: &str = "stepup-authorizer";

#[tokio::main]
async fn main() -> ExitCode {
    // Init time for the cold-start benchmark (a measurement, not a decision input).
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    if let Err(e) = init_logging_with(LogOptions::lambda()) {
        return exit::failure(BINARY, &e);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return exit::usage(BINARY, &e),
    };
    let deps = match Deps::build(&config).await {
        Ok(d) => d,
        Err(e) => return exit::failure(BINARY, &*e),
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "authorizer ready"
    );
    let deps = &deps;
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_event(&deps.engine, event.payload, clock::now()).await
    }))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::failure(BINARY, &*e),
    }
}
