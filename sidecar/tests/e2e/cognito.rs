//! moto as Cognito: users of the fixture's pool, the JWKS the sidecar's verifier trusts,
//! and what a thief holding only an access token can do at Cognito.
//!
//! The verifier trusts moto's JWKS plus the test fixture key, served together by the test:
//! moto only issues tokens valid for an hour, so an expired token is signed with the
//! fixture key (moto's issuer and client id, `exp` in the past).

use super::requests::client;
use axum::Router;
use serde_json::Value;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use stepup_core::clock;
use stepup_core::testkit::moto::{self, MotoPool};
use stepup_core::testkit::{MOTO_TOTP_SECRET, TEST_JWKS, jwt_claims, moto_totp};
use tokio::task::JoinHandle;

/// A user of the pool and its access tokens, each with its own `jti`.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub tokens: Vec<String>,
}

impl User {
    /// A user signed in `sessions` times (one access token each), then with a TOTP app
    /// associated, verified, enabled and preferred (so `/initiate-auth` answers
    /// `SOFTWARE_TOKEN_STEP_UP` and moto's sign-in asks for `SOFTWARE_TOKEN_MFA`).
    pub async fn with_software_token(pool: &MotoPool, name: &str, sessions: usize) -> User {
        let user = User::without_second_factor(pool, name, sessions).await;
        let token = &user.tokens[0];
        pool.associate_software_token(token).await;
        // Cognito (and moto) accept the preference only for a verified token.
        pool.client
            .verify_software_token()
            .access_token(token)
            .user_code(code_for_a_direct_call().await)
            .send()
            .await
            .unwrap();
        pool.set_software_token_preferred(token).await;
        user
    }

    /// A user with a password only, signed in `sessions` times.
    pub async fn without_second_factor(pool: &MotoPool, name: &str, sessions: usize) -> User {
        pool.create_user(name, None).await;
        let mut tokens = Vec::new();
        // Signed in before MFA is set up: afterwards moto would answer with an MFA challenge.
        for _ in 0..sessions {
            tokens.push(pool.sign_in(name).await);
        }
        let jtis: HashSet<String> = tokens.iter().map(|t| jti(t)).collect();
        assert_eq!(jtis.len(), sessions, "one jti per sign-in");
        // The name the sidecar reports upstream and keeps in the session item.
        assert_eq!(jwt_claims(&tokens[0])["username"], name);
        User {
            name: name.to_owned(),
            tokens,
        }
    }

    /// The `i`th access token.
    pub fn token(&self, i: usize) -> String {
        self.tokens[i].clone()
    }
}

/// The code of moto's secret now, for a call straight to moto: at least a second before
/// its step ends (moto allows no clock skew). Codes that go through Envoy and the sidecar
/// come from [`moto::totp_now`], which keeps 3 s.
pub async fn code_for_a_direct_call() -> String {
    let now = clock::now();
    if now.as_secs() % 30 >= 29 {
        tokio::time::sleep(Duration::from_secs(30 - now.as_secs() % 30)).await;
    }
    moto_totp(clock::now())
}

/// The `jti` of a token (the session item's key).
pub fn jti(token: &str) -> String {
    jwt_claims(token)["jti"].as_str().unwrap().to_owned()
}

/// Serves moto's JWKS of the pool plus the test fixture key as one JWKS document at
/// `http://<addr>/jwks.json`.
pub async fn serve_jwks(moto: &str, pool_id: &str) -> (SocketAddr, JoinHandle<()>) {
    let mut jwks: Value = client()
        .get(format!("{moto}/{pool_id}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fixture: Value = serde_json::from_str(TEST_JWKS).unwrap();
    let keys = jwks["keys"].as_array_mut().unwrap();
    keys.extend(fixture["keys"].as_array().unwrap().iter().cloned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// What a thief holding only `stolen` (a victim's access token) can do at Cognito: the
/// enrolment calls any token holder may make. `AssociateSoftwareToken` hands out a new
/// secret (moto's is always [`MOTO_TOTP_SECRET`]), the thief's authenticator app computes
/// a code from it, and `VerifySoftwareToken` accepts that code. Returns the code, as the
/// thief's app shows it; a fresh SDK client is used, with nothing of the pool's admin.
pub async fn thief_enrols_own_authenticator(moto_endpoint: &str, stolen: &str) -> String {
    let cognito = moto::client(moto_endpoint);
    let secret = cognito
        .associate_software_token()
        .access_token(stolen)
        .send()
        .await
        .expect("AssociateSoftwareToken with the stolen token")
        .secret_code()
        .map(str::to_owned);
    assert_eq!(secret.as_deref(), Some(MOTO_TOTP_SECRET));
    let code = code_for_a_direct_call().await;
    let verified = cognito
        .verify_software_token()
        .access_token(stolen)
        .user_code(&code)
        .friendly_device_name("thief's phone")
        .send()
        .await
        .expect("VerifySoftwareToken with the stolen token and the thief's code");
    assert_eq!(verified.status().map(|s| s.as_str()), Some("SUCCESS"));
    code
}
