//! The check through Envoy: who may reach an unprivileged path and what the upstream
//! learns, how a missing, malformed or expired token is refused, and the RFC 9470
//! challenge on the privileged path in every spelling.

use crate::e2e::Setup;
use crate::e2e::requests::{
    Reply, assert_step_up_challenge, bearer, client, echo, raw_request, seen,
};
use serde_json::json;
use stepup_core::clock;
use stepup_core::testkit::TestIssuer;

/// An unprivileged path is allowed, and the upstream learns who called: never what the
/// client claims under the same header names. The proxy's own health route skips the check.
pub async fn unprivileged_path_is_allowed_and_the_upstream_learns_the_caller(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    let http = client();
    let health = http.get(fx.envoy.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let e = echo(
        http.get(fx.envoy.url("/info?x=1"))
            .header("authorization", bearer(&a))
            .header("x-stepup-user", "mallory")
            .header("x-stepup-user", "eve")
            .header("x-stepup-status", "complete")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["target"], "/info?x=1");
    assert_eq!(seen(&e, "x-stepup-status"), ["not_required"]);
    assert_eq!(seen(&e, "x-stepup-user"), [fx.user.name.as_str()], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [fx.pool.client_id.as_str()]);
    fx.finish().await;
}

/// No token: 401 with the bearer challenge, whatever the path.
pub async fn request_without_a_token_gets_the_bearer_challenge(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    for (method, path) in [("GET", "/info"), ("POST", "/transfer")] {
        let r = raw_request(fx.envoy.port, method, path, &[]).await;
        assert_eq!(r.status, 401, "{method} {path}: {r:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="stepup""#),
            "{method} {path}"
        );
    }
    fx.finish().await;
}

/// `Authorization: <jwt>` without the `Bearer` scheme is a malformed request (RFC 6750
/// `invalid_request`), at the check and at the step-up API alike; the scheme itself is
/// case-insensitive.
pub async fn token_without_the_bearer_scheme_is_401_invalid_request(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    for path in ["/transfer", "/info"] {
        let r = Reply::read(
            client()
                .post(fx.envoy.url(path))
                .header("authorization", &a)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {r:?}");
        let www = r.www_authenticate.as_deref().unwrap_or_default();
        assert!(
            www.starts_with("Bearer ") && www.contains(r#"error="invalid_request""#),
            "{path}: {www}"
        );
        assert_eq!(r.body["error"], "invalid_request", "{path}: {r:?}");
    }
    let r = Reply::read(
        client()
            .post(fx.envoy.url("/initiate-auth"))
            .header("authorization", &a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(r#"Bearer error="invalid_request""#)
    );
    assert_eq!(r.body, json!({"code": "UNAUTHENTICATED"}));
    // The same token with the scheme in another case is accepted.
    echo(
        client()
            .get(fx.envoy.url("/info"))
            .header("authorization", format!("bearer {a}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    fx.finish().await;
}

/// An expired token (signed with the fixture key the verifier also trusts, moto's issuer
/// and client id) is 401 `invalid_token`; the same key's valid token passes, so it is the
/// expiry that counts.
pub async fn expired_token_is_401_invalid_token(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let fixture = TestIssuer::new();
    let now = clock::now();
    let mut claims = fixture.claims(&fx.user.name, &format!("{}-fixture", fx.run), now);
    claims["iss"] = json!(fx.pool.issuer());
    claims["client_id"] = json!(fx.pool.client_id);
    let valid = fixture.sign(&claims);
    claims["iat"] = json!(now.minus(7200));
    claims["exp"] = json!(now.minus(3600));
    let expired = fixture.sign(&claims);
    let get_info = |token: String| {
        client()
            .get(fx.envoy.url("/info"))
            .header("authorization", bearer(&token))
            .send()
    };
    echo(get_info(valid).await.unwrap()).await;
    let r = Reply::read(get_info(expired).await.unwrap()).await;
    assert_eq!(r.status, 401);
    let www = r.www_authenticate.unwrap_or_default();
    assert!(www.contains(r#"error="invalid_token""#), "{www}");
    fx.finish().await;
}

/// The privileged path gets the RFC 9470 challenge naming the step-up API, in every
/// spelling sent byte for byte, and a client claiming a completed step-up by header gets
/// nowhere.
pub async fn privileged_path_is_challenged_in_every_spelling(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let a = fx.user.token(0);
    let r = Reply::read(fx.transfer(&a).await).await;
    assert_eq!(r.status, 401);
    let www = r.www_authenticate.unwrap_or_default();
    assert!(
        www.starts_with("Bearer ") && www.contains(r#"error="insufficient_user_authentication""#),
        "{www}"
    );
    assert_eq!(r.body["initiateAuth"], "/initiate-auth");

    for target in [
        "/transfer",
        "//transfer",
        "/%74ransfer",
        "/info/../transfer",
        "/transfer/",
    ] {
        let r = raw_request(
            fx.envoy.port,
            "POST",
            target,
            &[("Authorization", &bearer(&a))],
        )
        .await;
        assert_step_up_challenge(
            &format!("{} POST {target}", fx.mode.name()),
            r.status,
            r.header("www-authenticate"),
            r.header("content-type"),
            &r.body,
        );
    }

    let r = client()
        .post(fx.envoy.url("/transfer"))
        .header("authorization", bearer(&a))
        .header("x-stepup-status", "complete")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    fx.finish().await;
}
