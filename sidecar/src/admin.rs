//! The admin listener: `/healthz` (the process answers), `/readyz` (a policy index and
//! the JWKS are loaded, so decisions can be made) and `/metrics` (Prometheus text).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use stepup_core::Engine;

#[derive(Debug)]
struct AdminState {
    engine: Engine,
    metrics: Option<PrometheusHandle>,
}

/// The admin router; without a `metrics` handle `/metrics` answers 404.
pub fn router(engine: Engine, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Arc::new(AdminState { engine, metrics }))
}

/// Whether the engine can decide: a policy index and at least one signing key.
pub fn is_ready(engine: &Engine) -> bool {
    engine.policies().is_loaded() && engine.verifier().jwks().is_loaded()
}

async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    let policy = state.engine.policies().is_loaded();
    let jwks = state.engine.verifier().jwks().is_loaded();
    let status = if policy && jwks {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = format!(
        "policy: {}\njwks: {}\n",
        if policy { "loaded" } else { "not loaded" },
        if jwks { "loaded" } else { "not loaded" }
    );
    (status, body).into_response()
}

async fn render_metrics(State(state): State<Arc<AdminState>>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no metrics recorder installed\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use axum::body::Body;
    use std::sync::Arc;
    use stepup_core::engine::EngineConfig;
    use stepup_core::policy::PolicyCache;
    use tower::ServiceExt;

    async fn get_status(router: Router, path: &str) -> StatusCode {
        router
            .oneshot(
                http::Request::builder()
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn ready_only_once_policy_and_jwks_are_loaded() {
        let w = testutil::world().await;
        assert_eq!(
            get_status(router(w.engine.clone(), None), "/readyz").await,
            StatusCode::OK
        );
        assert_eq!(
            get_status(router(w.engine.clone(), None), "/healthz").await,
            StatusCode::OK
        );
        assert_eq!(
            get_status(router(w.engine.clone(), None), "/metrics").await,
            StatusCode::NOT_FOUND
        );
        // No policy index yet.
        let unloaded = Engine::new(
            Arc::new(PolicyCache::new()),
            w.engine.verifier().clone(),
            w.engine.sessions().clone(),
            EngineConfig::default(),
        );
        assert!(!is_ready(&unloaded));
        assert_eq!(
            get_status(router(unloaded, None), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn metrics_are_rendered_from_the_handle() {
        let w = testutil::world().await;
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("stepup_test_total").increment(1);
        });
        let r = router(w.engine.clone(), Some(handle))
            .oneshot(
                http::Request::builder()
                    .uri("/metrics")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("stepup_test_total 1"));
    }
}
