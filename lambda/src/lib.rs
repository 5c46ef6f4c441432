//! # stepup-lambda
//!
//! The API Gateway enforcement point of stepup, as two Lambda functions:
//!
//! - `stepup-authorizer`: a REST API (v1) REQUEST authorizer and an HTTP API (v2)
//!   authorizer in one function ([`authorizer`]), deciding every request with the same
//!   [`Engine`] as the sidecar;
//! - `stepup-api`: the step-up API (`/initiate-auth`, `/respond-to-challenge`), the very
//!   axum router the sidecar serves, run through `lambda_http`.
//!
//! [`Deps`] is built once per execution environment, in the init phase: AWS clients,
//! stores, the JWKS and policy caches (loaded before the first invocation) and the
//! background tasks that refresh them. An invocation then does no network I/O unless a
//! privileged rule needs the session table (and not even then once a completed step-up is
//! in the completion cache). Lambda freezes the process between invocations, so the
//! background refreshes run while the environment is thawed, alongside invocations, and
//! never delay one.

pub mod authorizer;
pub mod config;

pub mod emf;

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::api::{ApiState, CognitoIdp};
use stepup_core::completion_cache::CompletionCache;
use stepup_core::policy::PolicyCache;
use stepup_core::store::dynamo::{DynamoSessionStore, DynamoSettingStore};
use stepup_core::store::{SessionStore, SettingStore};
use stepup_core::token::{HttpJwksFetcher, TokenVerifier};
use stepup_core::{Engine, clock};

pub use authorizer::{AuthorizerError, handle_event, handle_http, handle_rest};
pub use config::Config;
use stepup_core::refresh::{initial_load, spawn_jwks_refresh, spawn_policy_refresh};
pub use stepup_runtime::aws::AwsClients;

/// How long the init-phase policy and JWKS loads may take (Lambda's init phase is 10 s).
const INITIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(4);
/// Completed step-ups kept in memory per execution environment.
const COMPLETION_CACHE_CAPACITY: usize = 10_000;
/// How long a cached completion may be used before the session table is read again.
const COMPLETION_CACHE_MAX_AGE_SECS: u64 = 60;
/// What the authorizer lends to every invocation: the engine and its refresh tasks.
#[derive(Debug)]
pub struct Deps {
    /// The decision engine.
    pub engine: Engine,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Deps {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Deps {
    /// Deps over a prebuilt engine, with no background tasks (tests).
    pub fn from_engine(engine: Engine) -> Deps {
        Deps {
            engine,
            tasks: Vec::new(),
        }
    }

    /// Builds the authorizer's dependencies from `config`: clients, stores, the engine
    /// with a completion cache, the first policy and JWKS loads, and their refresh tasks.
    pub async fn build(config: &Config) -> anyhow::Result<Deps> {
        let endpoints = config.common.aws_endpoints();
        let clients = AwsClients::load(&endpoints).await;
        let names = config.common.table_names();
        let settings: Arc<dyn SettingStore> = Arc::new(
            DynamoSettingStore::new(clients.dynamodb.clone(), names.setting)
                .with_endpoint(endpoints.dynamodb.clone()),
        );
        let sessions: Arc<dyn SessionStore> = Arc::new(
            DynamoSessionStore::new(clients.dynamodb, names.session)
                .with_endpoint(endpoints.dynamodb),
        );
        let verifier = Arc::new(verifier(config)?);
        let policies = Arc::new(PolicyCache::new());
        let engine = Engine::new(
            Arc::clone(&policies),
            Arc::clone(&verifier),
            sessions,
            config.common.engine_config(),
        )
        .with_completion_cache(Arc::new(CompletionCache::new(
            COMPLETION_CACHE_CAPACITY,
            COMPLETION_CACHE_MAX_AGE_SECS,
        )));
        let engine = match config.common.decision_log()? {
            Some(log) => engine.with_decision_log(Arc::new(log)),
            None => engine,
        };
        initial_load(&engine, settings.as_ref(), INITIAL_LOAD_TIMEOUT).await;
        let tasks = vec![
            spawn_policy_refresh(policies, settings, config.policy_refresh()),
            spawn_jwks_refresh(verifier, config.jwks_refresh()),
        ];
        Ok(Deps { engine, tasks })
    }
}

fn verifier(config: &Config) -> anyhow::Result<TokenVerifier> {
    let fetcher = HttpJwksFetcher::new().context("building the JWKS HTTP client")?;
    Ok(TokenVerifier::new(
        config.common.verifier_config(),
        Arc::new(fetcher),
    ))
}

/// The step-up API's state, built once: the same [`ApiState`] the sidecar serves, with
/// Cognito, the session table and a verifier whose JWKS is loaded in the init phase.
pub async fn build_api_state(
    config: &Config,
) -> anyhow::Result<(ApiState, tokio::task::JoinHandle<()>)> {
    let endpoints = config.common.aws_endpoints();
    let clients = AwsClients::load(&endpoints).await;
    let names = config.common.table_names();
    let sessions: Arc<dyn SessionStore> = Arc::new(
        DynamoSessionStore::new(clients.dynamodb, names.session).with_endpoint(endpoints.dynamodb),
    );
    let verifier = Arc::new(verifier(config)?);
    match tokio::time::timeout(INITIAL_LOAD_TIMEOUT, verifier.jwks().refresh(clock::now())).await {
        Ok(Ok(keys)) => tracing::info!(keys, "JWKS loaded"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "first JWKS load failed; retrying in the background")
        }
        Err(_) => tracing::warn!("first JWKS load timed out; retrying in the background"),
    }
    let task = spawn_jwks_refresh(Arc::clone(&verifier), config.jwks_refresh());
    let state = ApiState::new(
        verifier,
        sessions,
        Arc::new(CognitoIdp::new(clients.cognito)),
    )
    .with_origin_jti(config.common.use_origin_jti())
    .with_verification(config.api.verification)
    .with_cors(config.cors()?);
    config.api.warn_if_weak();
    Ok((state, task))
}
