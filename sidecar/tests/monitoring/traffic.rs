//! The sidecar in-process (its own metrics recorder, listeners and step-up API) on the
//! testkit's engine world, and traffic of every kind, so that every metric the sidecar
//! has is recorded at least once before `/metrics` is read.

use async_trait::async_trait;
use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::Arc;
use stepup_core::api::{
    ApiState, AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep,
    UserInfo,
};
use stepup_core::completion_cache::CompletionCache;
use stepup_core::engine::EngineConfig;
use stepup_core::item::{Attr, Item};
use stepup_core::session::Factor;
use stepup_core::testkit::seed_item;
use stepup_core::testkit::world::EngineWorld;
use stepup_core::token::{HttpJwksFetcher, TokenVerifier, VerifierConfig};
use stepup_core::{Engine, clock};
use stepup_sidecar::grpc::ExtAuthzService;
use stepup_sidecar::{ServeOptions, spawn_with_api, telemetry};

/// A user with an authenticator app whose password is never right: every answer is a
/// failed attempt, until the session locks.
#[derive(Debug)]
struct WrongPasswords;

#[async_trait]
impl IdentityProvider for WrongPasswords {
    async fn get_user(&self, _token: &str) -> Result<UserInfo, IdpError> {
        Ok(UserInfo {
            username: stepup_core::testkit::world::USER.into(),
            preferred_mfa: Some(MfaSetting::SoftwareToken),
            mfa_settings: vec![MfaSetting::SoftwareToken],
            ..UserInfo::default()
        })
    }
    async fn send_sms_code(&self, _token: &str) -> Result<(), IdpError> {
        Err(IdpError::InvalidParameter)
    }
    async fn verify_software_token(&self, _token: &str, _code: &str) -> Result<(), IdpError> {
        Err(IdpError::CodeMismatch)
    }
    async fn verify_sms_code(&self, _token: &str, _code: &str) -> Result<(), IdpError> {
        Err(IdpError::CodeMismatch)
    }
    async fn start_sign_in(&self, _: &str, _: &str, _: &str) -> Result<SignInStep, IdpError> {
        Err(IdpError::SignInRefused)
    }
    async fn respond_to_sign_in(
        &self,
        _: &str,
        _: &str,
        _: &AuthSession,
        _: ChallengeReply<'_>,
    ) -> Result<SignInStep, IdpError> {
        Err(IdpError::CodeMismatch)
    }
}

/// The process-wide recorder, as `main` installs it (once per test binary).
fn recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| telemetry::install_metrics().expect("the recorder installs"))
        .clone()
}

/// Runs the sidecar, sends it traffic of every kind and returns its `/metrics` text.
pub async fn scrape_after_traffic() -> String {
    let metrics = recorder();
    // The seed's items, a deny rule, two audited rules and one owned by a StepUpPolicy.
    let with = |mut item: Item, attr: &str, value: &str| {
        item.insert(attr.to_owned(), Attr::s(value));
        item
    };
    let world = EngineWorld::new(
        vec![
            seed_item("/admin", "STEP_UP_DENY"),
            with(
                seed_item("/audited/admin", "STEP_UP_DENY"),
                "enforcement",
                "AUDIT",
            ),
            with(
                seed_item("/audited/transfer", "STEP_UP_REQUIRED"),
                "enforcement",
                "AUDIT",
            ),
            with(
                seed_item("/payments", "STEP_UP_REQUIRED"),
                "owner",
                "shop/payments",
            ),
        ],
        clock::now(),
    )
    .await;

    // A JWKS that cannot be fetched (nothing listens on port 1), and a setting table
    // unreadable once.
    let unreachable = VerifierConfig {
        jwks_url: "http://127.0.0.1:1/.well-known/jwks.json".into(),
        ..world.issuer.config().clone()
    };
    let fetcher = Arc::new(HttpJwksFetcher::new().unwrap());
    let jwks = TokenVerifier::new(unreachable, fetcher)
        .jwks()
        .refresh(clock::now())
        .await;
    assert!(jwks.is_err());
    world.settings.set_unavailable(true);
    let policies = world.engine.policies();
    assert!(
        policies
            .refresh(world.settings.as_ref(), clock::now())
            .await
            .is_err()
    );
    world.settings.set_unavailable(false);
    policies
        .refresh(world.settings.as_ref(), clock::now())
        .await
        .unwrap();

    let verifier = world.engine.verifier();
    let engine = Engine::new(
        Arc::clone(policies),
        Arc::clone(verifier),
        world.sessions.clone(),
        EngineConfig::default(),
    )
    .with_completion_cache(Arc::new(CompletionCache::new(64, 30)));
    let api = ApiState::new(
        Arc::clone(verifier),
        world.sessions.clone(),
        Arc::new(WrongPasswords),
    );
    let options = ServeOptions {
        metrics: Some(metrics),
        ..ServeOptions::default()
    };
    let running = spawn_with_api(engine.clone(), stepup_core::api::router(api), options)
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let check_url = format!("http://{}/authz", running.addrs.http.tcp().unwrap());
    let check = |path: &str, authorization: String| {
        http.post(format!("{check_url}{path}"))
            .header("host", "api.example.com")
            .header("authorization", authorization)
            .send()
    };

    world.complete("stepped-up", Factor::SoftwareToken).await;
    let expect = [
        ("/info", world.bearer("plain"), 200),
        ("/transfer", world.bearer("plain"), 401),
        // Twice: a completion-cache miss, then a hit (and a token-cache hit).
        ("/transfer", world.bearer("stepped-up"), 200),
        ("/transfer", world.bearer("stepped-up"), 200),
        ("/payments", world.bearer("plain"), 401),
        ("/admin", world.bearer("plain"), 403),
        ("/audited/admin", world.bearer("plain"), 200),
        ("/audited/transfer", world.bearer("plain"), 200),
        ("/info", "Bearer not-a-token".to_owned(), 401),
        ("/info", "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned(), 401),
    ];
    for (path, authorization, status) in expect {
        let got = check(path, authorization).await.unwrap().status();
        assert_eq!(got, status, "POST {path}");
    }
    // The session table down: a privileged request fails closed.
    world.sessions.set_unavailable(true);
    let got = check("/transfer", world.bearer("down"))
        .await
        .unwrap()
        .status();
    assert_eq!(got, 403, "fail closed");
    world.sessions.set_unavailable(false);

    // The gRPC point, through the service's trait method (as Envoy's call lands there).
    let grpc = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    host: "api.example.com".into(),
                    path: "/info".into(),
                    headers: [("authorization".to_owned(), world.bearer("grpc"))].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    ExtAuthzService::new(engine)
        .check(tonic::Request::new(grpc))
        .await
        .unwrap();

    // The step-up API: a challenge, then wrong answers until the session locks (429).
    let api_url = format!("http://{}", running.addrs.api.unwrap());
    let token = world.bearer("guessed");
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{api_url}{path}"))
            .header("authorization", &token)
            .json(&body)
            .send()
    };
    let r = post("/initiate-auth", json!({})).await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let answer = json!({"step-up-type": "SOFTWARE_TOKEN_STEP_UP",
                        "challenge-response": "123456", "password": "wrong"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            post("/respond-to-challenge", answer.clone())
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses.last().map(|s| s.as_u16()),
        Some(429),
        "{statuses:?}"
    );

    let scrape = http.get(format!("http://{}/metrics", running.addrs.admin));
    let text = scrape.send().await.unwrap().text().await.unwrap();
    running.stop().await.unwrap();
    text
}
