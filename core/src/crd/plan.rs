//! From `StepUpPolicy` objects to setting-table writes, as pure functions.
//!
//! ```text
//!  StepUpPolicy ──rules_for──► Vec<Rule> ─┐
//!  StepUpPolicy ──rules_for──► Err(..) ───┼──plan_writes(.., scan of the table, now)──► Plan
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

use super::StepUpPolicy;
use super::rules::{PolicyError, rules_for};
use crate::clock::UnixSeconds;
use crate::item::{Attr, Item, ItemExt};
use crate::policy::{Rule, rule_to_item};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Item attributes the plan manages besides those of [`rule_to_item`].
const CREATE_TS: &str = "createTimestamp";
const UPDATE_TS: &str = "lastUpdateTimestamp";

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
    /// One line per change, then per conflict and malformed policy, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

/// A [`Plan`] shown without its malformed policies (see [`Plan::changes`]).
#[derive(Debug, Clone, Copy)]
pub struct PlanChanges<'a>(&'a Plan);

impl fmt::Display for PlanChanges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, false)
    }
}

impl Plan {
    /// The plan's changes and conflicts, one line each, without the malformed policies:
    /// for `sync`, which prints those (with file, document and field) before it plans.
    pub fn changes(&self) -> PlanChanges<'_> {
        PlanChanges(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, errors: bool) -> fmt::Result {
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
            writeln!(
                f,
                "= {} unchanged",
                super::validate::plural(self.unchanged.len(), "item", "items")
            )?;
        }
        for c in &self.conflicts {
            writeln!(f, "! conflict: {c}")?;
        }
        if errors {
            for e in &self.errors {
                writeln!(f, "! error: {e}")?;
            }
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
pub fn plan_writes(
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
    use crate::crd::fixtures::{policy, rule};
    use crate::crd::{FactorName, MatchType, RuleAction};
    use crate::policy::StepUpState;
    use crate::policy::{PolicyIndex, rule_from_item};

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn inputs(policies: &[&StepUpPolicy]) -> Vec<PolicyInput> {
        policies.iter().map(|p| PolicyInput::of(p)).collect()
    }

    fn run(policies: &[&StepUpPolicy], table: &[Item]) -> Plan {
        plan_writes(&inputs(policies), table, PlanOptions::default(), NOW)
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
                rule("/transfer", RuleAction::RequireStepUp),
                rule("/info", RuleAction::Allow),
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
            assert_eq!(
                put.item.opt_u64("createTimestamp").unwrap(),
                Some(NOW.as_secs())
            );
            assert_eq!(
                put.item.opt_u64("lastUpdateTimestamp").unwrap(),
                Some(NOW.as_secs())
            );
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
                rule("/transfer", RuleAction::RequireStepUp),
                rule("/info", RuleAction::Allow),
            ],
        );
        let table = apply(&[], &run(&[&before], &[]));
        let after = policy(
            "transfer",
            100,
            vec![rule("/transfer", RuleAction::RequireStepUp)],
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
            vec![rule("/transfer", RuleAction::RequireStepUp)],
        );
        let table = apply(&[], &run(&[&p], &[]));
        let pruned = run(&[], &table);
        assert_eq!(keys(&pruned), (vec![], vec!["EXACT:/transfer"]));
        assert_eq!(pruned.deletes[0].reason, DeleteReason::PolicyAbsent);

        let kept = plan_writes(&[], &table, PlanOptions { prune: false }, NOW);
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
                rule("/transfer", RuleAction::Allow),
                rule("/admin", RuleAction::Allow),
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
            vec![rule("/transfer", RuleAction::RequireStepUp)],
        );
        let newer = policy("b-newer", 300, vec![rule("/transfer/", RuleAction::Allow)]);
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
        let older_z = policy("z-older", 100, vec![rule("/transfer", RuleAction::Deny)]);
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
        let older = policy("a", 200, vec![rule("/transfer", RuleAction::RequireStepUp)]);
        let newer = policy("b", 300, vec![rule("/transfer", RuleAction::Deny)]);
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
            Some(NOW.as_secs())
        );
    }

    #[test]
    fn an_unchanged_policy_plans_no_writes() {
        let mut r = rule("/accounts/{id}/transfer", RuleAction::RequireStepUp);
        r.match_type = MatchType::Template;
        r.methods = vec!["post".into()];
        r.max_age = Some("5m".into());
        r.factors = vec![FactorName::SoftwareToken];
        let p = policy("payments", 100, vec![r, rule("/admin", RuleAction::Deny)]);
        let table = apply(&[], &run(&[&p], &[]));
        let later = plan_writes(
            &inputs(&[&p]),
            &table,
            PlanOptions::default(),
            NOW.plus(3600),
        );
        assert!(later.is_noop(), "{later}");
        assert_eq!(later.unchanged.len(), 2);
        assert_eq!(later.to_string(), "= 2 items unchanged\nnothing to do\n");

        // A change rewrites only the item concerned, keeping its createTimestamp.
        let mut changed = p.clone();
        changed.spec.rules[1].action = RuleAction::RequireStepUp;
        let next = plan_writes(
            &inputs(&[&changed]),
            &table,
            PlanOptions::default(),
            NOW.plus(60),
        );
        assert_eq!(next.puts.len(), 1);
        assert_eq!(
            next.puts[0].kind,
            PutKind::Update(vec!["stepUpState".into()])
        );
        assert_eq!(
            next.puts[0].item.opt_u64("createTimestamp").unwrap(),
            Some(NOW.as_secs())
        );
        assert_eq!(
            next.puts[0].item.opt_u64("lastUpdateTimestamp").unwrap(),
            Some(NOW.plus(60).as_secs())
        );
    }

    #[test]
    fn acr_and_amr_values_reach_the_item_and_read_back_as_claims_mode() {
        let mut r = rule("/payouts", RuleAction::RequireStepUp);
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
    fn the_plan_prints_one_line_per_change() {
        let p = policy(
            "transfer",
            100,
            vec![rule("/transfer", RuleAction::RequireStepUp)],
        );
        let gone = policy("old", 50, vec![rule("/old", RuleAction::Deny)]);
        let table = apply(&[], &run(&[&gone], &[]));
        let text = run(&[&p], &table).to_string();
        assert_eq!(
            text,
            "+ create EXACT:/transfer (default/transfer): STEP_UP_REQUIRED\n\
             - delete EXACT:/old (default/old): policy no longer exists\n"
        );
    }

    #[test]
    fn a_malformed_policy_is_an_error_with_every_reason_and_plans_nothing() {
        let mut bad_template = rule("/files/{name}.json", RuleAction::RequireStepUp);
        bad_template.match_type = MatchType::Template;
        let mut bad_age = rule("/transfer", RuleAction::RequireStepUp);
        bad_age.max_age = Some("5 minutes".into());
        let p = policy(
            "bad",
            100,
            vec![
                rule("transfer", RuleAction::RequireStepUp),
                bad_age,
                bad_template,
                rule("/ok", RuleAction::Deny),
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
            text.contains("rules[2].path: a Template path is literal segments"),
            "{text}"
        );

        // Nothing is planned for it, and its existing items are kept (not pruned).
        let good = policy("bad", 100, vec![rule("/ok", RuleAction::Deny)]);
        let table = apply(&[], &run(&[&good], &[]));
        let plan = run(&[&p], &table);
        assert!(plan.is_noop(), "{plan}");
        assert_eq!(plan.errors, vec![err]);
        assert!(
            plan.to_string()
                .contains("! error: StepUpPolicy `default/bad`")
        );
    }
}
