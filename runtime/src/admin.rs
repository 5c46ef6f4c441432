//! The admin listener's router: `/healthz` (the process answers), `/readyz` (what the
//! binary's [`ReadinessCheck`] says) and `/metrics` (Prometheus text, or 404 without a
//! recorder). The binaries differ only in what "ready" means: the sidecar needs a policy
//! index and a JWKS, the operator a full policy cache (or a standby's wait for the lease).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `/readyz` answers: 200 when `ready`, else 503, with `detail` as the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the process can do its work.
    pub ready: bool,
    /// A short text for people (`/readyz`'s body), one line per condition.
    pub detail: String,
}

/// How a binary tells whether it is ready.
pub trait ReadinessCheck: std::fmt::Debug + Send + Sync + 'static {
    /// The current readiness.
    fn readiness(&self) -> Readiness;

    /// Sets gauges that are only true at the moment they are read (ages), just before
    /// `/metrics` renders.
    fn before_scrape(&self) {}
}

/// A readiness flag the binary sets when it is ready (the operator's).
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// Marks the process ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Is it ready?
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl ReadinessCheck for ReadyFlag {
    fn readiness(&self) -> Readiness {
        let ready = self.is_ready();
        Readiness {
            ready,
            detail: if ready { "ready\n" } else { "starting\n" }.to_owned(),
        }
    }
}

#[derive(Debug)]
struct AdminState<R> {
    check: R,
    metrics: Option<PrometheusHandle>,
}

/// The admin router over `check`; without a `metrics` handle `/metrics` answers 404.
pub fn router<R: ReadinessCheck>(check: R, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<R>))
        .route("/metrics", get(render_metrics::<R>))
        .with_state(Arc::new(AdminState { check, metrics }))
}

async fn readyz<R: ReadinessCheck>(State(state): State<Arc<AdminState<R>>>) -> Response {
    let Readiness { ready, detail } = state.check.readiness();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, detail).into_response()
}

async fn render_metrics<R: ReadinessCheck>(State(state): State<Arc<AdminState<R>>>) -> Response {
    match &state.metrics {
        Some(handle) => {
            state.check.before_scrape();
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
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
        let ready = ReadyFlag::default();
        let app = router(ready.clone(), None);
        assert_eq!(call(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            call(app.clone(), "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned())
        );
        ready.set(true);
        assert_eq!(
            call(app.clone(), "/readyz").await,
            (StatusCode::OK, "ready\n".to_owned())
        );
        assert_eq!(call(app, "/metrics").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_rendered_in_prometheus_text() {
        let recorder = crate::metrics::builder(&[]).unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("stepup_test_total", "result" => "ok").increment(2);
        });
        let (status, body) = call(router(ReadyFlag::default(), Some(handle)), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("stepup_test_total{result=\"ok\"} 2"),
            "{body}"
        );
    }
}
