//! In-memory stores with the same semantics as the DynamoDB ones: conditional writes,
//! expired items treated as absent. Used by unit tests, the demo and single-process
//! embeddings; the shared store tests keep it honest against DynamoDB Local.

use super::{ChangeOutcome, SessionStore, SettingStore, StoreError};
use crate::clock::UnixSeconds;
use crate::item::{Attr, Item, ItemExt};
use crate::session::{Session, SessionChange};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of a map of plain
    // values; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An in-memory setting table.
#[derive(Debug, Default)]
pub struct MemorySettingStore {
    items: Mutex<BTreeMap<String, Item>>,
    unavailable: AtomicBool,
}

impl MemorySettingStore {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail with [`StoreError::Unavailable`] (to test failure paths).
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "in-memory store switched off".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SettingStore for MemorySettingStore {
    async fn scan(&self) -> Result<Vec<Item>, StoreError> {
        self.check()?;
        Ok(lock(&self.items).values().cloned().collect())
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.check()?;
        let id = item
            .req_s("id")
            .map_err(|source| StoreError::Malformed {
                key: String::new(),
                source,
            })?
            .to_owned();
        lock(&self.items).insert(id, item);
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.check()?;
        lock(&self.items).remove(id);
        Ok(())
    }
}

/// An in-memory session table.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    items: Mutex<BTreeMap<String, Item>>,
    unavailable: AtomicBool,
}

impl MemorySessionStore {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `item` as it is, without condition or check, keyed by its `sessionId` (tests
    /// use it to plant a malformed item).
    #[doc(hidden)]
    pub fn put_raw(&self, item: Item) {
        let key = item
            .opt_s("sessionId")
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned();
        lock(&self.items).insert(key, item);
    }

    /// The item stored under `key`, as it is (tests use it to see every attribute).
    #[doc(hidden)]
    pub fn get_raw(&self, key: &str) -> Option<Item> {
        lock(&self.items).get(key).cloned()
    }

    /// Makes every call fail with [`StoreError::Unavailable`] (to test failure paths).
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "in-memory store switched off".into(),
            ))
        } else {
            Ok(())
        }
    }
}

/// True if `item` exists and its `ttl` (if any) is still in the future.
fn is_live(item: Option<&Item>, now: UnixSeconds) -> bool {
    match item {
        None => false,
        Some(item) => {
            !matches!(item.opt_u64("ttl"), Ok(Some(ttl)) if UnixSeconds::from_secs(ttl) <= now)
        }
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn get(&self, session_id: &str, now: UnixSeconds) -> Result<Option<Session>, StoreError> {
        self.check()?;
        let items = lock(&self.items);
        let Some(item) = items.get(session_id) else {
            return Ok(None);
        };
        let session = Session::from_item(item).map_err(|source| StoreError::Malformed {
            key: session_id.to_owned(),
            source,
        })?;
        Ok((!session.is_expired(now)).then_some(session))
    }

    async fn put(
        &self,
        session: &Session,
        expected_version: Option<u64>,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut items = lock(&self.items);
        let current = items.get(&session.session_id);
        let ok = match expected_version {
            None => !is_live(current, now),
            // Version 0 is how a session without a `version` attribute reads (written by
            // the seed): such an item may be updated too.
            Some(v) => match current.map(|i| i.get("version")) {
                None => false,
                Some(None) => v == 0,
                Some(Some(stored)) => stored == &Attr::N(v.to_string()),
            },
        };
        if !ok {
            return Err(StoreError::Conflict);
        }
        items.insert(session.session_id.clone(), session.to_item());
        Ok(())
    }

    async fn change(
        &self,
        session_id: &str,
        change: SessionChange,
        now: UnixSeconds,
    ) -> Result<ChangeOutcome, StoreError> {
        self.check()?;
        let mut items = lock(&self.items);
        let Some(item) = items.get_mut(session_id) else {
            return Ok(ChangeOutcome::Refused(None));
        };
        let current = Session::from_item(item).map_err(|source| StoreError::Malformed {
            key: session_id.to_owned(),
            source,
        })?;
        if current.is_expired(now) {
            return Ok(ChangeOutcome::Refused(None));
        }
        let Some(next) = current.apply(change, now) else {
            return Ok(ChangeOutcome::Refused(Some(current)));
        };
        // Write only what the change writes, as DynamoDB's UpdateItem does.
        let mut written = next.to_item();
        for name in change.written_attributes() {
            match written.remove(*name) {
                Some(value) => item.insert((*name).to_owned(), value),
                None => item.remove(*name),
            };
        }
        Ok(ChangeOutcome::Applied(next))
    }

    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError> {
        self.check()?;
        let mut items = lock(&self.items);
        if is_live(items.get(key), now) {
            return Ok(false);
        }
        let mut item = Item::new();
        item.insert("sessionId".into(), Attr::s(key));
        item.insert("ttl".into(), Attr::n(expires_at));
        items.insert(key.to_owned(), item);
        Ok(true)
    }
}
