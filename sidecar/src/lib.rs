//! # stepup-sidecar
//!
//! The Envoy / Istio enforcement point of stepup: an ext_authz service in both of Envoy's
//! modes, deciding every request with the shared [`stepup_core::Engine`].
//!
//! | listener | default | what |
//! |---|---|---|
//! | gRPC | `127.0.0.1:9001` | `envoy.service.auth.v3.Authorization/Check` ([`grpc`]) |
//! | HTTP check | `127.0.0.1:9002` | Envoy `http_service` mode under `/authz` ([`http_check`]) |
//! | step-up API | `127.0.0.1:9003` | `POST /initiate-auth`, `POST /respond-to-challenge`, CORS preflight ([`stepup_core::api`]) |
//! | admin | `127.0.0.1:9004` | `/healthz`, `/readyz`, `/metrics` ([`admin`]) |
//!
//! [`run`] builds the AWS clients once, [`assemble`]s the stores, JWKS cache, engine (with
//! its completion cache) and step-up API state, tries the first policy and JWKS loads (and
//! starts anyway, not ready, when they fail), keeps both fresh in the background, serves,
//! and drains on SIGTERM / SIGINT. [`serve`], [`spawn`] and [`spawn_with_api`] serve a
//! prebuilt [`Engine`] (and API router), for tests and embedding.

pub mod admin;
pub mod config;
pub mod grpc;
pub mod http_check;
pub mod telemetry;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::Engine;
use stepup_core::api::{ApiState, CorsPolicy, IdentityProvider};
use stepup_core::completion_cache::CompletionCache;
use stepup_core::engine::EngineConfig;
use stepup_core::policy::PolicyCache;
use stepup_core::store::SettingStore;
use stepup_core::store::dynamo::{DynamoSessionStore, DynamoSettingStore};
use stepup_core::token::{HttpJwksFetcher, JwksFetcher, TokenVerifier};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::Config;
pub use stepup_core::refresh::initial_load;
use stepup_core::refresh::{spawn_jwks_refresh, spawn_policy_refresh};
pub use stepup_runtime::aws::AwsClients;
pub use stepup_runtime::shutdown_signal;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
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
/// (Cognito in production). Nothing is loaded yet: see [`initial_load`].
pub fn assemble(
    config: &Config,
    clients: &AwsClients,
    jwks: Arc<dyn JwksFetcher>,
    idp: Arc<dyn IdentityProvider>,
) -> Parts {
    let names = config.common.table_names();
    let settings: Arc<dyn SettingStore> = Arc::new(DynamoSettingStore::new(
        clients.dynamodb.clone(),
        names.setting.clone(),
    ));
    let sessions = Arc::new(DynamoSessionStore::new(
        clients.dynamodb.clone(),
        names.session.clone(),
    ));
    let verifier = Arc::new(TokenVerifier::new(config.common.verifier_config(), jwks));
    let mut engine = Engine::new(
        Arc::new(PolicyCache::new()),
        Arc::clone(&verifier),
        sessions.clone(),
        EngineConfig {
            use_origin_jti: config.common.use_origin_jti(),
        },
    );
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
    Parts {
        engine,
        settings,
        api,
    }
}

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC ext_authz.
    pub grpc: TcpListener,
    /// HTTP ext_authz.
    pub http: TcpListener,
    /// Health, readiness, metrics.
    pub admin: TcpListener,
    /// The step-up API listener and its router, when served.
    pub api: Option<(TcpListener, Router)>,
}

/// Where the listeners ended up (useful with port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddrs {
    /// gRPC ext_authz.
    pub grpc: SocketAddr,
    /// HTTP ext_authz.
    pub http: SocketAddr,
    /// Health, readiness, metrics.
    pub admin: SocketAddr,
    /// The step-up API, if served.
    pub api: Option<SocketAddr>,
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

impl Listeners {
    /// Binds the three ext_authz-side listeners (the API listener is added separately).
    pub async fn bind(
        grpc: SocketAddr,
        http: SocketAddr,
        admin: SocketAddr,
    ) -> anyhow::Result<Listeners> {
        Ok(Listeners {
            grpc: bind("gRPC", grpc).await?,
            http: bind("HTTP check", http).await?,
            admin: bind("admin", admin).await?,
            api: None,
        })
    }

    /// The local addresses.
    pub fn addrs(&self) -> std::io::Result<BoundAddrs> {
        Ok(BoundAddrs {
            grpc: self.grpc.local_addr()?,
            http: self.http.local_addr()?,
            admin: self.admin.local_addr()?,
            api: match &self.api {
                Some((l, _)) => Some(l.local_addr()?),
                None => None,
            },
        })
    }
}

/// What [`serve`] needs besides the engine and listeners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The HTTP check's `path_prefix`.
    pub path_prefix: String,
    /// The Prometheus handle `/metrics` renders.
    pub metrics: Option<PrometheusHandle>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            path_prefix: "/authz".to_owned(),
            metrics: None,
        }
    }
}

async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone: shut down as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves every listener with `engine` until `shutdown` completes (or a listener fails),
/// then stops accepting and lets in-flight requests finish for up to [`DRAIN_TIMEOUT`].
pub async fn serve(
    engine: Engine,
    listeners: Listeners,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers: JoinSet<anyhow::Result<&'static str>> = JoinSet::new();

    let incoming =
        tonic::transport::server::TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
    let grpc_service = grpc::ExtAuthzService::new(engine.clone()).into_server();
    let rx = stop_rx.clone();
    servers.spawn(async move {
        tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(grpc_service, incoming, until_shutdown(rx))
            .await
            .context("gRPC listener")?;
        Ok("gRPC")
    });

    let http_routers = [
        (
            "HTTP check",
            listeners.http,
            http_check::router(engine.clone(), options.path_prefix.clone()),
        ),
        (
            "admin",
            listeners.admin,
            admin::router(engine.clone(), options.metrics.clone()),
        ),
    ];
    for (name, listener, router) in http_routers.into_iter().chain(
        listeners
            .api
            .map(|(listener, router)| ("step-up API", listener, router)),
    ) {
        let rx = stop_rx.clone();
        servers.spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(until_shutdown(rx))
                .await
                .with_context(|| format!("{name} listener"))?;
            Ok(name)
        });
    }

    let mut errors: Vec<anyhow::Error> = Vec::new();
    let mut record = |joined: Result<anyhow::Result<&'static str>, tokio::task::JoinError>,
                      stopping: bool| match joined {
        Ok(Ok(name)) if stopping => tracing::debug!(listener = name, "listener drained"),
        Ok(Ok(name)) => errors.push(anyhow::anyhow!("the {name} listener stopped unexpectedly")),
        Ok(Err(e)) => errors.push(e),
        Err(e) => errors.push(anyhow::anyhow!("a listener task failed: {e}")),
    };

    let early = tokio::select! {
        () = shutdown => None,
        joined = servers.join_next() => joined,
    };
    if let Some(joined) = early {
        record(joined, false);
    }
    tracing::info!("shutting down: draining in-flight requests");
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = servers.join_next().await {
            record(joined, true);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            timeout_secs = DRAIN_TIMEOUT.as_secs(),
            "drain timed out; closing the remaining connections"
        );
        servers.abort_all();
    }
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sidecar servers running in the background (see [`spawn`]); stopped on drop.
#[derive(Debug)]
pub struct RunningSidecar {
    /// Where the listeners are.
    pub addrs: BoundAddrs,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningSidecar {
    /// Stops the servers and waits until they drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.context("sidecar task")?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSidecar {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds every listener on `127.0.0.1:0` and serves `engine` in a background task: the
/// sidecar in-process, with whatever engine (stores, verifier) the caller built. No
/// step-up API; see [`spawn_with_api`].
pub async fn spawn(engine: Engine, options: ServeOptions) -> anyhow::Result<RunningSidecar> {
    spawn_inner(engine, None, options).await
}

/// [`spawn`], also serving the step-up API `router` (e.g. [`stepup_core::api::router`] of
/// an [`ApiState`] with an identity provider of the caller's choice) on its own listener.
pub async fn spawn_with_api(
    engine: Engine,
    api: Router,
    options: ServeOptions,
) -> anyhow::Result<RunningSidecar> {
    spawn_inner(engine, Some(api), options).await
}

async fn spawn_inner(
    engine: Engine,
    api: Option<Router>,
    options: ServeOptions,
) -> anyhow::Result<RunningSidecar> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut listeners = Listeners::bind(any, any, any).await?;
    if let Some(router) = api {
        listeners.api = Some((bind("step-up API", any).await?, router));
    }
    let addrs = listeners.addrs()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(engine, listeners, options, async move {
        let _ = stopped.await;
    }));
    Ok(RunningSidecar {
        addrs,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The sidecar: builds everything once from `config`, serves until SIGTERM / SIGINT, and
/// drains. `metrics` is the handle of the recorder `main` installed.
pub async fn run(config: Config, metrics: Option<PrometheusHandle>) -> anyhow::Result<()> {
    config.validate()?;
    let clients = AwsClients::load(&config.aws_endpoints()).await;
    let fetcher = HttpJwksFetcher::new().context("building the JWKS HTTP client")?;
    let idp = stepup_core::api::CognitoIdp::new(clients.cognito.clone());
    let parts = assemble(&config, &clients, Arc::new(fetcher), Arc::new(idp));
    let names = config.common.table_names();
    tracing::info!(
        setting_table = %names.setting,
        session_table = %names.session,
        issuer = %parts.engine.verifier().config().issuer,
        completion_cache_secs = config.completion_cache_secs,
        max_failed_attempts = config.max_failed_attempts,
        "starting stepup-sidecar"
    );

    let mut listeners =
        Listeners::bind(config.grpc_listen, config.http_listen, config.admin_listen).await?;
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
pub(crate) mod testutil {
    //! An engine on in-memory stores with the seed's two items and test tokens.

    use std::sync::Arc;
    use stepup_core::Engine;
    use stepup_core::clock;
    use stepup_core::engine::EngineConfig;
    use stepup_core::policy::PolicyCache;
    use stepup_core::session::Factor;
    use stepup_core::store::SettingStore;
    use stepup_core::store::memory::{MemorySessionStore, MemorySettingStore};
    use stepup_core::testkit::{TEST_CLIENT_ID, TestIssuer, put_completed_session, seed_item};

    pub const CLIENT_ID: &str = TEST_CLIENT_ID;

    pub struct World {
        pub issuer: TestIssuer,
        pub sessions: Arc<MemorySessionStore>,
        pub engine: Engine,
    }

    pub async fn world() -> World {
        let now = clock::now();
        let issuer = TestIssuer::new();
        let settings = MemorySettingStore::new();
        settings
            .put(seed_item("/info", "STEP_UP_NOT_REQUIRED"))
            .await
            .unwrap();
        settings
            .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
            .await
            .unwrap();
        let policies = Arc::new(PolicyCache::new());
        policies.refresh(&settings, now).await.unwrap();
        let sessions = Arc::new(MemorySessionStore::new());
        let engine = Engine::new(
            policies,
            Arc::new(issuer.verifier(now).await),
            sessions.clone(),
            EngineConfig::default(),
        );
        World {
            issuer,
            sessions,
            engine,
        }
    }

    impl World {
        pub fn bearer(&self, jti: &str) -> String {
            format!("Bearer {}", self.issuer.token("alice", jti, clock::now()))
        }

        pub fn expired_token(&self) -> String {
            let now = clock::now();
            let mut claims = self.issuer.claims("alice", "jti-old", now.minus(7200));
            claims["exp"] = serde_json::json!(now.minus(3600));
            self.issuer.sign(&claims)
        }

        pub async fn complete(&self, jti: &str) {
            let now = clock::now();
            put_completed_session(
                self.sessions.as_ref(),
                jti,
                "alice",
                CLIENT_ID,
                now.plus(3600),
                now,
                Factor::Sms,
            )
            .await
            .unwrap();
        }
    }
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
        assert!(![running.addrs.grpc, running.addrs.http, running.addrs.admin].contains(&api));
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
