//! Setting-table items to [`Rule`]s and back.
//!
//! The seed's hand-made items stay valid as they are:
//! `{"id": "/transfer", "stepUpState": "STEP_UP_REQUIRED", "createTimestamp": …}` is an
//! `EXACT` rule on `/transfer` for any method and host. Items written by the operator add
//! `path`, `match`, `methods`, `hosts`, `maxAgeSeconds`, `factors`, `acrValues`, `amrValues`
//! `owner` and `enforcement` (`AUDIT` for report-only; absent or `ENFORCE`: enforced).
//! Attributes stepup does not read (`createTimestamp`, `ownerUid`, …) are ignored.
//!
//! **Malformed items fail closed.** An item that cannot be read exactly (unknown state,
//! bad template, wrong attribute types, unknown factor, …) is reported, and in its place
//! stands a *quarantine* rule that `STEP_UP_DENY`s the whole area the item could have been
//! meant to cover: its path exactly for `EXACT`, everything below the literal part before
//! the first `{` for a bad `TEMPLATE`, everything below the path otherwise; for any method
//! and any host. So a typo can make a path *more* protected than intended, never less. Only
//! an item whose path cannot be made out at all (no usable `id`/`path`) is skipped, since
//! there is nothing it could protect.

use super::{Enforcement, HostPattern, MatchKind, PathPattern, Rule, StepUpState, Template};
use crate::canonical::canonicalize;
use crate::item::{Attr, AttrError, Item, ItemExt};
use crate::session::Factor;

/// A setting item that could not be read exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting item `{id}` is malformed: {reason}")]
pub struct MalformedItem {
    /// The item's `id` (or `<no id>`).
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

fn malformed(id: &str, reason: impl ToString) -> MalformedItem {
    MalformedItem {
        id: id.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads an item exactly; any problem is an error.
pub fn rule_from_item(item: &Item) -> Result<Rule, MalformedItem> {
    let id = item
        .req_s("id")
        .map_err(|e| malformed("<no id>", e))?
        .to_owned();
    let bad = |e: AttrError| malformed(&id, e);

    let path = item.opt_s("path").map_err(bad)?.unwrap_or(&id);
    let kind = match item.opt_s("match").map_err(bad)? {
        None => MatchKind::Exact,
        Some(m) => {
            MatchKind::parse(m).ok_or_else(|| malformed(&id, format!("unknown match `{m}`")))?
        }
    };
    let pattern = match kind {
        MatchKind::Exact | MatchKind::Prefix => {
            let canonical = canonicalize(path)
                .map_err(|e| malformed(&id, format!("path `{path}`: {e}")))?
                .into_owned();
            if kind == MatchKind::Exact {
                PathPattern::Exact(canonical)
            } else {
                PathPattern::Prefix(canonical)
            }
        }
        MatchKind::Template => PathPattern::Template(
            Template::parse(path).map_err(|e| malformed(&id, format!("template `{path}`: {e}")))?,
        ),
    };

    let state_text = item.req_s("stepUpState").map_err(bad)?;
    let state = StepUpState::parse(state_text)
        .ok_or_else(|| malformed(&id, format!("unknown stepUpState `{state_text}`")))?;

    let methods = match item.opt_strings("methods").map_err(bad)? {
        None => Vec::new(),
        Some(list) if list.iter().any(|m| m == "*") => Vec::new(),
        Some(list) => list
            .into_iter()
            .map(|m| {
                let upper = m.trim().to_ascii_uppercase();
                if !upper.is_empty() && upper.bytes().all(|b| b.is_ascii_uppercase()) {
                    Ok(upper)
                } else {
                    Err(malformed(&id, format!("invalid method `{m}`")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let hosts = match item.opt_strings("hosts").map_err(bad)? {
        None => Vec::new(),
        Some(list) if list.iter().any(|h| h == "*") => Vec::new(),
        Some(list) => list
            .iter()
            .map(|h| {
                HostPattern::parse(h).ok_or_else(|| malformed(&id, format!("invalid host `{h}`")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let factors = item
        .opt_strings("factors")
        .map_err(bad)?
        .unwrap_or_default()
        .iter()
        .map(|f| Factor::parse(f).ok_or_else(|| malformed(&id, format!("unknown factor `{f}`"))))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Rule {
        pattern,
        methods,
        hosts,
        state,
        max_age: item.opt_u64("maxAgeSeconds").map_err(bad)?,
        factors,
        acr_values: claim_values(item, "acrValues", &id)?,
        amr_values: claim_values(item, "amrValues", &id)?,
        owner: item.opt_s("owner").map_err(bad)?.map(str::to_owned),
        quarantined: None,
        enforcement: match item.opt_s("enforcement").map_err(bad)? {
            None => Enforcement::Enforce,
            Some(e) => Enforcement::parse(e)
                .ok_or_else(|| malformed(&id, format!("unknown enforcement `{e}`")))?,
        },
        counters: Default::default(),
        id,
    })
}

/// `acrValues` / `amrValues`: each value must be usable in the RFC 9470 challenge, where
/// the values are listed space-separated in one quoted string.
fn claim_values(item: &Item, name: &'static str, id: &str) -> Result<Vec<String>, MalformedItem> {
    let values = item
        .opt_strings(name)
        .map_err(|e| malformed(id, e.to_string()))?
        .unwrap_or_default();
    match values.iter().find(|v| !super::is_claim_value(v)) {
        Some(v) => Err(malformed(
            id,
            format!(
                "{name} value `{}` holds whitespace, a quote or a backslash",
                v.escape_debug()
            ),
        )),
        None => Ok(values),
    }
}

/// The `STEP_UP_DENY` rule that stands in for a malformed item (see the module
/// documentation), or `None` when the item names no usable path.
pub fn quarantine_rule(item: &Item, problem: &MalformedItem) -> Option<Rule> {
    let id = item.opt_s("id").ok().flatten()?;
    let path = item.opt_s("path").ok().flatten().unwrap_or(id);
    let kind = item.opt_s("match").ok().flatten().map(MatchKind::parse);
    let pattern = match kind {
        None | Some(Some(MatchKind::Exact)) => {
            PathPattern::Exact(canonicalize(path).ok()?.into_owned())
        }
        Some(Some(MatchKind::Template)) => PathPattern::Prefix(
            canonicalize(Template::literal_prefix(path))
                .ok()?
                .into_owned(),
        ),
        Some(Some(MatchKind::Prefix)) | Some(None) => {
            PathPattern::Prefix(canonicalize(path).ok()?.into_owned())
        }
    };
    let mut rule = Rule::new(id, pattern, StepUpState::Deny);
    rule.owner = item.opt_s("owner").ok().flatten().map(str::to_owned);
    rule.quarantined = Some(problem.reason.clone());
    Some(rule)
}

fn string_set(values: impl IntoIterator<Item = String>) -> Option<Attr> {
    let mut v: Vec<String> = values.into_iter().collect();
    v.sort();
    v.dedup();
    // DynamoDB has no empty string set: an empty list is written as an absent attribute.
    (!v.is_empty()).then_some(Attr::Ss(v))
}

/// The item for a rule, as the operator writes it (it adds `ownerUid`, `generation` and
/// timestamps itself). [`rule_from_item`] reads it back to an equal rule.
pub fn rule_to_item(rule: &Rule) -> Item {
    let mut item = Item::new();
    item.insert("id".into(), Attr::s(&rule.id));
    item.insert("path".into(), Attr::s(rule.pattern.as_str()));
    item.insert("match".into(), Attr::s(rule.pattern.kind().as_str()));
    item.insert("stepUpState".into(), Attr::s(rule.state.as_str()));
    let optional = [
        ("methods", string_set(rule.methods.iter().cloned())),
        (
            "hosts",
            string_set(rule.hosts.iter().map(HostPattern::to_item_string)),
        ),
        (
            "factors",
            string_set(rule.factors.iter().map(|f| f.as_str().to_owned())),
        ),
        ("acrValues", string_set(rule.acr_values.iter().cloned())),
        ("amrValues", string_set(rule.amr_values.iter().cloned())),
        ("maxAgeSeconds", rule.max_age.map(Attr::n)),
        ("owner", rule.owner.as_ref().map(Attr::s)),
        (
            "enforcement",
            (rule.enforcement == Enforcement::Audit).then(|| Attr::s(Enforcement::Audit.as_str())),
        ),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            item.insert(name.into(), v);
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::item;

    fn seed(id: &str, state: &str) -> Item {
        item(&[
            ("id", Attr::s(id)),
            ("stepUpState", Attr::s(state)),
            ("createTimestamp", Attr::n(1_700_000_000u64)),
            ("lastUpdateTimestamp", Attr::n(1_700_000_000u64)),
        ])
    }

    #[test]
    fn the_seed_items_are_exact_rules_for_any_method_and_host() {
        let r = rule_from_item(&seed("/transfer", "STEP_UP_REQUIRED")).unwrap();
        assert_eq!(r.pattern, PathPattern::Exact("/transfer".into()));
        assert_eq!(r.state, StepUpState::Required);
        assert!(r.methods.is_empty() && r.hosts.is_empty() && r.max_age.is_none());
        let r = rule_from_item(&seed("/info", "STEP_UP_NOT_REQUIRED")).unwrap();
        assert_eq!(r.state, StepUpState::NotRequired);
    }

    #[test]
    fn operator_items_round_trip() {
        let mut rule = Rule::new(
            "default/payments#0",
            PathPattern::Template(Template::parse("/accounts/{id}/transfer").unwrap()),
            StepUpState::Required,
        );
        rule.methods = vec!["POST".into()];
        rule.hosts = vec![HostPattern::parse("*.example.com").unwrap()];
        rule.max_age = Some(300);
        rule.factors = vec![Factor::SoftwareToken];
        rule.acr_values = vec!["urn:cognito:loa:3".into()];
        rule.amr_values = vec!["mfa".into(), "otp".into()];
        rule.owner = Some("default/payments".into());
        assert_eq!(rule_from_item(&rule_to_item(&rule)).unwrap(), rule);
    }

    #[test]
    fn an_unknown_state_is_quarantined_as_deny_on_its_path() {
        let it = seed("/transfer", "STEP_UP_REQUIRD");
        let err = rule_from_item(&it).unwrap_err();
        assert!(err.reason.contains("STEP_UP_REQUIRD"));
        let q = quarantine_rule(&it, &err).unwrap();
        assert_eq!(q.state, StepUpState::Deny);
        assert_eq!(q.pattern, PathPattern::Exact("/transfer".into()));
        assert!(q.methods.is_empty() && q.hosts.is_empty());
    }

    #[test]
    fn a_bad_template_is_quarantined_over_its_literal_prefix() {
        let it = item(&[
            ("id", Attr::s("ns/p#0")),
            ("path", Attr::s("/accounts/{id}.json/transfer")),
            ("match", Attr::s("TEMPLATE")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ]);
        let err = rule_from_item(&it).unwrap_err();
        let q = quarantine_rule(&it, &err).unwrap();
        assert_eq!(q.pattern, PathPattern::Prefix("/accounts".into()));
        assert_eq!(q.state, StepUpState::Deny);
    }

    #[test]
    fn wrong_types_and_unknown_values_are_malformed() {
        let base = seed("/x", "STEP_UP_REQUIRED");
        let cases: Vec<(&str, Attr)> = vec![
            ("stepUpState", Attr::n(1u64)),
            ("maxAgeSeconds", Attr::s("300")),
            ("methods", Attr::Ss(vec!["GE T".into()])),
            ("hosts", Attr::Ss(vec!["a.*.com".into()])),
            ("factors", Attr::Ss(vec!["PIGEON".into()])),
            ("match", Attr::s("REGEX")),
            ("path", Attr::Bool(true)),
            ("acrValues", Attr::n(3u64)),
            ("amrValues", Attr::n(3u64)),
            ("amrValues", Attr::Bool(true)),
            ("amrValues", Attr::L(vec![Attr::n(1u64)])),
        ];
        for (name, value) in cases {
            let mut it = base.clone();
            it.insert(name.into(), value);
            let err = rule_from_item(&it).unwrap_err();
            let q = quarantine_rule(&it, &err);
            assert!(
                q.as_ref().is_some_and(|q| q.state == StepUpState::Deny),
                "{name}: {q:?}"
            );
        }
    }

    #[test]
    fn an_item_with_no_usable_path_is_skipped() {
        let it = seed("transfer", "STEP_UP_REQUIRED");
        let err = rule_from_item(&it).unwrap_err();
        assert_eq!(quarantine_rule(&it, &err), None);
        let it = item(&[("stepUpState", Attr::s("STEP_UP_REQUIRED"))]);
        let err = rule_from_item(&it).unwrap_err();
        assert_eq!(err.id, "<no id>");
        assert_eq!(quarantine_rule(&it, &err), None);
    }

    #[test]
    fn amr_values_are_read_in_the_same_shapes_as_acr_values() {
        let shapes = [
            Attr::Ss(vec!["mfa".into(), "otp".into()]),
            Attr::L(vec![Attr::s("mfa"), Attr::s("otp")]),
            Attr::s("mfa, otp"),
        ];
        for shape in shapes {
            for name in ["acrValues", "amrValues"] {
                let mut it = seed("/x", "STEP_UP_REQUIRED");
                it.insert(name.into(), shape.clone());
                let r = rule_from_item(&it).unwrap();
                let read = if name == "acrValues" {
                    &r.acr_values
                } else {
                    &r.amr_values
                };
                assert_eq!(read, &vec!["mfa".to_owned(), "otp".to_owned()], "{name}");
                assert!(r.allows_claims_mode() && !r.allows_session_mode(), "{name}");
            }
        }
    }

    #[test]
    fn a_star_means_any_method_or_host() {
        let mut it = seed("/x", "STEP_UP_REQUIRED");
        it.insert("methods".into(), Attr::Ss(vec!["*".into()]));
        it.insert("hosts".into(), Attr::s("*"));
        let r = rule_from_item(&it).unwrap();
        assert!(r.methods.is_empty() && r.hosts.is_empty());
    }
}
