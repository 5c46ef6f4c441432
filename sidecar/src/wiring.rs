//! Wiring: from the configuration to the parts the sidecar serves ([`assemble`]), and
//! the whole life of the process ([`run`]): AWS clients, first loads, background refreshes,
//! serving and draining.

use crate::serve::bind;
use crate::*;
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::Engine;
use stepup_core::api::{ApiState, CorsPolicy, IdentityProvider};
use stepup_core::completion_cache::CompletionCache;
use stepup_core::policy::PolicyCache;
use stepup_core::refresh::{spawn_jwks_refresh, spawn_policy_refresh};
use stepup_core::store::SettingStore;
use stepup_core::store::dynamo::{DynamoSessionStore, DynamoSettingStore};
use stepup_core::token::{HttpJwksFetcher, JwksFetcher, TokenVerifier};

/// How long the start-up policy and JWKS loads may take before serving starts anyway.
const INITIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything [`run`] serves, built once from the configuration by [`assemble`].
#[derive(Debug, Clone)]
pub struct Parts {
    /// The decision engine (policy cache, verifier, session store, completion cache).
    pub engine: Engine,
    /// The setting table, for the policy refresh.
    pub settings: Arc<dyn SettingStore>,
    /// The step-up API's state: the engine's verifier and session store, the identity
    /// provider and the limits of `config`.
    pub api: ApiState,
}

/// Builds the stores, token verifier, engine and step-up API state from `config`: the
/// JWKS comes through `jwks` (HTTP in production), the step-up API talks to `idp`
/// (Cognito in production). Nothing is loaded yet: see [`initial_load`]. Fails only when
/// the decision log file cannot be opened.
pub fn assemble(
    config: &Config,
    clients: &AwsClients,
    jwks: Arc<dyn JwksFetcher>,
    idp: Arc<dyn IdentityProvider>,
) -> anyhow::Result<Parts> {
    let names = config.common.table_names();
    let endpoint = config.aws_endpoints().dynamodb;
    let settings: Arc<dyn SettingStore> = Arc::new(
        DynamoSettingStore::new(clients.dynamodb.clone(), names.setting.clone())
            .with_endpoint(endpoint.clone()),
    );
    let sessions = Arc::new(
        DynamoSessionStore::new(clients.dynamodb.clone(), names.session.clone())
            .with_endpoint(endpoint),
    );
    let verifier = Arc::new(TokenVerifier::new(config.common.verifier_config(), jwks));
    let mut engine = Engine::new(
        Arc::new(PolicyCache::new()),
        Arc::clone(&verifier),
        sessions.clone(),
        config.common.engine_config(),
    );
    if let Some(log) = config.common.decision_log()? {
        engine = engine.with_decision_log(Arc::new(log));
    }
    if let Some((capacity, max_age_secs)) = config.completion_cache() {
        engine =
            engine.with_completion_cache(Arc::new(CompletionCache::new(capacity, max_age_secs)));
    }
    config.api.warn_if_weak();
    let api = ApiState::new(verifier, sessions, idp)
        .with_limits(config.session_limits())
        .with_origin_jti(config.common.use_origin_jti())
        .with_sms_min_interval_secs(config.sms_min_interval_secs)
        .with_verification(config.api.verification)
        // Checked by `Config::validate` before start-up; a bad value here keeps the
        // narrowest policy (no origin allowed) rather than a wider one.
        .with_cors(
            config
                .cors()
                .unwrap_or_else(|_| CorsPolicy::origins(Vec::<String>::new())),
        );
    Ok(Parts {
        engine,
        settings,
        api,
    })
}

/// The sidecar: builds everything once from `config`, serves until SIGTERM / SIGINT, and
/// drains. `metrics` is the handle of the recorder `main` installed.
pub async fn run(config: Config, metrics: Option<PrometheusHandle>) -> anyhow::Result<()> {
    config.validate()?;
    let clients = AwsClients::load(&config.aws_endpoints()).await;
    let fetcher = HttpJwksFetcher::new().context("building the JWKS HTTP client")?;
    let idp = stepup_core::api::CognitoIdp::new(clients.cognito.clone());
    let parts = assemble(&config, &clients, Arc::new(fetcher), Arc::new(idp))?;
    let names = config.common.table_names();
    tracing::info!(
        setting_table = %names.setting,
        session_table = %names.session,
        issuer = %parts.engine.verifier().config().issuer,
        completion_cache_secs = config.completion_cache_secs,
        max_failed_attempts = config.max_failed_attempts,
        "starting stepup-sidecar"
    );

    let mut listeners = Listeners::bind(
        &config.grpc_listen,
        &config.http_listen,
        config.admin_listen,
    )
    .await?;
    listeners.api = Some((
        bind("step-up API", config.api_listen).await?,
        stepup_core::api::router(parts.api),
    ));
    let engine = parts.engine;
    initial_load(&engine, parts.settings.as_ref(), INITIAL_LOAD_TIMEOUT).await;
    let policy_task = spawn_policy_refresh(
        Arc::clone(engine.policies()),
        parts.settings,
        config.policy_refresh_interval(),
    );
    let jwks_task = spawn_jwks_refresh(
        Arc::clone(engine.verifier()),
        config.jwks_refresh_interval(),
    );

    let addrs = listeners.addrs()?;
    tracing::info!(
        grpc = %addrs.grpc,
        http = %addrs.http,
        api = ?addrs.api,
        admin = %addrs.admin,
        ready = admin::is_ready(&engine),
        "serving"
    );
    let options = ServeOptions {
        path_prefix: config.path_prefix.clone(),
        metrics,
    };
    let result = serve(engine, listeners, options, shutdown_signal()).await;
    policy_task.abort();
    jwks_task.abort();
    tracing::info!("stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use stepup_core::api::CognitoIdp;
    use stepup_core::api::cognito::local_client;

    fn config(extra: &[&str]) -> Config {
        let base = [
            "stepup-sidecar",
            "--region",
            "us-east-1",
            "--user-pool-id",
            "us-east-1_Pool",
            "--allowed-client-ids",
            "client",
            "--dynamodb-endpoint",
            "http://127.0.0.1:1",
            "--cognito-endpoint",
            "http://127.0.0.1:1",
        ];
        Config::try_parse_from(base.iter().chain(extra)).unwrap()
    }

    fn parts(config: &Config) -> Parts {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let clients = AwsClients::from_sdk(&sdk, &config.aws_endpoints());
        // Never called here: the tests only look at the wiring.
        let idp = CognitoIdp::new(local_client("http://127.0.0.1:1", "us-east-1"));
        assemble(
            config,
            &clients,
            Arc::new(HttpJwksFetcher::new().unwrap()),
            Arc::new(idp),
        )
        .unwrap()
    }

    #[test]
    fn the_api_state_takes_the_configured_limits() {
        let c = config(&[
            "--max-failed-attempts",
            "3",
            "--sms-min-interval-secs",
            "60",
            "--cors-allow-origin",
            "https://app.example.com",
            "--use-origin-jti",
        ]);
        let p = parts(&c);
        assert_eq!(p.api.limits.max_failed_attempts, 3);
        assert_eq!(p.api.sms_min_interval_secs, 60);
        assert_eq!(p.api.cors.allow_origins, ["https://app.example.com"]);
        assert!(p.api.use_origin_jti);
        assert!(p.engine.config().use_origin_jti);
        // The API verifies tokens with the engine's own verifier (one JWKS cache).
        assert!(Arc::ptr_eq(&p.api.verifier, p.engine.verifier()));
    }

    #[tokio::test]
    async fn spawn_with_api_serves_the_step_up_api_on_its_own_listener() {
        let p = parts(&config(&[]));
        let running = spawn_with_api(
            p.engine.clone(),
            stepup_core::api::router(p.api),
            ServeOptions::default(),
        )
        .await
        .unwrap();
        let api = running.addrs.api.expect("an API listener");
        let others = [&running.addrs.grpc, &running.addrs.http];
        assert!(!others.iter().any(|a| a.tcp() == Some(api)));
        assert_ne!(running.addrs.admin, api);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = http
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{api}/respond-to-challenge"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        // No token: the API's own 401, not an ext_authz answer.
        let r = http
            .post(format!("http://{api}/initiate-auth"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["code"],
            "UNAUTHENTICATED"
        );
        running.stop().await.unwrap();
        // Without the API, no API listener.
        let p = parts(&config(&[]));
        let running = spawn(p.engine, ServeOptions::default()).await.unwrap();
        assert_eq!(running.addrs.api, None);
        running.stop().await.unwrap();
    }
}
