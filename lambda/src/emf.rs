//! The authorizer's metrics as CloudWatch Embedded Metric Format (EMF) lines: one JSON
//! line per decision on stdout, which the Lambda runtime ships to CloudWatch Logs, where
//! CloudWatch turns it into metrics. No agent, no `PutMetricData` call on the request
//! path (it would add a network round trip and an IAM permission to every decision).
//!
//! Namespace `stepup`, metrics (the sidecar's Prometheus figures under CloudWatch names):
//!
//! | metric | unit | dimensions | Prometheus counterpart |
//! |---|---|---|---|
//! | `DecisionDuration` | Microseconds | `point`, `outcome` | `stepup_decision_duration_seconds` |
//! | `Decisions` | Count | `outcome` | `stepup_decisions_total` |
//! | `Audited` | Count | `would` | `stepup_audit_total` (only on audited requests) |
//!
//! Per-rule figures are in the decision log's lines (CloudWatch Logs Insights groups
//! them by `rule`), not in EMF: a dimension per rule id would be a metric per rule.

use serde_json::{Value, json};
use std::time::Duration;
use stepup_core::Decision;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "stepup";

/// The EMF line of one decision by the authorizer, at `timestamp_ms` (Unix milliseconds).
pub fn decision_line(decision: &Decision, took: Duration, timestamp_ms: u64) -> Value {
    let mut metrics = vec![
        json!({"Name": "DecisionDuration", "Unit": "Microseconds"}),
        json!({"Name": "Decisions", "Unit": "Count"}),
    ];
    let mut dimensions = vec![json!(["point", "outcome"]), json!(["outcome"])];
    let mut line = json!({
        "point": "lambda",
        "outcome": decision.label(),
        "DecisionDuration": took.as_secs_f64() * 1e6,
        "Decisions": 1,
    });
    if let Some(audited) = decision.audited() {
        metrics.push(json!({"Name": "Audited", "Unit": "Count"}));
        dimensions.push(json!(["would"]));
        line["would"] = json!(audited.outcome);
        line["Audited"] = json!(1);
    }
    line["_aws"] = json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": dimensions,
            "Metrics": metrics,
        }],
    });
    line
}

/// Writes the line to stdout (one line, as EMF needs).
pub fn emit(decision: &Decision, took: Duration) {
    let ms = stepup_core::clock::now().as_secs().saturating_mul(1000);
    println!("{}", decision_line(decision, took, ms));
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepup_core::decision::{AllowStatus, Audited, DenyReason};

    /// The EMF rules CloudWatch applies: every metric named in `Metrics` and every
    /// dimension key is a top-level member of the line.
    fn assert_valid_emf(line: &Value) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} in {line}");
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(line[key.as_str().unwrap()].is_string(), "{key} in {line}");
            }
        }
        assert!(line["_aws"]["Timestamp"].is_u64());
    }

    #[test]
    fn a_refusal_is_a_valid_emf_line_with_its_outcome_and_duration() {
        let d = Decision::Denied(DenyReason::Policy);
        let line = decision_line(&d, Duration::from_micros(12), 1_800_000_000_000);
        assert_valid_emf(&line);
        assert_eq!(line["outcome"], "deny");
        assert_eq!(line["DecisionDuration"], 12.0);
        assert!(line.get("Audited").is_none());
    }

    #[test]
    fn an_audited_allow_counts_what_it_would_have_been() {
        let d = Decision::Allow {
            status: AllowStatus::Audit(Audited {
                outcome: "required",
                reason: "step_up_required",
            }),
            user: "u".into(),
            client_id: "c".into(),
        };
        let line = decision_line(&d, Duration::from_micros(3), 1);
        assert_valid_emf(&line);
        assert_eq!(line["outcome"], "audit");
        assert_eq!(line["would"], "required");
        assert_eq!(line["Audited"], 1);
        // One line: EMF needs the whole document on one line.
        assert!(!line.to_string().contains('\n'));
    }
}
