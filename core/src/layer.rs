//! Step-up enforcement inside any axum (or tower) application, without Envoy: the
//! [`StepUpLayer`] runs the same [`Engine`] as the ext_authz sidecar and the Lambda
//! authorizer in front of the application's handlers.
//!
//! ```ignore
//! use stepup_core::layer::StepUpLayer;
//! let app = axum::Router::new()
//!     .route("/info", get(info))
//!     .route("/transfer", post(transfer))
//!     .layer(StepUpLayer::new(engine));
//! ```
//!
//! For every request the layer first removes any `x-stepup-*` header the client sent
//! (so that none can be smuggled to a handler), then asks the engine:
//! - **allow**: the request goes to the inner service with `x-stepup-status`
//!   (`not_required | complete`), `x-stepup-user` and `x-stepup-client-id` set;
//! - **otherwise**: the inner service is not called; the client gets the decision's
//!   answer: 401 with `WWW-Authenticate` (RFC 6750: no error for a missing token,
//!   `error="invalid_request"` for an `Authorization` header that is not
//!   `Bearer <token>`, `error="invalid_token"`; RFC 9470
//!   `error="insufficient_user_authentication"`) or 403, and its JSON body.
//!
//! The rule is matched on the request target as the layer receives it, so mount the
//! layer where the paths are the ones the policies name (not inside a `nest` that strips
//! a prefix the policies include). The clock is read here, once per request.

use crate::clock::{self, UnixSeconds};
use crate::decision::{Decision, UPSTREAM_HEADERS};
use crate::engine::{CheckRequest, Engine};
use axum::body::Body;
use axum::response::Response;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// A tower [`Layer`] that enforces step-up policies with an [`Engine`].
#[derive(Debug, Clone)]
pub struct StepUpLayer {
    engine: Engine,
    clock: fn() -> UnixSeconds,
}

impl StepUpLayer {
    /// Enforces with `engine`, reading time from [`clock::now`].
    pub fn new(engine: Engine) -> StepUpLayer {
        StepUpLayer {
            engine,
            clock: clock::now,
        }
    }

    /// Reads time from `clock` instead (tests).
    pub fn with_clock(mut self, clock: fn() -> UnixSeconds) -> StepUpLayer {
        self.clock = clock;
        self
    }
}

impl<S> Layer<S> for StepUpLayer {
    type Service = StepUpService<S>;

    fn layer(&self, inner: S) -> StepUpService<S> {
        StepUpService {
            inner,
            engine: self.engine.clone(),
            clock: self.clock,
        }
    }
}

/// The service made by [`StepUpLayer`].
#[derive(Debug, Clone)]
pub struct StepUpService<S> {
    inner: S,
    engine: Engine,
    clock: fn() -> UnixSeconds,
}

impl<S, B> Service<Request<B>> for StepUpService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The service that was polled ready handles this request; a clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let engine = self.engine.clone();
        let now = (self.clock)();

        let headers = req.headers_mut();
        for name in UPSTREAM_HEADERS {
            headers.remove(name);
        }
        let method = req.method().as_str().to_owned();
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("")
            .to_owned();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
        // A header that is not visible ASCII cannot be a bearer token: treated as invalid.
        let authorization = req
            .headers()
            .get(AUTHORIZATION)
            .map(|h| h.to_str().unwrap_or("Bearer \u{fffd}").to_owned());

        Box::pin(async move {
            let check = CheckRequest {
                method: &method,
                host: &host,
                path: &path,
                authorization: authorization.as_deref(),
            };
            let decision = engine.check(&check, now).await;
            if !decision.is_allowed() {
                return Ok(refusal(&decision));
            }
            let headers = req.headers_mut();
            for (name, value) in decision.upstream_headers() {
                // No control characters (see `upstream_headers`): a non-ASCII username
                // passes as its UTF-8 bytes. The client's values were removed above.
                if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                    headers.insert(name, value);
                }
            }
            inner.call(req).await
        })
    }
}

/// The answer for a decision that does not allow: status, `WWW-Authenticate`, JSON body.
pub fn refusal(decision: &Decision) -> Response {
    let status = StatusCode::from_u16(decision.status_code()).unwrap_or(StatusCode::FORBIDDEN);
    let body = decision.body().map(|b| b.to_string()).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(www) = decision
        .www_authenticate()
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(WWW_AUTHENTICATE, www);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{STATUS_HEADER, USER_HEADER};
    use crate::engine::EngineConfig;
    use crate::policy::{PathPattern, PolicyCache, PolicyIndex, Rule, StepUpState};
    use crate::session::{Factor, Session, SessionLimits};
    use crate::store::SessionStore;
    use crate::store::memory::MemorySessionStore;
    use crate::testkit::TestIssuer;
    use axum::Router;
    use axum::routing::{get, post};
    use http::HeaderMap;
    use std::sync::Arc;
    use tower::ServiceExt;

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn fixed_clock() -> UnixSeconds {
        NOW
    }

    async fn echo(headers: HeaderMap) -> axum::Json<serde_json::Value> {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        axum::Json(serde_json::json!({
            "status": h(STATUS_HEADER),
            "user": h(USER_HEADER),
        }))
    }

    struct World {
        issuer: TestIssuer,
        sessions: Arc<MemorySessionStore>,
        app: Router,
    }

    async fn world() -> World {
        let issuer = TestIssuer::new();
        let index = PolicyIndex::from_rules(vec![
            Rule::new(
                "/transfer",
                PathPattern::Exact("/transfer".into()),
                StepUpState::Required,
            ),
            Rule::new(
                "/info",
                PathPattern::Exact("/info".into()),
                StepUpState::NotRequired,
            ),
            Rule::new(
                "/admin",
                PathPattern::Prefix("/admin".into()),
                StepUpState::Deny,
            ),
        ]);
        let sessions = Arc::new(MemorySessionStore::new());
        let engine = Engine::new(
            Arc::new(PolicyCache::with_index(index)),
            Arc::new(issuer.verifier(NOW).await),
            sessions.clone(),
            EngineConfig::default(),
        );
        let app = Router::new()
            .route("/info", get(echo))
            .route("/transfer", post(echo))
            .route("/admin/users", get(echo))
            .layer(StepUpLayer::new(engine).with_clock(fixed_clock));
        World {
            issuer,
            sessions,
            app,
        }
    }

    async fn send(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app.clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn info_is_allowed_with_upstream_headers() {
        let w = world().await;
        let bearer = format!("Bearer {}", w.issuer.token("alice", "jti-1", NOW));
        let r = send(&w.app, "GET", "/info", &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = json(r).await;
        assert_eq!(body["status"], "not_required");
        assert_eq!(body["user"], "alice");
    }

    #[tokio::test]
    async fn transfer_without_step_up_gets_the_rfc9470_challenge() {
        let w = world().await;
        let bearer = format!("Bearer {}", w.issuer.token("alice", "jti-2", NOW));
        let r = send(&w.app, "POST", "/transfer", &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let www = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(
            www.contains(r#"error="insufficient_user_authentication""#),
            "{www}"
        );
        assert_eq!(json(r).await["code"], "STEP_UP_REQUIRED");
    }

    #[tokio::test]
    async fn transfer_after_a_completed_step_up_is_allowed() {
        let w = world().await;
        let bearer = format!("Bearer {}", w.issuer.token("alice", "jti-3", NOW));
        let limits = SessionLimits::default();
        let session = Session::initiate("jti-3", "alice", "client", NOW.plus(3600), NOW, &limits)
            .after_success(Factor::SoftwareToken, NOW);
        w.sessions.put_raw(session.to_item());
        assert!(w.sessions.get("jti-3", NOW).await.unwrap().is_some());
        let r = send(&w.app, "POST", "/transfer", &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(json(r).await["status"], "complete");
    }

    #[tokio::test]
    async fn smuggled_stepup_headers_are_removed() {
        let w = world().await;
        let bearer = format!("Bearer {}", w.issuer.token("alice", "jti-4", NOW));
        let r = send(
            &w.app,
            "GET",
            "/info",
            &[
                ("authorization", &bearer),
                (STATUS_HEADER, "complete"),
                (USER_HEADER, "mallory"),
            ],
        )
        .await;
        let body = json(r).await;
        assert_eq!(body["status"], "not_required");
        assert_eq!(body["user"], "alice");
    }

    #[tokio::test]
    async fn a_token_without_the_bearer_scheme_is_401_invalid_request() {
        let w = world().await;
        let token = w.issuer.token("alice", "jti-6", NOW);
        let basic = "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned();
        for value in [token.as_str(), basic.as_str(), "Token x", "Bearer"] {
            let r = send(&w.app, "GET", "/info", &[("authorization", value)]).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{value}");
            assert_eq!(
                r.headers()[WWW_AUTHENTICATE],
                r#"Bearer realm="stepup", error="invalid_request", error_description="The Authorization header must be the Bearer scheme followed by an access token""#
            );
            assert_eq!(json(r).await["error"], "invalid_request");
        }
        let lower = format!("bearer {token}");
        let r = send(&w.app, "GET", "/info", &[("authorization", &lower)]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn missing_or_invalid_tokens_and_denied_paths_never_reach_the_handler() {
        let w = world().await;
        let r = send(&w.app, "GET", "/info", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key(WWW_AUTHENTICATE));
        let r = send(&w.app, "GET", "/info", &[("authorization", "Bearer nope")]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let bearer = format!("Bearer {}", w.issuer.token("alice", "jti-5", NOW));
        let r = send(&w.app, "GET", "/admin/users", &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(json(r).await["code"], "STEP_UP_DENY");
        // A spelling of /transfer is still /transfer.
        let r = send(&w.app, "POST", "//transfer", &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json(r).await["code"], "STEP_UP_REQUIRED");
    }
}
