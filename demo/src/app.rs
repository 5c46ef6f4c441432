//! `stepup-demo`: the whole step-up flow on one loopback port, with no AWS account
//! and no cluster. One process serves
//!
//! - a web page (`/`, plain HTML and JavaScript embedded in the binary) that walks the
//!   flow of the AWS blog post: sign in or register, set up a TOTP software token from a
//!   QR code, prefer it, call `/info` (allowed), call `/transfer` (401 with the RFC 9470
//!   challenge), answer the challenge with the password and the code (Cognito's own MFA
//!   challenge, the default verification), call `/transfer` again (allowed); then claims
//!   mode: call `/payments/{id}/approve` (401 naming `acr_values` and `max_age`), sign in
//!   again at the identity provider with the password and the code, retry with the new
//!   token (allowed);
//! - a sample API (`GET /info`, `POST /transfer`, `POST /payments/{id}/approve`) behind
//!   [`StepUpLayer`], the same decision engine the ext_authz sidecar runs, in-process;
//! - the step-up API (`/initiate-auth`, `/respond-to-challenge`), unchanged;
//! - a development identity provider standing in for Cognito ([`crate::devidp`]),
//!   with in-memory session storage.
//!
//! The policies are the `StepUpPolicy` manifests `kubectl apply` takes, read from
//! `examples/policies/` (or `--policies`); when that directory is not there (the binary
//! runs elsewhere) the copies embedded at build time are used. The demo refuses a
//! non-loopback address unless `--allow-non-loopback` is given: anyone who reaches it can
//! create users.

use crate::devidp::{self, DEV_IDP_PREFIX, DevIdp, DevIdpConfig};
use anyhow::Context;
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde_json::json;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use stepup_core::api::{ApiState, CorsPolicy, router as api_router};
use stepup_core::crd::manifest::read_documents;
use stepup_core::crd::plan::item_for;
use stepup_core::crd::{Manifests, read_manifests};
use stepup_core::decision::{CLIENT_HEADER, STATUS_HEADER, USER_HEADER};
use stepup_core::engine::{Engine, EngineConfig};
use stepup_core::layer::StepUpLayer;
use stepup_core::policy::{PolicyCache, PolicyIndex};
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::token::TokenVerifier;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The web page, embedded (no front-end build step).
const PAGE: &str = include_str!("app/page.html");
/// The example policies, embedded for a binary run outside the repository.
const EMBEDDED_POLICIES: [(&str, &str); 3] = [
    (
        "claims.yaml",
        include_str!("../../examples/policies/claims.yaml"),
    ),
    (
        "payments.yaml",
        include_str!("../../examples/policies/payments.yaml"),
    ),
    (
        "transfer.yaml",
        include_str!("../../examples/policies/transfer.yaml"),
    ),
];
/// Where the policies are read from by default (relative to the working directory).
const DEFAULT_POLICY_DIR: &str = "examples/policies";
/// The app client the demo's tokens are issued to.
pub const DEMO_CLIENT_ID: &str = "stepup-demo-client";
/// The demo user's phone number (SMS codes are printed on the console).
pub const DEMO_PHONE: &str = "+15555550100";

/// `stepup-demo` options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "stepup-demo",
    about = "Local demo of step-up authentication (development only): web page, sample API, step-up API and a development identity provider on one loopback port"
)]
pub struct DemoArgs {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "STEPUP_DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A StepUpPolicy manifest, or a directory of them (default: examples/policies when
    /// it exists, else the copies built into the binary).
    #[arg(long, env = "STEPUP_DEMO_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Listen on a non-loopback address anyway. The development identity provider lets
    /// anyone who reaches it create users: never expose it.
    #[arg(long, env = "STEPUP_DEMO_ALLOW_NON_LOOPBACK")]
    pub allow_non_loopback: bool,
    /// The demo user's name.
    #[arg(long, env = "STEPUP_DEMO_USER", default_value = "demo")]
    pub username: String,
    /// The demo user's password (default: a random one, printed at start).
    #[arg(long, env = "STEPUP_DEMO_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl DemoArgs {
    /// The defaults, listening on `listen`.
    pub fn on(listen: SocketAddr) -> DemoArgs {
        DemoArgs {
            listen,
            policies: None,
            allow_non_loopback: false,
            username: "demo".to_owned(),
            password: None,
        }
    }
}

/// A running demo. Dropping it (or [`Demo::stop`]) shuts the server down.
#[derive(Debug)]
pub struct Demo {
    /// The page's URL, e.g. `http://127.0.0.1:8080/`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The demo user's name.
    pub username: String,
    /// The demo user's password.
    pub password: String,
    /// Where the policies came from.
    pub policy_source: String,
    /// The development identity provider (e.g. to create more users).
    pub idp: Arc<DevIdp>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Demo {
    /// Binds, builds everything and starts serving; returns once the port is bound.
    pub async fn start(args: DemoArgs) -> anyhow::Result<Demo> {
        if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
            anyhow::bail!(
                "refusing to listen on {} : the demo is for local development only (anyone who reaches it can create users); use a loopback address such as 127.0.0.1, or pass --allow-non-loopback if you really must",
                args.listen
            );
        }
        let (index, policy_source) = load_policies(args.policies.as_deref())?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let base = format!("http://{addr}");

        let idp = Arc::new(
            DevIdp::new(DevIdpConfig::new(
                format!("{base}{DEV_IDP_PREFIX}"),
                DEMO_CLIENT_ID,
            ))
            .context("starting the development identity provider")?,
        );
        let password = match args.password {
            Some(p) => p,
            None => devidp::random_password(12).context("making a password")?,
        };
        idp.sign_up(&args.username, &password, Some(DEMO_PHONE))
            .context("creating the demo user")?;

        let verifier = Arc::new(TokenVerifier::new(idp.verifier_config(), idp.clone()));
        let now = stepup_core::clock::now();
        verifier
            .jwks()
            .refresh(now)
            .await
            .context("loading the development JWKS")?;
        let sessions = Arc::new(MemorySessionStore::new());
        let engine = Engine::new(
            Arc::new(PolicyCache::with_index(index)),
            verifier.clone(),
            sessions.clone(),
            EngineConfig::default(),
        );
        // The default verification: Cognito's own MFA challenge (password and code).
        let api = ApiState::new(verifier, sessions, idp.clone())
            .with_cors(CorsPolicy::origins([base.clone()]));
        let app = app(engine, api, idp.clone());

        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Demo {
            url: format!("{base}/"),
            addr,
            username: args.username,
            password,
            policy_source,
            idp,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner().await
    }

    async fn stop_inner(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.context("demo server task")??;
        }
        Ok(())
    }

    /// Waits until the server stops (it stops on an I/O error only).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        if let Some(task) = self.task.take() {
            task.await.context("demo server task")??;
        }
        Ok(())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The demo's router: the page, the sample API behind [`StepUpLayer`], the step-up API
/// and the development identity provider.
pub fn app(engine: Engine, api: ApiState, idp: Arc<DevIdp>) -> Router {
    let sample_api = Router::new()
        .route("/info", get(info))
        .route("/transfer", post(transfer))
        .route("/payments/{id}/approve", post(approve_payment))
        .layer(StepUpLayer::new(engine));
    Router::new()
        .route("/", get(page))
        .merge(sample_api)
        .merge(api_router(api))
        .merge(devidp::router(idp))
}

async fn page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

fn stepup_headers(headers: &HeaderMap) -> serde_json::Value {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    json!({
        STATUS_HEADER: h(STATUS_HEADER),
        USER_HEADER: h(USER_HEADER),
        CLIENT_HEADER: h(CLIENT_HEADER),
    })
}

/// `GET /info`: not privileged (`action: Allow`).
async fn info(headers: HeaderMap) -> Response {
    axum::Json(json!({
        "message": "Account information: balance 1,000.00 EUR",
        "receivedHeaders": stepup_headers(&headers),
    }))
    .into_response()
}

/// `POST /transfer`: privileged (`action: RequireStepUp`).
async fn transfer(headers: HeaderMap) -> Response {
    axum::Json(json!({
        "message": "Transfer of 100.00 EUR completed",
        "receivedHeaders": stepup_headers(&headers),
    }))
    .into_response()
}

/// `POST /payments/{id}/approve`: privileged in claims mode (`acrValues`, `maxAge`): the
/// token itself must prove a recent multi-factor sign-in.
async fn approve_payment(UrlPath(id): UrlPath<String>, headers: HeaderMap) -> Response {
    // The path segment is echoed only as digits: the page shows this body.
    let id: String = id.chars().filter(char::is_ascii_digit).take(12).collect();
    axum::Json(json!({
        "message": format!("Payment {id} approved"),
        "receivedHeaders": stepup_headers(&headers),
    }))
    .into_response()
}

/// The policy index of the manifests at `path` (or the default place, or the embedded
/// copies), and a description of where they came from.
pub fn load_policies(path: Option<&Path>) -> anyhow::Result<(PolicyIndex, String)> {
    let (manifests, source) = match path {
        Some(p) => (
            read_manifests(p).with_context(|| format!("reading policies from {}", p.display()))?,
            p.display().to_string(),
        ),
        None if Path::new(DEFAULT_POLICY_DIR).is_dir() => (
            read_manifests(Path::new(DEFAULT_POLICY_DIR))
                .with_context(|| format!("reading policies from {DEFAULT_POLICY_DIR}"))?,
            DEFAULT_POLICY_DIR.to_owned(),
        ),
        None => {
            let mut m = Manifests::default();
            for (name, text) in EMBEDDED_POLICIES {
                read_documents(&Path::new("embedded").join(name), text, &mut m)
                    .with_context(|| format!("reading the embedded {name}"))?;
            }
            (m, "the example policies built into the binary".to_owned())
        }
    };
    if let Some(bad) = manifests.unusable.first() {
        anyhow::bail!("{bad}");
    }
    let mut items = Vec::new();
    for input in manifests.to_inputs() {
        let rules = input.rules.map_err(|e| anyhow::anyhow!("{e}"))?;
        items.extend(rules.iter().map(|r| item_for(r, &input.meta)));
    }
    if items.is_empty() {
        anyhow::bail!("no StepUpPolicy rules found in {source}");
    }
    let index = PolicyIndex::from_items(&items);
    if let Some(bad) = index.malformed().first() {
        anyhow::bail!("a policy rule cannot be used: {bad:?}");
    }
    Ok((index, source))
}

fn banner(demo: &Demo) -> String {
    let line = "=".repeat(78);
    format!(
        "\n{line}\n  stepup DEMO - FOR LOCAL DEVELOPMENT ONLY. NOT FOR PRODUCTION.\n  \
         (in-memory stores, a development identity provider instead of Cognito,\n  \
         SMS codes printed on this console)\n\n  \
         Open      {url}\n  \
         User      {user}\n  \
         Password  {password}\n  \
         Policies  {source}\n            \
         (/transfer requires a step-up, /info does not;\n            \
         /payments/{{id}}/approve requires a recent MFA sign-in: claims mode)\n\n  \
         Stop with Ctrl-C.\n{line}\n",
        url = demo.url,
        user = demo.username,
        password = demo.password,
        source = demo.policy_source,
    )
}

/// Runs the demo from command-line arguments (`args` starts at `demo`) until Ctrl-C.
pub async fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match DemoArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Text logs for a person at a terminal; the demo has no metrics endpoint.
    let _ = stepup_runtime::init_logging(stepup_runtime::LogFormat::Text);
    let demo = match Demo::start(args).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("stepup-demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", banner(&demo));
    tokio::select! {
        r = demo.wait() => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stepup-demo: {e:#}");
                ExitCode::FAILURE
            }
        },
        () = stepup_runtime::shutdown_signal() => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests;
