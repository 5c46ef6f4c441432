//! Support for `envoy_e2e.rs`: one [`Fixture`] per scenario, everything real except the
//! user's phone.
//!
//! A fixture is a moto user pool with a user who prefers a TOTP app (three access tokens,
//! each with its own `jti`), the two tables seeded with the seed's `/info`
//! (`STEP_UP_NOT_REQUIRED`) and `/transfer` (`STEP_UP_REQUIRED`) items, the sidecar
//! assembled from its real configuration ([`stepup_sidecar::assemble`]: DynamoDB stores,
//! HTTP JWKS, Cognito client, completion cache) and served in-process on `127.0.0.1:0`
//! with its step-up API, a tiny upstream echoing what it received, and Envoy rendered from
//! `examples/envoy/envoy-{grpc,http}.yaml`. Every request of a scenario goes through
//! Envoy, the step-up API included.
//!
//! Tables live in the run's shared DynamoDB Local (`DYNAMODB_ENDPOINT`) under a prefix of
//! their own; a scenario that stops DynamoDB brings an instance of its own
//! ([`OwnDynamoDb`], [`Setup::on_dynamodb`]). The modules:
//!
//! | module | what |
//! |---|---|
//! | [`envoy`] | installing, rendering, validating and starting Envoy; its stats |
//! | [`dynamodb`] | a stoppable DynamoDB Local, the tables, raw session items |
//! | [`cognito`] | moto users, the JWKS the verifier trusts, a thief's enrolment calls |
//! | [`requests`] | requests through Envoy (raw bytes, the step-up API, `/transfer`) and their checks |

pub mod cognito;
pub mod dynamodb;
pub mod envoy;
pub mod requests;

use clap::Parser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stepup_core::api::Verification;
use stepup_core::clock;
use stepup_core::session::Session;
use stepup_core::store::SessionStore;
use stepup_core::store::TableNames;
use stepup_core::store::dynamo::{self, DynamoSessionStore};
use stepup_core::testkit::components;
use stepup_core::testkit::moto::{self, MotoPool};
use stepup_core::token::HttpJwksFetcher;
use stepup_sidecar::listen::ListenAddr;
use stepup_sidecar::{AwsClients, Config, Listeners, Parts, RunningSidecar, ServeOptions};
use tokio::task::JoinHandle;

pub use cognito::User;
pub use dynamodb::OwnDynamoDb;
pub use envoy::Envoy;

/// Envoy's ext_authz mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `envoy.service.auth.v3.Authorization/Check` over HTTP/2.
    Grpc,
    /// Envoy's `http_service`: the check is a plain HTTP request; only a 200 allows.
    Http,
}

impl Mode {
    /// The name in `examples/envoy/envoy-<name>.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Grpc => "grpc",
            Mode::Http => "http",
        }
    }
}

/// The sidecar's default `--max-failed-attempts`, which every fixture runs with.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;

/// The checkout (scripts, example Envoy configurations).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The endpoints of the run's DynamoDB Local and moto, or `None` when one is missing: the
/// project's one rule ([`stepup_core::testkit::components`]) then skips the scenario with
/// a note, or fails it under `CI=true`.
pub fn endpoints() -> Option<(String, String)> {
    Some((components::dynamodb()?, components::moto()?))
}

/// The sidecar's warnings and errors (the step-up API logs why it answered 503, for
/// one) go to the test's captured output, shown when a scenario fails. `RUST_LOG`
/// overrides the level.
fn log_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// What a scenario needs started: built by the test macro with the mode and the
/// scenario's name, adjusted by the scenario, then [`Setup::start`]ed.
#[derive(Debug, Clone)]
pub struct Setup {
    mode: Mode,
    scenario: &'static str,
    verification: Option<Verification>,
    dynamodb: Option<String>,
    unix_socket: bool,
    args: Vec<String>,
}

impl Setup {
    /// The defaults: the run's shared DynamoDB Local, `cognito-mfa`.
    pub fn new(mode: Mode, scenario: &'static str) -> Setup {
        Setup {
            mode,
            scenario,
            verification: None,
            dynamodb: None,
            unix_socket: false,
            args: Vec::new(),
        }
    }

    /// More sidecar flags (after the fixture's own).
    pub fn with_args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Setup {
        self.args.extend(args.into_iter().map(str::to_owned));
        self
    }

    /// The check goes over a Unix domain socket (`--grpc-listen unix:…` / Envoy `pipe`)
    /// instead of TCP.
    pub fn over_unix_socket(mut self) -> Setup {
        self.unix_socket = true;
        self
    }

    /// The mode, and `-uds` over a Unix socket: in table and user names and messages.
    fn label(&self) -> String {
        let uds = if self.unix_socket { "-uds" } else { "" };
        format!("{}{uds}", self.mode.name())
    }

    /// The sidecar runs with `--verification seed-compatible` (the default is
    /// `cognito-mfa`, left to the sidecar's own default).
    pub fn seed_compatible(mut self) -> Setup {
        self.verification = Some(Verification::SeedCompatible);
        self
    }

    /// The tables go to this DynamoDB (e.g. an [`OwnDynamoDb`] the scenario stops and
    /// starts again) instead of the run's shared DynamoDB Local.
    pub fn on_dynamodb(mut self, endpoint: &str) -> Setup {
        self.dynamodb = Some(endpoint.to_owned());
        self
    }

    /// Starts everything, or `None` when the components are not there (see
    /// [`endpoints`]).
    pub async fn start(self) -> Option<Fixture> {
        let (shared_ddb, moto) = endpoints()?;
        log_warnings();
        let bin = envoy::bin();
        // Unique per scenario and process: table prefix, pool and user names.
        let short: String = self.scenario.chars().take(32).collect();
        let run = format!("{}-{short}-{}", self.label(), std::process::id());
        let ddb = self.dynamodb.unwrap_or(shared_ddb);
        let names = TableNames::with_prefix(&run);

        // The tables and the moto user do not depend on each other: set up at once.
        let tables = dynamodb::create_and_seed(&ddb, &names);
        let cognito = async {
            let pool = MotoPool::create(moto::client(&moto), &format!("stepup-{run}")).await;
            let user = User::with_software_token(&pool, &format!("alice-{run}"), 3).await;
            let jwks = cognito::serve_jwks(&moto, &pool.pool_id).await;
            (pool, user, jwks)
        };
        let ((), (pool, user, (jwks, jwks_task))) = tokio::join!(tables, cognito);
        let sessions = DynamoSessionStore::new(dynamo::local_client(&ddb), names.session.clone());

        // The sidecar as `run` builds it, from flags.
        let mut args = vec![
            "stepup-sidecar".to_owned(),
            "--region".into(),
            moto::REGION.into(),
            "--user-pool-id".into(),
            pool.pool_id.clone(),
            "--allowed-client-ids".into(),
            pool.client_id.clone(),
            "--jwks-url".into(),
            format!("http://{jwks}/jwks.json"),
            "--table-prefix".into(),
            run.clone(),
            "--dynamodb-endpoint".into(),
            ddb.clone(),
            "--cognito-endpoint".into(),
            moto.clone(),
        ];
        if let Some(v) = self.verification {
            args.extend(["--verification".into(), v.as_str().into()]);
        }
        // The decision log defaults to stdout, which the test harness does not capture: off
        // unless the scenario names a target (the audit scenario reads it from a file).
        if !self.args.iter().any(|a| a == "--decision-log") {
            args.extend(["--decision-log".into(), "off".into()]);
        }
        args.extend(self.args);
        let config = Config::try_parse_from(args).unwrap();
        config.validate().unwrap();
        assert!(config.completion_cache().is_some(), "the default: on");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(moto::REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "dummy", "dummy", None, None, "static",
            ))
            .load()
            .await;
        let clients = AwsClients::from_sdk(&sdk, &config.aws_endpoints());
        let parts = stepup_sidecar::assemble(
            &config,
            &clients,
            Arc::new(HttpJwksFetcher::new().unwrap()),
            Arc::new(stepup_core::api::CognitoIdp::new(clients.cognito.clone())),
        )
        .unwrap();
        // The defaults the scenarios rely on, as the sidecar's flags set them.
        assert_eq!(
            parts.api.limits.max_failed_attempts, MAX_FAILED_ATTEMPTS,
            "--max-failed-attempts defaults to 5"
        );
        assert_eq!(
            parts.api.verification,
            self.verification.unwrap_or(Verification::CognitoMfa),
            "--verification defaults to cognito-mfa"
        );
        stepup_sidecar::initial_load(
            &parts.engine,
            parts.settings.as_ref(),
            std::time::Duration::from_secs(10),
        )
        .await;
        assert!(stepup_sidecar::admin::is_ready(&parts.engine));
        // No background policy refresh: a scenario refreshes by hand where it matters.
        // (While the outage scenario re-creates DynamoDB Local's in-memory tables, a
        // refresh could read the empty setting table, which rightly means "no rules".)
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let socket_dir = tempfile::tempdir().unwrap();
        let check = if self.unix_socket {
            ListenAddr::Unix(socket_dir.path().join("check.sock"))
        } else {
            ListenAddr::Tcp(any)
        };
        let tcp = ListenAddr::Tcp(any);
        let (grpc, http) = match self.mode {
            Mode::Grpc => (&check, &tcp),
            Mode::Http => (&tcp, &check),
        };
        let mut listeners = Listeners::bind(grpc, http, any).await.unwrap();
        listeners.api = Some((
            tokio::net::TcpListener::bind(any).await.unwrap(),
            stepup_core::api::router(parts.api.clone()),
        ));
        let options = ServeOptions {
            metrics: Some(metrics_handle()),
            ..ServeOptions::default()
        };
        let sidecar = stepup_sidecar::spawn_on(parts.engine.clone(), listeners, options).unwrap();
        let (upstream, upstream_task) = requests::start_upstream().await;
        let authz = match self.mode {
            Mode::Grpc => &sidecar.addrs.grpc,
            Mode::Http => &sidecar.addrs.http,
        };
        let envoy = Envoy::start(
            &bin,
            self.mode,
            upstream.port(),
            authz,
            sidecar.addrs.api.unwrap().port(),
        )
        .await;
        Some(Fixture {
            mode: self.mode,
            run,
            moto,
            pool,
            user,
            envoy,
            parts,
            sessions,
            names,
            ddb,
            sidecar: Some(sidecar),
            servers: vec![jwks_task, upstream_task],
            _socket_dir: socket_dir,
        })
    }
}

/// Everything one scenario runs against.
pub struct Fixture {
    /// The ext_authz mode of the fixture's Envoy.
    pub mode: Mode,
    /// Unique name of the scenario's run: table prefix, pool and user names.
    pub run: String,
    /// moto's endpoint.
    pub moto: String,
    /// The moto pool (admin calls; more users).
    pub pool: MotoPool,
    /// The user who prefers a TOTP app, with three access tokens.
    pub user: User,
    /// The front door of every request.
    pub envoy: Envoy,
    /// The sidecar's engine and setting store (for refreshes by hand).
    pub parts: Parts,
    /// Reads the session items the step-up API writes.
    pub sessions: DynamoSessionStore,
    /// The fixture's two tables.
    pub names: TableNames,
    /// The DynamoDB endpoint the sidecar uses.
    pub ddb: String,
    sidecar: Option<RunningSidecar>,
    /// The JWKS server and the upstream, stopped on drop.
    servers: Vec<JoinHandle<()>>,
    /// Where a Unix socket check listens.
    _socket_dir: tempfile::TempDir,
}

/// The process-wide Prometheus recorder, as the sidecar's `main` installs it (once per
/// test process; every fixture's `/metrics` renders it, so a scenario looks only at
/// series labelled with its own rule ids).
fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| stepup_sidecar::telemetry::install_metrics().unwrap())
        .clone()
}

impl Fixture {
    /// The sidecar's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let admin = self.sidecar.as_ref().unwrap().addrs.admin;
        requests::client()
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Writes a setting item and reloads the sidecar's policy index, as its periodic
    /// refresh would.
    pub async fn put_rule(&self, item: stepup_core::item::Item) {
        self.parts.settings.put(item).await.unwrap();
        self.parts
            .engine
            .policies()
            .refresh(self.parts.settings.as_ref(), clock::now())
            .await
            .unwrap();
    }

    /// The session item of `token`, as the sidecar wrote it.
    pub async fn session(&self, token: &str) -> Session {
        self.sessions
            .get(&cognito::jti(token), clock::now())
            .await
            .unwrap()
            .expect("a session item")
    }

    /// The end of every scenario: every refusal was an answer of the check, never an error
    /// of it (an error is what `failure_mode_allow` would let through), then the sidecar
    /// drains.
    pub async fn finish(mut self) {
        let errors = self.envoy.ext_authz_errors().await;
        assert_eq!(
            errors,
            0,
            "{}: ext_authz errors in Envoy's stats",
            self.mode.name()
        );
        if let Some(sidecar) = self.sidecar.take() {
            sidecar.stop().await.unwrap();
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for task in &self.servers {
            task.abort();
        }
    }
}
