//! Unit tests of the controller's pure parts.
use super::status::*;
use super::sweep::in_scope;
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use stepup_core::crd::plan::Conflict;
use stepup_core::crd::{PolicyEnforcement, PolicyError, StepUpPolicyStatus};

const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

fn conflict(key: &str) -> Conflict {
    Conflict {
        policy: "default/b".into(),
        key: key.into(),
        holder: "StepUpPolicy `default/a` (older)".into(),
    }
}

fn synced(conflicts: Vec<Conflict>, written: usize) -> Outcome {
    Outcome::Synced {
        synced: 2 - count_u32(conflicts.len()),
        rules: 2,
        conflicts,
        written,
        deleted: 0,
    }
}

fn get<'a>(s: &'a StepUpPolicyStatus, t: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == t).unwrap()
}

#[test]
fn a_synced_policy_is_ready_and_an_unchanged_one_keeps_its_status() {
    let first = status_for(
        None,
        &synced(vec![], 2),
        Some(3),
        NOW,
        PolicyEnforcement::Enforce,
    );
    assert_eq!(first.observed_generation, Some(3));
    assert_eq!(get(&first, "Ready").status, "True");
    assert_eq!(get(&first, "Ready").reason, reason::RULES_SYNCED);
    assert_eq!(get(&first, "Synced").status, "True");
    assert_eq!(get(&first, "Conflict").status, "False");
    assert_eq!(first.synced_rules, Some(2));
    assert_eq!(
        get(&first, "Ready").message,
        "2 rules, all in the setting table"
    );
    assert_eq!(
        events_for(None, &synced(vec![], 1))[0].note,
        "2 rules: 1 item written, 0 deleted"
    );
    assert_eq!(first.last_sync_time, Some(time_of(NOW)));
    // An hour later nothing changed: the same status, so no watch event follows.
    let later = status_for(
        Some(&first),
        &synced(vec![], 0),
        Some(3),
        NOW.plus(3600),
        PolicyEnforcement::Enforce,
    );
    assert_eq!(later, first);
    assert!(events_for(Some(&first), &synced(vec![], 0)).is_empty());
}

#[test]
fn a_conflict_is_reported_once_with_the_holder() {
    let out = synced(vec![conflict("EXACT:/transfer")], 0);
    let s = status_for(None, &out, Some(1), NOW, PolicyEnforcement::Enforce);
    assert_eq!(get(&s, "Ready").status, "False");
    assert_eq!(get(&s, "Ready").reason, reason::RULE_KEY_CONFLICT);
    assert_eq!(
        get(&s, "Ready").message,
        "1 of 2 rules in the setting table; 1 rule key held elsewhere"
    );
    let c = get(&s, "Conflict");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "RuleKeyHeld")
    );
    assert!(
        c.message
            .contains("`EXACT:/transfer` is held by StepUpPolicy `default/a`")
    );
    let events = events_for(None, &out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, reason::CONFLICT);
    assert!(events[0].warning);
    assert!(events_for(Some(&s), &out).is_empty());
    // The conflict resolves: Ready again, a Synced event, new transition times.
    let resolved = status_for(
        Some(&s),
        &synced(vec![], 0),
        Some(1),
        NOW.plus(60),
        PolicyEnforcement::Enforce,
    );
    assert_eq!(
        get(&resolved, "Ready").last_transition_time,
        time_of(NOW.plus(60))
    );
    let events = events_for(Some(&s), &synced(vec![], 0));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, reason::SYNCED);
}

#[test]
fn a_malformed_policy_says_why_and_keeps_its_count_of_items() {
    let error = PolicyError {
        policy: "default/p".into(),
        problems: vec!["rules[0].maxAge: `5 minutes` is not a duration".into()],
    };
    let out = Outcome::Invalid { error, kept: 1 };
    let s = status_for(None, &out, Some(2), NOW, PolicyEnforcement::Enforce);
    let ready = get(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Invalid")
    );
    assert!(ready.message.contains("rules[0].maxAge"));
    assert_eq!(get(&s, "Synced").reason, reason::INVALID);
    assert_eq!(
        get(&s, "Synced").message,
        "the policy is malformed: nothing was written; the 1 item it had is kept"
    );
    assert_eq!(s.synced_rules, Some(1));
    assert_eq!(s.last_sync_time, None);
    assert_eq!(events_for(None, &out)[0].reason, reason::INVALID);
    assert!(events_for(Some(&s), &out).is_empty());
}

#[test]
fn a_store_failure_keeps_what_was_known_and_says_synced_false() {
    let ok = status_for(
        None,
        &synced(vec![], 2),
        Some(1),
        NOW,
        PolicyEnforcement::Enforce,
    );
    let out = Outcome::StoreFailed {
        message: "store unavailable: timeout".into(),
    };
    let s = status_for(
        Some(&ok),
        &out,
        Some(1),
        NOW.plus(5),
        PolicyEnforcement::Enforce,
    );
    let synced_c = get(&s, "Synced");
    assert_eq!(
        (synced_c.status.as_str(), synced_c.reason.as_str()),
        ("False", "StoreError")
    );
    assert!(synced_c.message.contains("timeout"));
    assert_eq!(get(&s, "Conflict"), get(&ok, "Conflict"));
    assert_eq!(s.synced_rules, Some(2));
    assert_eq!(s.last_sync_time, ok.last_sync_time);
    // Nothing was written: the enforcement stays the one the items were written with,
    // even when the spec now asks for another.
    let audit = status_for(
        None,
        &synced(vec![], 2),
        Some(1),
        NOW,
        PolicyEnforcement::Audit,
    );
    let failed = status_for(
        Some(&audit),
        &out,
        Some(2),
        NOW.plus(5),
        PolicyEnforcement::Enforce,
    );
    assert_eq!(failed.enforcement, Some(PolicyEnforcement::Audit));
    assert_eq!(events_for(Some(&s), &out)[0].reason, reason::STORE_ERROR);
}

#[test]
fn retries_back_off_exponentially_up_to_five_minutes() {
    let delays: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(backoff(0).as_secs(), 5);
}

#[test]
fn the_watched_namespace_limits_what_the_sweep_may_delete() {
    assert!(in_scope("team-a/p", None));
    assert!(in_scope("team-a/p", Some("team-a")));
    assert!(!in_scope("team-b/p", Some("team-a")));
    assert!(!in_scope("garbage", Some("team-a")));
}

#[test]
fn long_messages_are_capped_on_a_character_boundary() {
    let long = "é".repeat(MAX_MESSAGE);
    let capped = cap(long);
    assert!(capped.len() <= MAX_MESSAGE + '…'.len_utf8());
    assert!(capped.ends_with('…'));
}
