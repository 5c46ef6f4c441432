//! Metrics: the process-wide Prometheus recorder. A binary names the histogram buckets of
//! its own metrics (the sidecar's check latency spans microseconds to Envoy's 2 s
//! timeout); every other histogram keeps the exporter's summary default.

use crate::{Error, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use stepup_core::latency::{
    API_DURATION, API_DURATION_BUCKETS, DECISION_DURATION, DECISION_DURATION_BUCKETS,
};

/// Histogram buckets for one metric, by its full name.
pub type Buckets<'a> = (&'a str, &'a [f64]);

/// Installs the process-wide Prometheus recorder (once, in `main`), with `buckets` for the
/// named histograms, and returns the handle `/metrics` renders.
pub fn install_metrics(buckets: &[Buckets<'_>]) -> Result<PrometheusHandle> {
    let recorder = builder(buckets)?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| Error::Install {
        what: "metrics recorder",
        reason: e.to_string(),
    })?;
    Ok(handle)
}

/// The exporter with `buckets`, not installed (tests install it locally).
pub fn builder(buckets: &[Buckets<'_>]) -> Result<PrometheusBuilder> {
    buckets
        .iter()
        .try_fold(PrometheusBuilder::new(), |b, (name, values)| {
            b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), values)
        })
        .map_err(|e| Error::Install {
            what: "metrics recorder",
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_histogram_gets_its_buckets_and_the_others_stay_summaries() {
        let recorder = builder(&[("stepup_test_seconds", &[0.001, 0.1])])
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("stepup_test_seconds").record(0.05);
            metrics::histogram!("stepup_other_seconds").record(0.05);
        });
        let text = handle.render();
        assert!(
            text.contains("stepup_test_seconds_bucket{le=\"0.1\"} 1"),
            "{text}"
        );
        assert!(text.contains("stepup_other_seconds{quantile="), "{text}");
    }

    #[test]
    fn empty_buckets_are_refused_at_start_up() {
        let e = builder(&[("stepup_test_seconds", &[])]).unwrap_err();
        assert_eq!(e.metric_label(), "install");
    }
}
