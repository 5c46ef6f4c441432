//! The step-up API through Envoy as a user goes through it, in the default verification
//! (password and code): what `/initiate-auth` asks for, wrong and right answers, a
//! step-up bound to its token, codes never accepted twice, and the attempt limit.

use crate::e2e::requests::{
    bearer, challenge_failed, challenge_successful, client, raw_request, seen, wrong_code,
};
use crate::e2e::{MAX_FAILED_ATTEMPTS, Setup};
use serde_json::json;
use stepup_core::clock;
use stepup_core::session::SessionStatus;
use stepup_core::testkit::moto;

/// The web app's CORS preflight reaches the step-up API through Envoy.
pub async fn cors_preflight_reaches_the_step_up_api(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        let r = client()
            .request(reqwest::Method::OPTIONS, fx.envoy.url(path))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(r.headers()["access-control-allow-methods"], "OPTIONS,POST");
        let allowed = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(allowed.contains("Identification"), "{allowed}");
    }
    fx.finish().await;
}

/// `/initiate-auth` names the factor the user prefers and says what to send: the password
/// and the code. A pending session is no step-up, and an answer without the password is
/// 400 before anything reaches Cognito (not counted).
pub async fn initiate_asks_for_the_password_and_the_code(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    let r = fx.initiate(&a).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({
            "code": "SOFTWARE_TOKEN_STEP_UP",
            "verification": "COGNITO_MFA",
            "requires": ["password", "challenge-response"],
        })
    );
    let s = fx.session(&a).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.user_id, fx.user.name);
    fx.assert_transfer_challenged(&a).await;

    let r = fx.respond_with(&a, &moto::totp_now().await, None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.body,
        json!({"name": "Status", "details": "Password Required", "code": "PASSWORD_REQUIRED"})
    );
    assert_eq!(fx.session(&a).await.failed_attempts, 0);
    fx.assert_transfer_challenged(&a).await;
    fx.finish().await;
}

/// A wrong code with the right password, and the right code with a wrong password: 401
/// each, each counted in the session item.
pub async fn wrong_code_or_wrong_password_is_401_and_counted(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    assert_eq!(fx.initiate(&a).await.status, 200);
    let right = moto::totp_now().await;
    let r = fx.respond(&a, &wrong_code(&right, 0)).await;
    assert_eq!((r.status, r.body), (401, challenge_failed()));
    let s = fx.session(&a).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 1);

    let r = fx
        .respond_with(&a, &moto::totp_now().await, Some("Not-the-Passw0rd!"))
        .await;
    assert_eq!((r.status, r.body), (401, challenge_failed()));
    let s = fx.session(&a).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 2);
    fx.assert_transfer_challenged(&a).await;
    fx.finish().await;
}

/// The right code with the password: 200, the session completed (the reserved attempt
/// given back), and the very next `/transfer` reaches the upstream with the step-up
/// headers, in another spelling too.
pub async fn right_code_and_password_open_transfer_with_the_step_up_headers(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    assert_eq!(fx.initiate(&a).await.status, 200);
    let r = fx.respond(&a, &moto::totp_now().await).await;
    assert_eq!((r.status, r.body), (200, challenge_successful()));
    let s = fx.session(&a).await;
    assert_eq!(s.status, SessionStatus::Completed);
    assert!(s.completed_at.is_some());
    assert_eq!(s.failed_attempts, 0, "a success gives its attempt back");

    let e = fx.transfer_allowed(&a).await;
    assert_eq!(e["method"], "POST");
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{e}");
    assert_eq!(seen(&e, "x-stepup-user"), [fx.user.name.as_str()], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [fx.pool.client_id.as_str()]);
    let r = raw_request(
        fx.envoy.port,
        "POST",
        "/%74ransfer",
        &[("Authorization", &bearer(&a))],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    fx.finish().await;
}

/// A step-up is bound to its token: the same user with another `jti` is challenged.
pub async fn step_up_is_bound_to_its_token_and_another_jti_is_challenged(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let (a, c) = (fx.user.token(0), fx.user.token(2));
    fx.step_up(&a).await;
    fx.transfer_allowed(&a).await;
    fx.assert_transfer_challenged(&c).await;
    fx.finish().await;
}

/// A code already accepted is refused for another token of the same user, and counted as
/// a failed attempt. (Within its 30 s step moto would accept it again; stepup's replay
/// marker refuses it. Should the step end in between, moto refuses it: 401 all the same.)
pub async fn accepted_code_is_refused_for_another_token_of_the_same_user(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let (a, c) = (fx.user.token(0), fx.user.token(2));
    assert_eq!(fx.initiate(&a).await.status, 200);
    assert_eq!(fx.initiate(&c).await.status, 200);
    let right = moto::totp_now().await;
    let r = fx.respond(&a, &right).await;
    assert_eq!((r.status, r.body), (200, challenge_successful()));
    let r = fx.respond(&c, &right).await;
    assert_eq!((r.status, r.body), (401, challenge_failed()));
    let s = fx.session(&c).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 1);
    fx.assert_transfer_challenged(&c).await;
    fx.finish().await;
}

/// Brute force: the wrong answer that reaches the limit (the sidecar's default, 5) locks
/// the session with 429 and `Retry-After` until its TTL; then even the right code is
/// refused, and no new challenge is started.
pub async fn attempt_limit_locks_the_session_with_429_even_for_the_right_code(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let b = fx.user.token(1);
    assert_eq!(fx.initiate(&b).await.status, 200);
    let right = moto::totp_now().await;
    for n in 1..MAX_FAILED_ATTEMPTS {
        let r = fx.respond(&b, &wrong_code(&right, n as u8)).await;
        assert_eq!(r.status, 401, "attempt {n}: {r:?}");
    }
    let r = fx.respond(&b, &wrong_code(&right, 9)).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["code"], "TOO_MANY_REQUESTS");
    // Until the session's TTL: the token's `exp` (an hour) plus the margin.
    let retry = r.retry_after_secs();
    assert!(
        retry > 0 && retry <= 3600 + fx.parts.api.limits.ttl_margin,
        "{retry}"
    );

    let r = fx.respond(&b, &moto::totp_now().await).await;
    assert_eq!(r.status, 429, "locked: even the right code");
    assert_eq!(
        fx.initiate(&b).await.status,
        429,
        "locked: no new challenge"
    );
    let s = fx.session(&b).await;
    assert_eq!(s.failed_attempts, MAX_FAILED_ATTEMPTS);
    assert!(s.locked_until(clock::now(), &fx.parts.api.limits).is_some());
    assert_ne!(s.status, SessionStatus::Completed);
    fx.assert_transfer_challenged(&b).await;
    fx.finish().await;
}
