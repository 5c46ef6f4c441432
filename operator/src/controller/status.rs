//! What the status and the Events say after a reconcile: pure functions of the previous
//! status and the [`Outcome`], unit-tested without a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::plan::Conflict;
use stepup_core::crd::validate::plural;
use stepup_core::crd::{
    PolicyEnforcement, PolicyError, PolicyInput, StepUpPolicy, StepUpPolicyStatus, condition,
};
use stepup_core::item::{Item, ItemExt};

use super::*;

/// What one reconcile of a policy came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The policy's writes were applied.
    Synced {
        /// Rules of the policy the table holds.
        synced: u32,
        /// Rules of the policy.
        rules: u32,
        /// Rule keys it wanted and does not hold.
        conflicts: Vec<Conflict>,
        /// Items written.
        written: usize,
        /// Items deleted.
        deleted: usize,
    },
    /// The policy is malformed: nothing was written, its items are kept.
    Invalid {
        /// Every problem.
        error: PolicyError,
        /// Items the policy still has in the table.
        kept: u32,
    },
    /// The setting table could not be read or written.
    StoreFailed {
        /// The store's error.
        message: String,
    },
}

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub warning: bool,
    /// `reason`.
    pub reason: &'static str,
    /// `note`.
    pub note: String,
}

/// Conditions messages are capped (the API server refuses more than 32 KiB).
pub(super) const MAX_MESSAGE: usize = 4096;

pub(super) fn cap(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| format!("rule `{}` is held by {}", c.key, c.holder))
        .collect();
    cap(parts.join("; "))
}

/// The status after `outcome`, given the `previous` one: conditions keep their
/// `lastTransitionTime` while their status stays the same; `lastSyncTime` moves only when
/// something was written (or was never set), so an unchanged policy gets an unchanged
/// status; `enforcement` (the spec's) becomes the status's only when the sync went through.
pub fn status_for(
    previous: Option<&StepUpPolicyStatus>,
    outcome: &Outcome,
    generation: Option<i64>,
    now: UnixSeconds,
    enforcement: PolicyEnforcement,
) -> StepUpPolicyStatus {
    let prev_cond =
        |t: &str| previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == t).cloned());
    let cond = |t: &str, status: &str, reason: &str, message: String| {
        let since = prev_cond(t)
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time)
            .unwrap_or_else(|| time_of(now));
        Condition {
            type_: t.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: cap(message),
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    let prev_synced_rules = previous.and_then(|s| s.synced_rules);
    let prev_sync_time = previous.and_then(|s| s.last_sync_time.clone());
    // The enforcement the items were written with: only a sync changes it.
    let prev_enforcement = previous.and_then(|s| s.enforcement);
    match outcome {
        Outcome::Synced {
            synced,
            rules,
            conflicts,
            written,
            deleted,
        } => {
            let ready = if conflicts.is_empty() {
                cond(
                    condition::READY,
                    "True",
                    reason::RULES_SYNCED,
                    format!(
                        "{}, all in the setting table",
                        plural(*rules as usize, "rule", "rules")
                    ),
                )
            } else {
                cond(
                    condition::READY,
                    "False",
                    reason::RULE_KEY_CONFLICT,
                    format!(
                        "{synced} of {} in the setting table; {} held elsewhere",
                        plural(*rules as usize, "rule", "rules"),
                        plural(conflicts.len(), "rule key", "rule keys")
                    ),
                )
            };
            let conflict = if conflicts.is_empty() {
                cond(
                    condition::CONFLICT,
                    "False",
                    reason::NO_CONFLICT,
                    "no rule key of the policy is held elsewhere".into(),
                )
            } else {
                cond(
                    condition::CONFLICT,
                    "True",
                    reason::RULE_KEY_HELD,
                    conflict_message(conflicts),
                )
            };
            let wrote = *written > 0 || *deleted > 0;
            StepUpPolicyStatus {
                observed_generation: generation,
                conditions: vec![
                    ready,
                    cond(
                        condition::SYNCED,
                        "True",
                        reason::SYNCED,
                        "the setting table holds what the policy says".into(),
                    ),
                    conflict,
                ],
                synced_rules: Some(*synced),
                last_sync_time: if wrote || prev_sync_time.is_none() {
                    Some(time_of(now))
                } else {
                    prev_sync_time
                },
                enforcement: Some(enforcement),
            }
        }
        Outcome::Invalid { error, kept } => StepUpPolicyStatus {
            observed_generation: generation,
            conditions: vec![
                cond(
                    condition::READY,
                    "False",
                    reason::INVALID,
                    error.problems.join("; "),
                ),
                cond(
                    condition::SYNCED,
                    "False",
                    reason::INVALID,
                    format!(
                        "the policy is malformed: nothing was written; the {} kept",
                        plural(*kept as usize, "item it had is", "items it had are")
                    ),
                ),
                cond(
                    condition::CONFLICT,
                    "Unknown",
                    reason::INVALID,
                    "not checked: the policy is malformed".into(),
                ),
            ],
            synced_rules: Some(*kept),
            last_sync_time: prev_sync_time,
            enforcement: prev_enforcement,
        },
        Outcome::StoreFailed { message } => StepUpPolicyStatus {
            observed_generation: generation,
            conditions: vec![
                cond(
                    condition::READY,
                    "False",
                    reason::STORE_ERROR,
                    "the setting table could not be synced; retrying".into(),
                ),
                cond(
                    condition::SYNCED,
                    "False",
                    reason::STORE_ERROR,
                    message.clone(),
                ),
                prev_cond(condition::CONFLICT).unwrap_or_else(|| {
                    cond(
                        condition::CONFLICT,
                        "Unknown",
                        reason::STORE_ERROR,
                        "not checked: the setting table could not be read".into(),
                    )
                }),
            ],
            synced_rules: prev_synced_rules,
            last_sync_time: prev_sync_time,
            enforcement: prev_enforcement,
        },
    }
}

/// The Events `outcome` deserves, given the `previous` status: a sync that wrote
/// something or made the policy Ready, a new or changed conflict, a newly or differently
/// malformed policy, and every store failure (the recorder folds repeats into a series).
pub fn events_for(previous: Option<&StepUpPolicyStatus>, outcome: &Outcome) -> Vec<EventSpec> {
    let prev = |t: &str| previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == t));
    let mut out = Vec::new();
    match outcome {
        Outcome::Synced {
            rules,
            conflicts,
            written,
            deleted,
            ..
        } => {
            let was_ready = prev(condition::READY).is_some_and(|c| c.status == "True");
            if *written > 0 || *deleted > 0 || (conflicts.is_empty() && !was_ready) {
                out.push(EventSpec {
                    warning: false,
                    reason: reason::SYNCED,
                    note: format!(
                        "{}: {} written, {deleted} deleted",
                        plural(*rules as usize, "rule", "rules"),
                        plural(*written, "item", "items")
                    ),
                });
            }
            if !conflicts.is_empty() {
                let message = conflict_message(conflicts);
                let same = prev(condition::CONFLICT)
                    .is_some_and(|c| c.status == "True" && c.message == message);
                if !same {
                    out.push(EventSpec {
                        warning: true,
                        reason: reason::CONFLICT,
                        note: message,
                    });
                }
            }
        }
        Outcome::Invalid { error, .. } => {
            let message = cap(error.problems.join("; "));
            let same = prev(condition::READY)
                .is_some_and(|c| c.reason == reason::INVALID && c.message == message);
            if !same {
                out.push(EventSpec {
                    warning: true,
                    reason: reason::INVALID,
                    note: message,
                });
            }
        }
        Outcome::StoreFailed { message } => out.push(EventSpec {
            warning: true,
            reason: reason::STORE_ERROR,
            note: cap(message.clone()),
        }),
    }
    out
}

/// The delay before retrying a policy whose reconcile failed `failures` times in a row:
/// 5 s, doubling, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs((5u64 << exp).min(300))
}

/// The plan inputs: every policy of the cache that is not being deleted, with `current`
/// (the object being reconciled, fresher than the cache) in place of its cached copy.
pub fn desired_inputs(
    cached: &[Arc<StepUpPolicy>],
    current: Option<&StepUpPolicy>,
) -> Vec<PolicyInput> {
    let current_owner = current.map(StepUpPolicy::owner);
    let mut inputs: Vec<PolicyInput> = cached
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| Some(p.owner()) != current_owner)
        .map(|p| PolicyInput::of(p))
        .collect();
    if let Some(p) = current.filter(|p| p.metadata.deletion_timestamp.is_none()) {
        inputs.push(PolicyInput::of(p));
    }
    inputs
}

pub(super) fn owned_by<'a>(
    items: &'a [Item],
    owner: &'a str,
) -> impl Iterator<Item = &'a Item> + 'a {
    items
        .iter()
        .filter(move |i| i.opt_s("owner").ok().flatten() == Some(owner))
}

pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
