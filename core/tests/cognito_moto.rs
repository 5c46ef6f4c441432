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

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::api::{
    ApiState, ChallengeReply, CognitoIdp, IdentityProvider, IdpError, MfaSetting, SignInStep,
    router,
};
use stepup_core::clock;
use stepup_core::session::SessionStatus;
use stepup_core::store::dynamo::{self, DynamoSessionStore};
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::store::{SessionStore, TableNames};
use stepup_core::testkit::moto::{self, MotoPool};
use stepup_core::token::{HttpJwksFetcher, TokenVerifier, VerifierConfig};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// moto fixtures (the pool helpers live in `stepup_core::testkit::moto`)
// ---------------------------------------------------------------------------------------

use stepup_core::testkit::components::{dynamodb as dynamodb_endpoint, moto as moto_endpoint};

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

/// A wrong code: moto's TOTP code for now, with its first digit changed.
fn wrong(right: &str) -> String {
    let first = if right.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &right[1..])
}

#[tokio::test]
async fn cognito_idp_signs_in_with_the_password_and_answers_the_software_token_challenge() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(&endpoint).await;
    let token = user(&pool, "dave").await;
    pool.prefer_software_token(&token).await;
    let idp = CognitoIdp::new(pool.client.clone());
    let sign_in = || idp.start_sign_in(&pool.client_id, "dave", moto::PASSWORD);

    assert_eq!(
        idp.start_sign_in(&pool.client_id, "dave", "not-the-password")
            .await,
        Err(IdpError::SignInRefused)
    );
    let Ok(SignInStep::Mfa { factor, session }) = sign_in().await else {
        panic!("a software-token challenge")
    };
    assert_eq!(factor, MfaSetting::SoftwareToken);
    let code = |code| ChallengeReply::Code {
        factor: MfaSetting::SoftwareToken,
        code,
    };
    let right = moto::totp_now().await;
    let wrong_code = wrong(&right);
    assert_eq!(
        idp.respond_to_sign_in(&pool.client_id, "dave", &session, code(&wrong_code))
            .await,
        Err(IdpError::CodeMismatch)
    );
    let Ok(SignInStep::Mfa { session, .. }) = sign_in().await else {
        panic!("a software-token challenge")
    };
    let done = idp
        .respond_to_sign_in(&pool.client_id, "dave", &session, code(&right))
        .await;
    let Ok(SignInStep::SignedIn { access_token }) = done else {
        panic!("signed in: {done:?}")
    };
    let sub = |t: &str| stepup_core::testkit::jwt_claims(t)["sub"].clone();
    assert_eq!(sub(&access_token.0), sub(&token), "the same user");
    // A sign-in session is used once.
    let again = idp
        .respond_to_sign_in(&pool.client_id, "dave", &session, code(&right))
        .await;
    assert_eq!(again, Err(IdpError::SignInRefused));
}

#[tokio::test]
async fn a_user_without_a_second_factor_is_signed_in_on_the_password_alone() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(&endpoint).await;
    user(&pool, "erin").await;
    let idp = CognitoIdp::new(pool.client.clone());
    let step = idp
        .start_sign_in(&pool.client_id, "erin", moto::PASSWORD)
        .await
        .unwrap();
    assert!(matches!(step, SignInStep::SignedIn { .. }), "{step:?}");
}

/// A verifier for `pool`'s tokens, its JWKS loaded from moto.
async fn moto_verifier(pool: &MotoPool, endpoint: &str) -> TokenVerifier {
    let mut config = VerifierConfig::cognito(moto::REGION, &pool.pool_id, [pool.client_id.clone()]);
    // moto's `iss` is the AWS form; its JWKS is served on the local endpoint.
    config.jwks_url = pool.jwks_url(endpoint);
    let verifier = TokenVerifier::new(config, Arc::new(HttpJwksFetcher::new().unwrap()));
    verifier.jwks().refresh(clock::now()).await.unwrap();
    verifier
}

/// `(status, body)` of a step-up API call with `token`.
async fn call(app: &axum::Router, token: &str, path: &str, body: String) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice::<Value>(&bytes).unwrap())
}

fn answer(code: &str, password: &str) -> String {
    json!({"step-up-type": "SOFTWARE_TOKEN_STEP_UP", "challenge-response": code, "password": password})
        .to_string()
}

/// The whole step-up through the router with Cognito's MFA challenge: a moto access token
/// (verified against moto's JWKS), `/initiate-auth`, then `/respond-to-challenge` with the
/// password and the real TOTP code.
#[tokio::test]
async fn a_moto_user_steps_up_through_the_router() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let pool = pool(&endpoint).await;
    let token = user(&pool, "carol").await;
    pool.prefer_software_token(&token).await;
    let sessions = Arc::new(MemorySessionStore::new());
    let app = router(ApiState::new(
        Arc::new(moto_verifier(&pool, &endpoint).await),
        sessions.clone(),
        Arc::new(CognitoIdp::new(pool.client.clone())),
    ));

    let (status, body) = call(&app, &token, "/initiate-auth", String::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["code"], "SOFTWARE_TOKEN_STEP_UP");
    assert_eq!(body["requires"], json!(["password", "challenge-response"]));

    let right = moto::totp_now().await;
    let (status, _) = call(
        &app,
        &token,
        "/respond-to-challenge",
        answer(&wrong(&right), moto::PASSWORD),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &app,
        &token,
        "/respond-to-challenge",
        answer(&right, "not-the-password"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &app,
        &token,
        "/respond-to-challenge",
        answer(&right, moto::PASSWORD),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The session is keyed by the token's jti; two failures stay counted.
    let jti = stepup_core::testkit::jwt_claims(&token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = sessions.get(&jti, clock::now()).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.failed_attempts, 2);
}

/// 100 simultaneous wrong answers for one session, through moto and DynamoDB Local: no
/// 5xx, and the failures recorded never pass the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_answers_through_moto_never_passes_the_limit() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let Some(ddb) = dynamodb_endpoint() else {
        return;
    };
    let pool = pool(&endpoint).await;
    let token = user(&pool, "frank").await;
    pool.prefer_software_token(&token).await;
    let client = dynamo::local_client(&ddb);
    let names = TableNames::with_prefix(&format!("burst-{}", clock::now()));
    dynamo::create_tables(&client, &names).await.unwrap();
    let sessions = Arc::new(DynamoSessionStore::new(client, &names.session));
    let app = router(ApiState::new(
        Arc::new(moto_verifier(&pool, &endpoint).await),
        sessions.clone(),
        Arc::new(CognitoIdp::new(pool.client.clone())),
    ));
    let right = moto::totp_now().await;
    let bad = answer(&wrong(&right), moto::PASSWORD);
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (app, token, bad, barrier) =
                (app.clone(), token.clone(), bad.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call(&app, &token, "/respond-to-challenge", bad).await.0
            })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    let jti = stepup_core::testkit::jwt_claims(&token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = sessions.get(&jti, clock::now()).await.unwrap().unwrap();
    assert_eq!(session.failed_attempts, 5);
    let (status, _) = call(
        &app,
        &token,
        "/respond-to-challenge",
        answer(&right, moto::PASSWORD),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked: the right code is refused"
    );
}
