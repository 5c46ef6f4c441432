//! The sidecar's measurements: the per-check latency histogram and outcome counter every
//! enforcement handler records, and the buckets of that histogram. The recorder, the
//! subscriber and `/metrics` are [`stepup_runtime`]'s.
//!
//! Nothing here ever sees a token: handlers log and count decisions by their label only.

use metrics_exporter_prometheus::PrometheusHandle;
use stepup_core::Decision;

/// The latency histogram of one check, by `mode` (`grpc` | `http`).
pub const CHECK_DURATION: &str = "stepup_check_duration_seconds";
/// Checks answered, by `mode` and `outcome` (the decision label).
pub const CHECKS_TOTAL: &str = "stepup_checks_total";

/// Buckets of [`CHECK_DURATION`]: a cached decision takes microseconds, a session read a
/// few milliseconds; Envoy gives up after its `timeout` (2 s in the examples).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    2.0,
];

/// Installs the process-wide Prometheus recorder with the sidecar's buckets (once, in
/// `main`) and returns the handle `/metrics` renders.
pub fn install_metrics() -> stepup_runtime::Result<PrometheusHandle> {
    stepup_runtime::metrics::install_metrics(&[(CHECK_DURATION, &DURATION_BUCKETS)])
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
        metrics::histogram!(CHECK_DURATION, "mode" => self.mode)
            .record(self.started.elapsed().as_secs_f64());
        metrics::counter!(CHECKS_TOTAL, "mode" => self.mode, "outcome" => decision.label())
            .increment(1);
        tracing::debug!(
            mode = self.mode,
            outcome = decision.label(),
            status = decision.status_code(),
            "ext_authz check"
        );
    }
}
