//! The step-up API with its default verification, Cognito's own MFA challenge, written from
//! the attacker's side first: a thief holding only the access token, a burst of answers, a
//! user with no second factor, a sign-in that comes back for someone else. Harness in
//! `api_support`; the same flow against moto is in `cognito_moto.rs` and behind Envoy in
//! the sidecar's end-to-end tests.

use crate::api_support::*;
use http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use stepup_core::api::{IdpError, MfaSetting};
use stepup_core::clock;
use stepup_core::session::{Factor, SessionLimits, SessionStatus};

const TOTP: &str = "SOFTWARE_TOKEN_STEP_UP";

async fn mfa_api(idp: FakeIdp) -> Api {
    api_with(idp, |s| s).await
}

#[tokio::test]
async fn a_thief_with_only_the_access_token_cannot_complete_a_step_up() {
    let api = mfa_api(FakeIdp::totp_user()).await;
    // The seed's body (code only) is what a thief who enrolled its own authenticator sends.
    let a = api.respond(TOTP, RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["code"], "PASSWORD_REQUIRED");
    // Guessing the password: refused before any code is looked at, and counted.
    let a = api
        .respond_raw(&answer_with_password(TOTP, RIGHT_CODE, "hunter2"))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, challenge_failed());
    let s = api.session(JTI).await;
    assert_ne!(s.status, SessionStatus::Completed);
    assert_eq!(s.failed_attempts, 1);
    assert_eq!(api.idp.calls(), (1, 0), "one password checked, no code");
    // A made-up sign-in session is no way around the password either.
    let forged =
        json!({"step-up-type": TOTP, "challenge-response": RIGHT_CODE, "auth-session": "made-up"});
    let a = api.respond_raw(&forged.to_string()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_ne!(api.session(JTI).await.status, SessionStatus::Completed);
}

#[tokio::test]
async fn password_and_code_in_one_call_complete_the_session() {
    let api = mfa_api(FakeIdp::totp_user()).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        json!({"code": TOTP, "verification": "COGNITO_MFA", "requires": ["password", "challenge-response"]})
    );
    let a = api
        .respond_raw(&answer_with_password(TOTP, RIGHT_CODE, PASSWORD))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"name": "Status", "details": "Challenge Successful"})
    );
    let s = api.session(JTI).await;
    assert_eq!(s.status, SessionStatus::Completed);
    assert_eq!(s.factor, Some(Factor::SoftwareToken));
    assert_eq!(s.failed_attempts, 0, "the success gave its attempt back");
    assert_eq!(api.idp.calls(), (1, 1));
}

#[tokio::test]
async fn a_wrong_code_after_the_right_password_is_401_and_counted() {
    let api = mfa_api(FakeIdp::totp_user()).await;
    let a = api
        .respond_raw(&answer_with_password(TOTP, WRONG_CODE, PASSWORD))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.session(JTI).await.failed_attempts, 1);
}

#[tokio::test]
async fn sms_is_sent_by_the_sign_in_and_answered_with_its_session() {
    let api = mfa_api(FakeIdp::sms_user()).await;
    let a = api.initiate().await;
    assert_eq!(a.body["requires"], json!(["password"]));
    assert_eq!(
        api.idp.sms_sent.load(Ordering::SeqCst),
        0,
        "nothing sent without the password"
    );

    let a = api
        .initiate_with(&json!({"password": PASSWORD}).to_string())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["code"], "SMS_STEP_UP");
    assert_eq!(
        a.body["requires"],
        json!(["challenge-response", "auth-session"])
    );
    let session = a.body["auth-session"].as_str().unwrap().to_owned();
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
    assert_eq!(
        api.session(JTI).await.failed_attempts,
        0,
        "a right password is no failure"
    );

    let answer = json!({"step-up-type": "SMS_STEP_UP", "challenge-response": RIGHT_CODE, "auth-session": session});
    let a = api.respond_raw(&answer.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(api.session(JTI).await.factor, Some(Factor::Sms));
}

#[tokio::test]
async fn a_second_password_sign_in_for_sms_within_the_interval_is_429() {
    let api = mfa_api(FakeIdp::sms_user()).await;
    let body = json!({"password": PASSWORD}).to_string();
    assert_eq!(api.initiate_with(&body).await.status, StatusCode::OK);
    let a = api.initiate_with(&body).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrong_password_at_initiate_is_401_and_counted() {
    let api = mfa_api(FakeIdp::sms_user()).await;
    let a = api
        .initiate_with(&json!({"password": "nope"}).to_string())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.session(JTI).await.failed_attempts, 1);
}

#[tokio::test]
async fn a_user_without_a_second_factor_cannot_step_up_with_the_password_alone() {
    let api = mfa_api(FakeIdp::password_only_user()).await;
    for body in [
        answer_with_password("MAYBE_SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE, PASSWORD),
        json!({"password": PASSWORD}).to_string(),
    ] {
        let a = if body.contains("step-up-type") {
            api.respond_raw(&body).await
        } else {
            api.initiate_with(&body).await
        };
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(a.body["code"], "MFA_NOT_ENROLLED");
    }
    let s = api.session(JTI).await;
    assert_ne!(s.status, SessionStatus::Completed);
    assert_eq!(
        s.failed_attempts, 0,
        "not the user's failure: attempts given back"
    );
    assert_eq!(api.idp.calls().1, 0, "no code was ever checked");
}

#[tokio::test]
async fn a_sign_in_that_comes_back_for_another_user_is_refused() {
    let api = mfa_api(FakeIdp::totp_user()).await;
    *api.idp.signed_in_token.lock().unwrap() =
        api.issuer.token("mallory", "jti-mallory", clock::now());
    let a = api
        .respond_raw(&answer_with_password(TOTP, RIGHT_CODE, PASSWORD))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_ne!(api.session(JTI).await.status, SessionStatus::Completed);
}

#[tokio::test]
async fn several_factors_without_a_preference_are_selected_by_the_step_up_type() {
    let idp = FakeIdp::new(None, &[MfaSetting::SoftwareToken, MfaSetting::Sms]);
    let api = mfa_api(idp).await;
    let a = api
        .respond_raw(&answer_with_password(
            "MAYBE_SOFTWARE_TOKEN_STEP_UP",
            RIGHT_CODE,
            PASSWORD,
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(api.session(JTI).await.factor, Some(Factor::SoftwareToken));
}

#[tokio::test]
async fn wrong_passwords_lock_the_session_like_wrong_codes() {
    let limits = SessionLimits {
        max_failed_attempts: 3,
        ..SessionLimits::default()
    };
    let api = api_with(FakeIdp::totp_user(), |s| s.with_limits(limits)).await;
    let wrong = answer_with_password(TOTP, RIGHT_CODE, "nope");
    for _ in 0..2 {
        assert_eq!(
            api.respond_raw(&wrong).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        api.respond_raw(&wrong).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let right = answer_with_password(TOTP, RIGHT_CODE, PASSWORD);
    assert_eq!(
        api.respond_raw(&right).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        api.idp.calls(),
        (3, 0),
        "a locked session reaches Cognito no more"
    );
}

#[tokio::test]
async fn an_identity_provider_that_refuses_the_flow_is_503_not_a_failed_attempt_answer() {
    let api = mfa_api(FakeIdp::totp_user()).await;
    api.idp.fail_with(Some(IdpError::Misconfigured(
        "USER_PASSWORD_AUTH off".into(),
    )));
    let a = api
        .respond_raw(&answer_with_password(TOTP, RIGHT_CODE, PASSWORD))
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!a.body.to_string().contains("USER_PASSWORD_AUTH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_answers_reaches_cognito_at_most_the_limit_and_never_5xx() {
    let api = Arc::new(mfa_api(FakeIdp::totp_user()).await);
    let mut statuses = std::collections::BTreeMap::new();
    let body = answer_with_password(TOTP, WRONG_CODE, PASSWORD);
    for a in burst(&api, 100, &body).await {
        *statuses.entry(a.status.as_u16()).or_insert(0) += 1;
    }
    let limit = SessionLimits::default().max_failed_attempts as usize;
    assert_eq!(
        statuses,
        [(401, limit - 1), (429, 100 - limit + 1)].into(),
        "only 401 and 429 under a burst"
    );
    assert_eq!(
        api.idp.calls(),
        (limit, limit),
        "passwords and codes that reached Cognito"
    );
    assert_eq!(api.session(JTI).await.failed_attempts as usize, limit);
    let a = api
        .respond_raw(&answer_with_password(TOTP, RIGHT_CODE, PASSWORD))
        .await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the lock holds for the right code"
    );
}
