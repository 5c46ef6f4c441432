//! The admin listener (`STEPUP_ADMIN_LISTEN`): `/healthz` (the process answers),
//! `/readyz` (the controller has its first complete list of policies, or this replica is
//! a standby waiting for the lease — a standby is ready, or a rollout with leader election
//! would never finish) and `/metrics` (Prometheus text).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the operator is ready; set by [`crate::run`].
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the operator ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Is it ready?
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct AdminState {
    ready: Readiness,
    metrics: Option<PrometheusHandle>,
}

/// The admin router; without a `metrics` handle `/metrics` answers 404.
pub fn router(ready: Readiness, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Arc::new(AdminState { ready, metrics }))
}

/// Installs the process-wide Prometheus recorder (once, in `run`) and returns the handle
/// `/metrics` renders.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
    Ok(handle)
}

async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    if state.ready.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
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
    use axum::body::Body;
    use tower::ServiceExt;

    async fn call(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(
                http::Request::builder()
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_follows_the_flag_and_health_is_always_ok() {
        let ready = Readiness::default();
        let app = router(ready.clone(), None);
        assert_eq!(call(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            call(app.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.set(true);
        assert_eq!(call(app.clone(), "/readyz").await.0, StatusCode::OK);
        assert_eq!(call(app, "/metrics").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_rendered_in_prometheus_text() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!(crate::controller::metric::RECONCILES, "result" => "ok").increment(2);
        });
        let (status, body) = call(router(Readiness::default(), Some(handle)), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("stepup_operator_reconciles_total{result=\"ok\"} 2"),
            "{body}"
        );
    }
}
