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

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::api::{ApiState, CognitoIdp, IdentityProvider, IdpError, MfaSetting, router};
use stepup_core::clock;
use stepup_core::session::SessionStatus;
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::moto::{self, MotoPool};
use stepup_core::token::{HttpJwksFetcher, TokenVerifier, VerifierConfig};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// moto fixtures (the pool helpers live in `stepup_core::testkit::moto`)
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

/// A fresh pool for one test.
async fn pool(endpoint: &str) -> MotoPool {
    MotoPool::create(
        moto::client(endpoint),
        &format!("stepup-test-{}", clock::now()),
    )
    .await
}

/// A confirmed user with a verified phone number, signed in: its access token.
async fn user(pool: &MotoPool, username: &str) -> String {
    pool.create_user(username, Some("+15555550100")).await;
    pool.sign_in(username).await
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cognito_idp_reads_the_user_and_verifies_software_token_codes() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(&endpoint).await;
    let token = user(&pool, "alice").await;
    let idp = CognitoIdp::new(pool.client.clone());

    let user = idp.get_user(&token).await.unwrap();
    assert_eq!(user.username, "alice");
    assert_eq!(user.preferred_mfa, None);
    assert!(user.mfa_settings.is_empty());
    assert!(user.has_phone_number);
    assert!(user.phone_number_verified);

    pool.associate_software_token(&token).await;
    let right = moto::totp_now().await;
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
    pool.set_software_token_preferred(&token).await;
    let user = idp.get_user(&token).await.unwrap();
    assert_eq!(user.preferred_mfa, Some(MfaSetting::SoftwareToken));
    assert_eq!(user.mfa_settings, vec![MfaSetting::SoftwareToken]);
}

#[tokio::test]
async fn a_garbage_access_token_is_not_authorized() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let idp = CognitoIdp::new(moto::client(&endpoint));
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
    let pool = pool(&endpoint).await;
    let token = user(&pool, "bob").await;
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
    let pool = pool(&endpoint).await;
    let token = user(&pool, "carol").await;
    pool.prefer_software_token(&token).await;

    let mut config = VerifierConfig::cognito(moto::REGION, &pool.pool_id, [pool.client_id.clone()]);
    // moto's `iss` is the AWS form; its JWKS is served on the local endpoint.
    config.jwks_url = pool.jwks_url(&endpoint);
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
    let right = moto::totp_now().await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, _) = call("/respond-to-challenge", answer(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call("/respond-to-challenge", answer(&right)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The session is keyed by the token's jti.
    let jti = stepup_core::testkit::jwt_claims(&token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = sessions.get(&jti, clock::now()).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.failed_attempts, 1);
}
