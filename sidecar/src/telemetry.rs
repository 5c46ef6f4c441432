//! Logs and metrics: the tracing subscriber, the Prometheus recorder, and the per-check
//! measurements every enforcement handler records.
//!
//! Nothing here ever sees a token: handlers log and count decisions by their label only.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use stepup_core::Decision;
use tracing_subscriber::EnvFilter;

/// The latency histogram of one check, by `mode` (`grpc` | `http`).
pub const CHECK_DURATION: &str = "stepup_check_duration_seconds";
/// Checks answered, by `mode` and `outcome` (the decision label).
pub const CHECKS_TOTAL: &str = "stepup_checks_total";

/// Buckets of [`CHECK_DURATION`]: a cached decision takes microseconds, a session read a
/// few milliseconds; Envoy gives up after its `timeout` (2 s in the examples).
const DURATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    2.0,
];

/// Installs the JSON (or text) tracing subscriber; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

/// Installs the process-wide Prometheus recorder (once, in `main`) and returns the handle
/// `/metrics` renders.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CHECK_DURATION.to_owned()), &DURATION_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
    Ok(handle)
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
