//! Shared by the operator's test modules: paths in the repository, the CI rule for missing
//! components, DynamoDB Local tables and the seed's hand-made item.

#![allow(dead_code)]

pub mod apiserver;

use stepup_core::item::{Attr, Item};
use stepup_core::store::TableNames;
use stepup_core::store::dynamo::{self, DynamoSettingStore};
use stepup_core::testkit::components::unique_prefix;

/// `path` in the repository.
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The example policies, `examples/policies`.
pub fn examples() -> std::path::PathBuf {
    repo("examples/policies")
}

#[allow(unused_imports)]
pub use stepup_core::testkit::components::{dynamodb as dynamodb_endpoint, in_ci};

/// Fresh tables in DynamoDB Local, named `<prefix>-<n>-<random>`: the endpoint and the
/// setting table, or `None` when the test is to be skipped (see [`dynamodb_endpoint`]).
pub async fn fresh_setting_table(prefix: &str) -> Option<(String, DynamoSettingStore)> {
    let endpoint = dynamodb_endpoint()?;
    let names = TableNames::with_prefix(&unique_prefix(prefix));
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
