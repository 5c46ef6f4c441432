//! Shared by the operator's test binaries: the CI rule for missing components, DynamoDB
//! Local tables and the seed's hand-made item.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use stepup_core::item::{Attr, Item};
use stepup_core::store::TableNames;
use stepup_core::store::dynamo::{self, DynamoSettingStore};

/// `CI=true`: a missing component is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// DynamoDB Local's endpoint from `./scripts/test`, or `None` (after a note) when the test
/// is to be skipped; panics under `CI=true`.
pub fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => Some(e),
        _ if in_ci() => panic!(
            "DynamoDB Local missing: DYNAMODB_ENDPOINT is not set under CI=true \
             (run the tests with ./scripts/test)"
        ),
        _ => {
            eprintln!("skipping: DYNAMODB_ENDPOINT not set (run ./scripts/test)");
            None
        }
    }
}

/// Fresh tables in DynamoDB Local, named `<prefix>-<n>-<random>`: the endpoint and the
/// setting table, or `None` when the test is to be skipped (see [`dynamodb_endpoint`]).
pub async fn fresh_setting_table(prefix: &str) -> Option<(String, DynamoSettingStore)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let endpoint = dynamodb_endpoint()?;
    let random = RandomState::new().build_hasher().finish() % 1_000_000_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let names = TableNames::with_prefix(&format!("{prefix}-{n}-{random}"));
    let client = dynamo::local_client(&endpoint);
    dynamo::create_tables(&client, &names).await.unwrap();
    Some((endpoint, DynamoSettingStore::new(client, names.setting)))
}

/// The seed's hand-made item (no `owner`), as its README has one create it.
pub fn hand_made(id: &str, state: &str) -> Item {
    Item::from([
        ("id".to_owned(), Attr::s(id)),
        ("stepUpState".to_owned(), Attr::s(state)),
        ("createTimestamp".to_owned(), Attr::n(1_651_234_567u64)),
        ("lastUpdateTimestamp".to_owned(), Attr::n(1_651_234_567u64)),
    ])
}
