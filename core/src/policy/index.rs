//! The in-memory index of rules: "which rule governs (method, host, path)".
//!
//! Precedence (DESIGN.md "Setting table"), highest first:
//! 1. match kind: `EXACT` > `TEMPLATE` > `PREFIX`;
//! 2. length: more segments first (templates: then more literal segments; prefixes: then
//!    the longer text);
//! 3. scope: a rule restricted by methods and/or hosts before one that is not;
//! 4. on a tie, `STEP_UP_DENY` > `STEP_UP_REQUIRED` > `STEP_UP_NOT_REQUIRED`.
//!
//! The first rule in that order whose path, method and host match governs; no match means
//! step-up is not required (the seed's default). Every rule list is sorted once when the
//! index is built, so a lookup is a hash probe plus a walk over the template and prefix
//! rules, without allocation (except the case-folded second look described at
//! [`PolicyIndex::lookup`]).

use super::item::{MalformedItem, quarantine_rule, rule_from_item};
use super::{MatchKind, PathPattern, Rule};
use crate::item::Item;
use std::cmp::Reverse;
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
struct Tables {
    exact: HashMap<String, Vec<Rule>>,
    templates: Vec<Rule>,
    prefixes: Vec<Rule>,
}

impl Tables {
    fn build(rules: impl IntoIterator<Item = Rule>) -> Tables {
        let mut t = Tables::default();
        for rule in rules {
            match &rule.pattern {
                PathPattern::Exact(p) => t.exact.entry(p.clone()).or_default().push(rule),
                PathPattern::Template(_) => t.templates.push(rule),
                PathPattern::Prefix(_) => t.prefixes.push(rule),
            }
        }
        for bucket in t.exact.values_mut() {
            bucket.sort_by_key(|r| Reverse((r.scope_specificity(), r.state)));
        }
        t.templates.sort_by_key(|r| {
            let literals = match &r.pattern {
                PathPattern::Template(t) => t.literal_count(),
                _ => 0,
            };
            Reverse((
                r.pattern.segment_count(),
                literals,
                r.scope_specificity(),
                r.state,
            ))
        });
        t.prefixes.sort_by_key(|r| {
            Reverse((
                r.pattern.segment_count(),
                r.pattern.as_str().len(),
                r.scope_specificity(),
                r.state,
            ))
        });
        t
    }

    fn lookup(&self, method: &str, host: &str, path: &str) -> Option<&Rule> {
        let scoped = |r: &&Rule| r.scope_matches(method, host);
        if let Some(rule) = self.exact.get(path).and_then(|b| b.iter().find(scoped)) {
            return Some(rule);
        }
        self.templates
            .iter()
            .filter(scoped)
            .find(|r| r.pattern.matches(path))
            .or_else(|| {
                self.prefixes
                    .iter()
                    .filter(scoped)
                    .find(|r| r.pattern.matches(path))
            })
    }
}

/// The rules of one snapshot of the setting table.
#[derive(Debug, Default, Clone)]
pub struct PolicyIndex {
    sensitive: Tables,
    folded: Tables,
    rules_have_upper: bool,
    rule_count: usize,
    malformed: Vec<MalformedItem>,
}

impl PolicyIndex {
    /// An index over these rules.
    pub fn from_rules(rules: Vec<Rule>) -> PolicyIndex {
        let rules_have_upper = rules
            .iter()
            .any(|r| r.pattern.as_str().bytes().any(|b| b.is_ascii_uppercase()));
        let folded: Vec<Rule> = rules
            .iter()
            .map(|r| Rule {
                pattern: r.pattern.to_folded(),
                ..r.clone()
            })
            .collect();
        PolicyIndex {
            rule_count: rules.len(),
            sensitive: Tables::build(rules),
            folded: Tables::build(folded),
            rules_have_upper,
            malformed: Vec::new(),
        }
    }

    /// An index over setting items. Malformed items are kept in [`Self::malformed`] and
    /// replaced by their quarantine rules (see [`super::item`]).
    pub fn from_items(items: &[Item]) -> PolicyIndex {
        let mut rules = Vec::with_capacity(items.len());
        let mut malformed = Vec::new();
        for item in items {
            match rule_from_item(item) {
                Ok(rule) => rules.push(rule),
                Err(problem) => {
                    if let Some(q) = quarantine_rule(item, &problem) {
                        rules.push(q);
                    }
                    malformed.push(problem);
                }
            }
        }
        let mut index = PolicyIndex::from_rules(rules);
        index.malformed = malformed;
        index
    }

    /// The rule governing a request: `method` upper case, `host` canonical
    /// ([`super::canonical_host`]), `path` canonical ([`crate::canonical::canonicalize`]).
    ///
    /// The path is looked up as written and, when the path or any rule has upper-case
    /// letters, also case-folded; the stricter of the two answers governs. So a
    /// case-insensitive upstream cannot be reached through `/TRANSFER`, and a
    /// case-sensitive one loses nothing: folding can only add protection.
    pub fn lookup(&self, method: &str, host: &str, path: &str) -> Option<&Rule> {
        let as_written = self.sensitive.lookup(method, host, path);
        let path_has_upper = path.bytes().any(|b| b.is_ascii_uppercase());
        if !path_has_upper && !self.rules_have_upper {
            return as_written;
        }
        let folded_path = path.to_ascii_lowercase();
        let folded = self.folded.lookup(method, host, &folded_path);
        match (as_written, folded) {
            (Some(a), Some(f)) if f.state > a.state => Some(f),
            (None, Some(f)) => Some(f),
            (a, _) => a,
        }
    }

    /// Number of rules (quarantine rules included).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// The malformed items of the snapshot.
    pub fn malformed(&self) -> &[MalformedItem] {
        &self.malformed
    }

    /// Number of rules of each match kind (for metrics and logs).
    pub fn count_by_kind(&self, kind: MatchKind) -> usize {
        match kind {
            MatchKind::Exact => self.sensitive.exact.values().map(Vec::len).sum(),
            MatchKind::Template => self.sensitive.templates.len(),
            MatchKind::Prefix => self.sensitive.prefixes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HostPattern, StepUpState, Template};
    use super::*;
    use crate::canonical::canonicalize;
    use proptest::prelude::*;

    fn rule(id: &str, pattern: PathPattern, state: StepUpState) -> Rule {
        Rule::new(id, pattern, state)
    }
    fn exact(p: &str) -> PathPattern {
        PathPattern::Exact(p.into())
    }
    fn prefix(p: &str) -> PathPattern {
        PathPattern::Prefix(p.into())
    }
    fn template(p: &str) -> PathPattern {
        PathPattern::Template(Template::parse(p).unwrap())
    }
    fn governing<'a>(i: &'a PolicyIndex, m: &str, p: &str) -> Option<&'a str> {
        let c = canonicalize(p).unwrap();
        i.lookup(m, "api.example.com", &c).map(|r| r.id.as_str())
    }

    #[test]
    fn exact_beats_template_beats_prefix() {
        let idx = PolicyIndex::from_rules(vec![
            rule("p", prefix("/accounts"), StepUpState::Deny),
            rule(
                "t",
                template("/accounts/{id}/transfer"),
                StepUpState::Required,
            ),
            rule(
                "e",
                exact("/accounts/42/transfer"),
                StepUpState::NotRequired,
            ),
        ]);
        assert_eq!(governing(&idx, "GET", "/accounts/42/transfer"), Some("e"));
        assert_eq!(governing(&idx, "GET", "/accounts/7/transfer"), Some("t"));
        assert_eq!(governing(&idx, "GET", "/accounts/7"), Some("p"));
        assert_eq!(governing(&idx, "GET", "/other"), None);
    }

    #[test]
    fn longer_prefixes_and_templates_win() {
        let idx = PolicyIndex::from_rules(vec![
            rule("short", prefix("/api"), StepUpState::Required),
            rule("long", prefix("/api/public"), StepUpState::NotRequired),
            rule("t1", template("/{a}/{b}"), StepUpState::Deny),
            rule("t2", template("/x/{b}"), StepUpState::NotRequired),
        ]);
        assert_eq!(governing(&idx, "GET", "/api/public/doc"), Some("long"));
        assert_eq!(governing(&idx, "GET", "/api/private"), Some("t1"));
        assert_eq!(governing(&idx, "GET", "/x/y"), Some("t2"));
        assert_eq!(governing(&idx, "GET", "/api/a/b"), Some("short"));
    }

    #[test]
    fn a_rule_with_methods_or_hosts_beats_one_without_on_the_same_path() {
        let mut post = rule("post", exact("/transfer"), StepUpState::Required);
        post.methods = vec!["POST".into()];
        let mut host = rule("host", exact("/transfer"), StepUpState::Deny);
        host.hosts = vec![HostPattern::parse("admin.example.com").unwrap()];
        let any = rule("any", exact("/transfer"), StepUpState::NotRequired);
        let idx = PolicyIndex::from_rules(vec![any, post, host]);
        assert_eq!(governing(&idx, "POST", "/transfer"), Some("post"));
        assert_eq!(governing(&idx, "GET", "/transfer"), Some("any"));
        let c = "/transfer";
        assert_eq!(
            idx.lookup("GET", "admin.example.com", c).unwrap().id,
            "host"
        );
    }

    #[test]
    fn on_a_tie_deny_beats_required_beats_not_required() {
        let idx = PolicyIndex::from_rules(vec![
            rule("n", exact("/x"), StepUpState::NotRequired),
            rule("r", exact("/x"), StepUpState::Required),
            rule("d", exact("/x"), StepUpState::Deny),
        ]);
        assert_eq!(governing(&idx, "GET", "/x"), Some("d"));
    }

    #[test]
    fn upper_case_spellings_get_the_stricter_of_the_two_readings() {
        let idx = PolicyIndex::from_rules(vec![
            rule("t", exact("/transfer"), StepUpState::Required),
            rule("pub", prefix("/api/public"), StepUpState::NotRequired),
            rule("api", prefix("/api"), StepUpState::Required),
        ]);
        assert_eq!(governing(&idx, "GET", "/TRANSFER"), Some("t"));
        assert_eq!(governing(&idx, "GET", "/Transfer/"), Some("t"));
        // `/api/PUBLIC` is under `/api` as written; folded it would be public: stricter wins.
        assert_eq!(governing(&idx, "GET", "/api/PUBLIC"), Some("api"));
        let idx =
            PolicyIndex::from_rules(vec![rule("T", exact("/Transfer"), StepUpState::Required)]);
        assert_eq!(governing(&idx, "GET", "/transfer"), Some("T"));
    }

    #[test]
    fn malformed_items_are_reported_and_quarantined() {
        use crate::item::Attr;
        let items: Vec<Item> = vec![
            [
                ("id", Attr::s("/transfer")),
                ("stepUpState", Attr::s("NOPE")),
            ],
            [
                ("id", Attr::s("/info")),
                ("stepUpState", Attr::s("STEP_UP_NOT_REQUIRED")),
            ],
        ]
        .into_iter()
        .map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        .collect();
        let idx = PolicyIndex::from_items(&items);
        assert_eq!(idx.malformed().len(), 1);
        assert_eq!(idx.rule_count(), 2);
        assert_eq!(
            idx.lookup("GET", "h", "/transfer").unwrap().state,
            StepUpState::Deny
        );
        assert_eq!(
            idx.lookup("GET", "h", "/info").unwrap().state,
            StepUpState::NotRequired
        );
    }

    /// A rule with a random kind, path, scope and state from a small vocabulary, so that
    /// random rule sets overlap a lot.
    fn arb_rule() -> impl Strategy<Value = Rule> {
        let seg = prop_oneof![Just("a"), Just("b"), Just("c")];
        (
            0u8..3,
            proptest::collection::vec(seg, 0..4),
            any::<bool>(),
            0u8..3,
        )
            .prop_map(|(kind, segs, post_only, state)| {
                let path = format!("/{}", segs.join("/"));
                let pattern = match kind {
                    0 => PathPattern::Exact(canonicalize(&path).unwrap().into_owned()),
                    1 if !segs.is_empty() => {
                        let mut s: Vec<&str> = segs.clone();
                        s[0] = "{v}";
                        PathPattern::Template(
                            Template::parse(&format!("/{}", s.join("/"))).unwrap(),
                        )
                    }
                    _ => PathPattern::Prefix(canonicalize(&path).unwrap().into_owned()),
                };
                let state = [
                    StepUpState::NotRequired,
                    StepUpState::Required,
                    StepUpState::Deny,
                ][state as usize];
                let mut r = Rule::new(format!("{kind}{path}{post_only}{state:?}"), pattern, state);
                if post_only {
                    r.methods = vec!["POST".into()];
                }
                r
            })
    }

    /// The precedence rules written as one comparison, independently of the index.
    fn precedence_key(r: &Rule) -> (u8, usize, usize, usize, u8, StepUpState) {
        let (kind, literals) = match &r.pattern {
            PathPattern::Exact(_) => (2, 0),
            PathPattern::Template(t) => (1, t.literal_count()),
            PathPattern::Prefix(_) => (0, 0),
        };
        let len = if kind == 0 {
            r.pattern.as_str().len()
        } else {
            0
        };
        (
            kind,
            r.pattern.segment_count(),
            literals,
            len,
            r.scope_specificity(),
            r.state,
        )
    }

    proptest! {
        #[test]
        fn the_governing_rule_is_the_highest_precedence_match(
            rules in proptest::collection::vec(arb_rule(), 0..12),
            segs in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")], 0..4),
            post in any::<bool>(),
        ) {
            let path = canonicalize(&format!("/{}", segs.join("/"))).unwrap().into_owned();
            let method = if post { "POST" } else { "GET" };
            let idx = PolicyIndex::from_rules(rules.clone());
            let got = idx.lookup(method, "h", &path);
            let best = rules
                .iter()
                .filter(|r| r.scope_matches(method, "h") && r.pattern.matches(&path))
                .max_by_key(|r| precedence_key(r));
            match (got, best) {
                (None, None) => {}
                (Some(g), Some(b)) => prop_assert_eq!(precedence_key(g), precedence_key(b)),
                (g, b) => prop_assert!(false, "index {:?} vs brute force {:?}", g, b),
            }
        }
    }
}
