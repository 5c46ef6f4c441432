//! Loading and refreshing what the engine keeps in memory — the policy index and the
//! JWKS — the same way in every binary: a bounded first load at start-up (the service
//! starts anyway, not ready, and refuses privileged requests until loaded), then
//! background tasks that re-read on an interval, sooner while nothing is loaded, and keep
//! the last good copy when a read fails.

use crate::clock;
use crate::engine::Engine;
use crate::policy::PolicyCache;
use crate::store::SettingStore;
use crate::token::TokenVerifier;
use std::sync::Arc;
use std::time::Duration;

/// Retry interval of a refresh while nothing is loaded yet.
pub const RETRY_UNLOADED: Duration = Duration::from_secs(5);

/// What to try when the JWKS cannot be fetched.
const JWKS_HINT: &str = "try: check --jwks-url (STEPUP_JWKS_URL), or the --issuer, \
     --user-pool-id and --region it is derived from, and the network";

/// The first policy and JWKS loads, concurrently, each bounded by `timeout`. A failure is
/// logged; the background refreshes keep trying.
pub async fn initial_load(engine: &Engine, settings: &dyn SettingStore, timeout: Duration) {
    let policy = tokio::time::timeout(timeout, engine.policies().refresh(settings, clock::now()));
    let jwks = tokio::time::timeout(timeout, engine.verifier().jwks().refresh(clock::now()));
    let (policy, jwks) = tokio::join!(policy, jwks);
    match policy {
        Ok(Ok(report)) => tracing::info!(
            rules = report.rules,
            malformed = report.malformed,
            "policy index loaded"
        ),
        // A DynamoDB failure is one line with its own "try: ..." (crate::aws_error).
        Ok(Err(e)) => tracing::warn!(error = %e, "first policy load failed; not ready"),
        Err(_) => tracing::warn!(
            "first policy load timed out; not ready; try: check the DynamoDB endpoint and region"
        ),
    }
    let url = engine.verifier().jwks().url().to_owned();
    match jwks {
        Ok(Ok(keys)) => tracing::info!(keys, url, "JWKS loaded"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, url, "first JWKS load failed; not ready; {JWKS_HINT}")
        }
        Err(_) => tracing::warn!(url, "first JWKS load timed out; not ready; {JWKS_HINT}"),
    }
}

/// Re-reads the setting table every `interval` (every [`RETRY_UNLOADED`] at most while
/// nothing is loaded) until the task is aborted; a failed read keeps the last good index.
pub fn spawn_policy_refresh(
    policies: Arc<PolicyCache>,
    settings: Arc<dyn SettingStore>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = if policies.is_loaded() {
                interval
            } else {
                interval.min(RETRY_UNLOADED)
            };
            tokio::time::sleep(wait).await;
            match policies.refresh(settings.as_ref(), clock::now()).await {
                Ok(report) => tracing::debug!(?report, "policy index refreshed"),
                Err(e) => tracing::warn!(error = %e,
                    "setting table unreadable; keeping the last good policy index"),
            }
        }
    })
}

/// Refetches the JWKS every `interval` (every [`RETRY_UNLOADED`] at most while none is
/// loaded) until the task is aborted; a failed fetch keeps the keys held. An unknown `kid`
/// refetches at once anyway (rate limited, in the verifier).
pub fn spawn_jwks_refresh(
    verifier: Arc<TokenVerifier>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = if verifier.jwks().is_loaded() {
                interval
            } else {
                interval.min(RETRY_UNLOADED)
            };
            tokio::time::sleep(wait).await;
            match verifier.jwks().refresh(clock::now()).await {
                Ok(keys) => tracing::debug!(keys, "JWKS refreshed"),
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys held"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemorySettingStore;
    use crate::testkit::seed_item;

    #[tokio::test(start_paused = true)]
    async fn the_policy_refresh_retries_soon_while_unloaded_and_then_follows_the_table() {
        let store = Arc::new(MemorySettingStore::new());
        store.set_unavailable(true);
        let cache = Arc::new(PolicyCache::new());
        let task = spawn_policy_refresh(cache.clone(), store.clone(), Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!cache.is_loaded());
        store.set_unavailable(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            cache.current().unwrap().rule_count(),
            0,
            "loaded within the retry interval"
        );
        store
            .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            cache.current().unwrap().rule_count(),
            0,
            "loaded: the full interval applies"
        );
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(cache.current().unwrap().rule_count(), 1);
        task.abort();
    }
}
