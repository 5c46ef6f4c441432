//! One reconcile of a policy through the finalizer: `Apply` plans over every policy and
//! writes this one's items and status; `Cleanup` deletes its items.

use crate::{Error, Result};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::{
    API_VERSION, KIND, PlanOptions, StepUpPolicy, StepUpPolicyStatus, plan_writes,
};
use stepup_core::item::{Item, ItemExt};

use super::status::{cap, count_u32, owned_by};
use super::*;

/// Reconciles one policy (the `kube::runtime::Controller` callback).
pub async fn reconcile(policy: Arc<StepUpPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.leadership.is_leader() {
        // A standby replica never writes; the leader's controller does the work.
        return Ok(Action::requeue(ctx.config.drift_interval));
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
    let status = status_for(
        previous,
        &outcome,
        policy.metadata.generation,
        now,
        policy.spec.enforcement,
    );
    let events = events_for(previous, &outcome);
    patch_status(api, policy, &status).await?;
    publish(ctx, policy, &events).await;
    match store_failure {
        Some(e) => Err(ctx.store_error(e)),
        None => Ok(Action::requeue(ctx.config.drift_interval)),
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
    let planned = plan_writes(&inputs, &current, PlanOptions { prune: false }, now);
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
        let planned = plan_writes(
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
