//! [`CognitoIdp`] through the real AWS SDK against moto standing in for Cognito user pools
//! (`./scripts/test` starts it and exports `MOTO_ENDPOINT`; `scripts/moto-cognito.sh`).
//! Without the variable the tests are skipped with a note, except under `CI=true`, where
//! they fail.
//!
//! moto starts with `MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true`, so `VerifySoftwareToken`
//! really checks the RFC 6238 code of its one fixed secret (`asdfasdfasdf`, no clock-skew
//! window); the test computes that code itself. moto does not implement
//! `GetUserAttributeVerificationCode` / `VerifyUserAttribute` (HTTP 500): the client must
//! report that as `Unavailable`, promptly.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::retry::RetryConfig;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
    SoftwareTokenMfaSettingsType,
};
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::api::cognito::local_config;
use stepup_core::api::{ApiState, CognitoIdp, IdentityProvider, IdpError, MfaSetting, router};
use stepup_core::clock;
use stepup_core::session::SessionStatus;
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::token::{HttpJwksFetcher, TokenVerifier, VerifierConfig};
use tower::ServiceExt;

const REGION: &str = "us-east-1";
const PASSWORD: &str = "Str0ng-Passw0rd!";

/// The code moto accepts now, computed far enough from a step boundary that it is still
/// valid when moto checks it (moto allows no skew window).
async fn moto_totp_now() -> String {
    let mut now = clock::now();
    if now % 30 >= 27 {
        tokio::time::sleep(Duration::from_secs(30 - now % 30)).await;
        now = clock::now();
    }
    stepup_core::testkit::moto_totp(now)
}

// ---------------------------------------------------------------------------------------
// moto fixtures
// ---------------------------------------------------------------------------------------

fn moto_endpoint() -> Option<String> {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => Some(e),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "moto missing: MOTO_ENDPOINT is not set under CI=true (run the tests with ./scripts/test)"
        ),
        _ => {
            eprintln!("skipping: MOTO_ENDPOINT not set (run ./scripts/test)");
            None
        }
    }
}

/// A client for moto: one attempt per call (moto answers unimplemented calls with a 500,
/// which the SDK would otherwise retry) and short timeouts.
fn moto_client(endpoint: &str) -> Client {
    let timeouts = aws_sdk_cognitoidentityprovider::config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(10))
        .build();
    Client::from_conf(
        local_config(endpoint, REGION)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeouts)
            .build(),
    )
}

struct Pool {
    client: Client,
    pool_id: String,
    client_id: String,
}

/// A fresh user pool with an app client allowing USER_PASSWORD_AUTH.
async fn pool(client: Client) -> Pool {
    let pool_id = client
        .create_user_pool()
        .pool_name(format!("stepup-test-{}", clock::now()))
        .send()
        .await
        .unwrap()
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_owned();
    let client_id = client
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("stepup")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap()
        .to_owned();
    Pool {
        client,
        pool_id,
        client_id,
    }
}

impl Pool {
    /// Creates a confirmed user with a phone number and signs it in: its access token.
    async fn user(&self, username: &str) -> String {
        self.client
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .message_action(MessageActionType::Suppress)
            .user_attributes(
                AttributeType::builder()
                    .name("phone_number")
                    .value("+15555550100")
                    .build()
                    .unwrap(),
            )
            .user_attributes(
                AttributeType::builder()
                    .name("phone_number_verified")
                    .value("true")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(PASSWORD)
            .permanent(true)
            .send()
            .await
            .unwrap();
        let auth = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await
            .unwrap();
        auth.authentication_result()
            .and_then(|r| r.access_token())
            .expect("an access token")
            .to_owned()
    }

    /// AssociateSoftwareToken: moto's secret is always the same.
    async fn associate_software_token(&self, access_token: &str) {
        let secret = self
            .client
            .associate_software_token()
            .access_token(access_token)
            .send()
            .await
            .unwrap()
            .secret_code()
            .unwrap()
            .to_owned();
        assert_eq!(secret, stepup_core::testkit::MOTO_TOTP_SECRET);
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cognito_idp_reads_the_user_and_verifies_software_token_codes() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(moto_client(&endpoint)).await;
    let token = pool.user("alice").await;
    let idp = CognitoIdp::new(pool.client.clone());

    let user = idp.get_user(&token).await.unwrap();
    assert_eq!(user.username, "alice");
    assert_eq!(user.preferred_mfa, None);
    assert!(user.mfa_settings.is_empty());
    assert!(user.has_phone_number);
    assert!(user.phone_number_verified);

    pool.associate_software_token(&token).await;
    let right = moto_totp_now().await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        idp.verify_software_token(&token, wrong).await,
        Err(IdpError::CodeMismatch)
    );
    assert_eq!(idp.verify_software_token(&token, &right).await, Ok(()));

    // With the software token preferred, GetUser reports it.
    pool.client
        .set_user_mfa_preference()
        .access_token(&token)
        .software_token_mfa_settings(
            SoftwareTokenMfaSettingsType::builder()
                .enabled(true)
                .preferred_mfa(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let user = idp.get_user(&token).await.unwrap();
    assert_eq!(user.preferred_mfa, Some(MfaSetting::SoftwareToken));
    assert_eq!(user.mfa_settings, vec![MfaSetting::SoftwareToken]);
}

#[tokio::test]
async fn a_garbage_access_token_is_not_authorized() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let idp = CognitoIdp::new(moto_client(&endpoint));
    assert_eq!(
        idp.get_user("not-a-token").await,
        Err(IdpError::NotAuthorized)
    );
    assert_eq!(
        idp.verify_software_token("not-a-token", "123456").await,
        Err(IdpError::NotAuthorized)
    );
}

#[tokio::test]
async fn calls_moto_does_not_implement_are_unavailable_without_hanging() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(moto_client(&endpoint)).await;
    let token = pool.user("bob").await;
    let idp = CognitoIdp::new(pool.client.clone());
    let sent = tokio::time::timeout(Duration::from_secs(15), idp.send_sms_code(&token))
        .await
        .expect("no hang");
    assert!(matches!(sent, Err(IdpError::Unavailable(_))), "{sent:?}");
    let verified = tokio::time::timeout(
        Duration::from_secs(15),
        idp.verify_sms_code(&token, "123456"),
    )
    .await
    .expect("no hang");
    assert!(
        matches!(verified, Err(IdpError::Unavailable(_))),
        "{verified:?}"
    );
    // The log text names the operation, never the token.
    if let Err(IdpError::Unavailable(detail)) = verified {
        assert!(detail.contains("VerifyUserAttribute"), "{detail}");
        assert!(!detail.contains(&token));
    }
}

/// The whole step-up through the router: a moto access token (verified against moto's
/// JWKS), `/initiate-auth`, then `/respond-to-challenge` with the real TOTP code.
#[tokio::test]
async fn a_moto_user_steps_up_through_the_router() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(moto_client(&endpoint)).await;
    let token = pool.user("carol").await;
    pool.associate_software_token(&token).await;
    // Enrolment: Cognito (and moto) accept the preference only for a verified token.
    pool.client
        .verify_software_token()
        .access_token(&token)
        .user_code(moto_totp_now().await)
        .send()
        .await
        .unwrap();
    pool.client
        .set_user_mfa_preference()
        .access_token(&token)
        .software_token_mfa_settings(
            SoftwareTokenMfaSettingsType::builder()
                .enabled(true)
                .preferred_mfa(true)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let mut config = VerifierConfig::cognito(REGION, &pool.pool_id, [pool.client_id.clone()]);
    // moto's `iss` is the AWS form; its JWKS is served on the local endpoint.
    config.jwks_url = format!("{endpoint}/{}/.well-known/jwks.json", pool.pool_id);
    let verifier = TokenVerifier::new(config, Arc::new(HttpJwksFetcher::new().unwrap()));
    verifier.jwks().refresh(clock::now()).await.unwrap();
    let sessions = Arc::new(MemorySessionStore::new());
    let app = router(ApiState::new(
        Arc::new(verifier),
        sessions.clone(),
        Arc::new(CognitoIdp::new(pool.client.clone())),
    ));

    let call = |path: &'static str, body: String| {
        let app = app.clone();
        let token = token.clone();
        async move {
            let req = Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };

    let (status, body) = call("/initiate-auth", String::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"code": "SOFTWARE_TOKEN_STEP_UP"}));

    let answer = |code: &str| {
        json!({"step-up-type": "SOFTWARE_TOKEN_STEP_UP", "challenge-response": code}).to_string()
    };
    let right = moto_totp_now().await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, _) = call("/respond-to-challenge", answer(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call("/respond-to-challenge", answer(&right)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let jti = {
        // The session is keyed by the token's jti: read it from the (verified) payload.
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&base64url_decode(payload)).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    let session = sessions.get(&jti, clock::now()).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.failed_attempts, 1);
}

fn base64url_decode(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            other => panic!("not base64url: {other}"),
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}
