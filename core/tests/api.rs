//! The step-up API router end to end in process: requests through
//! `tower::ServiceExt::oneshot`, tokens signed by the test issuer, the in-memory session
//! store, and [`FakeIdp`], a test double answering like Cognito (moto cannot stand in for
//! the SMS calls, and it checks TOTP codes only against one fixed secret).

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stepup_core::api::{ApiState, IdentityProvider, IdpError, MfaSetting, UserInfo, router};
use stepup_core::clock;
use stepup_core::session::{Factor, Session, SessionLimits, SessionStatus};
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::TestIssuer;
use tower::ServiceExt;

const RIGHT_CODE: &str = "123456";
const WRONG_CODE: &str = "654321";
const JTI: &str = "jti-1";

// ---------------------------------------------------------------------------------------
// The identity-provider double
// ---------------------------------------------------------------------------------------

/// Answers like Cognito for one user: `GetUser` returns the configured user, the one
/// configured code is accepted by both verification calls, anything else is a mismatch.
/// `fail_with` makes every call fail with that error.
#[derive(Debug)]
struct FakeIdp {
    user: Mutex<UserInfo>,
    code: String,
    fail_with: Mutex<Option<IdpError>>,
    sms_sent: AtomicUsize,
    verify_calls: AtomicUsize,
}

impl FakeIdp {
    fn new(preferred: Option<MfaSetting>, settings: &[MfaSetting]) -> FakeIdp {
        FakeIdp {
            user: Mutex::new(UserInfo {
                username: "alice".into(),
                preferred_mfa: preferred,
                mfa_settings: settings.to_vec(),
                has_phone_number: true,
                phone_number_verified: true,
            }),
            code: RIGHT_CODE.into(),
            fail_with: Mutex::new(None),
            sms_sent: AtomicUsize::new(0),
            verify_calls: AtomicUsize::new(0),
        }
    }

    fn totp_user() -> FakeIdp {
        FakeIdp::new(
            Some(MfaSetting::SoftwareToken),
            &[MfaSetting::SoftwareToken],
        )
    }

    fn sms_user() -> FakeIdp {
        FakeIdp::new(Some(MfaSetting::Sms), &[MfaSetting::Sms])
    }

    fn fail_with(&self, e: Option<IdpError>) {
        *self.fail_with.lock().unwrap() = e;
    }

    fn check(&self) -> Result<(), IdpError> {
        match self.fail_with.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn verify(&self, code: &str) -> Result<(), IdpError> {
        self.check()?;
        self.verify_calls.fetch_add(1, Ordering::SeqCst);
        if code == self.code {
            Ok(())
        } else {
            Err(IdpError::CodeMismatch)
        }
    }
}

#[async_trait]
impl IdentityProvider for FakeIdp {
    async fn get_user(&self, _access_token: &str) -> Result<UserInfo, IdpError> {
        self.check()?;
        Ok(self.user.lock().unwrap().clone())
    }

    async fn send_sms_code(&self, _access_token: &str) -> Result<(), IdpError> {
        self.check()?;
        if !self.user.lock().unwrap().has_phone_number {
            return Err(IdpError::InvalidParameter);
        }
        self.sms_sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn verify_software_token(&self, _access_token: &str, code: &str) -> Result<(), IdpError> {
        self.verify(code)
    }

    async fn verify_sms_code(&self, _access_token: &str, code: &str) -> Result<(), IdpError> {
        self.verify(code)
    }
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

struct Api {
    app: Router,
    store: Arc<MemorySessionStore>,
    idp: Arc<FakeIdp>,
    token: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn api_with(idp: FakeIdp, configure: impl FnOnce(ApiState) -> ApiState) -> Api {
    let now = clock::now();
    let issuer = TestIssuer::new();
    let store = Arc::new(MemorySessionStore::new());
    let idp = Arc::new(idp);
    let state = ApiState::new(
        Arc::new(issuer.verifier(now).await),
        store.clone(),
        idp.clone(),
    );
    Api {
        app: router(configure(state)),
        store,
        idp,
        token: issuer.token("alice", JTI, now),
    }
}

async fn api(idp: FakeIdp) -> Api {
    api_with(idp, |s| s).await
}

fn answer_body(step_up_type: &str, code: &str) -> String {
    json!({"step-up-type": step_up_type, "challenge-response": code}).to_string()
}

impl Api {
    async fn send(&self, method: Method, path: &str, auth: Option<&str>, body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let req = req
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn initiate(&self) -> Answer {
        let auth = format!("Bearer {}", self.token);
        self.send(Method::POST, "/initiate-auth", Some(&auth), "")
            .await
    }

    async fn respond(&self, step_up_type: &str, code: &str) -> Answer {
        self.respond_raw(&answer_body(step_up_type, code)).await
    }

    async fn respond_raw(&self, body: &str) -> Answer {
        let auth = format!("Bearer {}", self.token);
        self.send(Method::POST, "/respond-to-challenge", Some(&auth), body)
            .await
    }

    async fn session(&self, id: &str) -> Session {
        self.store
            .get(id, clock::now())
            .await
            .unwrap()
            .expect("a session")
    }
}

fn challenge_failed() -> Value {
    json!({"name": "Status", "details": "Challenge Failed - Code Mismatch or Expired Code"})
}

fn bad_request() -> Value {
    json!({"name": "Status", "details": "Bad Request"})
}

// ---------------------------------------------------------------------------------------
// /initiate-auth
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn initiate_for_a_totp_user_asks_for_the_software_token_and_creates_the_session() {
    let api = api(FakeIdp::totp_user()).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"code": "SOFTWARE_TOKEN_STEP_UP"}));
    let s = api.session(JTI).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.user_id, "alice");
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn initiate_for_an_sms_user_sends_one_code() {
    let api = api(FakeIdp::sms_user()).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"code": "SMS_STEP_UP"}));
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn initiate_for_a_user_without_preference_answers_maybe_software_token() {
    let api = api(FakeIdp::new(None, &[])).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"code": "MAYBE_SOFTWARE_TOKEN_STEP_UP"}));
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn initiate_accepts_the_bare_jwt_the_seed_web_app_sends() {
    let api = api(FakeIdp::totp_user()).await;
    let a = api
        .send(Method::POST, "/initiate-auth", Some(&api.token), "")
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_second_sms_within_the_interval_is_refused_with_429_and_retry_after() {
    let api = api_with(FakeIdp::sms_user(), |s| s.with_sms_min_interval_secs(30)).await;
    assert_eq!(api.initiate().await.status, StatusCode::OK);
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["code"], "TOO_MANY_REQUESTS");
    assert_eq!(a.headers["retry-after"], "30");
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn initiating_again_keeps_the_live_session_and_its_failed_attempts() {
    let api = api(FakeIdp::totp_user()).await;
    api.initiate().await;
    api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await;
    assert_eq!(api.initiate().await.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.failed_attempts, 1);
}

#[tokio::test]
async fn a_bad_or_missing_token_is_401_unauthenticated_on_both_endpoints() {
    let api = api(FakeIdp::totp_user()).await;
    let forged = format!("Bearer {}x", api.token);
    let other_issuer_token = {
        let issuer = TestIssuer::new();
        let mut claims = issuer.claims("alice", JTI, clock::now());
        claims["iss"] = json!("https://evil.example");
        issuer.sign(&claims)
    };
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        let body = answer_body("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE);
        for auth in [
            None,
            Some("Bearer garbage"),
            Some(forged.as_str()),
            Some(other_issuer_token.as_str()),
        ] {
            let a = api.send(Method::POST, path, auth, &body).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(a.body, json!({"code": "UNAUTHENTICATED"}));
            assert!(
                a.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    assert_eq!(api.idp.verify_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_token_cognito_no_longer_accepts_is_401_unauthenticated() {
    let api = api(FakeIdp::totp_user()).await;
    api.idp.fail_with(Some(IdpError::NotAuthorized));
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, json!({"code": "UNAUTHENTICATED"}));
}

#[tokio::test]
async fn an_idp_limit_is_429_on_both_endpoints() {
    let api = api(FakeIdp::sms_user()).await;
    api.idp.fail_with(Some(IdpError::LimitExceeded));
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["code"], "TOO_MANY_REQUESTS");
    let a = api.respond("SMS_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_unavailable_idp_is_503() {
    let api = api(FakeIdp::totp_user()).await;
    api.idp
        .fail_with(Some(IdpError::Unavailable("connection refused".into())));
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["code"], "UNAVAILABLE");
    assert!(!a.body.to_string().contains("connection refused"));
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_unavailable_store_is_503_on_both_endpoints() {
    let api = api(FakeIdp::totp_user()).await;
    api.store.set_unavailable(true);
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["code"], "UNAVAILABLE");
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["code"], "UNAVAILABLE");
}

// ---------------------------------------------------------------------------------------
// /respond-to-challenge
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_right_code_completes_the_session_now() {
    let api = api(FakeIdp::totp_user()).await;
    api.initiate().await;
    let before = clock::now();
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    let after = clock::now();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        json!({"name": "Status", "details": "Challenge Successful"})
    );
    let s = api.session(JTI).await;
    assert_eq!(s.status, SessionStatus::Completed);
    let at = s.completed_at.unwrap();
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    assert_eq!(s.factor, Some(Factor::SoftwareToken));
}

#[tokio::test]
async fn responding_without_initiate_creates_and_completes_the_session() {
    let api = api(FakeIdp::new(None, &[])).await;
    let a = api
        .respond("MAYBE_SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.status, SessionStatus::Completed);
}

#[tokio::test]
async fn an_sms_code_completes_the_session_with_the_sms_factor() {
    let api = api(FakeIdp::sms_user()).await;
    api.initiate().await;
    let a = api.respond("SMS_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.factor, Some(Factor::Sms));
}

#[tokio::test]
async fn sessions_are_keyed_by_origin_jti_when_configured() {
    let api = api_with(FakeIdp::totp_user(), |s| s.with_origin_jti(true)).await;
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::OK);
    let key = format!("origin-{JTI}");
    assert_eq!(api.session(&key).await.status, SessionStatus::Completed);
    assert!(api.store.get(JTI, clock::now()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_wrong_code_is_401_and_counted_in_the_store() {
    let api = api(FakeIdp::totp_user()).await;
    api.initiate().await;
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, challenge_failed());
    let s = api.session(JTI).await;
    assert_eq!(s.failed_attempts, 1);
    assert_eq!(s.status, SessionStatus::Required);
}

#[tokio::test]
async fn an_expired_code_is_401_and_counted() {
    let api = api(FakeIdp::sms_user()).await;
    api.initiate().await;
    api.idp.fail_with(Some(IdpError::ExpiredCode));
    let a = api.respond("SMS_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, challenge_failed());
    assert_eq!(api.session(JTI).await.failed_attempts, 1);
}

#[tokio::test]
async fn attempts_past_the_limit_are_429_and_then_even_the_right_code_is_refused() {
    let limits = SessionLimits {
        max_failed_attempts: 3,
        ..SessionLimits::default()
    };
    let api = api_with(FakeIdp::totp_user(), |s| s.with_limits(limits)).await;
    api.initiate().await;
    for _ in 0..2 {
        let a = api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the failure that reaches the limit"
    );
    assert!(a.headers.contains_key("retry-after"));

    let calls = api.idp.verify_calls.load(Ordering::SeqCst);
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["code"], "TOO_MANY_REQUESTS");
    assert_eq!(
        api.idp.verify_calls.load(Ordering::SeqCst),
        calls,
        "a locked session does not reach the IdP"
    );
    let s = api.session(JTI).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 3);

    // Initiating again does not unlock it either.
    assert_eq!(api.initiate().await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_same_right_code_again_is_a_replay_and_refused() {
    let api = api(FakeIdp::totp_user()).await;
    assert_eq!(
        api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE)
            .await
            .status,
        StatusCode::OK
    );
    let completed = api.session(JTI).await;
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, challenge_failed());
    assert_eq!(
        api.session(JTI).await.version,
        completed.version,
        "untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_answers_are_all_counted() {
    let api = api(FakeIdp::totp_user()).await;
    api.initiate().await;
    let api = Arc::new(api);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await })
        })
        .collect();
    let mut counted = 0;
    for t in tasks {
        let a = t.await.unwrap();
        // A request that lost every retry is 503; all others were counted.
        if a.status == StatusCode::UNAUTHORIZED {
            counted += 1;
        }
    }
    assert_eq!(api.session(JTI).await.failed_attempts, counted);
    assert!(counted >= 1);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_not_counted() {
    let api = api(FakeIdp::totp_user()).await;
    api.initiate().await;
    for body in [
        "",
        "not json",
        "[]",
        r#"{"step-up-type": "SOFTWARE_TOKEN_STEP_UP"}"#,
        r#"{"challenge-response": "123456"}"#,
        &answer_body("PASSWORD_STEP_UP", RIGHT_CODE),
        &answer_body("software_token_step_up", RIGHT_CODE),
        &answer_body("SOFTWARE_TOKEN_STEP_UP", "12345a"),
        &answer_body("SOFTWARE_TOKEN_STEP_UP", "12345"),
        &answer_body("SOFTWARE_TOKEN_STEP_UP", "123456789"),
        &answer_body("SOFTWARE_TOKEN_STEP_UP", ""),
        r#"{"step-up-type": "SOFTWARE_TOKEN_STEP_UP", "challenge-response": 123456}"#,
    ] {
        let a = api.respond_raw(body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.body, bad_request(), "{body}");
    }
    assert_eq!(api.session(JTI).await.failed_attempts, 0);
    assert_eq!(api.idp.verify_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_over_4_kib_is_refused() {
    let api = api(FakeIdp::totp_user()).await;
    let padding = "x".repeat(5000);
    let body = format!(
        r#"{{"step-up-type": "SOFTWARE_TOKEN_STEP_UP", "challenge-response": "123456", "pad": "{padding}"}}"#
    );
    let a = api.respond_raw(&body).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.idp.verify_calls.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn preflight_answers_the_seed_cors_headers_on_both_paths() {
    let api = api(FakeIdp::totp_user()).await;
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        let a = api.send(Method::OPTIONS, path, None, "").await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(
            a.headers["access-control-allow-headers"],
            "Content-Type,Authorization,X-Amz-Date,X-Api-Key,X-Amz-Security-Token"
        );
        assert_eq!(a.headers["access-control-allow-methods"], "OPTIONS,POST");
    }
}

#[tokio::test]
async fn every_answer_carries_the_configured_allow_origin() {
    let api = api_with(FakeIdp::totp_user(), |s| {
        s.with_cors_allow_origin("https://app.example")
    })
    .await;
    let ok = api.initiate().await;
    let unauthenticated = api.send(Method::POST, "/initiate-auth", None, "").await;
    let bad = api.respond_raw("nope").await;
    let preflight = api
        .send(Method::OPTIONS, "/respond-to-challenge", None, "")
        .await;
    for a in [ok, unauthenticated, bad, preflight] {
        assert_eq!(
            a.headers["access-control-allow-origin"], "https://app.example",
            "{}",
            a.status
        );
    }
}
