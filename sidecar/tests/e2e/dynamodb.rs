//! DynamoDB Local for the scenarios: the tables with the seed's two setting items, a raw
//! read of a session item, and an instance of a scenario's own (started with
//! `scripts/dynamodb-local.sh` on a fixed port, so that it can be stopped and started
//! again on the same endpoint).

use super::envoy::free_port;
use super::workspace_root;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use stepup_core::item::{Attr, Item};
use stepup_core::store::dynamo::{self, DynamoSettingStore, create_tables};
use stepup_core::store::{SettingStore, TableNames};

/// Read-locked while a DynamoDB Local JVM of a scenario's own starts, write-locked by the
/// burst scenario while its requests are in flight. A JVM starting on a 2-core machine slows the shared
/// DynamoDB Local past the sidecar's DynamoDB timeouts (0.7 s an attempt, 1.5 s in all),
/// and the burst would report the sidecar's resulting 503s (`store_unavailable`), which
/// have nothing to do with the attempt reservation it checks.
pub static QUIET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A DynamoDB Local instance run by `scripts/dynamodb-local.sh`; stopped on drop.
pub struct OwnDynamoDb {
    instance: String,
    port: u16,
}

fn script(instance: &str, port: u16, action: &str) -> Output {
    Command::new(workspace_root().join("scripts/dynamodb-local.sh"))
        .arg(action)
        .env("INSTANCE", instance)
        .env("DDB_PORT", port.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("scripts/dynamodb-local.sh {action}: {e}"))
}

impl OwnDynamoDb {
    /// An instance named `instance` on a free port (not started yet).
    pub fn new(instance: &str) -> OwnDynamoDb {
        OwnDynamoDb {
            instance: instance.to_owned(),
            port: free_port(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn run(&self, action: &'static str) -> Output {
        let (instance, port) = (self.instance.clone(), self.port);
        tokio::task::spawn_blocking(move || script(&instance, port, action))
            .await
            .unwrap()
    }

    /// Starts (again) on the same port.
    pub async fn start(&self) {
        let out = {
            let _quiet = QUIET.read().await;
            self.run("start").await
        };
        assert!(out.status.success(), "DynamoDB Local did not start");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains(&self.endpoint()), "{printed}");
    }

    /// Stops the JVM: the in-memory tables are gone with it.
    pub async fn stop(&self) {
        let out = self.run("stop").await;
        assert!(out.status.success(), "DynamoDB Local did not stop");
    }
}

impl Drop for OwnDynamoDb {
    fn drop(&mut self) {
        let _ = script(&self.instance, self.port, "stop");
    }
}

fn setting(id: &str, state: &str) -> Item {
    [("id", Attr::s(id)), ("stepUpState", Attr::s(state))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Creates the two tables and writes the seed's `/info` and `/transfer` items.
pub async fn create_and_seed(endpoint: &str, names: &TableNames) {
    let client = dynamo::local_client(endpoint);
    create_tables(&client, names).await.unwrap();
    let settings = DynamoSettingStore::new(client, names.setting.clone());
    settings
        .put(setting("/info", "STEP_UP_NOT_REQUIRED"))
        .await
        .unwrap();
    settings
        .put(setting("/transfer", "STEP_UP_REQUIRED"))
        .await
        .unwrap();
}

/// The session item of `session_id` exactly as stored (a strongly consistent read), or
/// `None`.
pub async fn raw_session(
    endpoint: &str,
    names: &TableNames,
    session_id: &str,
) -> Option<HashMap<String, AttributeValue>> {
    dynamo::local_client(endpoint)
        .get_item()
        .table_name(&names.session)
        .key("sessionId", AttributeValue::S(session_id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// The `failedAttempts` number of a raw session item (0 when absent).
pub fn failed_attempts(item: &HashMap<String, AttributeValue>) -> u32 {
    match item.get("failedAttempts") {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        None => 0,
        Some(other) => panic!("failedAttempts is not a number: {other:?}"),
    }
}
