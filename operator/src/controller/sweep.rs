//! The orphan sweep: deletes items whose owning policy no longer exists in the watched
//! scope (a policy deleted while the operator was down, its finalizer removed by hand).

use crate::{Error, Result};
use stepup_core::crd::{PlanOptions, PolicyInput, plan_writes};

use super::*;

/// Is `owner` (`namespace/name`) in the watched scope?
pub(super) fn in_scope(owner: &str, watch_namespace: Option<&str>) -> bool {
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
    let planned = plan_writes(&existing, &current, PlanOptions { prune: true }, now);
    let mut deleted = Vec::new();
    for d in planned.deletes.iter().filter(|d| {
        d.reason == stepup_core::crd::plan::DeleteReason::PolicyAbsent
            && in_scope(&d.owner, ctx.config.watch_namespace.as_deref())
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
