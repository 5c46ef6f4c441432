//! Metric handles per decision outcome, registered once and kept, so that counting a
//! decision is an atomic add: no key hashing, no registry lookup, no label allocation on
//! the request path (the metrics macros do all three on every call when a label value is
//! not a literal).
//!
//! A handle is bound to the recorder installed when it is made; the owners make theirs at
//! first use (binaries install their recorder at start, before any request).

use metrics::{Counter, Histogram, Label, SharedString};

use crate::decision::{Decision, OUTCOMES};

/// One handle per outcome of [`OUTCOMES`], with the `outcome` label and fixed others.
#[derive(Debug, Clone)]
pub struct ByOutcome<T>([T; OUTCOMES.len()]);

fn labels(outcome: &'static str, fixed: &[(&'static str, SharedString)]) -> Vec<Label> {
    fixed
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .chain(std::iter::once(Label::new("outcome", outcome)))
        .collect()
}

impl ByOutcome<Counter> {
    /// Counters `name{<fixed…>, outcome}`.
    pub fn counters(name: &'static str, fixed: &[(&'static str, SharedString)]) -> Self {
        ByOutcome(OUTCOMES.map(|o| metrics::counter!(name, labels(o, fixed))))
    }
}

impl ByOutcome<Histogram> {
    /// Histograms `name{<fixed…>, outcome}`.
    pub fn histograms(name: &'static str, fixed: &[(&'static str, SharedString)]) -> Self {
        ByOutcome(OUTCOMES.map(|o| metrics::histogram!(name, labels(o, fixed))))
    }
}

impl<T> ByOutcome<T> {
    /// The handle of `decision`'s outcome.
    pub fn of(&self, decision: &Decision) -> &T {
        &self.0[decision.outcome_index()]
    }

    /// The handle of an outcome label (`None` for a label not in [`OUTCOMES`]).
    pub fn by_label(&self, outcome: &str) -> Option<&T> {
        OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map(|i| &self.0[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DenyReason;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn each_outcome_counts_under_its_own_label() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let c = ByOutcome::counters("stepup_test_total", &[("rule", "r1".into())]);
            c.of(&Decision::Denied(DenyReason::Policy)).increment(2);
            c.by_label("required").unwrap().increment(1);
            assert!(c.by_label("nonsense").is_none());
        });
        let text = handle.render();
        assert!(
            text.contains(r#"stepup_test_total{rule="r1",outcome="deny"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"stepup_test_total{rule="r1",outcome="required"} 1"#));
    }
}
