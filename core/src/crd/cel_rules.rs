//! The CRD's CEL rules (`x-kubernetes-validations` on each rule of `spec.rules`), each
//! written once here with its Rust counterpart: the CRD is generated from
//! [`RULE_VALIDATIONS`], and [`super::rules_for`] (so `stepup-operator validate` and
//! `sync`) checks every entry's [`CelRule::holds`] and reports its message. The API server
//! evaluates the CEL; everything outside a cluster evaluates the counterpart.
//!
//! The operator's tests hold the two to each other: every CEL rule of the generated
//! `crds/` file has a counterpart here (matched by its rule text), and both give the same
//! answer on every rule of the invalid-manifest corpus and of `examples/policies`, the CEL
//! side evaluated by a CEL interpreter.

use super::rules::parse_duration;
use super::{MatchType, PolicyRule, RuleAction};

/// Shortest `maxAge`: a step-up must count for something.
pub const MIN_MAX_AGE_SECS: u64 = 1;
/// Longest `maxAge`: a Cognito access token lives at most 24 h, and a step-up is bound to
/// its token, so a longer freshness can never be reached (and is most likely a typo,
/// `300h` for `300s`).
pub const MAX_MAX_AGE_SECS: u64 = 24 * 3600;

/// One CEL rule of a `StepUpPolicy` rule, and its Rust counterpart.
#[derive(Debug, Clone, Copy)]
pub struct CelRule {
    /// The name the counterpart goes by (in tests and messages).
    pub name: &'static str,
    /// The CEL expression, over `self` = one rule.
    pub rule: &'static str,
    /// The message the API server gives when the rule is false.
    pub message: &'static str,
    /// The field the message is about (`fieldPath` in the CRD), without the leading `.`.
    pub field: &'static str,
    /// The counterpart: whether the rule holds for a rule that fits the OpenAPI schema.
    pub holds: fn(&PolicyRule) -> bool,
}

/// The CEL rules of a `StepUpPolicy` rule, in the CRD's order.
pub const RULE_VALIDATIONS: &[CelRule] = &[
    CelRule {
        name: "stepUpFieldsOnlyWithRequireStepUp",
        rule: "self.action == 'RequireStepUp' || ((!has(self.acrValues) || size(self.acrValues) == 0) && (!has(self.amrValues) || size(self.amrValues) == 0) && (!has(self.factors) || size(self.factors) == 0) && !has(self.maxAge))",
        message: "maxAge, factors, acrValues and amrValues apply only to action RequireStepUp",
        field: "action",
        holds: step_up_fields_only_with_require_step_up,
    },
    CelRule {
        name: "templateSegments",
        rule: "!has(self.match) || self.match != 'Template' || (self.path.matches('^(/([^{}/]*|[{][A-Za-z0-9_]+[}]))+$') && self.path.matches('/[{][A-Za-z0-9_]+[}]'))",
        message: "a Template path is literal segments and whole-segment {variables} (letters, digits, _), at least one variable",
        field: "path",
        holds: template_segments,
    },
    CelRule {
        name: "maxAgeInRange",
        rule: "!has(self.maxAge) || (duration(self.maxAge) >= duration('1s') && duration(self.maxAge) <= duration('24h'))",
        message: "maxAge must be between 1s and 24h (a Cognito access token lives at most 24h)",
        field: "maxAge",
        holds: max_age_in_range,
    },
];

fn step_up_fields_only_with_require_step_up(r: &PolicyRule) -> bool {
    r.action == RuleAction::RequireStepUp
        || (r.acr_values.is_empty()
            && r.amr_values.is_empty()
            && r.factors.is_empty()
            && r.max_age.is_none())
}

fn template_segments(r: &PolicyRule) -> bool {
    if r.match_type != MatchType::Template {
        return true;
    }
    let Some(rest) = r.path.strip_prefix('/') else {
        return false;
    };
    let mut variables = 0;
    for seg in rest.split('/') {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                variables += 1;
            }
            _ if seg.contains(['{', '}']) => return false,
            _ => {}
        }
    }
    variables > 0
}

/// A `maxAge` that does not parse is the schema's `pattern`'s business (and
/// [`parse_duration`]'s): this rule only bounds one that does.
fn max_age_in_range(r: &PolicyRule) -> bool {
    match r.max_age.as_deref().map(parse_duration) {
        Some(Ok(s)) => (MIN_MAX_AGE_SECS..=MAX_MAX_AGE_SECS).contains(&s),
        _ => true,
    }
}

/// The `x-kubernetes-validations` list of the CRD.
pub fn x_kubernetes_validations() -> serde_json::Value {
    RULE_VALIDATIONS
        .iter()
        .map(|r| {
            serde_json::json!({
                "rule": r.rule,
                "message": r.message,
                "fieldPath": format!(".{}", r.field),
            })
        })
        .collect()
}

/// The messages of the CEL rules `rule` breaks, each with its field
/// (`("maxAge", "maxAge must be ...")`).
pub fn broken(rule: &PolicyRule) -> impl Iterator<Item = &'static CelRule> + '_ {
    RULE_VALIDATIONS.iter().filter(|c| !(c.holds)(rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::fixtures::rule;

    fn names(r: &PolicyRule) -> Vec<&'static str> {
        broken(r).map(|c| c.name).collect()
    }

    #[test]
    fn each_counterpart_refuses_what_its_message_says() {
        let mut allow_with_age = rule("/a", RuleAction::Allow);
        allow_with_age.max_age = Some("5m".into());
        assert_eq!(
            names(&allow_with_age),
            ["stepUpFieldsOnlyWithRequireStepUp"]
        );

        for (path, ok) in [
            ("/accounts/{id}/transfer", true),
            ("/a/{x}/", true),
            ("/{a_1}", true),
            ("/accounts/{id/transfer", false),
            ("/accounts/x{id}", false),
            ("/accounts/{}", false),
            ("/accounts/transfer", false),
            ("accounts/{id}", false),
        ] {
            let mut t = rule(path, RuleAction::Deny);
            t.match_type = MatchType::Template;
            assert_eq!(names(&t).is_empty(), ok, "{path}");
        }

        for (age, ok) in [
            ("1s", true),
            ("24h", true),
            ("5m", true),
            ("0s", false),
            ("24h1s", false),
            ("5 m", true),
        ] {
            let mut r = rule("/a", RuleAction::RequireStepUp);
            r.max_age = Some(age.into());
            assert_eq!(names(&r).is_empty(), ok, "{age}");
        }
    }

    #[test]
    fn the_crd_carries_every_rule_with_its_field() {
        let v = x_kubernetes_validations();
        assert_eq!(v.as_array().map(Vec::len), Some(RULE_VALIDATIONS.len()));
        assert_eq!(v[2]["fieldPath"], ".maxAge");
    }
}
