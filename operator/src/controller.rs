//! The `StepUpPolicy` controller: from the cluster's policies to the setting table.
//!
//! ```text
//!  watch StepUpPolicy ──► reconcile(policy) ──finalizer──► Apply   ──► scan table, plan over ALL
//!         │                                      │                     policies, write this
//!         ▼                                      │                     policy's puts/deletes,
//!  reflector store (every policy) ───────────────┤                     status (SSA) + Events
//!                                                └──────► Cleanup ──► delete its items, hand
//!                                                                     freed keys to the next
//!                                                                     claimant, reconcile all
//! ```
//!
//! **Global decisions.** Which policy holds a rule key is decided by
//! [`stepup_core::crd::plan`] over every policy in the reflector store (the object being
//! reconciled replaces its cached copy), so each reconcile agrees with every other on
//! conflicts; it then applies only the writes of the policy it reconciles. Reconciles and
//! the orphan [`sweep`] take one table lock, so two of them never interleave a scan and
//! the writes planned from it.
//!
//! **Conservative ownership.** The plan runs without pruning: an item whose owner is not a
//! live, well-formed policy (being deleted, malformed, out of the watched namespace, or
//! gone) is *frozen* — it is neither overwritten nor deleted by a reconcile. Only the
//! owner's own `Cleanup` and the [`sweep`] (for owners that no longer exist in the watched
//! scope) delete such items. Items without `owner` (made by hand) are never touched.
//!
//! **Status.** Written with server-side apply under the field manager
//! [`FIELD_MANAGER`]: `observedGeneration`, the conditions `Ready`, `Synced` and
//! `Conflict`, `syncedRules` and `lastSyncTime`. The status is a pure function of the
//! previous status and the outcome ([`status_for`]); it only changes when something
//! changed (a transition time or the sync time moves only then), so writing it never
//! triggers an endless chain of watch events.

use crate::leader::Leadership;
use crate::{Error, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::plan::Conflict;
use stepup_core::crd::{
    API_VERSION, KIND, PlanOptions, PolicyError, PolicyInput, StepUpPolicy, StepUpPolicyStatus,
    condition, plan,
};
use stepup_core::item::{Item, ItemExt};
use stepup_core::store::SettingStore;
use tokio::sync::{Mutex, mpsc};

/// The finalizer that keeps a policy until its items are removed from the setting table.
pub const FINALIZER: &str = "stepup.dev/setting-items";
/// The server-side apply field manager of the status, and the Events' reporting controller.
pub const FIELD_MANAGER: &str = "stepup-operator";
/// How often every policy is reconciled again to correct drift in the table.
pub const DRIFT_INTERVAL: Duration = Duration::from_secs(300);

/// `reason` values of the conditions and Events.
pub mod reason {
    /// Ready: every rule is in the table.
    pub const RULES_SYNCED: &str = "RulesSynced";
    /// Ready: some rule keys are held by someone else.
    pub const RULE_KEY_CONFLICT: &str = "RuleKeyConflict";
    /// Synced: the last sync succeeded. Also the Event of a sync that wrote something.
    pub const SYNCED: &str = "Synced";
    /// Conflict: none of the rule keys is held by someone else.
    pub const NO_CONFLICT: &str = "NoConflict";
    /// Conflict: a rule key is held by an older policy or a hand-made item.
    pub const RULE_KEY_HELD: &str = "RuleKeyHeld";
    /// The policy is malformed; nothing was written. Also the Event.
    pub const INVALID: &str = "Invalid";
    /// The setting table could not be read or written. Also the Event.
    pub const STORE_ERROR: &str = "StoreError";
    /// Event: a rule key is held by someone else.
    pub const CONFLICT: &str = "Conflict";
}

/// Metric names.
pub mod metric {
    /// Reconciles, by `result` (`ok` | `error`).
    pub const RECONCILES: &str = "stepup_operator_reconciles_total";
    /// Failed reconciles, by `kind` ([`crate::Error::metric_label`]).
    pub const ERRORS: &str = "stepup_operator_reconcile_errors_total";
    /// Items written.
    pub const ITEMS_WRITTEN: &str = "stepup_operator_items_written_total";
    /// Items deleted, by `reason` (`rule_removed` | `policy_deleted` | `orphan`).
    pub const ITEMS_DELETED: &str = "stepup_operator_items_deleted_total";
    /// Reconciles that found a conflict.
    pub const CONFLICTS: &str = "stepup_operator_conflicts_total";
    /// Reconciles of a malformed policy.
    pub const INVALID: &str = "stepup_operator_invalid_policies_total";
    /// Drift sweeps run.
    pub const SWEEPS: &str = "stepup_operator_sweeps_total";
}

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a policy is reconciled again when nothing happens (drift correction).
    pub drift_interval: Duration,
    /// The namespace watched, or `None` for all. Items of owners outside it are never
    /// deleted by the sweep (their policies are simply not seen).
    pub watch_namespace: Option<String>,
    /// `reportingInstance` of Events (the pod name).
    pub instance: Option<String>,
    /// The setting table's name (for errors and logs).
    pub table: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drift_interval: DRIFT_INTERVAL,
            watch_namespace: None,
            instance: None,
            table: String::new(),
        }
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    client: Client,
    store: Arc<dyn SettingStore>,
    policies: Store<StepUpPolicy>,
    recorder: Recorder,
    clock: Arc<dyn Fn() -> UnixSeconds + Send + Sync>,
    leadership: Leadership,
    settings: Settings,
    table_lock: Mutex<()>,
    failures: std::sync::Mutex<HashMap<String, u32>>,
    reconcile_all: Option<mpsc::UnboundedSender<()>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context writing to `store`, seeing the policies of `policies` (the controller's
    /// reflector store), reading the time from `clock` (the edge: `stepup_core::clock::now`
    /// in the binary, a fixed time in tests).
    pub fn new(
        client: Client,
        store: Arc<dyn SettingStore>,
        policies: Store<StepUpPolicy>,
        clock: Arc<dyn Fn() -> UnixSeconds + Send + Sync>,
        settings: Settings,
    ) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: settings.instance.clone(),
            },
        );
        Context {
            client,
            store,
            policies,
            recorder,
            clock,
            leadership: Leadership::always(),
            settings,
            table_lock: Mutex::new(()),
            failures: std::sync::Mutex::new(HashMap::new()),
            reconcile_all: None,
        }
    }

    /// Writes only while `leadership` says this replica leads.
    pub fn with_leadership(mut self, leadership: Leadership) -> Context {
        self.leadership = leadership;
        self
    }

    /// Sends `()` on `tx` when every policy should be reconciled again (after a deletion
    /// freed rule keys); the controller turns it into `reconcile_all_on`.
    pub fn with_reconcile_all(mut self, tx: mpsc::UnboundedSender<()>) -> Context {
        self.reconcile_all = Some(tx);
        self
    }

    /// The controller's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many reconciles of `policy` failed in a row.
    pub fn failures_of(&self, policy: &str) -> u32 {
        self.failures
            .lock()
            .map(|f| f.get(policy).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn record_success(&self, policy: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(policy);
        }
    }

    fn record_failure(&self, policy: &str) -> u32 {
        match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(policy.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        }
    }

    fn store_error(&self, source: stepup_core::store::StoreError) -> Error {
        Error::Store {
            table: self.table_name(),
            source,
        }
    }

    fn table_name(&self) -> String {
        self.settings.table.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Pure parts: what the status and the Events say
// ---------------------------------------------------------------------------------------

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
const MAX_MESSAGE: usize = 4096;

fn cap(mut s: String) -> String {
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

/// `now` as a Kubernetes time (the epoch if out of range, which no real clock gives).
pub fn time_of(now: UnixSeconds) -> Time {
    let secs = i64::try_from(now).unwrap_or(i64::MAX);
    Time(
        k8s_openapi::jiff::Timestamp::from_second(secs)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
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
/// status.
pub fn status_for(
    previous: Option<&StepUpPolicyStatus>,
    outcome: &Outcome,
    generation: Option<i64>,
    now: UnixSeconds,
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
                    format!("all {rules} rule(s) are in the setting table"),
                )
            } else {
                cond(
                    condition::READY,
                    "False",
                    reason::RULE_KEY_CONFLICT,
                    format!(
                        "{synced} of {rules} rule(s) are in the setting table; {} rule key(s) \
                         are held elsewhere",
                        conflicts.len()
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
                        "the policy is malformed: nothing was written; the {kept} item(s) it \
                         had are kept"
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
                    note: format!("{rules} rule(s): {written} item(s) written, {deleted} deleted"),
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

fn owned_by<'a>(items: &'a [Item], owner: &'a str) -> impl Iterator<Item = &'a Item> + 'a {
    items
        .iter()
        .filter(move |i| i.opt_s("owner").ok().flatten() == Some(owner))
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------
// Reconcile
// ---------------------------------------------------------------------------------------

/// Reconciles one policy (the `kube::runtime::Controller` callback).
pub async fn reconcile(policy: Arc<StepUpPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.leadership.is_leader() {
        // A standby replica never writes; the leader's controller does the work.
        return Ok(Action::requeue(ctx.settings.drift_interval));
    }
    // Conflicts are decided over all policies: wait for the first complete list.
    if ctx.policies.wait_until_ready().await.is_err() {
        return Err(Error::Runtime("the policy cache was dropped".into()));
    }
    let ns = policy
        .namespace()
        .unwrap_or_else(|| ctx.client.default_namespace().to_owned());
    let api: Api<StepUpPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = policy.owner();
    let (ctx_ref, api_ref) = (&*ctx, &api);
    let result = finalizer(&api, FINALIZER, policy, move |event| async move {
        match event {
            Finalizer::Apply(p) => apply(&p, ctx_ref, api_ref).await,
            Finalizer::Cleanup(p) => cleanup(&p, ctx_ref).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    match &result {
        Ok(_) => {
            ctx.record_success(&owner);
            metrics::counter!(metric::RECONCILES, "result" => "ok").increment(1);
        }
        Err(e) => {
            metrics::counter!(metric::RECONCILES, "result" => "error").increment(1);
            metrics::counter!(metric::ERRORS, "kind" => e.metric_label()).increment(1);
        }
    }
    result
}

/// What the controller does after a failed reconcile: retry with backoff ([`backoff`]).
pub fn error_policy(policy: Arc<StepUpPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    let owner = policy.owner();
    let n = ctx.record_failure(&owner);
    let delay = backoff(n);
    tracing::warn!(policy = owner, error = %error, failures = n, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Apply: plan over every policy, write this policy's items, report.
async fn apply(policy: &StepUpPolicy, ctx: &Context, api: &Api<StepUpPolicy>) -> Result<Action> {
    let now = (ctx.clock)();
    let owner = policy.owner();
    let result = {
        let _table = ctx.table_lock.lock().await;
        sync_policy(policy, ctx, now).await
    };
    let (outcome, store_failure) = match result {
        Ok(outcome) => (outcome, None),
        Err(e) => (
            Outcome::StoreFailed {
                message: e.to_string(),
            },
            Some(e),
        ),
    };
    match &outcome {
        Outcome::Synced {
            conflicts,
            written,
            deleted,
            ..
        } => {
            if !conflicts.is_empty() {
                metrics::counter!(metric::CONFLICTS).increment(1);
            }
            tracing::info!(
                policy = owner,
                written,
                deleted,
                conflicts = conflicts.len(),
                "policy synced"
            );
        }
        Outcome::Invalid { error, .. } => {
            metrics::counter!(metric::INVALID).increment(1);
            tracing::warn!(policy = owner, error = %error, "policy is malformed; nothing written");
        }
        Outcome::StoreFailed { message } => {
            tracing::warn!(policy = owner, error = message, "setting table unavailable");
        }
    }
    let previous = policy.status.as_ref();
    let status = status_for(previous, &outcome, policy.metadata.generation, now);
    let events = events_for(previous, &outcome);
    patch_status(api, policy, &status).await?;
    publish(ctx, policy, &events).await;
    match store_failure {
        Some(e) => Err(ctx.store_error(e)),
        None => Ok(Action::requeue(ctx.settings.drift_interval)),
    }
}

/// The table side of Apply, under the table lock.
async fn sync_policy(
    policy: &StepUpPolicy,
    ctx: &Context,
    now: UnixSeconds,
) -> std::result::Result<Outcome, stepup_core::store::StoreError> {
    let owner = policy.owner();
    let current = ctx.store.scan().await?;
    let inputs = desired_inputs(&ctx.policies.state(), Some(policy));
    let planned = plan(&inputs, &current, PlanOptions { prune: false }, now);
    if let Some(error) = planned.errors.iter().find(|e| e.policy == owner) {
        return Ok(Outcome::Invalid {
            error: error.clone(),
            kept: count_u32(owned_by(&current, &owner).count()),
        });
    }
    let mut written = 0;
    let mut deleted = 0;
    // Puts first, then deletes: a rule moving between keys is never absent in between.
    for put in planned.puts.iter().filter(|p| p.owner == owner) {
        ctx.store.put(put.item.clone()).await?;
        written += 1;
        metrics::counter!(metric::ITEMS_WRITTEN).increment(1);
    }
    for delete in planned.deletes.iter().filter(|d| d.owner == owner) {
        ctx.store.delete(&delete.key).await?;
        deleted += 1;
        metrics::counter!(metric::ITEMS_DELETED, "reason" => "rule_removed").increment(1);
    }
    Ok(Outcome::Synced {
        synced: count_u32(planned.synced.get(&owner).copied().unwrap_or(0)),
        rules: count_u32(policy.spec.rules.len()),
        conflicts: planned.conflicts_of(&owner).cloned().collect(),
        written,
        deleted,
    })
}

/// Cleanup: delete the policy's items; a key it held goes at once to the next policy
/// claiming it; then every policy is reconciled again so their statuses follow.
async fn cleanup(policy: &StepUpPolicy, ctx: &Context) -> Result<Action> {
    let now = (ctx.clock)();
    let owner = policy.owner();
    let (taken, deleted) = {
        let _table = ctx.table_lock.lock().await;
        let current = ctx.store.scan().await.map_err(|e| ctx.store_error(e))?;
        let mine: BTreeSet<String> = owned_by(&current, &owner)
            .filter_map(|i| i.req_s("id").ok().map(str::to_owned))
            .collect();
        let rest: Vec<Item> = current
            .iter()
            .filter(|i| i.req_s("id").is_ok_and(|id| !mine.contains(id)))
            .cloned()
            .collect();
        let others: Vec<Arc<StepUpPolicy>> = ctx
            .policies
            .state()
            .into_iter()
            .filter(|p| p.owner() != owner)
            .collect();
        let planned = plan(
            &desired_inputs(&others, None),
            &rest,
            PlanOptions { prune: false },
            now,
        );
        let mut taken = BTreeSet::new();
        for put in planned.puts.iter().filter(|p| mine.contains(&p.key)) {
            ctx.store
                .put(put.item.clone())
                .await
                .map_err(|e| ctx.store_error(e))?;
            taken.insert(put.key.clone());
            metrics::counter!(metric::ITEMS_WRITTEN).increment(1);
        }
        let mut deleted = 0usize;
        for key in mine.iter().filter(|k| !taken.contains(*k)) {
            ctx.store
                .delete(key)
                .await
                .map_err(|e| ctx.store_error(e))?;
            deleted += 1;
            metrics::counter!(metric::ITEMS_DELETED, "reason" => "policy_deleted").increment(1);
        }
        (taken, deleted)
    };
    tracing::info!(
        policy = owner,
        deleted,
        taken_over = taken.len(),
        "policy deleted; its items are removed"
    );
    if let Some(tx) = &ctx.reconcile_all {
        // The controller may be shutting down; then nobody needs the statuses.
        let _ = tx.send(());
    }
    Ok(Action::await_change())
}

async fn patch_status(
    api: &Api<StepUpPolicy>,
    policy: &StepUpPolicy,
    status: &StepUpPolicyStatus,
) -> Result<()> {
    let name = policy.name_any();
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Publishes `events` on the policy. Events are best effort: a failure is logged.
async fn publish(ctx: &Context, policy: &StepUpPolicy, events: &[EventSpec]) {
    let reference = policy.object_ref(&());
    for e in events {
        let event = KubeEvent {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.to_owned(),
            note: Some(cap(e.note.clone())),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(policy = policy.owner(), reason = e.reason, error = %err, "publishing an Event failed");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sweep
// ---------------------------------------------------------------------------------------

/// Is `owner` (`namespace/name`) in the watched scope?
fn in_scope(owner: &str, watch_namespace: Option<&str>) -> bool {
    match watch_namespace {
        None => true,
        Some(ns) => owner.split_once('/').is_some_and(|(o, _)| o == ns),
    }
}

/// Deletes the items whose owning policy no longer exists (in the watched scope): a policy
/// deleted while the operator was down, or whose finalizer was removed by hand. Run at
/// start-up and periodically, only by the leader, only once the policy cache holds a
/// complete list. Items without owner and items of existing policies (even malformed or
/// being deleted) are left alone. Returns the keys deleted.
pub async fn sweep(ctx: &Context) -> Result<Vec<String>> {
    if !ctx.leadership.is_leader() {
        return Ok(Vec::new());
    }
    if ctx.policies.wait_until_ready().await.is_err() {
        return Err(Error::Runtime("the policy cache was dropped".into()));
    }
    let now = (ctx.clock)();
    let _table = ctx.table_lock.lock().await;
    let current = ctx.store.scan().await.map_err(|e| ctx.store_error(e))?;
    // Every policy that exists counts, including those being deleted (their Cleanup
    // removes their items) and malformed ones (which keep theirs).
    let existing: Vec<PolicyInput> = ctx
        .policies
        .state()
        .iter()
        .map(|p| PolicyInput::of(p))
        .collect();
    let planned = plan(&existing, &current, PlanOptions { prune: true }, now);
    let mut deleted = Vec::new();
    for d in planned.deletes.iter().filter(|d| {
        d.reason == stepup_core::crd::plan::DeleteReason::PolicyAbsent
            && in_scope(&d.owner, ctx.settings.watch_namespace.as_deref())
    }) {
        ctx.store
            .delete(&d.key)
            .await
            .map_err(|e| ctx.store_error(e))?;
        metrics::counter!(metric::ITEMS_DELETED, "reason" => "orphan").increment(1);
        tracing::info!(
            key = d.key,
            owner = d.owner,
            "deleted an item whose policy is gone"
        );
        deleted.push(d.key.clone());
    }
    metrics::counter!(metric::SWEEPS).increment(1);
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

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
        let first = status_for(None, &synced(vec![], 2), Some(3), NOW);
        assert_eq!(first.observed_generation, Some(3));
        assert_eq!(get(&first, "Ready").status, "True");
        assert_eq!(get(&first, "Ready").reason, reason::RULES_SYNCED);
        assert_eq!(get(&first, "Synced").status, "True");
        assert_eq!(get(&first, "Conflict").status, "False");
        assert_eq!(first.synced_rules, Some(2));
        assert_eq!(first.last_sync_time, Some(time_of(NOW)));
        // An hour later nothing changed: the same status, so no watch event follows.
        let later = status_for(Some(&first), &synced(vec![], 0), Some(3), NOW + 3600);
        assert_eq!(later, first);
        assert!(events_for(Some(&first), &synced(vec![], 0)).is_empty());
    }

    #[test]
    fn a_conflict_is_reported_once_with_the_holder() {
        let out = synced(vec![conflict("EXACT:/transfer")], 0);
        let s = status_for(None, &out, Some(1), NOW);
        assert_eq!(get(&s, "Ready").status, "False");
        assert_eq!(get(&s, "Ready").reason, reason::RULE_KEY_CONFLICT);
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
        let resolved = status_for(Some(&s), &synced(vec![], 0), Some(1), NOW + 60);
        assert_eq!(
            get(&resolved, "Ready").last_transition_time,
            time_of(NOW + 60)
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
        let s = status_for(None, &out, Some(2), NOW);
        let ready = get(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Invalid")
        );
        assert!(ready.message.contains("rules[0].maxAge"));
        assert_eq!(get(&s, "Synced").reason, reason::INVALID);
        assert_eq!(s.synced_rules, Some(1));
        assert_eq!(s.last_sync_time, None);
        assert_eq!(events_for(None, &out)[0].reason, reason::INVALID);
        assert!(events_for(Some(&s), &out).is_empty());
    }

    #[test]
    fn a_store_failure_keeps_what_was_known_and_says_synced_false() {
        let ok = status_for(None, &synced(vec![], 2), Some(1), NOW);
        let out = Outcome::StoreFailed {
            message: "store unavailable: timeout".into(),
        };
        let s = status_for(Some(&ok), &out, Some(1), NOW + 5);
        let synced_c = get(&s, "Synced");
        assert_eq!(
            (synced_c.status.as_str(), synced_c.reason.as_str()),
            ("False", "StoreError")
        );
        assert!(synced_c.message.contains("timeout"));
        assert_eq!(get(&s, "Conflict"), get(&ok, "Conflict"));
        assert_eq!(s.synced_rules, Some(2));
        assert_eq!(s.last_sync_time, ok.last_sync_time);
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
}
