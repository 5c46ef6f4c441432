//! From one `StepUpPolicy` to the [`Rule`]s it means, checking every field on the way:
//! a policy is either turned into rules as a whole or refused as a whole with every
//! problem found ([`PolicyError`]). The table writes are planned from these rules in
//! [`super::plan`].
//!
//! **Keys.** Each rule's [`rule_key`] is `<MATCH>:<canonical path>`, then `|methods=GET,POST`
//! and `|hosts=a,b` when the rule names them (sorted): what two rules must not share.

use super::{FactorName, MatchType, PolicyEnforcement, RuleAction, StepUpPolicy, cel_rules};
use crate::canonical::canonicalize;
use crate::policy::{Enforcement, HostPattern, PathPattern, Rule, StepUpState, Template};
use crate::session::Factor;
use std::collections::{BTreeMap, BTreeSet};

/// The longest rule key written (DynamoDB allows 2048 bytes for a partition key).
pub const MAX_KEY_LEN: usize = 1024;

/// A policy that cannot be turned into rules, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("StepUpPolicy `{policy}` is malformed: {}", problems.join("; "))]
pub struct PolicyError {
    /// `namespace/name`.
    pub policy: String,
    /// Each problem, prefixed with where it is (`rules[1].maxAge: …`).
    pub problems: Vec<String>,
}

/// Parses a `maxAge` duration (`5m`, `300s`, `1h30m`: hours, minutes, seconds in this
/// order, each at most once) into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a duration like 5m, 300s or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut units = ["h", "m", "s"].iter().zip([3600u64, 60, 1]).peekable();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (number, after) = rest.split_at(digits);
        let unit = after.chars().next().ok_or_else(bad)?;
        // Advance to the unit; units out of order or repeated are refused.
        let factor = loop {
            match units.next() {
                Some((u, f)) if u.starts_with(unit) => break f,
                Some(_) => continue,
                None => return Err(bad()),
            }
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(factor)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("`{text}` is too long"))?;
        rest = &after[unit.len_utf8()..];
    }
    Ok(total)
}

fn state_of(action: RuleAction) -> StepUpState {
    match action {
        RuleAction::RequireStepUp => StepUpState::Required,
        RuleAction::Deny => StepUpState::Deny,
        RuleAction::Allow => StepUpState::NotRequired,
    }
}

fn factor_of(f: FactorName) -> Factor {
    match f {
        FactorName::SoftwareToken => Factor::SoftwareToken,
        FactorName::Sms => Factor::Sms,
    }
}

/// The rule key of a rule (see the module documentation).
pub fn rule_key(rule: &Rule) -> String {
    let mut key = format!("{}:{}", rule.pattern.kind().as_str(), rule.pattern.as_str());
    if !rule.methods.is_empty() {
        let methods: BTreeSet<&str> = rule.methods.iter().map(String::as_str).collect();
        key.push_str("|methods=");
        key.push_str(&methods.into_iter().collect::<Vec<_>>().join(","));
    }
    if !rule.hosts.is_empty() {
        let hosts: BTreeSet<String> = rule.hosts.iter().map(HostPattern::to_item_string).collect();
        key.push_str("|hosts=");
        key.push_str(&hosts.into_iter().collect::<Vec<_>>().join(","));
    }
    key
}

/// The core [`Rule`]s of a policy, each with its rule key as `id` and the policy as
/// `owner`. Any problem makes the whole policy malformed: the error lists every problem
/// and no rule is returned, so that a half-read policy never replaces a whole one.
pub fn rules_for(policy: &StepUpPolicy) -> Result<Vec<Rule>, PolicyError> {
    let owner = policy.owner();
    let mut problems = Vec::new();
    if policy.metadata.name.as_deref().is_none_or(str::is_empty) {
        problems.push("metadata.name is missing".to_owned());
    }
    if policy.spec.rules.is_empty() {
        problems.push("spec.rules is empty".to_owned());
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(policy.spec.rules.len());
    let mut first_index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, spec) in policy.spec.rules.iter().enumerate() {
        let mut problem = |field: &str, what: String| {
            problems.push(format!("rules[{i}].{field}: {what}"));
        };
        // The CRD's CEL rules first (the API server's own checks), then what they leave.
        let mut cel_fields: Vec<&str> = Vec::new();
        for broken in cel_rules::broken(spec) {
            problem(broken.field, broken.message.to_owned());
            cel_fields.push(broken.field);
        }
        let pattern = match spec.match_type {
            MatchType::Exact | MatchType::Prefix if !spec.path.starts_with('/') => {
                problem("path", format!("`{}` does not start with `/`", spec.path));
                None
            }
            MatchType::Exact | MatchType::Prefix => match canonicalize(&spec.path) {
                Ok(p) if spec.match_type == MatchType::Exact => {
                    Some(PathPattern::Exact(p.into_owned()))
                }
                Ok(p) => Some(PathPattern::Prefix(p.into_owned())),
                Err(e) => {
                    problem("path", format!("`{}`: {e}", spec.path));
                    None
                }
            },
            MatchType::Template => match Template::parse(&spec.path) {
                Ok(t) => Some(PathPattern::Template(t)),
                Err(_) if cel_fields.contains(&"path") => None,
                Err(e) => {
                    problem("path", format!("template `{}`: {e}", spec.path));
                    None
                }
            },
        };
        if spec.path.contains(['?', '#']) {
            problem("path", format!("`{}` has a query or fragment", spec.path));
        }

        let mut methods = Vec::new();
        if !spec.methods.iter().any(|m| m.trim() == "*") {
            for m in &spec.methods {
                let upper = m.trim().to_ascii_uppercase();
                if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                    problem("methods", format!("`{m}` is not an HTTP method"));
                } else if !methods.contains(&upper) {
                    methods.push(upper);
                }
            }
        }
        methods.sort();

        let mut hosts = Vec::new();
        if !spec.hosts.iter().any(|h| h.trim() == "*") {
            for h in &spec.hosts {
                match HostPattern::parse(h) {
                    Some(p) if !hosts.contains(&p) => hosts.push(p),
                    Some(_) => {}
                    None => problem("hosts", format!("`{h}` is not a host or *.domain")),
                }
            }
        }

        let max_age = match spec.max_age.as_deref().map(parse_duration) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                problem("maxAge", e);
                None
            }
        };
        let mut claim_values = |field: &str, values: &[String]| {
            let mut out: Vec<String> = Vec::new();
            for v in values {
                if v.trim().is_empty() {
                    problem(field, "an empty value".to_owned());
                } else if !crate::policy::is_claim_value(v) {
                    problem(
                        field,
                        format!(
                            "`{}` holds whitespace, a quote or a backslash (the challenge lists values space-separated in a quoted string)",
                            v.escape_debug()
                        ),
                    );
                } else if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            out
        };
        let acr_values = claim_values("acrValues", &spec.acr_values);
        let amr_values = claim_values("amrValues", &spec.amr_values);
        let mut factors: Vec<Factor> = Vec::new();
        for f in spec.factors.iter().copied().map(factor_of) {
            if !factors.contains(&f) {
                factors.push(f);
            }
        }

        let Some(pattern) = pattern else { continue };
        let mut rule = Rule::new(String::new(), pattern, state_of(spec.action));
        rule.methods = methods;
        rule.hosts = hosts;
        rule.max_age = max_age;
        rule.factors = factors;
        rule.acr_values = acr_values;
        rule.amr_values = amr_values;
        rule.owner = Some(owner.clone());
        rule.enforcement = match policy.spec.enforcement {
            PolicyEnforcement::Enforce => Enforcement::Enforce,
            PolicyEnforcement::Audit => Enforcement::Audit,
        };
        rule.id = rule_key(&rule);
        if rule.id.len() > MAX_KEY_LEN {
            problem("path", format!("rule key longer than {MAX_KEY_LEN} bytes"));
        }
        if let Some(first) = first_index.get(&rule.id) {
            problems.push(format!(
                "rules[{i}]: governs `{}` as rules[{first}] does",
                rule.id
            ));
        } else {
            first_index.insert(rule.id.clone(), i);
        }
        rules.push(rule);
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(PolicyError {
            policy: owner,
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::fixtures::{policy, rule};
    use crate::item::{Attr, Item};
    use crate::policy::rule_from_item;

    #[test]
    fn field_combinations_that_make_no_sense_are_malformed() {
        let mut allow_with_age = rule("/a", RuleAction::Allow);
        allow_with_age.max_age = Some("5m".into());
        let mut bad_method = rule("/b", RuleAction::Deny);
        bad_method.methods = vec!["GE T".into()];
        let mut bad_host = rule("/c", RuleAction::Deny);
        bad_host.hosts = vec!["a.*.com".into()];
        let mut zero = rule("/d", RuleAction::RequireStepUp);
        zero.max_age = Some("0s".into());
        let dup = rule("/a/", RuleAction::Deny);
        let p = policy(
            "p",
            1,
            vec![allow_with_age, bad_method, bad_host, zero, dup],
        );
        let err = rules_for(&p).unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
        assert!(err.problems[4].contains("rules[4]: governs `EXACT:/a` as rules[0] does"));
        let empty = policy("empty", 1, vec![]);
        assert!(rules_for(&empty).is_err());
    }

    #[test]
    fn amr_values_that_are_empty_or_outside_require_step_up_are_malformed() {
        let mut empty = rule("/a", RuleAction::RequireStepUp);
        empty.amr_values = vec![" ".into()];
        let mut on_allow = rule("/b", RuleAction::Allow);
        on_allow.amr_values = vec!["mfa".into()];
        let err = rules_for(&policy("p", 1, vec![empty, on_allow])).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("rules[0].amrValues: an empty value"));
        assert!(
            err.problems[1].contains("rules[1].action: maxAge, factors, acrValues and amrValues")
        );
    }

    #[test]
    fn claim_values_that_would_break_the_challenge_are_malformed() {
        let mut spaced = rule("/a", RuleAction::RequireStepUp);
        spaced.acr_values = vec!["urn:a urn:b".into()];
        let mut quoted = rule("/b", RuleAction::RequireStepUp);
        quoted.amr_values = vec!["otp\"".into()];
        let err = rules_for(&policy("p", 1, vec![spaced, quoted])).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("rules[0].acrValues"), "{err}");
        assert!(err.problems[1].contains("rules[1].amrValues"), "{err}");
        // A hand-made item with such a value is malformed too (and so quarantined).
        let item: Item = [
            ("id".to_owned(), Attr::s("/c")),
            ("stepUpState".to_owned(), Attr::s("STEP_UP_REQUIRED")),
            ("acrValues".to_owned(), Attr::Ss(vec!["a b".into()])),
        ]
        .into();
        assert!(rule_from_item(&item).is_err());
    }

    #[test]
    fn rule_keys_are_readable_and_independent_of_spelling_and_order() {
        let mut r = rule("//api/./accounts/", RuleAction::Deny);
        r.match_type = MatchType::Prefix;
        r.methods = vec!["post".into(), "GET".into(), "get".into()];
        r.hosts = vec!["B.example.com".into(), "*.a.example.com".into()];
        let rules = rules_for(&policy("p", 1, vec![r])).unwrap();
        assert_eq!(
            rules[0].id,
            "PREFIX:/api/accounts|methods=GET,POST|hosts=*.a.example.com,b.example.com"
        );
        let mut any = rule("/x", RuleAction::Deny);
        any.methods = vec!["*".into()];
        any.hosts = vec!["*".into()];
        assert_eq!(
            rules_for(&policy("p", 1, vec![any])).unwrap()[0].id,
            "EXACT:/x"
        );
    }

    #[test]
    fn durations_are_hours_minutes_seconds_in_order() {
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("300s"), Ok(300));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1h2m3s"), Ok(3723));
        for bad in [
            "", "5", "m", "5x", "1m1h", "5m5m", "1.5h", "-5m", "5 m", "1d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
