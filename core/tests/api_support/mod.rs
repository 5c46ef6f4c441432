//! The step-up API test harness shared by `api.rs` (behaviour common to both
//! verifications, and the seed-compatible mode) and `api_mfa.rs` (Cognito's MFA
//! challenge, the default): requests through `tower::ServiceExt::oneshot`, tokens signed by
//! the test issuer, the in-memory session store, and [`FakeIdp`], a double answering like
//! Cognito (moto cannot stand in for the SMS calls and checks TOTP codes only against one
//! fixed secret), counting every call that checks a code or a password.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stepup_core::api::{
    ApiState, AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep,
    SignedInToken, UserInfo, Verification, router,
};
use stepup_core::clock;
use stepup_core::session::Session;
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::TestIssuer;
use tower::ServiceExt;

pub const RIGHT_CODE: &str = "123456";
pub const WRONG_CODE: &str = "654321";
pub const PASSWORD: &str = "correct horse battery staple";
pub const JTI: &str = "jti-1";

/// Answers like Cognito for one user: `GetUser` returns the configured user; the one
/// configured code is accepted by the verification calls and by the MFA challenge; the
/// password sign-in asks for the user's factor as Cognito would. `fail_with` makes every
/// call fail with that error; `delay` slows every check, to widen races.
#[derive(Debug)]
pub struct FakeIdp {
    pub user: Mutex<UserInfo>,
    pub code: String,
    pub fail_with: Mutex<Option<IdpError>>,
    pub delay: Mutex<Duration>,
    /// The access token a completed sign-in returns (the harness signs one for the user).
    pub signed_in_token: Mutex<String>,
    pub sms_sent: AtomicUsize,
    /// Codes checked (`VerifySoftwareToken`, `VerifyUserAttribute`, the MFA challenge).
    pub verify_calls: AtomicUsize,
    /// Passwords checked (`InitiateAuth`).
    pub sign_in_calls: AtomicUsize,
}

impl FakeIdp {
    pub fn new(preferred: Option<MfaSetting>, settings: &[MfaSetting]) -> FakeIdp {
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
            delay: Mutex::new(Duration::ZERO),
            signed_in_token: Mutex::new(String::new()),
            sms_sent: AtomicUsize::new(0),
            verify_calls: AtomicUsize::new(0),
            sign_in_calls: AtomicUsize::new(0),
        }
    }

    pub fn totp_user() -> FakeIdp {
        FakeIdp::new(
            Some(MfaSetting::SoftwareToken),
            &[MfaSetting::SoftwareToken],
        )
    }

    pub fn sms_user() -> FakeIdp {
        FakeIdp::new(Some(MfaSetting::Sms), &[MfaSetting::Sms])
    }

    /// A user with no second factor enrolled.
    pub fn password_only_user() -> FakeIdp {
        FakeIdp::new(None, &[])
    }

    pub fn fail_with(&self, e: Option<IdpError>) {
        *self.fail_with.lock().unwrap() = e;
    }

    pub fn calls(&self) -> (usize, usize) {
        (
            self.sign_in_calls.load(Ordering::SeqCst),
            self.verify_calls.load(Ordering::SeqCst),
        )
    }

    fn check(&self) -> Result<(), IdpError> {
        match self.fail_with.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn slow(&self) {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    async fn verify(&self, code: &str) -> Result<(), IdpError> {
        self.check()?;
        self.verify_calls.fetch_add(1, Ordering::SeqCst);
        self.slow().await;
        if code == self.code {
            Ok(())
        } else {
            Err(IdpError::CodeMismatch)
        }
    }

    /// The step Cognito answers after the password, from the user's MFA settings.
    fn after_password(&self) -> SignInStep {
        let user = self.user.lock().unwrap().clone();
        let session = AuthSession("cognito-session".into());
        let factor = match (user.preferred_mfa, user.mfa_settings.as_slice()) {
            (Some(f), _) => Some(f),
            (None, [only]) => Some(*only),
            (None, []) => None,
            (None, _) => return SignInStep::SelectMfa { session },
        };
        match factor {
            Some(factor) => SignInStep::Mfa { factor, session },
            None => SignInStep::SignedIn {
                access_token: SignedInToken(self.signed_in_token.lock().unwrap().clone()),
            },
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
        self.verify(code).await
    }

    async fn verify_sms_code(&self, _access_token: &str, code: &str) -> Result<(), IdpError> {
        self.verify(code).await
    }

    async fn start_sign_in(
        &self,
        _client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<SignInStep, IdpError> {
        self.check()?;
        self.sign_in_calls.fetch_add(1, Ordering::SeqCst);
        self.slow().await;
        if username != self.user.lock().unwrap().username || password != PASSWORD {
            return Err(IdpError::SignInRefused);
        }
        let step = self.after_password();
        if matches!(
            step,
            SignInStep::Mfa {
                factor: MfaSetting::Sms,
                ..
            }
        ) {
            self.sms_sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(step)
    }

    async fn respond_to_sign_in(
        &self,
        _client_id: &str,
        _username: &str,
        session: &AuthSession,
        reply: ChallengeReply<'_>,
    ) -> Result<SignInStep, IdpError> {
        self.check()?;
        if session.0 != "cognito-session" {
            return Err(IdpError::SignInRefused);
        }
        match reply {
            ChallengeReply::Select(factor) => Ok(SignInStep::Mfa {
                factor,
                session: session.clone(),
            }),
            ChallengeReply::Code { code, .. } => {
                self.verify(code).await?;
                Ok(SignInStep::SignedIn {
                    access_token: SignedInToken(self.signed_in_token.lock().unwrap().clone()),
                })
            }
        }
    }
}

pub struct Api {
    pub app: Router,
    pub store: Arc<MemorySessionStore>,
    pub idp: Arc<FakeIdp>,
    pub issuer: TestIssuer,
    pub token: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// The API over `idp`, with `configure` applied to the default state; the sign-in returns
/// a fresh token of the same user (`sub` as the caller's).
pub async fn api_with(idp: FakeIdp, configure: impl FnOnce(ApiState) -> ApiState) -> Api {
    let now = clock::now();
    let issuer = TestIssuer::new();
    let store = Arc::new(MemorySessionStore::new());
    *idp.signed_in_token.lock().unwrap() = issuer.token("alice", "jti-signed-in", now);
    let idp = Arc::new(idp);
    let state = ApiState::new(
        Arc::new(issuer.verifier(now).await),
        store.clone(),
        idp.clone(),
    );
    let token = issuer.token("alice", JTI, now);
    Api {
        app: router(configure(state)),
        store,
        idp,
        issuer,
        token,
    }
}

/// The API in the seed-compatible mode.
pub async fn seed_api_with(idp: FakeIdp, configure: impl FnOnce(ApiState) -> ApiState) -> Api {
    api_with(idp, |s| {
        configure(s.with_verification(Verification::SeedCompatible))
    })
    .await
}

/// The API in the seed-compatible mode, defaults otherwise.
pub async fn seed_api(idp: FakeIdp) -> Api {
    seed_api_with(idp, |s| s).await
}

pub fn answer_body(step_up_type: &str, code: &str) -> String {
    json!({"step-up-type": step_up_type, "challenge-response": code}).to_string()
}

/// An answer with the password next to the code (Cognito's MFA challenge in one call).
pub fn answer_with_password(step_up_type: &str, code: &str, password: &str) -> String {
    json!({"step-up-type": step_up_type, "challenge-response": code, "password": password})
        .to_string()
}

impl Api {
    pub async fn send(&self, method: Method, path: &str, auth: Option<&str>, body: &str) -> Answer {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        self.send_with(method, path, &headers, body).await
    }

    /// A request with exactly these headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Body::from(body.to_owned())).unwrap();
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

    pub async fn initiate(&self) -> Answer {
        self.initiate_with("").await
    }

    pub async fn initiate_with(&self, body: &str) -> Answer {
        let auth = format!("Bearer {}", self.token);
        self.send(Method::POST, "/initiate-auth", Some(&auth), body)
            .await
    }

    pub async fn respond(&self, step_up_type: &str, code: &str) -> Answer {
        self.respond_raw(&answer_body(step_up_type, code)).await
    }

    pub async fn respond_raw(&self, body: &str) -> Answer {
        let auth = format!("Bearer {}", self.token);
        self.send(Method::POST, "/respond-to-challenge", Some(&auth), body)
            .await
    }

    pub async fn session(&self, id: &str) -> Session {
        self.store
            .get(id, clock::now())
            .await
            .unwrap()
            .expect("a session")
    }
}

pub fn challenge_failed() -> Value {
    json!({"name": "Status", "details": "Challenge Failed - Code Mismatch or Expired Code"})
}

pub fn bad_request() -> Value {
    json!({"name": "Status", "details": "Bad Request"})
}

/// `n` answers with `body`, sent at the same moment (behind a barrier) while every check
/// at the identity provider takes 20 ms, so that they overlap; their answers.
pub async fn burst(api: &Arc<Api>, n: usize, body: &str) -> Vec<Answer> {
    *api.idp.delay.lock().unwrap() = Duration::from_millis(20);
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (api, barrier, body) = (api.clone(), barrier.clone(), body.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                api.respond_raw(&body).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}
