//! Envoy's HTTP ext_authz mode (`http_service`): Envoy sends the original method, Host
//! and `Authorization` to `{path_prefix}{original path and query}`; only a 200 lets the
//! request through, and the `x-stepup-*` headers of that 200 go to the upstream (listed in
//! `allowed_upstream_headers`). Any other answer goes to the client as it is: status,
//! `WWW-Authenticate`, `content-type` and the JSON body.
//!
//! The raw request target is used (no axum path matching or decoding), so that the engine
//! canonicalises exactly what the upstream will receive.

use crate::telemetry::CheckTimer;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, StatusCode};
use std::sync::Arc;
use stepup_core::engine::{self, Engine};
use stepup_core::{Decision, clock};

#[derive(Debug)]
struct HttpCheckState {
    engine: Engine,
    path_prefix: String,
}

/// The HTTP ext_authz service: any method, any path under `path_prefix`.
pub fn router(engine: Engine, path_prefix: impl Into<String>) -> Router {
    let state = Arc::new(HttpCheckState {
        engine,
        path_prefix: path_prefix.into(),
    });
    Router::new().fallback(check).with_state(state)
}

/// The original request target: what follows `prefix`, which must start with `/`.
fn original_target<'a>(target: &'a str, prefix: &str) -> Option<&'a str> {
    target
        .strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'))
}

async fn check(State(state): State<Arc<HttpCheckState>>, req: Request) -> Response {
    let timer = CheckTimer::start("http");
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("");
    let Some(path) = original_target(target, &state.path_prefix) else {
        // Not a request Envoy's http_service makes: refuse (never 200, never 5xx).
        metrics::counter!(crate::telemetry::MALFORMED_CHECKS, "mode" => "http").increment(1);
        return (StatusCode::FORBIDDEN, "not an ext_authz check path\n").into_response();
    };
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    // A header that is not visible ASCII cannot be a bearer token: treated as invalid.
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .map(|h| h.to_str().unwrap_or("Bearer \u{fffd}"));
    let check = engine::CheckRequest {
        method: req.method().as_str(),
        host,
        path,
        authorization,
    };
    let decision = state.engine.check(&check, clock::now()).await;
    let response = to_response(&decision);
    timer.finish(&decision);
    response
}

/// The HTTP answer for a decision.
pub fn to_response(decision: &Decision) -> Response {
    if !decision.is_allowed() {
        return stepup_core::layer::refusal(decision);
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::OK;
    for (name, value) in decision.upstream_headers() {
        // Never leave one out: Envoy replaces a client's value only with one sent here.
        // `upstream_headers` has no control characters, so this cannot fail; an empty
        // value would still replace the client's.
        let value = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        response.headers_mut().insert(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{self, World};
    use tower::ServiceExt;

    async fn send(w: &World, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, "api.example.com");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router(w.engine.clone(), "/authz")
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn header(r: &Response, name: &str) -> Option<String> {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_original_target_is_what_follows_the_prefix() {
        assert_eq!(
            original_target("/authz/info?x=1", "/authz"),
            Some("/info?x=1")
        );
        assert_eq!(
            original_target("/authz//transfer", "/authz"),
            Some("//transfer")
        );
        assert_eq!(original_target("/authzx/info", "/authz"), None);
        assert_eq!(original_target("/authz", "/authz"), None);
        assert_eq!(original_target("/info", "/authz"), None);
    }

    #[tokio::test]
    async fn an_unprivileged_path_is_200_with_the_upstream_headers() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let r = send(&w, "GET", "/authz/info?x=1", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-stepup-status").unwrap(), "not_required");
        assert_eq!(header(&r, "x-stepup-user").unwrap(), "alice");
        assert_eq!(
            header(&r, "x-stepup-client-id").unwrap(),
            testutil::CLIENT_ID
        );
    }

    #[tokio::test]
    async fn a_non_ascii_username_still_sets_the_user_header() {
        let w = testutil::world().await;
        let mut claims = w.issuer.claims("jos\u{e9}", "jti-1", clock::now());
        claims["username"] = serde_json::json!("jos\u{e9}\u{7}");
        let auth = format!("Bearer {}", w.issuer.sign(&claims));
        let r = send(&w, "GET", "/authz/info", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["x-stepup-user"].as_bytes(),
            "jos\u{e9}".as_bytes()
        );
    }

    #[tokio::test]
    async fn a_missing_token_is_401_with_a_bearer_challenge() {
        let w = testutil::world().await;
        let r = send(&w, "POST", "/authz/info", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&r, "www-authenticate").unwrap(),
            r#"Bearer realm="stepup""#
        );
        assert_eq!(header(&r, "content-type").unwrap(), "application/json");
        assert_eq!(body_json(r).await["code"], "UNAUTHENTICATED");
    }

    #[tokio::test]
    async fn a_token_without_the_bearer_scheme_is_401_invalid_request() {
        let w = testutil::world().await;
        for value in &stepup_core::testkit::malformed_authorizations(&w.token("jti-1")) {
            let r = send(&w, "GET", "/authz/info", &[("authorization", value)]).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{value}");
            assert_eq!(
                header(&r, "www-authenticate").unwrap(),
                r#"Bearer realm="stepup", error="invalid_request", error_description="The Authorization header must be the Bearer scheme followed by an access token""#
            );
            assert_eq!(header(&r, "x-stepup-user"), None);
            assert_eq!(body_json(r).await["error"], "invalid_request");
        }
        let lower = format!("bearer {}", w.token("jti-1"));
        let r = send(&w, "GET", "/authz/info", &[("authorization", &lower)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-stepup-user").unwrap(), "alice");
    }

    #[tokio::test]
    async fn a_privileged_path_is_challenged_until_the_session_completes() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        for path in [
            "/authz/transfer",
            "/authz//transfer",
            "/authz/%74ransfer",
            "/authz/info/../transfer",
            "/authz/transfer/",
        ] {
            let r = send(&w, "POST", path, &[("authorization", &auth)]).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
            let www = header(&r, "www-authenticate").unwrap();
            assert!(
                www.contains(r#"error="insufficient_user_authentication""#),
                "{www}"
            );
            assert_eq!(
                body_json(r).await["error"],
                "insufficient_user_authentication"
            );
        }
        w.complete("jti-1").await;
        let r = send(&w, "POST", "/authz/transfer", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-stepup-status").unwrap(), "complete");
    }

    #[tokio::test]
    async fn an_expired_token_is_invalid_and_a_store_outage_is_403() {
        let w = testutil::world().await;
        let expired = format!("Bearer {}", w.expired_token());
        let r = send(&w, "GET", "/authz/info", &[("authorization", &expired)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            header(&r, "www-authenticate")
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        w.sessions.set_unavailable(true);
        let auth = w.bearer("jti-1");
        let r = send(&w, "POST", "/authz/transfer", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(r).await["code"], "SESSION_UNAVAILABLE");
        let r = send(&w, "GET", "/authz/info", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_path_outside_the_prefix_is_refused() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let r = send(&w, "GET", "/info", &[("authorization", &auth)]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
