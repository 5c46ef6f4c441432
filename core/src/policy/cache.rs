//! The current [`PolicyIndex`], swapped atomically when the setting table is re-read.
//!
//! Requests read the index without a lock (`arc-swap`). A background task re-reads the
//! table every refresh interval; when the table cannot be read the last good index stays
//! in place (and the failure is logged and counted); see [`crate::refresh`]. Before the first successful read there
//! is no index at all, and [`PolicyCache::current`] says so: the engine then refuses
//! every request rather than treating every path as unprivileged.

use super::PolicyIndex;
use crate::clock::UnixSeconds;
use crate::store::{SettingStore, StoreError};
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshReport {
    /// Rules in the new index (quarantine rules included).
    pub rules: usize,
    /// Malformed items in the table.
    pub malformed: usize,
}

/// Holds the current policy index.
#[derive(Debug, Default)]
pub struct PolicyCache {
    current: ArcSwapOption<PolicyIndex>,
    last_success: AtomicU64,
}

impl PolicyCache {
    /// An empty cache: nothing loaded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding `index` (for tests, the demo and static configurations).
    pub fn with_index(index: PolicyIndex) -> Self {
        let cache = Self::new();
        cache.current.store(Some(Arc::new(index)));
        cache
    }

    /// The current index, or `None` before the first successful load.
    pub fn current(&self) -> Option<Arc<PolicyIndex>> {
        self.current.load_full()
    }

    /// Whether an index has been loaded (readiness).
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// When the table was last read successfully ([`UnixSeconds::EPOCH`] = never).
    pub fn last_success(&self) -> UnixSeconds {
        UnixSeconds::from_secs(self.last_success.load(Ordering::Relaxed))
    }

    /// Replaces the index.
    pub fn replace(&self, index: PolicyIndex, now: UnixSeconds) {
        self.current.store(Some(Arc::new(index)));
        self.last_success.store(now.as_secs(), Ordering::Relaxed);
    }

    /// Reads the whole setting table and swaps in the new index. On error the previous
    /// index stays.
    pub async fn refresh(
        &self,
        store: &dyn SettingStore,
        now: UnixSeconds,
    ) -> Result<RefreshReport, StoreError> {
        let items = store.scan().await.inspect_err(|e| {
            metrics::counter!("stepup_store_errors_total", "table" => "setting", "kind" => e.metric_label())
                .increment(1);
        })?;
        let index = PolicyIndex::from_items(&items);
        for problem in index.malformed() {
            tracing::warn!(id = %problem.id, reason = %problem.reason,
                "malformed setting item: its paths are denied until it is fixed");
        }
        let report = RefreshReport {
            rules: index.rule_count(),
            malformed: index.malformed().len(),
        };
        metrics::gauge!("stepup_policy_rules").set(report.rules as f64);
        metrics::gauge!("stepup_setting_items_malformed").set(report.malformed as f64);
        metrics::counter!("stepup_setting_items_malformed_total")
            .increment(report.malformed as u64);
        self.replace(index, now);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::StepUpState;
    use crate::store::memory::MemorySettingStore;
    use crate::testkit::seed_item;

    fn at(secs: u64) -> UnixSeconds {
        UnixSeconds::from_secs(secs)
    }

    #[tokio::test]
    async fn nothing_is_loaded_until_the_first_successful_read() {
        let store = MemorySettingStore::new();
        store.set_unavailable(true);
        let cache = PolicyCache::new();
        assert!(cache.refresh(&store, at(10)).await.is_err());
        assert!(cache.current().is_none());
        store.set_unavailable(false);
        store
            .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
            .await
            .unwrap();
        assert_eq!(cache.refresh(&store, at(11)).await.unwrap().rules, 1);
        assert!(cache.is_loaded());
        assert_eq!(cache.last_success(), at(11));
    }

    #[tokio::test]
    async fn an_unreadable_table_keeps_the_last_good_index() {
        let store = MemorySettingStore::new();
        store
            .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
            .await
            .unwrap();
        let cache = PolicyCache::new();
        cache.refresh(&store, at(1)).await.unwrap();
        store.set_unavailable(true);
        assert!(cache.refresh(&store, at(2)).await.is_err());
        let idx = cache.current().unwrap();
        assert_eq!(
            idx.lookup("GET", "h", "/transfer").unwrap().state,
            StepUpState::Required
        );
        assert_eq!(cache.last_success(), at(1));
    }
}
