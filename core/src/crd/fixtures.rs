//! Policy builders shared by the `crd` unit tests.

use super::{MatchType, PolicyRule, RuleAction, StepUpPolicy, StepUpPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// An exact rule with this action and nothing else.
pub(crate) fn rule(path: &str, action: RuleAction) -> PolicyRule {
    PolicyRule {
        path: path.into(),
        match_type: MatchType::Exact,
        methods: vec![],
        hosts: vec![],
        action,
        max_age: None,
        factors: vec![],
        acr_values: vec![],
        amr_values: vec![],
    }
}

/// A policy `default/<name>` created at `created` (Unix seconds).
pub(crate) fn policy(name: &str, created: i64, rules: Vec<PolicyRule>) -> StepUpPolicy {
    let mut p = StepUpPolicy::new(
        name,
        StepUpPolicySpec {
            rules,
            enforcement: Default::default(),
        },
    );
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.generation = Some(1);
    p.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created)
        .ok()
        .map(Time);
    p
}
