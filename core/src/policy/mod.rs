//! Rules: which requests need a step-up, and what satisfies it.
//!
//! - [`Rule`] and its parts (this file);
//! - [`template`]: `/accounts/{id}/transfer` path templates;
//! - [`item`]: setting-table items to rules and back, with the fail-closed treatment of
//!   malformed items;
//! - [`index`]: the [`PolicyIndex`] that answers "which rule governs (method, host, path)";
//! - [`cache`]: the [`PolicyCache`] holding the current index, refreshed in the background.

pub mod cache;
pub mod index;
pub mod item;
pub mod template;

pub use cache::PolicyCache;
pub use index::PolicyIndex;
pub use item::{MalformedItem, rule_from_item, rule_to_item};
pub use template::{Template, TemplateError};

use crate::outcome_metrics::ByOutcome;
use crate::session::Factor;
use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

/// `stepUpState` of a setting item, ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepUpState {
    /// `STEP_UP_NOT_REQUIRED`: a valid token is enough.
    NotRequired,
    /// `STEP_UP_REQUIRED`: a step-up is required.
    Required,
    /// `STEP_UP_DENY`: refused whatever the token.
    Deny,
}

impl StepUpState {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepUpState::NotRequired => "STEP_UP_NOT_REQUIRED",
            StepUpState::Required => "STEP_UP_REQUIRED",
            StepUpState::Deny => "STEP_UP_DENY",
        }
    }

    /// Parses the item value.
    pub fn parse(s: &str) -> Option<StepUpState> {
        match s {
            "STEP_UP_NOT_REQUIRED" => Some(StepUpState::NotRequired),
            "STEP_UP_REQUIRED" => Some(StepUpState::Required),
            "STEP_UP_DENY" => Some(StepUpState::Deny),
            _ => None,
        }
    }
}

/// Whether a rule's outcome is enforced or only reported (`enforcement` of a setting
/// item, `spec.enforcement` of a `StepUpPolicy`, or the enforcement points' global
/// setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Enforcement {
    /// Challenges and denials are answered (an item without the attribute, as the seed's).
    #[default]
    Enforce,
    /// Report-only: a request the rule would challenge or deny is allowed, marked
    /// `x-stepup-status: audit`, logged and counted.
    Audit,
}

impl Enforcement {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "ENFORCE",
            Enforcement::Audit => "AUDIT",
        }
    }

    /// Parses the item value or a setting, in any case (`AUDIT`, `audit`, `Audit`).
    pub fn parse(s: &str) -> Option<Enforcement> {
        if s.eq_ignore_ascii_case("enforce") {
            Some(Enforcement::Enforce)
        } else if s.eq_ignore_ascii_case("audit") {
            Some(Enforcement::Audit)
        } else {
            None
        }
    }
}

impl fmt::Display for StepUpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `match` of a setting item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    /// The canonical path equals the rule's path.
    Exact,
    /// The canonical path is the rule's path or lies below it, segment by segment (as
    /// Kubernetes Ingress `Prefix`: `/admin` covers `/admin` and `/admin/x`, not
    /// `/administrator`).
    Prefix,
    /// The canonical path matches the rule's template segment by segment.
    Template,
}

impl MatchKind {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "EXACT",
            MatchKind::Prefix => "PREFIX",
            MatchKind::Template => "TEMPLATE",
        }
    }

    /// Parses the item value (case-insensitive).
    pub fn parse(s: &str) -> Option<MatchKind> {
        match s.to_ascii_uppercase().as_str() {
            "EXACT" => Some(MatchKind::Exact),
            "PREFIX" => Some(MatchKind::Prefix),
            "TEMPLATE" => Some(MatchKind::Template),
            _ => None,
        }
    }
}

/// The path part of a rule, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// `EXACT`
    Exact(String),
    /// `PREFIX` (segment-wise)
    Prefix(String),
    /// `TEMPLATE`
    Template(Template),
}

impl PathPattern {
    /// The match kind.
    pub fn kind(&self) -> MatchKind {
        match self {
            PathPattern::Exact(_) => MatchKind::Exact,
            PathPattern::Prefix(_) => MatchKind::Prefix,
            PathPattern::Template(_) => MatchKind::Template,
        }
    }

    /// The canonical path or template text.
    pub fn as_str(&self) -> &str {
        match self {
            PathPattern::Exact(p) | PathPattern::Prefix(p) => p,
            PathPattern::Template(t) => t.as_str(),
        }
    }

    /// Does the canonical `path` match?
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => p == path,
            PathPattern::Prefix(p) => prefix_matches(p, path),
            PathPattern::Template(t) => t.matches(path),
        }
    }

    /// The same pattern with ASCII letters folded to lower case (for the case-folded index).
    pub fn to_folded(&self) -> PathPattern {
        match self {
            PathPattern::Exact(p) => PathPattern::Exact(p.to_ascii_lowercase()),
            PathPattern::Prefix(p) => PathPattern::Prefix(p.to_ascii_lowercase()),
            PathPattern::Template(t) => PathPattern::Template(t.to_folded()),
        }
    }

    /// Number of path segments (the "length" of the precedence rules).
    pub fn segment_count(&self) -> usize {
        match self {
            PathPattern::Exact(p) | PathPattern::Prefix(p) => {
                p.split('/').filter(|s| !s.is_empty()).count()
            }
            PathPattern::Template(t) => t.segment_count(),
        }
    }
}

/// Segment-wise prefix match of canonical paths.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A host a rule is limited to: `api.example.com` or `*.example.com` (any subdomain, not
/// the apex). Lower case, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// This host exactly.
    Exact(String),
    /// Any host ending in `.<suffix>`; holds the suffix with its leading dot.
    Wildcard(String),
}

impl HostPattern {
    /// Parses a host pattern; `None` for an empty or otherwise invalid one.
    pub fn parse(s: &str) -> Option<HostPattern> {
        let s = canonical_host(s);
        if s.is_empty() || s.contains(['/', ' ', '@']) {
            return None;
        }
        match s.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() && !rest.contains('*') => {
                Some(HostPattern::Wildcard(format!(".{rest}")))
            }
            Some(_) => None,
            None if s.contains('*') => None,
            None => Some(HostPattern::Exact(s.into_owned())),
        }
    }

    /// Does a canonical host (see [`canonical_host`]) match?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }

    /// The pattern as written in an item.
    pub fn to_item_string(&self) -> String {
        match self {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Wildcard(suffix) => format!("*{suffix}"),
        }
    }
}

/// A `Host`/`:authority` value as rules see it: lower case, without port, without a
/// trailing dot. IPv6 literals keep their brackets. Borrowed (no allocation) when the
/// value is already lower case, as clients send it.
pub fn canonical_host(host: &str) -> Cow<'_, str> {
    let host = host.trim();
    let without_port = if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        &host[..end + 2]
    } else {
        match host.rfind(':') {
            Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
            _ => host,
        }
    };
    let host = without_port.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// One rule of the setting table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The item's `id`.
    pub id: String,
    /// The path pattern (canonical).
    pub pattern: PathPattern,
    /// Methods (upper case); empty means any. A rule naming `GET` also governs `HEAD`,
    /// which most frameworks serve with the `GET` handler.
    pub methods: Vec<String>,
    /// Hosts; empty means any.
    pub hosts: Vec<HostPattern>,
    /// What the rule asks for.
    pub state: StepUpState,
    /// Freshness: a step-up (session `completedAt`, or the token's `auth_time` in claims
    /// mode) older than this many seconds does not count. `None`: any completed step-up of
    /// the token counts.
    pub max_age: Option<u64>,
    /// Factors accepted in session mode; empty means any.
    pub factors: Vec<Factor>,
    /// `acr` values accepted in claims mode (any of). Empty: the token's `acr` is not
    /// looked at.
    pub acr_values: Vec<String>,
    /// `amr` values accepted in claims mode: the token's `amr` list must hold at least one
    /// of them. Empty: the token's `amr` is not looked at. With neither `acr_values` nor
    /// `amr_values`, claims mode is off for this rule.
    pub amr_values: Vec<String>,
    /// `owner` (`namespace/name`) for items written by the operator.
    pub owner: Option<String>,
    /// Set when the rule stands in for a malformed item (see [`item`]): the reason.
    pub quarantined: Option<String>,
    /// Enforced, or report-only.
    pub enforcement: Enforcement,
    /// Its `stepup_rule_decisions_total` counters (see [`Rule::counters`]); not part of
    /// equality.
    pub counters: RuleCounters,
}

/// The per-rule counters `stepup_rule_decisions_total{rule, policy, outcome}`, made at the
/// rule's first decision from its `id` and `owner` (empty for a hand-made item) and kept:
/// labels come from the rules, never from request paths. Equal for any two rules.
#[derive(Clone, Default)]
pub struct RuleCounters(OnceLock<ByOutcome<metrics::Counter>>);

impl fmt::Debug for RuleCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RuleCounters")
    }
}

impl PartialEq for RuleCounters {
    fn eq(&self, _: &RuleCounters) -> bool {
        true
    }
}

impl Eq for RuleCounters {}

impl Rule {
    /// A rule with only a path, as the seed's hand-made items are.
    pub fn new(id: impl Into<String>, pattern: PathPattern, state: StepUpState) -> Rule {
        Rule {
            id: id.into(),
            pattern,
            methods: Vec::new(),
            hosts: Vec::new(),
            state,
            max_age: None,
            factors: Vec::new(),
            acr_values: Vec::new(),
            amr_values: Vec::new(),
            owner: None,
            quarantined: None,
            enforcement: Enforcement::Enforce,
            counters: RuleCounters::default(),
        }
    }

    /// Its `stepup_rule_decisions_total` counters, one per outcome.
    pub fn counters(&self) -> &ByOutcome<metrics::Counter> {
        self.counters.0.get_or_init(|| {
            let owner = self.owner.clone().unwrap_or_default();
            ByOutcome::counters(
                "stepup_rule_decisions_total",
                &[("rule", self.id.clone().into()), ("policy", owner.into())],
            )
        })
    }

    /// Does the rule's method and host scope include this request? `method` upper case,
    /// `host` canonical.
    pub fn scope_matches(&self, method: &str, host: &str) -> bool {
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m == method || (method == "HEAD" && m == "GET"));
        method_ok && (self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(host)))
    }

    /// How many of methods and hosts the rule restricts (0–2): a restricted rule is more
    /// specific than an unrestricted one on the same path.
    pub fn scope_specificity(&self) -> u8 {
        u8::from(!self.methods.is_empty()) + u8::from(!self.hosts.is_empty())
    }

    /// Session mode (a completed session) satisfies the rule: it names factors, or it
    /// names neither factors nor `acr`/`amr` values (the seed's rules).
    pub fn allows_session_mode(&self) -> bool {
        !self.factors.is_empty() || !self.allows_claims_mode()
    }

    /// Claims mode (the token's `acr`/`amr`/`auth_time`) satisfies the rule: it names
    /// `acr` or `amr` values.
    pub fn allows_claims_mode(&self) -> bool {
        !self.acr_values.is_empty() || !self.amr_values.is_empty()
    }
}

/// True for an `acr` / `amr` value a rule may name: non-empty, and no whitespace, quote
/// or backslash, so that the RFC 9470 challenge can list values space-separated in one
/// quoted `acr_values` parameter.
pub fn is_claim_value(v: &str) -> bool {
    !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matching_is_segment_wise() {
        let p = PathPattern::Prefix("/admin".into());
        assert!(p.matches("/admin"));
        assert!(p.matches("/admin/users"));
        assert!(!p.matches("/administrator"));
        assert!(!p.matches("/"));
        assert!(PathPattern::Prefix("/".into()).matches("/anything"));
    }

    #[test]
    fn hosts_are_compared_without_port_case_or_trailing_dot() {
        assert_eq!(canonical_host("API.Example.com:8443"), "api.example.com");
        assert_eq!(canonical_host("api.example.com."), "api.example.com");
        assert_eq!(canonical_host("[::1]:80"), "[::1]");
        let w = HostPattern::parse("*.Example.com").unwrap();
        assert!(w.matches("api.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("evil-example.com"));
        assert_eq!(HostPattern::parse("a.*.com"), None);
        assert_eq!(HostPattern::parse(""), None);
        assert_eq!(w.to_item_string(), "*.example.com");
    }

    #[test]
    fn a_get_rule_also_governs_head() {
        let mut r = Rule::new("x", PathPattern::Exact("/x".into()), StepUpState::Required);
        r.methods = vec!["GET".into()];
        assert!(r.scope_matches("HEAD", "h"));
        assert!(!r.scope_matches("POST", "h"));
    }

    #[test]
    fn states_order_from_least_to_most_strict() {
        assert!(StepUpState::Deny > StepUpState::Required);
        assert!(StepUpState::Required > StepUpState::NotRequired);
        for s in [
            StepUpState::NotRequired,
            StepUpState::Required,
            StepUpState::Deny,
        ] {
            assert_eq!(StepUpState::parse(s.as_str()), Some(s));
        }
    }
}
