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

mod reconcile;
mod status;
mod sweep;
#[cfg(test)]
mod tests;

pub use crate::time::time_of;
pub use reconcile::{error_policy, reconcile};
pub use status::{EventSpec, Outcome, backoff, desired_inputs, events_for, status_for};
pub use sweep::sweep;

use crate::Error;
use crate::leader::Leadership;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::StepUpPolicy;
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

/// How the controller runs (its configuration; "setting" always means the setting table).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
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

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
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
    config: ControllerConfig,
    table_lock: Mutex<()>,
    failures: std::sync::Mutex<HashMap<String, u32>>,
    reconcile_all: Option<mpsc::UnboundedSender<()>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store)
            .field("config", &self.config)
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
        config: ControllerConfig,
    ) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: config.instance.clone(),
            },
        );
        Context {
            client,
            store,
            policies,
            recorder,
            clock,
            leadership: Leadership::always(),
            config,
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

    /// The controller's configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
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
        self.config.table.clone()
    }
}
