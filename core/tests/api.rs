//! The step-up API router in process (harness in `api_support`): what both verifications
//! share (authentication, bodies, locks, CORS), checked in the seed-compatible mode, whose
//! one-call codes keep the tests short; Cognito's MFA challenge, the default, is
//! `api_mfa.rs`.

use crate::api_support::*;
use http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use stepup_core::api::{CorsPolicy, IdpError};
use stepup_core::clock;
use stepup_core::session::{Factor, SessionLimits, SessionStatus};
use stepup_core::store::SessionStore;
use stepup_core::testkit::TestIssuer;

// ---------------------------------------------------------------------------------------
// /initiate-auth
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn initiate_for_a_totp_user_asks_for_the_software_token_and_creates_the_session() {
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let api = seed_api(FakeIdp::sms_user()).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"code": "SMS_STEP_UP"}));
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn initiate_for_a_user_without_preference_answers_maybe_software_token() {
    let api = seed_api(FakeIdp::new(None, &[])).await;
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"code": "MAYBE_SOFTWARE_TOKEN_STEP_UP"}));
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn initiate_refuses_a_bare_jwt_without_the_bearer_scheme_with_invalid_request() {
    let api = seed_api(FakeIdp::totp_user()).await;
    let a = api
        .send(Method::POST, "/initiate-auth", Some(&api.token), "")
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let www = a.headers["www-authenticate"].to_str().unwrap();
    assert!(www.contains(r#"error="invalid_request""#), "{www}");
    let lower = format!("bearer {}", api.token);
    let a = api
        .send(Method::POST, "/initiate-auth", Some(&lower), "")
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_second_sms_within_the_interval_is_refused_with_429_and_retry_after() {
    let api = seed_api_with(FakeIdp::sms_user(), |s| s.with_sms_min_interval_secs(30)).await;
    assert_eq!(api.initiate().await.status, StatusCode::OK);
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["code"], "TOO_MANY_REQUESTS");
    assert_eq!(a.headers["retry-after"], "30");
    assert_eq!(api.idp.sms_sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn initiating_again_keeps_the_live_session_and_its_failed_attempts() {
    let api = seed_api(FakeIdp::totp_user()).await;
    api.initiate().await;
    api.respond("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE).await;
    assert_eq!(api.initiate().await.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.failed_attempts, 1);
}

#[tokio::test]
async fn a_bad_or_missing_token_is_401_unauthenticated_on_both_endpoints() {
    let api = seed_api(FakeIdp::totp_user()).await;
    let forged = format!("Bearer {}x", api.token);
    let other_issuer_token = {
        let issuer = TestIssuer::new();
        let mut claims = issuer.claims("alice", JTI, clock::now());
        claims["iss"] = json!("https://evil.example");
        format!("Bearer {}", issuer.sign(&claims))
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
    let api = seed_api(FakeIdp::totp_user()).await;
    api.idp.fail_with(Some(IdpError::NotAuthorized));
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, json!({"code": "UNAUTHENTICATED"}));
}

#[tokio::test]
async fn an_idp_limit_is_429_on_both_endpoints() {
    let api = seed_api(FakeIdp::sms_user()).await;
    api.idp.fail_with(Some(IdpError::LimitExceeded));
    let a = api.initiate().await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["code"], "TOO_MANY_REQUESTS");
    let a = api.respond("SMS_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_unavailable_idp_is_503() {
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let api = seed_api(FakeIdp::new(None, &[])).await;
    let a = api
        .respond("MAYBE_SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.status, SessionStatus::Completed);
}

#[tokio::test]
async fn an_sms_code_completes_the_session_with_the_sms_factor() {
    let api = seed_api(FakeIdp::sms_user()).await;
    api.initiate().await;
    let a = api.respond("SMS_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(api.session(JTI).await.factor, Some(Factor::Sms));
}

#[tokio::test]
async fn sessions_are_keyed_by_origin_jti_when_configured() {
    let api = seed_api_with(FakeIdp::totp_user(), |s| s.with_origin_jti(true)).await;
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(a.status, StatusCode::OK);
    let key = format!("origin-{JTI}");
    assert_eq!(api.session(&key).await.status, SessionStatus::Completed);
    assert!(api.store.get(JTI, clock::now()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_wrong_code_is_401_and_counted_in_the_store() {
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let api = seed_api(FakeIdp::sms_user()).await;
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
    let api = seed_api_with(FakeIdp::totp_user(), |s| s.with_limits(limits)).await;
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
    let api = seed_api(FakeIdp::totp_user()).await;
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
    let after = api.session(JTI).await;
    assert_eq!(
        after.completed_at, completed.completed_at,
        "not completed again"
    );
    assert_eq!(after.failed_attempts, 1, "a replay is counted as a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_wrong_codes_reaches_the_idp_at_most_the_limit_and_never_5xx() {
    let api = Arc::new(seed_api(FakeIdp::totp_user()).await);
    let (mut unauthorized, mut too_many) = (0, 0);
    let body = answer_body("SOFTWARE_TOKEN_STEP_UP", WRONG_CODE);
    for a in burst(&api, 100, &body).await {
        match a.status {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(a.headers.contains_key("retry-after"));
                too_many += 1;
            }
            other => panic!(
                "no other answer is allowed under a burst: {other} {}",
                a.body
            ),
        }
    }
    let limit = SessionLimits::default().max_failed_attempts as usize;
    assert_eq!(api.idp.calls().1, limit, "codes that reached the IdP");
    assert_eq!((unauthorized, too_many), (limit - 1, 100 - limit + 1));
    assert_eq!(api.session(JTI).await.failed_attempts as usize, limit);
    let a = api.respond("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE).await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked: the right code is refused"
    );
    assert_eq!(api.idp.calls().1, limit);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_not_counted() {
    let api = seed_api(FakeIdp::totp_user()).await;
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
async fn a_body_over_8_kib_is_refused() {
    let api = seed_api(FakeIdp::totp_user()).await;
    let padding = "x".repeat(9000);
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
    let api = seed_api(FakeIdp::totp_user()).await;
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        let a = api.send(Method::OPTIONS, path, None, "").await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        // The seed's API Gateway list: its web app sends `Identification`.
        assert_eq!(
            a.headers["access-control-allow-headers"],
            "Content-Type,X-Amz-Date,Authorization,Identification,X-Api-Key,X-Amz-Security-Token"
        );
        assert_eq!(a.headers["access-control-allow-methods"], "OPTIONS,POST");
    }
}

#[tokio::test]
async fn every_answer_carries_the_configured_allow_origin() {
    let api = seed_api_with(FakeIdp::totp_user(), |s| {
        s.with_cors(CorsPolicy::origins(["https://app.example"]))
    })
    .await;
    let from = |origin: &'static str| [("origin", origin), ("content-type", "application/json")];
    let auth = format!("Bearer {}", api.token);
    let ok = api
        .send_with(
            Method::POST,
            "/initiate-auth",
            &[("origin", "https://app.example"), ("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let unauthenticated = api
        .send_with(
            Method::POST,
            "/initiate-auth",
            &from("https://app.example"),
            "",
        )
        .await;
    let bad = api
        .send_with(
            Method::POST,
            "/respond-to-challenge",
            &from("https://app.example"),
            "nope",
        )
        .await;
    let preflight = api
        .send_with(
            Method::OPTIONS,
            "/respond-to-challenge",
            &from("https://app.example"),
            "",
        )
        .await;
    for a in [ok, unauthenticated, bad, preflight] {
        assert_eq!(
            a.headers["access-control-allow-origin"], "https://app.example",
            "{}",
            a.status
        );
        assert_eq!(a.headers["vary"], "Origin");
    }
    // Another origin gets no Access-Control-Allow-Origin: the browser refuses the answer.
    let other = api
        .send_with(
            Method::OPTIONS,
            "/initiate-auth",
            &from("https://evil.example"),
            "",
        )
        .await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
}

/// The seed's web app, replayed request by request as a browser on another origin sends
/// them: the preflight (which must allow `Identification`), then `/initiate-auth` with the
/// ID token in `Identification`, then `/respond-to-challenge`.
#[tokio::test]
async fn the_seed_web_app_requests_pass_preflight_and_step_up() {
    let api = seed_api(FakeIdp::totp_user()).await;
    let origin = "https://d1234abcd.cloudfront.net";
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        let pre = api
            .send_with(
                Method::OPTIONS,
                path,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization,content-type,identification",
                    ),
                ],
                "",
            )
            .await;
        assert_eq!(pre.status, StatusCode::OK);
        assert_eq!(pre.headers["access-control-allow-origin"], "*");
        let allowed = pre.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for header in ["authorization", "content-type", "identification"] {
            assert!(
                allowed.split(',').any(|h| h.trim() == header),
                "{header} in {allowed}"
            );
        }
        assert!(
            pre.headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
    }
    let auth = format!("Bearer {}", api.token);
    let id_token = format!(
        "Bearer {}",
        api.issuer.token("alice", "id-jti", clock::now())
    );
    let seed_headers = [
        ("origin", origin),
        ("authorization", auth.as_str()),
        ("identification", id_token.as_str()),
        ("content-type", "application/json"),
    ];
    let initiated = api
        .send_with(Method::POST, "/initiate-auth", &seed_headers, "")
        .await;
    assert_eq!(initiated.status, StatusCode::OK);
    assert_eq!(initiated.body, json!({"code": "SOFTWARE_TOKEN_STEP_UP"}));
    let answered = api
        .send_with(
            Method::POST,
            "/respond-to-challenge",
            &seed_headers,
            &answer_body("SOFTWARE_TOKEN_STEP_UP", RIGHT_CODE),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK);
    assert_eq!(
        answered.body,
        json!({"name": "Status", "details": "Challenge Successful"})
    );
    assert_eq!(answered.headers["access-control-allow-origin"], "*");
}
