//! The sidecar's measurements: the per-check latency histogram and outcome counter every
//! enforcement handler records, and the buckets of that histogram. The recorder, the
//! subscriber and `/metrics` are [`stepup_runtime`]'s.
//!
//! Nothing here ever sees a token: handlers log and count decisions by their label only.

use metrics::Histogram;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::OnceLock;
use stepup_core::Decision;
use stepup_core::outcome_metrics::ByOutcome;

/// The latency histogram of one check, from request to answer, by `point` (`grpc` |
/// `http`) and `outcome` (the decision label).
pub const DECISION_DURATION: &str = stepup_runtime::metrics::DECISION_DURATION;
/// Check requests that carried no request to decide (no HTTP attributes or path), by
/// `mode`: Envoy never sends them; something else talks to the listener.
pub const MALFORMED_CHECKS: &str = "stepup_malformed_checks_total";

/// Installs the process-wide Prometheus recorder with the sidecar's buckets (once, in
/// `main`) and returns the handle `/metrics` renders.
pub fn install_metrics() -> stepup_runtime::Result<PrometheusHandle> {
    use stepup_runtime::metrics::{API_DURATION, API_DURATION_BUCKETS, DECISION_DURATION_BUCKETS};
    stepup_runtime::metrics::install_metrics(&[
        (DECISION_DURATION, &DECISION_DURATION_BUCKETS),
        (API_DURATION, &API_DURATION_BUCKETS),
    ])
}

/// A started check: records its latency and outcome when finished.
#[derive(Debug)]
pub(crate) struct CheckTimer {
    mode: &'static str,
    // A monotonic timer for the latency metric only; decisions take `now` from
    // `stepup_core::clock`.
    started: tokio::time::Instant,
}

impl CheckTimer {
    pub(crate) fn start(mode: &'static str) -> Self {
        Self {
            mode,
            started: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn finish(self, decision: &Decision) {
        durations(self.mode)
            .of(decision)
            .record(self.started.elapsed().as_secs_f64());
        tracing::debug!(
            mode = self.mode,
            outcome = decision.label(),
            status = decision.status_code(),
            "ext_authz check"
        );
    }
}

/// The latency histograms of one enforcement point, one per outcome, registered at the
/// point's first check and kept (an atomic update per check, see
/// [`stepup_core::outcome_metrics`]).
fn durations(point: &'static str) -> &'static ByOutcome<Histogram> {
    static GRPC: OnceLock<ByOutcome<Histogram>> = OnceLock::new();
    static HTTP: OnceLock<ByOutcome<Histogram>> = OnceLock::new();
    let cell = if point == "grpc" { &GRPC } else { &HTTP };
    cell.get_or_init(|| ByOutcome::histograms(DECISION_DURATION, &[("point", point.into())]))
}
