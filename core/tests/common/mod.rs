//! Shared helpers for the store tests: one [`Stores`] fixture per backend, and the
//! [`test_with_all_store_impls!`] macro that runs a test body against each of them
//! (limitador's `test_with_all_storage_impls!`), so the in-memory stores cannot drift from
//! DynamoDB's behaviour.
//!
//! The DynamoDB variant talks to DynamoDB Local at `$DYNAMODB_ENDPOINT` (`./scripts/test`
//! starts one) and makes fresh, uniquely named tables for every test. Without the variable
//! it is skipped with a note on stderr, except under `CI=true`, where it fails.

#![allow(dead_code)]

use std::sync::Arc;
use stepup_core::item::Item;
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore};
use stepup_core::store::memory::{MemorySessionStore, MemorySettingStore};
use stepup_core::store::{SessionStore, SettingStore, StoreError, TableNames};

/// Runs each `async fn name(stores: Stores) { … }` as `name::memory` and `name::dynamodb`.
#[macro_export]
macro_rules! test_with_all_store_impls {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($stores:ident: Stores) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                let $stores = $crate::common::Stores::memory();
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                let Some($stores) = $crate::common::Stores::dynamodb(stringify!($name)).await
                else {
                    return;
                };
                $body
            }
        }
    )*};
}

pub use stepup_core::testkit::components::{dynamodb as dynamodb_endpoint, unique_prefix};

enum Backend {
    Memory {
        setting: Arc<MemorySettingStore>,
        session: Arc<MemorySessionStore>,
    },
    Dynamo {
        client: aws_sdk_dynamodb::Client,
        names: TableNames,
        session: Arc<DynamoSessionStore>,
    },
}

/// A setting store and a session store of one backend, empty at the start of the test.
pub struct Stores {
    /// The setting store.
    pub setting: Arc<dyn SettingStore>,
    /// The session store.
    pub session: Arc<dyn SessionStore>,
    backend: Backend,
}

impl Stores {
    /// Fresh in-memory stores.
    pub fn memory() -> Stores {
        let setting = Arc::new(MemorySettingStore::new());
        let session = Arc::new(MemorySessionStore::new());
        Stores {
            setting: setting.clone(),
            session: session.clone(),
            backend: Backend::Memory { setting, session },
        }
    }

    /// DynamoDB stores on fresh tables in DynamoDB Local, or `None` when it is not
    /// configured (see [`dynamodb_endpoint`]).
    pub async fn dynamodb(test_name: &str) -> Option<Stores> {
        let endpoint = dynamodb_endpoint()?;
        let client = dynamo::local_client(&endpoint);
        let names = TableNames::with_prefix(&unique_prefix(test_name));
        dynamo::create_tables(&client, &names)
            .await
            .unwrap_or_else(|e| panic!("creating tables {names:?} at {endpoint}: {e}"));
        let session = Arc::new(DynamoSessionStore::new(client.clone(), &names.session));
        Some(Stores {
            setting: Arc::new(DynamoSettingStore::new(client.clone(), &names.setting)),
            session: session.clone(),
            backend: Backend::Dynamo {
                client,
                names,
                session,
            },
        })
    }

    /// A setting store on the same table that reads scans in pages of `items` items (the
    /// in-memory store has no pages and returns itself).
    pub fn setting_with_page_size(&self, items: i32) -> Arc<dyn SettingStore> {
        match &self.backend {
            Backend::Memory { setting, .. } => setting.clone(),
            Backend::Dynamo { client, names, .. } => Arc::new(
                DynamoSettingStore::new(client.clone(), &names.setting).with_page_size(items),
            ),
        }
    }

    /// Writes a session-table item as it is, bypassing every check.
    pub async fn put_raw_session_item(&self, item: Item) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory { session, .. } => {
                session.put_raw(item);
                Ok(())
            }
            Backend::Dynamo { session, .. } => session.put_raw(item).await,
        }
    }

    /// A session-table item as it is stored, every attribute included.
    pub async fn get_raw_session_item(&self, key: &str) -> Option<Item> {
        match &self.backend {
            Backend::Memory { session, .. } => session.get_raw(key),
            Backend::Dynamo { session, .. } => session.get_raw(key).await.unwrap(),
        }
    }
}
