//! `stepup-authorizer`: the API Gateway Lambda authorizer (REST v1 REQUEST and HTTP API
//! v2). Builds [`Deps`] once per execution environment, then answers invocations.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use stepup_core::clock;
use stepup_lambda::{Config, Deps, handle_event, init_logging};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = Config::from_env()?;
    let deps = Deps::build(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_event(&deps.engine, event.payload, clock::now()).await
    }))
    .await
}
