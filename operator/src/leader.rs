//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder writes.
//!
//! Why our own loop: the maintained crate for this, `kube-leader-election`, depends on
//! kube 4 (its newest release at the time of writing), and pulling a second kube into the
//! build for ~150 lines is a poor trade. The algorithm is client-go's:
//!
//! ```text
//!          get Lease ──absent──► create (holder = me) ──409──► follower
//!              │
//!   held by me ├─► renew: replace renewTime (resourceVersion guards) ──409──► follower
//!   expired    ├─► take over: holder = me, transitions + 1 (guarded the same way)
//!   held, live └─► follower
//! ```
//!
//! Every write is an optimistic `replace` carrying the `resourceVersion` read, so two
//! candidates can never both win one round. The decision is the pure [`decide`]; the clock
//! is read by the caller (`clock` of [`run_elector`]). A leader that cannot renew for a
//! whole lease duration steps down ([`Leadership`] turns false) and the process exits, so
//! it never writes on an expired lease.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use tokio::sync::watch;

/// Whether this replica may write. Cheap to clone; all clones see the same state.
#[derive(Debug, Clone)]
pub struct Leadership {
    state: Arc<watch::Sender<bool>>,
}

impl Leadership {
    /// Always the leader (no election: one replica).
    pub fn always() -> Leadership {
        Leadership {
            state: Arc::new(watch::Sender::new(true)),
        }
    }

    /// Not the leader until an elector says so.
    pub fn standby() -> Leadership {
        Leadership {
            state: Arc::new(watch::Sender::new(false)),
        }
    }

    /// May this replica write now?
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    fn set(&self, leader: bool) {
        self.state.send_if_modified(|s| {
            let changed = *s != leader;
            *s = leader;
            changed
        });
        metrics::gauge!("stepup_operator_leader").set(if leader { 1.0 } else { 0.0 });
    }

    /// Resolves once this replica leads.
    pub async fn acquired(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|l| *l).await;
    }

    /// Resolves once this replica no longer leads.
    pub async fn lost(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|l| !*l).await;
    }
}

/// The Lease and the timings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's name (`STEPUP_LEASE_NAME`).
    pub name: String,
    /// Its namespace (`POD_NAMESPACE`).
    pub namespace: String,
    /// This replica's identity (`POD_NAME`).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often the leader renews (well below `duration`).
    pub renew_every: Duration,
    /// How often a follower looks whether the lease expired.
    pub retry_every: Duration,
}

impl LeaseSettings {
    /// client-go's defaults: 15 s lease, renew every 5 s, followers look every 2 s.
    pub fn new(name: String, namespace: String, identity: String) -> LeaseSettings {
        LeaseSettings {
            name,
            namespace,
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It is ours: renew it.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// Someone else holds a live lease.
    Follow {
        /// The holder.
        holder: String,
    },
}

/// Decides from the Lease's spec at `now` (Unix seconds).
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: UnixSeconds) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0.as_second());
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1));
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    match renewed {
        Some(at) if at.saturating_add(duration) > now => Decision::Follow {
            holder: holder.to_owned(),
        },
        _ => Decision::Acquire,
    }
}

fn micro(now: UnixSeconds) -> MicroTime {
    MicroTime(crate::time::time_of(now).0)
}

fn lease_seconds(settings: &LeaseSettings) -> i32 {
    i32::try_from(settings.duration.as_secs()).unwrap_or(i32::MAX)
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// One round: create, renew or take over the Lease if this replica may. `Ok(true)`: this
/// replica holds the lease until `now.plus(duration)`.
pub async fn try_acquire_or_renew(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    now: UnixSeconds,
) -> Result<bool, kube::Error> {
    let existing = api.get_opt(&settings.name).await?;
    let decision = decide(
        existing.as_ref().and_then(|l| l.spec.as_ref()),
        &settings.identity,
        now,
    );
    let result = match (existing, decision) {
        (_, Decision::Follow { .. }) => return Ok(false),
        (None, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(lease_seconds(settings)),
                    acquire_time: Some(micro(now)),
                    renew_time: Some(micro(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await
        }
        (Some(mut lease), decision) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if decision == Decision::Acquire {
                spec.holder_identity = Some(settings.identity.clone());
                spec.acquire_time = Some(micro(now));
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(lease_seconds(settings));
            spec.renew_time = Some(micro(now));
            // `lease.metadata.resourceVersion` is the one read: a concurrent write fails.
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up (on shutdown), so a successor need not wait for it to expire.
pub async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs the election for ever, keeping `leadership` up to date. `clock` is the edge's
/// clock (Unix seconds).
pub async fn run_elector(
    api: Api<Lease>,
    settings: LeaseSettings,
    leadership: Leadership,
    clock: Arc<dyn Fn() -> UnixSeconds + Send + Sync>,
) {
    let mut last_renewed: Option<UnixSeconds> = None;
    loop {
        let now = clock();
        match try_acquire_or_renew(&api, &settings, now).await {
            Ok(true) => {
                if !leadership.is_leader() {
                    tracing::info!(
                        lease = settings.name,
                        identity = settings.identity,
                        "became the leader"
                    );
                }
                last_renewed = Some(now);
                leadership.set(true);
            }
            Ok(false) => {
                if leadership.is_leader() {
                    tracing::warn!(lease = settings.name, "lost the lease to another replica");
                }
                last_renewed = None;
                leadership.set(false);
            }
            Err(e) => {
                tracing::warn!(lease = settings.name, error = %e, "lease round failed");
                let expired = last_renewed.is_none_or(|at| {
                    now.seconds_since(at) >= settings.duration.as_secs().saturating_sub(2)
                });
                if leadership.is_leader() && expired {
                    tracing::warn!(
                        lease = settings.name,
                        "could not renew the lease in time; stepping down"
                    );
                    leadership.set(false);
                }
            }
        }
        let wait = if leadership.is_leader() {
            settings.renew_every
        } else {
            settings.retry_every
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn spec(holder: Option<&str>, renewed: Option<UnixSeconds>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(micro),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_or_free_lease_is_acquired() {
        assert_eq!(decide(None, "me", NOW), Decision::Acquire);
        assert_eq!(
            decide(Some(&spec(None, None)), "me", NOW),
            Decision::Acquire
        );
    }

    #[test]
    fn our_own_lease_is_renewed() {
        assert_eq!(
            decide(Some(&spec(Some("me"), Some(NOW.minus(100)))), "me", NOW),
            Decision::Renew
        );
    }

    #[test]
    fn a_live_lease_of_another_is_followed_and_an_expired_one_taken() {
        let live = spec(Some("other"), Some(NOW.minus(10)));
        assert_eq!(
            decide(Some(&live), "me", NOW),
            Decision::Follow {
                holder: "other".into()
            }
        );
        let expired = spec(Some("other"), Some(NOW.minus(15)));
        assert_eq!(decide(Some(&expired), "me", NOW), Decision::Acquire);
        let never_renewed = spec(Some("other"), None);
        assert_eq!(decide(Some(&never_renewed), "me", NOW), Decision::Acquire);
    }

    #[tokio::test]
    async fn leadership_is_shared_by_its_clones() {
        let l = Leadership::standby();
        let c = l.clone();
        assert!(!c.is_leader());
        l.set(true);
        c.acquired().await;
        assert!(c.is_leader());
        l.set(false);
        c.lost().await;
    }
}
