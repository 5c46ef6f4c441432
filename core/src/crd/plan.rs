//! From `StepUpPolicy` objects to setting-table writes, as pure functions.
//!
//! ```text
//!  StepUpPolicy ──rules_for──► Vec<Rule> ─┐
//!  StepUpPolicy ──rules_for──► Err(..) ───┼──plan(.., scan of the table, now)──► Plan
//!                                         │                                   puts, deletes,
//!  setting items (scan) ──────────────────┘                                   conflicts, errors
//! ```
//!
//! **Keys.** Each rule becomes the item whose `id` is its *rule key*:
//! `<MATCH>:<canonical path>`, then `|methods=GET,POST` and `|hosts=a,b` when the rule names
//! them (sorted). The key is what two rules must not share: two policies producing the
//! same key conflict, and the older policy (by `creationTimestamp`, then `namespace/name`)
//! keeps it. Keys never start with `/`, so they cannot collide with the seed's hand-made
//! items, whose `id` is their path.
//!
//! **What is touched.** Only items with an `owner` attribute. A hand-made item is never
//! rewritten or deleted, even when its `id` equals a rule key (the rule then reports a
//! conflict). An item is deleted when its owner is in the desired set but no longer has
//! its key, or when its owner is absent from the desired set and [`PlanOptions::prune`] is
//! on. A malformed policy keeps whatever items it has: a typo must not remove protection.
//!
//! **Writes.** An item is rewritten only when some attribute other than the timestamps
//! changes; a rewrite keeps `createTimestamp` and sets `lastUpdateTimestamp` to `now`.

use super::{Action, FactorName, MatchType, StepUpPolicy};
use crate::canonical::canonicalize;
use crate::clock::UnixSeconds;
use crate::item::{Attr, Item, ItemExt};
use crate::policy::{HostPattern, PathPattern, Rule, StepUpState, Template, rule_to_item};
use crate::session::Factor;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The longest rule key written (DynamoDB allows 2048 bytes for a partition key).
pub const MAX_KEY_LEN: usize = 1024;

/// Item attributes the plan manages besides those of [`rule_to_item`].
const CREATE_TS: &str = "createTimestamp";
const UPDATE_TS: &str = "lastUpdateTimestamp";

/// A policy that cannot be turned into rules, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("StepUpPolicy `{policy}` is malformed: {}", problems.join("; "))]
pub struct PolicyError {
    /// `namespace/name`.
    pub policy: String,
    /// Each problem, prefixed with where it is (`rules[1].maxAge: …`).
    pub problems: Vec<String>,
}

/// What the plan needs to know about a policy besides its rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyMeta {
    /// `namespace/name`, written as the items' `owner`.
    pub owner: String,
    /// `metadata.uid`, written as `ownerUid` when known.
    pub uid: Option<String>,
    /// `metadata.generation`, written as `generation` when known.
    pub generation: Option<i64>,
    /// `metadata.creationTimestamp` in Unix seconds; `None` for a policy not (yet) in a
    /// cluster, which counts as newer than any that is.
    pub created: Option<i64>,
}

impl PolicyMeta {
    /// The meta of a policy object.
    pub fn of(policy: &StepUpPolicy) -> PolicyMeta {
        PolicyMeta {
            owner: policy.owner(),
            uid: policy.metadata.uid.clone(),
            generation: policy.metadata.generation,
            created: policy
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
        }
    }

    /// Older first: by creation time (unknown last), then by `namespace/name`.
    fn age_order(&self) -> (bool, i64, &str) {
        (
            self.created.is_none(),
            self.created.unwrap_or(0),
            &self.owner,
        )
    }
}

/// One policy as the plan sees it: its meta and its rules, or why it has none.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// Owner, uid, generation, age.
    pub meta: PolicyMeta,
    /// The rules ([`rules_for`]), or the problems that make the policy malformed.
    pub rules: Result<Vec<Rule>, PolicyError>,
}

impl PolicyInput {
    /// The input for a policy object: [`PolicyMeta::of`] and [`rules_for`].
    pub fn of(policy: &StepUpPolicy) -> PolicyInput {
        PolicyInput {
            meta: PolicyMeta::of(policy),
            rules: rules_for(policy),
        }
    }
}

/// Options of [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete the items of owners absent from the desired set ("the desired set is the
    /// whole truth"). Off: such items are left alone.
    pub prune: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { prune: true }
    }
}

/// Why an item is written.
#[derive(Debug, Clone, PartialEq)]
pub enum PutKind {
    /// There was no item with this key.
    Create,
    /// The owner's item changed; the names of the attributes that differ.
    Update(Vec<String>),
    /// The item belonged to another policy (which lost it or is gone).
    TakeOver {
        /// The previous owner.
        from: String,
    },
}

/// An item to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPut {
    /// The rule key (`id`).
    pub key: String,
    /// The policy the item belongs to.
    pub owner: String,
    /// Why.
    pub kind: PutKind,
    /// The complete item.
    pub item: Item,
}

/// Why an item is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its policy no longer has this rule.
    RuleRemoved,
    /// Its policy is not in the desired set (pruned).
    PolicyAbsent,
}

/// An item to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDelete {
    /// The item's `id`.
    pub key: String,
    /// Its `owner`.
    pub owner: String,
    /// Why.
    pub reason: DeleteReason,
}

/// A rule key a policy wanted but does not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The policy that does not get the key (`namespace/name`).
    pub policy: String,
    /// The rule key.
    pub key: String,
    /// Who holds it: another policy's `namespace/name`, or a description.
    pub holder: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StepUpPolicy `{}`: rule `{}` is held by {}",
            self.policy, self.key, self.holder
        )
    }
}

/// What to change in the setting table, and what could not be done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Items to write (in key order).
    pub puts: Vec<PlannedPut>,
    /// Items to delete (in key order).
    pub deletes: Vec<PlannedDelete>,
    /// Keys whose items are already as desired.
    pub unchanged: Vec<String>,
    /// Keys policies wanted and do not get.
    pub conflicts: Vec<Conflict>,
    /// Malformed policies (their items are left as they are).
    pub errors: Vec<PolicyError>,
    /// For every well-formed policy, how many of its rules the table holds once the plan
    /// is applied (`status.syncedRules`).
    pub synced: BTreeMap<String, usize>,
}

impl Plan {
    /// Nothing to write or delete.
    pub fn is_noop(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }

    /// Some policy is malformed or lost a key.
    pub fn has_problems(&self) -> bool {
        !self.conflicts.is_empty() || !self.errors.is_empty()
    }

    /// The conflicts of one policy.
    pub fn conflicts_of<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = &'a Conflict> {
        self.conflicts.iter().filter(move |c| c.policy == owner)
    }
}

impl fmt::Display for Plan {
    /// One line per change, for `sync --dry-run` and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.puts {
            let state = p.item.opt_s("stepUpState").ok().flatten().unwrap_or("?");
            match &p.kind {
                PutKind::Create => write!(f, "+ create {} ({}): {state}", p.key, p.owner)?,
                PutKind::Update(changed) => write!(
                    f,
                    "~ update {} ({}): {state}; changed {}",
                    p.key,
                    p.owner,
                    changed.join(", ")
                )?,
                PutKind::TakeOver { from } => write!(
                    f,
                    "~ take over {} ({} from {from}): {state}",
                    p.key, p.owner
                )?,
            }
            writeln!(f, "{}", describe_scope(&p.item))?;
        }
        for d in &self.deletes {
            let why = match d.reason {
                DeleteReason::RuleRemoved => "rule removed from the policy",
                DeleteReason::PolicyAbsent => "policy no longer exists",
            };
            writeln!(f, "- delete {} ({}): {why}", d.key, d.owner)?;
        }
        if !self.unchanged.is_empty() {
            writeln!(f, "= {} item(s) unchanged", self.unchanged.len())?;
        }
        for c in &self.conflicts {
            writeln!(f, "! conflict: {c}")?;
        }
        for e in &self.errors {
            writeln!(f, "! error: {e}")?;
        }
        if self.is_noop() && !self.has_problems() {
            writeln!(f, "nothing to do")?;
        }
        Ok(())
    }
}

/// `; maxAge 300s; factors …` for the attributes beyond the key.
fn describe_scope(item: &Item) -> String {
    let mut out = String::new();
    if let Ok(Some(s)) = item.opt_u64("maxAgeSeconds") {
        out.push_str(&format!("; maxAge {s}s"));
    }
    for (name, label) in [
        ("factors", "factors"),
        ("acrValues", "acrValues"),
        ("amrValues", "amrValues"),
    ] {
        if let Ok(Some(v)) = item.opt_strings(name) {
            out.push_str(&format!("; {label} {}", v.join(",")));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Policy to rules
// ---------------------------------------------------------------------------------------

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

fn state_of(action: Action) -> StepUpState {
    match action {
        Action::RequireStepUp => StepUpState::Required,
        Action::Deny => StepUpState::Deny,
        Action::Allow => StepUpState::NotRequired,
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
            Some(Ok(0)) => {
                problem("maxAge", "must be longer than 0s".to_owned());
                None
            }
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                problem("maxAge", e);
                None
            }
        };
        let require = spec.action == Action::RequireStepUp;
        if !require
            && (spec.max_age.is_some()
                || !spec.factors.is_empty()
                || !spec.acr_values.is_empty()
                || !spec.amr_values.is_empty())
        {
            problem(
                "action",
                "maxAge, factors, acrValues and amrValues apply only to RequireStepUp".to_owned(),
            );
        }
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
        rule.id = rule_key(&rule);
        if rule.id.len() > MAX_KEY_LEN {
            problem("path", format!("rule key longer than {MAX_KEY_LEN} bytes"));
        }
        if let Some(first) = first_index.get(&rule.id) {
            problems.push(format!(
                "rules[{i}] and rules[{first}] both govern `{}`",
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

// ---------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------

/// The item the operator writes for `rule` of the policy `meta` (timestamps aside).
pub fn item_for(rule: &Rule, meta: &PolicyMeta) -> Item {
    let mut item = rule_to_item(rule);
    item.insert("owner".into(), Attr::s(&meta.owner));
    if let Some(uid) = &meta.uid {
        item.insert("ownerUid".into(), Attr::s(uid));
    }
    if let Some(g) = meta.generation {
        item.insert("generation".into(), Attr::N(g.to_string()));
    }
    item
}

/// Who holds an existing item, as far as the plan is concerned.
enum Holder<'a> {
    /// No `owner` (or an unreadable one): made by hand, never touched.
    HandMade,
    /// A well-formed policy of the desired set.
    Desired(&'a str),
    /// An owner whose items stay as they are: a malformed policy, or an absent one
    /// without pruning.
    Frozen(&'a str, &'static str),
    /// An owner absent from the desired set, pruned.
    Absent(&'a str),
}

fn holder_of<'a>(
    item: &'a Item,
    valid: &BTreeSet<&str>,
    malformed: &BTreeSet<&str>,
    options: PlanOptions,
) -> Holder<'a> {
    match item.opt_s("owner") {
        Ok(Some(o)) if !o.is_empty() => {
            if valid.contains(o) {
                Holder::Desired(o)
            } else if malformed.contains(o) {
                Holder::Frozen(o, "malformed, its items are kept")
            } else if options.prune {
                Holder::Absent(o)
            } else {
                Holder::Frozen(o, "not in the desired set, pruning is off")
            }
        }
        _ => Holder::HandMade,
    }
}

/// The attributes in which two items differ, timestamps aside.
fn changed_attributes(desired: &Item, current: &Item) -> Vec<String> {
    let names: BTreeSet<&String> = desired.keys().chain(current.keys()).collect();
    names
        .into_iter()
        .filter(|n| n.as_str() != CREATE_TS && n.as_str() != UPDATE_TS)
        .filter(|n| desired.get(*n) != current.get(*n))
        .cloned()
        .collect()
}

/// Computes the writes that bring the setting table (`current`, a scan) to what the
/// `desired` policies say, at `now`. See the module documentation for the rules.
pub fn plan(
    desired: &[PolicyInput],
    current: &[Item],
    options: PlanOptions,
    now: UnixSeconds,
) -> Plan {
    let mut out = Plan::default();

    let mut valid: Vec<(&PolicyMeta, &Vec<Rule>)> = Vec::new();
    let mut malformed: BTreeSet<&str> = BTreeSet::new();
    for p in desired {
        match &p.rules {
            Ok(rules) => valid.push((&p.meta, rules)),
            Err(e) => {
                malformed.insert(&p.meta.owner);
                out.errors.push(e.clone());
            }
        }
    }
    valid.sort_by(|a, b| a.0.age_order().cmp(&b.0.age_order()));
    let valid_owners: BTreeSet<&str> = valid.iter().map(|(m, _)| m.owner.as_str()).collect();

    // Each key goes to the oldest policy claiming it.
    let mut claims: BTreeMap<&str, (&PolicyMeta, &Rule)> = BTreeMap::new();
    for (meta, rules) in &valid {
        for rule in rules.iter() {
            match claims.get(rule.id.as_str()) {
                Some((winner, _)) if winner.owner != meta.owner => out.conflicts.push(Conflict {
                    policy: meta.owner.clone(),
                    key: rule.id.clone(),
                    holder: format!("StepUpPolicy `{}` (older)", winner.owner),
                }),
                // A duplicate inside one policy is refused by `rules_for`; keep the first.
                Some(_) => {}
                None => {
                    claims.insert(&rule.id, (meta, rule));
                }
            }
        }
    }

    let mut by_key: BTreeMap<&str, &Item> = BTreeMap::new();
    for item in current {
        if let Ok(id) = item.req_s("id") {
            by_key.insert(id, item);
        }
    }
    for (key, (meta, rule)) in &claims {
        let mut item = item_for(rule, meta);
        let conflict = |holder: String| Conflict {
            policy: meta.owner.clone(),
            key: (*key).to_owned(),
            holder,
        };
        let kind = match by_key.get(key) {
            None => PutKind::Create,
            Some(existing) => match holder_of(existing, &valid_owners, &malformed, options) {
                Holder::HandMade => {
                    out.conflicts.push(conflict("an item without owner".into()));
                    continue;
                }
                Holder::Frozen(o, why) => {
                    out.conflicts
                        .push(conflict(format!("StepUpPolicy `{o}` ({why})")));
                    continue;
                }
                Holder::Desired(o) if o == meta.owner => {
                    let changed = changed_attributes(&item, existing);
                    if changed.is_empty() {
                        out.unchanged.push((*key).to_owned());
                        *out.synced.entry(meta.owner.clone()).or_default() += 1;
                        continue;
                    }
                    PutKind::Update(changed)
                }
                Holder::Desired(o) | Holder::Absent(o) => PutKind::TakeOver { from: o.to_owned() },
            },
        };
        let created = by_key
            .get(key)
            .and_then(|e| e.get(CREATE_TS).cloned())
            .filter(|_| !matches!(kind, PutKind::Create))
            .unwrap_or_else(|| Attr::n(now));
        item.insert(CREATE_TS.into(), created);
        item.insert(UPDATE_TS.into(), Attr::n(now));
        *out.synced.entry(meta.owner.clone()).or_default() += 1;
        out.puts.push(PlannedPut {
            key: (*key).to_owned(),
            owner: meta.owner.clone(),
            kind,
            item,
        });
    }
    for (meta, _) in &valid {
        out.synced.entry(meta.owner.clone()).or_default();
    }

    for (key, existing) in &by_key {
        if claims.contains_key(key) {
            continue;
        }
        let (owner, reason) = match holder_of(existing, &valid_owners, &malformed, options) {
            Holder::Desired(o) => (o, DeleteReason::RuleRemoved),
            Holder::Absent(o) => (o, DeleteReason::PolicyAbsent),
            Holder::HandMade | Holder::Frozen(..) => continue,
        };
        out.deletes.push(PlannedDelete {
            key: (*key).to_owned(),
            owner: owner.to_owned(),
            reason,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{PolicyRule, StepUpPolicySpec};
    use crate::policy::{PolicyIndex, rule_from_item};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const NOW: u64 = 1_800_000_000;

    fn rule(path: &str, action: Action) -> PolicyRule {
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
    fn policy(name: &str, created: i64, rules: Vec<PolicyRule>) -> StepUpPolicy {
        let mut p = StepUpPolicy::new(name, StepUpPolicySpec { rules });
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.generation = Some(1);
        p.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created)
            .ok()
            .map(Time);
        p
    }

    fn inputs(policies: &[&StepUpPolicy]) -> Vec<PolicyInput> {
        policies.iter().map(|p| PolicyInput::of(p)).collect()
    }

    fn run(policies: &[&StepUpPolicy], table: &[Item]) -> Plan {
        plan(&inputs(policies), table, PlanOptions::default(), NOW)
    }

    /// The table after applying `plan` to `table`.
    fn apply(table: &[Item], plan: &Plan) -> Vec<Item> {
        let mut by_key: BTreeMap<String, Item> = table
            .iter()
            .map(|i| (i.req_s("id").unwrap().to_owned(), i.clone()))
            .collect();
        for p in &plan.puts {
            by_key.insert(p.key.clone(), p.item.clone());
        }
        for d in &plan.deletes {
            by_key.remove(&d.key);
        }
        by_key.into_values().collect()
    }

    fn seed_item(id: &str, state: &str) -> Item {
        Item::from([
            ("id".to_owned(), Attr::s(id)),
            ("stepUpState".to_owned(), Attr::s(state)),
            ("createTimestamp".to_owned(), Attr::n(1_651_234_567u64)),
        ])
    }

    fn keys(plan: &Plan) -> (Vec<&str>, Vec<&str>) {
        (
            plan.puts.iter().map(|p| p.key.as_str()).collect(),
            plan.deletes.iter().map(|d| d.key.as_str()).collect(),
        )
    }

    #[test]
    fn a_new_policy_creates_one_item_per_rule_with_its_owner() {
        let p = policy(
            "transfer",
            100,
            vec![
                rule("/transfer", Action::RequireStepUp),
                rule("/info", Action::Allow),
            ],
        );
        let plan = run(&[&p], &[]);
        assert_eq!(keys(&plan).0, vec!["EXACT:/info", "EXACT:/transfer"]);
        assert!(plan.deletes.is_empty() && !plan.has_problems());
        for put in &plan.puts {
            assert_eq!(put.kind, PutKind::Create);
            assert_eq!(put.item.opt_s("owner").unwrap(), Some("default/transfer"));
            assert_eq!(put.item.opt_s("ownerUid").unwrap(), Some("uid-transfer"));
            assert_eq!(put.item.opt_u64("generation").unwrap(), Some(1));
            assert_eq!(put.item.opt_u64("createTimestamp").unwrap(), Some(NOW));
            assert_eq!(put.item.opt_u64("lastUpdateTimestamp").unwrap(), Some(NOW));
            let r = rule_from_item(&put.item).unwrap();
            assert_eq!(r.owner.as_deref(), Some("default/transfer"));
        }
        let index = PolicyIndex::from_items(&apply(&[], &plan));
        let state = |path: &str| index.lookup("GET", "h", path).map(|r| r.state);
        assert_eq!(state("/transfer"), Some(StepUpState::Required));
        assert_eq!(state("/info"), Some(StepUpState::NotRequired));
        assert_eq!(plan.synced.get("default/transfer"), Some(&2));
    }

    #[test]
    fn a_rule_removed_from_a_policy_has_its_item_deleted() {
        let before = policy(
            "transfer",
            100,
            vec![
                rule("/transfer", Action::RequireStepUp),
                rule("/info", Action::Allow),
            ],
        );
        let table = apply(&[], &run(&[&before], &[]));
        let after = policy(
            "transfer",
            100,
            vec![rule("/transfer", Action::RequireStepUp)],
        );
        let plan = run(&[&after], &table);
        assert!(plan.puts.is_empty());
        assert_eq!(
            plan.deletes,
            vec![PlannedDelete {
                key: "EXACT:/info".into(),
                owner: "default/transfer".into(),
                reason: DeleteReason::RuleRemoved,
            }]
        );
    }

    #[test]
    fn a_deleted_policy_has_its_items_deleted_when_pruning() {
        let p = policy(
            "transfer",
            100,
            vec![rule("/transfer", Action::RequireStepUp)],
        );
        let table = apply(&[], &run(&[&p], &[]));
        let pruned = run(&[], &table);
        assert_eq!(keys(&pruned), (vec![], vec!["EXACT:/transfer"]));
        assert_eq!(pruned.deletes[0].reason, DeleteReason::PolicyAbsent);

        let kept = plan(&[], &table, PlanOptions { prune: false }, NOW);
        assert!(kept.is_noop());
    }

    #[test]
    fn a_hand_made_item_without_owner_survives_everything() {
        let hand = seed_item("/transfer", "STEP_UP_REQUIRED");
        let odd = seed_item("EXACT:/admin", "STEP_UP_DENY");
        let p = policy(
            "p",
            100,
            vec![
                rule("/transfer", Action::Allow),
                rule("/admin", Action::Allow),
            ],
        );
        let plan1 = run(&[&p], &[hand.clone(), odd.clone()]);
        assert!(plan1.puts.iter().all(|p| p.key != "/transfer"));
        assert!(plan1.puts.iter().all(|p| p.key != "EXACT:/admin"));
        assert_eq!(plan1.conflicts.len(), 1);
        assert_eq!(plan1.conflicts[0].key, "EXACT:/admin");
        assert_eq!(plan1.conflicts[0].holder, "an item without owner");
        let table = apply(&[hand.clone(), odd.clone()], &plan1);
        // The policy goes away, pruning on: only its own item goes.
        let plan2 = run(&[], &table);
        assert_eq!(keys(&plan2), (vec![], vec!["EXACT:/transfer"]));
        let table = apply(&table, &plan2);
        assert_eq!(table, vec![hand, odd]);
    }

    #[test]
    fn a_second_policy_on_the_same_key_reports_conflict_and_the_older_keeps_it() {
        let older = policy(
            "a-older",
            200,
            vec![rule("/transfer", Action::RequireStepUp)],
        );
        let newer = policy("b-newer", 300, vec![rule("/transfer/", Action::Allow)]);
        let table = apply(&[], &run(&[&older], &[]));
        let plan = run(&[&newer, &older], &table);
        assert!(plan.is_noop(), "{plan}");
        assert_eq!(
            plan.conflicts,
            vec![Conflict {
                policy: "default/b-newer".into(),
                key: "EXACT:/transfer".into(),
                holder: "StepUpPolicy `default/a-older` (older)".into(),
            }]
        );
        assert_eq!(plan.synced.get("default/b-newer"), Some(&0));
        assert_eq!(plan.synced.get("default/a-older"), Some(&1));

        // Age, not name, decides; the name only breaks a tie.
        let older_z = policy("z-older", 100, vec![rule("/transfer", Action::Deny)]);
        let plan = run(&[&older, &older_z], &table);
        assert_eq!(plan.puts.len(), 1);
        assert_eq!(
            plan.puts[0].kind,
            PutKind::TakeOver {
                from: "default/a-older".into()
            }
        );
        assert_eq!(plan.conflicts[0].policy, "default/a-older");
    }

    #[test]
    fn after_the_older_policy_goes_away_the_newer_takes_the_key() {
        let older = policy("a", 200, vec![rule("/transfer", Action::RequireStepUp)]);
        let newer = policy("b", 300, vec![rule("/transfer", Action::Deny)]);
        let table = apply(&[], &run(&[&older, &newer], &[]));
        let plan = run(&[&newer], &table);
        assert!(plan.deletes.is_empty() && plan.conflicts.is_empty());
        assert_eq!(
            plan.puts[0].kind,
            PutKind::TakeOver {
                from: "default/a".into()
            }
        );
        assert_eq!(plan.puts[0].item.opt_s("owner").unwrap(), Some("default/b"));
        assert_eq!(
            plan.puts[0].item.opt_s("stepUpState").unwrap(),
            Some("STEP_UP_DENY")
        );
        assert_eq!(
            plan.puts[0].item.opt_u64("createTimestamp").unwrap(),
            Some(NOW)
        );
    }

    #[test]
    fn an_unchanged_policy_plans_no_writes() {
        let mut r = rule("/accounts/{id}/transfer", Action::RequireStepUp);
        r.match_type = MatchType::Template;
        r.methods = vec!["post".into()];
        r.max_age = Some("5m".into());
        r.factors = vec![FactorName::SoftwareToken];
        let p = policy("payments", 100, vec![r, rule("/admin", Action::Deny)]);
        let table = apply(&[], &run(&[&p], &[]));
        let later = plan(&inputs(&[&p]), &table, PlanOptions::default(), NOW + 3600);
        assert!(later.is_noop(), "{later}");
        assert_eq!(later.unchanged.len(), 2);
        assert_eq!(later.to_string(), "= 2 item(s) unchanged\nnothing to do\n");

        // A change rewrites only the item concerned, keeping its createTimestamp.
        let mut changed = p.clone();
        changed.spec.rules[1].action = Action::RequireStepUp;
        let next = plan(
            &inputs(&[&changed]),
            &table,
            PlanOptions::default(),
            NOW + 60,
        );
        assert_eq!(next.puts.len(), 1);
        assert_eq!(
            next.puts[0].kind,
            PutKind::Update(vec!["stepUpState".into()])
        );
        assert_eq!(
            next.puts[0].item.opt_u64("createTimestamp").unwrap(),
            Some(NOW)
        );
        assert_eq!(
            next.puts[0].item.opt_u64("lastUpdateTimestamp").unwrap(),
            Some(NOW + 60)
        );
    }

    #[test]
    fn a_malformed_policy_is_an_error_with_every_reason_and_plans_nothing() {
        let mut bad_template = rule("/files/{name}.json", Action::RequireStepUp);
        bad_template.match_type = MatchType::Template;
        let mut bad_age = rule("/transfer", Action::RequireStepUp);
        bad_age.max_age = Some("5 minutes".into());
        let p = policy(
            "bad",
            100,
            vec![
                rule("transfer", Action::RequireStepUp),
                bad_age,
                bad_template,
                rule("/ok", Action::Deny),
            ],
        );
        let err = rules_for(&p).unwrap_err();
        assert_eq!(err.policy, "default/bad");
        assert_eq!(err.problems.len(), 3, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("rules[0].path: `transfer` does not start with `/`"),
            "{text}"
        );
        assert!(text.contains("rules[1].maxAge: `5 minutes`"), "{text}");
        assert!(
            text.contains("rules[2].path: template `/files/{name}.json`"),
            "{text}"
        );

        // Nothing is planned for it, and its existing items are kept (not pruned).
        let good = policy("bad", 100, vec![rule("/ok", Action::Deny)]);
        let table = apply(&[], &run(&[&good], &[]));
        let plan = run(&[&p], &table);
        assert!(plan.is_noop(), "{plan}");
        assert_eq!(plan.errors, vec![err]);
        assert!(
            plan.to_string()
                .contains("! error: StepUpPolicy `default/bad`")
        );
    }

    #[test]
    fn field_combinations_that_make_no_sense_are_malformed() {
        let mut allow_with_age = rule("/a", Action::Allow);
        allow_with_age.max_age = Some("5m".into());
        let mut bad_method = rule("/b", Action::Deny);
        bad_method.methods = vec!["GE T".into()];
        let mut bad_host = rule("/c", Action::Deny);
        bad_host.hosts = vec!["a.*.com".into()];
        let mut zero = rule("/d", Action::RequireStepUp);
        zero.max_age = Some("0s".into());
        let dup = rule("/a/", Action::Deny);
        let p = policy(
            "p",
            1,
            vec![allow_with_age, bad_method, bad_host, zero, dup],
        );
        let err = rules_for(&p).unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
        assert!(err.problems[4].contains("rules[4] and rules[0] both govern `EXACT:/a`"));
        let empty = policy("empty", 1, vec![]);
        assert!(rules_for(&empty).is_err());
    }

    #[test]
    fn acr_and_amr_values_reach_the_item_and_read_back_as_claims_mode() {
        let mut r = rule("/payouts", Action::RequireStepUp);
        r.max_age = Some("5m".into());
        r.acr_values = vec!["urn:cognito:loa:3".into()];
        r.amr_values = vec!["otp".into(), "hwk".into(), "otp".into()];
        let plan = run(&[&policy("claims", 1, vec![r])], &[]);
        assert!(!plan.has_problems(), "{plan}");
        let item = &plan.puts[0].item;
        assert_eq!(
            item.get("amrValues"),
            Some(&Attr::Ss(vec!["hwk".into(), "otp".into()]))
        );
        assert_eq!(
            item.get("acrValues"),
            Some(&Attr::Ss(vec!["urn:cognito:loa:3".into()]))
        );
        let read = rule_from_item(item).unwrap();
        assert_eq!(read.amr_values, vec!["hwk", "otp"]);
        assert_eq!(read.max_age, Some(300));
        assert!(read.allows_claims_mode() && !read.allows_session_mode());
        assert!(plan.to_string().contains("amrValues hwk,otp"), "{plan}");
    }

    #[test]
    fn amr_values_that_are_empty_or_outside_require_step_up_are_malformed() {
        let mut empty = rule("/a", Action::RequireStepUp);
        empty.amr_values = vec![" ".into()];
        let mut on_allow = rule("/b", Action::Allow);
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
        let mut spaced = rule("/a", Action::RequireStepUp);
        spaced.acr_values = vec!["urn:a urn:b".into()];
        let mut quoted = rule("/b", Action::RequireStepUp);
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
        let mut r = rule("//api/./accounts/", Action::Deny);
        r.match_type = MatchType::Prefix;
        r.methods = vec!["post".into(), "GET".into(), "get".into()];
        r.hosts = vec!["B.example.com".into(), "*.a.example.com".into()];
        let rules = rules_for(&policy("p", 1, vec![r])).unwrap();
        assert_eq!(
            rules[0].id,
            "PREFIX:/api/accounts|methods=GET,POST|hosts=*.a.example.com,b.example.com"
        );
        let mut any = rule("/x", Action::Deny);
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

    #[test]
    fn the_plan_prints_one_line_per_change() {
        let p = policy(
            "transfer",
            100,
            vec![rule("/transfer", Action::RequireStepUp)],
        );
        let gone = policy("old", 50, vec![rule("/old", Action::Deny)]);
        let table = apply(&[], &run(&[&gone], &[]));
        let text = run(&[&p], &table).to_string();
        assert_eq!(
            text,
            "+ create EXACT:/transfer (default/transfer): STEP_UP_REQUIRED\n\
             - delete EXACT:/old (default/old): policy no longer exists\n"
        );
    }
}
