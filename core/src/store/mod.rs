//! Where settings and sessions live: two traits, implemented by an in-memory store
//! ([`memory`], for tests, the demo and single-process use) and by DynamoDB
//! ([`dynamo`]). Both persist the same [`Item`]s, parsed by the pure code in
//! [`crate::policy`] and [`crate::session`], and both enforce the same conditions, so the
//! shared store tests (`core/tests/store.rs`) run unchanged against each.

use crate::clock::UnixSeconds;
use crate::item::{AttrError, Item};
use crate::session::{Session, SessionChange};
use async_trait::async_trait;

#[cfg(feature = "dynamodb")]
pub mod dynamo;
pub mod memory;

/// Table names, derived as the seed derives them from its `ENV_PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// The setting table (`step-up-auth-setting[-<prefix>]`).
    pub setting: String,
    /// The session table (`step-up-auth-session[-<prefix>]`).
    pub session: String,
}

impl TableNames {
    /// `step-up-auth-setting-<prefix>` and `step-up-auth-session-<prefix>`; an empty prefix
    /// gives the bare names.
    pub fn with_prefix(prefix: &str) -> TableNames {
        let suffix = if prefix.is_empty() {
            String::new()
        } else {
            format!("-{prefix}")
        };
        TableNames {
            setting: format!("step-up-auth-setting{suffix}"),
            session: format!("step-up-auth-session{suffix}"),
        }
    }
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with an error. Privileged decisions fail
    /// closed on this.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An AWS call failed (DynamoDB): the one-line cause and hint of
    /// [`crate::aws_error::AwsError`]. Privileged decisions fail closed on this, as on
    /// [`StoreError::Unavailable`].
    #[error(transparent)]
    Aws(Box<crate::aws_error::AwsError>),
    /// The store asked us to slow down.
    #[error("store throttled the request")]
    Throttled,
    /// A conditional write found another version than expected (a concurrent change).
    #[error("conditional write failed: the item changed concurrently")]
    Conflict,
    /// A stored item could not be read.
    #[error("malformed item `{key}`: {source}")]
    Malformed {
        /// the item's key
        key: String,
        /// what is wrong with it
        source: AttrError,
    },
}

impl StoreError {
    /// A short label for metrics (`stepup_store_errors_total{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) | StoreError::Aws(_) => "unavailable",
            StoreError::Throttled => "throttled",
            StoreError::Conflict => "conflict",
            StoreError::Malformed { .. } => "malformed",
        }
    }
}

/// The setting table: one item per rule.
#[async_trait]
pub trait SettingStore: Send + Sync + std::fmt::Debug {
    /// Every item of the table (all pages of a scan), as stored.
    async fn scan(&self) -> Result<Vec<Item>, StoreError>;
    /// Writes an item (unconditionally; the operator's conditional writes come with it).
    async fn put(&self, item: Item) -> Result<(), StoreError>;
    /// Deletes the item with this `id`, if any.
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
}

/// What [`SessionStore::change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The change was written; the session as it is now.
    Applied(Session),
    /// The change's condition did not hold and nothing was written: `Some` with the live
    /// session as it is (e.g. locked), `None` when there is no live session.
    Refused(Option<Session>),
}

/// The session table: step-up sessions and replay markers.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The session with this id, or `None` if there is none or it is past its `ttl` at
    /// `now` (DynamoDB deletes expired items late). A malformed item is
    /// [`StoreError::Malformed`].
    async fn get(&self, session_id: &str, now: UnixSeconds) -> Result<Option<Session>, StoreError>;

    /// Writes `session` if the stored item is still at `expected_version`; `None` means
    /// "create": there must be no live item (an expired one may be replaced). Otherwise
    /// [`StoreError::Conflict`].
    async fn put(
        &self,
        session: &Session,
        expected_version: Option<u64>,
        now: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Applies `change` to the live session `session_id` atomically, as [`Session::apply`]
    /// defines it: one conditional write of the changed attributes only (attributes
    /// stepup does not know, such as the seed's `token`, are kept), never a
    /// read-modify-write, so concurrent changes are all counted and none retried.
    async fn change(
        &self,
        session_id: &str,
        change: SessionChange,
        now: UnixSeconds,
    ) -> Result<ChangeOutcome, StoreError>;

    /// Creates the marker `key` living until `expires_at`, unless a live one exists.
    /// `Ok(true)`: this call created it (first use); `Ok(false)`: it was already there.
    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_the_seed_prefix_rule() {
        assert_eq!(
            TableNames::with_prefix("dev").setting,
            "step-up-auth-setting-dev"
        );
        assert_eq!(TableNames::with_prefix("").session, "step-up-auth-session");
    }
}
