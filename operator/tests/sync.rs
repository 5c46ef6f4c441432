//! `stepup-operator sync -f` against DynamoDB Local: the library path and the built
//! binary, on fresh tables per test. The setting table is read back the way the
//! enforcement points read it ([`PolicyIndex::from_items`]).
//!
//! DynamoDB Local comes from `./scripts/test` (`DYNAMODB_ENDPOINT`); without it the tests
//! are skipped with a note, except under `CI=true`, where they fail.

use crate::common;

use common::{examples, hand_made};
use std::path::PathBuf;
use std::process::Command;
use stepup_core::clock::UnixSeconds;
use stepup_core::item::{Item, ItemExt};
use stepup_core::policy::{PolicyIndex, StepUpState};
use stepup_core::store::SettingStore;
use stepup_core::store::dynamo::DynamoSettingStore;
use stepup_operator::sync::{self, SyncArgs};
use stepup_runtime::DynamoArgs;

const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

/// A fresh setting table in DynamoDB Local, or `None` when the test is to be skipped.
async fn fresh_table(test: &str) -> Option<(String, DynamoSettingStore)> {
    common::fresh_setting_table(&format!("op{test}")).await
}

fn args(path: PathBuf, endpoint: &str, table: &str) -> SyncArgs {
    SyncArgs {
        path,
        dry_run: false,
        no_prune: false,
        dynamo: DynamoArgs {
            setting_table: Some(table.to_owned()),
            dynamodb_endpoint: Some(endpoint.to_owned()),
            ..DynamoArgs::default()
        },
    }
}

async fn sorted_scan(store: &DynamoSettingStore) -> Vec<Item> {
    let mut items = store.scan().await.unwrap();
    items.sort_by(|a, b| a.req_s("id").unwrap().cmp(b.req_s("id").unwrap()));
    items
}

fn state(index: &PolicyIndex, method: &str, path: &str) -> Option<StepUpState> {
    index
        .lookup(method, "api.example.com", path)
        .map(|r| r.state)
}

#[tokio::test]
async fn syncing_the_examples_writes_their_rules_and_leaves_hand_made_items_alone() {
    let Some((endpoint, store)) = fresh_table("examples").await else {
        return;
    };
    let legacy = hand_made("/legacy", "STEP_UP_DENY");
    store.put(legacy.clone()).await.unwrap();

    let mut out = Vec::new();
    let a = args(examples(), &endpoint, store.table());
    let report = sync::run(&a, NOW, &mut out).await.unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(!report.plan.has_problems(), "{printed}");
    assert!(printed.contains("+ create EXACT:/transfer (default/transfer): STEP_UP_REQUIRED"));
    assert_eq!(report.plan.puts.len(), 5, "{printed}");

    let items = sorted_scan(&store).await;
    assert!(items.contains(&legacy));
    let index = PolicyIndex::from_items(&items);
    assert!(index.malformed().is_empty(), "{:?}", index.malformed());
    assert_eq!(
        state(&index, "GET", "/transfer"),
        Some(StepUpState::Required)
    );
    assert_eq!(
        state(&index, "GET", "/info"),
        Some(StepUpState::NotRequired)
    );
    assert_eq!(state(&index, "GET", "/legacy"), Some(StepUpState::Deny));
    assert_eq!(
        state(&index, "GET", "/admin/users"),
        Some(StepUpState::Deny)
    );
    let transfer = index
        .lookup("POST", "api.example.com", "/accounts/42/transfer")
        .unwrap();
    assert_eq!(transfer.state, StepUpState::Required);
    assert_eq!(transfer.max_age, Some(300));
    assert_eq!(state(&index, "GET", "/accounts/42/transfer"), None);

    // The second sync, an hour later, finds nothing to do and rewrites nothing.
    let mut out = Vec::new();
    let again = sync::run(&a, NOW.plus(3600), &mut out).await.unwrap();
    assert!(again.plan.is_noop(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(again.plan.unchanged.len(), 5);
    assert_eq!(sorted_scan(&store).await, items);
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let Some((endpoint, store)) = fresh_table("dryrun").await else {
        return;
    };
    let seed = hand_made("/transfer", "STEP_UP_REQUIRED");
    store.put(seed.clone()).await.unwrap();
    let mut a = args(examples(), &endpoint, store.table());
    a.dry_run = true;
    let mut out = Vec::new();
    let report = sync::run(&a, NOW, &mut out).await.unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.plan.puts.len(), 5, "{printed}");
    assert!(printed.contains("(dry run)"), "{printed}");
    assert!(
        printed.contains(
            "+ create TEMPLATE:/accounts/{id}/transfer|methods=POST (default/payments): \
             STEP_UP_REQUIRED; maxAge 300s; factors SOFTWARE_TOKEN"
        ),
        "{printed}"
    );
    assert_eq!(store.scan().await.unwrap(), vec![seed]);
}

#[tokio::test]
async fn the_binary_syncs_prunes_and_exits_non_zero_on_a_malformed_policy() {
    let Some((endpoint, store)) = fresh_table("binary").await else {
        return;
    };
    let seed = hand_made("/transfer", "STEP_UP_REQUIRED");
    store.put(seed.clone()).await.unwrap();
    let bin = env!("CARGO_BIN_EXE_stepup-operator");
    let sync_from = |path: &std::path::Path| {
        Command::new(bin)
            .args(["sync", "-f"])
            .arg(path)
            .args([
                "--setting-table",
                store.table(),
                "--dynamodb-endpoint",
                &endpoint,
            ])
            .env_remove("ENV_PREFIX")
            .env_remove("STEPUP_DRY_RUN")
            .env_remove("STEPUP_NO_PRUNE")
            .output()
            .unwrap()
    };

    let first = sync_from(&examples());
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("+ create PREFIX:/admin (default/payments): STEP_UP_DENY"));
    let second = sync_from(&examples());
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("nothing to do"));

    // Only transfer.yaml now, and payments.yaml broken in a copy: the broken policy keeps
    // its items, the exit status says something is wrong.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples().join("transfer.yaml"),
        dir.path().join("transfer.yaml"),
    )
    .unwrap();
    let payments = std::fs::read_to_string(examples().join("payments.yaml")).unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        payments.replace("maxAge: 5m", "maxAge: 5 minutes"),
    )
    .unwrap();
    let broken = sync_from(dir.path());
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(3), "{stdout}");
    // Validation names file, document, policy and field before the plan.
    assert!(
        stdout.contains("payments.yaml (document 0) default/payments: spec.rules[0].maxAge: "),
        "{stdout}"
    );
    assert!(stdout.starts_with("! error: "), "{stdout}");
    let index = PolicyIndex::from_items(&store.scan().await.unwrap());
    assert_eq!(
        state(&index, "POST", "/accounts/1/transfer"),
        Some(StepUpState::Required)
    );

    // payments.yaml removed altogether: its items are pruned, the hand-made one stays.
    std::fs::remove_file(dir.path().join("payments.yaml")).unwrap();
    let pruned = sync_from(dir.path());
    let stdout = String::from_utf8_lossy(&pruned.stdout);
    assert!(pruned.status.success(), "{stdout}");
    assert!(stdout.contains("- delete PREFIX:/admin (default/payments): policy no longer exists"));
    let items = sorted_scan(&store).await;
    let ids: Vec<&str> = items.iter().map(|i| i.req_s("id").unwrap()).collect();
    assert_eq!(ids, vec!["/transfer", "EXACT:/info", "EXACT:/transfer"]);
    assert!(items.contains(&seed));
}

#[tokio::test]
async fn the_binary_prints_the_crd_that_is_in_crds() {
    let out = Command::new(env!("CARGO_BIN_EXE_stepup-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stored = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/stepuppolicies.yaml"),
    )
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stored);
}
