//! The store contract, run against every implementation: each test below runs as
//! `<name>::memory` and `<name>::dynamodb` (DynamoDB Local, fresh tables per test; see
//! `common/mod.rs`). The in-memory stores are the reference semantics; DynamoDB must match
//! them with conditional writes only.

#![cfg(feature = "dynamodb")]

use crate::common;

use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::item::{Attr, Item, ItemExt};
use stepup_core::session::{Factor, Session, SessionChange, SessionLimits, SessionStatus};
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore};
use stepup_core::store::{ChangeOutcome, StoreError};
use stepup_core::store::{SessionStore, SettingStore, TableNames};
use stepup_core::testkit::item;

/// A fixed "now", far in the future of any real clock: DynamoDB Local's TTL sweep deletes
/// items whose `ttl` is past by the *real* clock, and these tests want expired items to stay
/// stored so that the read-side expiry check is what they exercise.
const NOW: UnixSeconds = UnixSeconds::from_secs(4_000_000_000);

/// A setting item as the seed's README makes it by hand.
fn seed_item(id: &str, state: &str, created: u64) -> Item {
    item(&[
        ("id", Attr::s(id)),
        ("stepUpState", Attr::s(state)),
        ("createTimestamp", Attr::n(created)),
        ("lastUpdateTimestamp", Attr::n(created)),
    ])
}

fn by_id(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by(|a, b| a.req_s("id").unwrap().cmp(b.req_s("id").unwrap()));
    items
}

/// A new `STEP_UP_REQUIRED` session whose token expires an hour after [`NOW`].
fn session(id: &str) -> Session {
    Session::initiate(
        id,
        "alice",
        "client-1",
        NOW.plus(3600),
        NOW,
        &SessionLimits::default(),
    )
}

test_with_all_store_impls! {
    async fn seed_hand_made_setting_items_come_back_exactly_as_written(stores: Stores) {
        let info = seed_item("/info", "STEP_UP_NOT_REQUIRED", 1_651_234_567);
        let transfer = seed_item("/transfer", "STEP_UP_REQUIRED", 1_651_234_999);
        stores.setting.put(info.clone()).await.unwrap();
        stores.setting.put(transfer.clone()).await.unwrap();
        assert_eq!(by_id(stores.setting.scan().await.unwrap()), vec![info, transfer]);
    }

    async fn a_scan_in_pages_of_two_returns_all_25_items(stores: Stores) {
        for i in 0..25u64 {
            let id = format!("/path/{i:02}");
            stores.setting.put(seed_item(&id, "STEP_UP_REQUIRED", i)).await.unwrap();
        }
        let paged = stores.setting_with_page_size(2);
        let items = by_id(paged.scan().await.unwrap());
        let ids: Vec<String> = items.iter().map(|i| i.req_s("id").unwrap().to_owned()).collect();
        let expected: Vec<String> = (0..25).map(|i| format!("/path/{i:02}")).collect();
        assert_eq!(ids, expected);
    }

    async fn put_replaces_an_item_and_delete_removes_it(stores: Stores) {
        let store = &stores.setting;
        store.put(seed_item("/a", "STEP_UP_REQUIRED", 1)).await.unwrap();
        store.put(seed_item("/b", "STEP_UP_REQUIRED", 1)).await.unwrap();
        let mut replaced = seed_item("/a", "STEP_UP_DENY", 1);
        replaced.insert("methods".into(), Attr::Ss(vec!["POST".into(), "PUT".into()]));
        replaced.insert("owner".into(), Attr::s("payments/transfers"));
        store.put(replaced.clone()).await.unwrap();
        store.delete("/b").await.unwrap();
        store.delete("/never-there").await.unwrap();
        assert_eq!(store.scan().await.unwrap(), vec![replaced]);

        let no_id = item(&[("stepUpState", Attr::s("STEP_UP_REQUIRED"))]);
        assert!(matches!(store.put(no_id).await, Err(StoreError::Malformed { .. })));
    }

    async fn creating_a_session_twice_is_a_conflict(stores: Stores) {
        let s = session("jti-create");
        assert_eq!(stores.session.get("jti-create", NOW).await.unwrap(), None);
        stores.session.put(&s, None, NOW).await.unwrap();
        assert_eq!(stores.session.get("jti-create", NOW).await.unwrap(), Some(s.clone()));
        let again = stores.session.put(&session("jti-create"), None, NOW.plus(1)).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    }

    async fn an_update_at_the_stored_version_succeeds_and_a_stale_one_is_a_conflict(
        stores: Stores
    ) {
        let limits = SessionLimits::default();
        let s1 = session("jti-update");
        let missing = stores
            .session
            .put(&s1.reserve_attempt(NOW, &limits).unwrap(), Some(1), NOW)
            .await;
        assert!(matches!(missing, Err(StoreError::Conflict)), "no item yet: {missing:?}");

        stores.session.put(&s1, None, NOW).await.unwrap();
        let s2 = s1.reserve_attempt(NOW.plus(1), &limits).unwrap();
        stores.session.put(&s2, Some(s1.version), NOW.plus(1)).await.unwrap();
        assert_eq!(stores.session.get("jti-update", NOW.plus(1)).await.unwrap(), Some(s2.clone()));

        // A writer that still holds version 1 loses.
        let stale = s1.after_success(stepup_core::session::Factor::SoftwareToken, NOW.plus(2));
        let r = stores.session.put(&stale, Some(s1.version), NOW.plus(2)).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(stores.session.get("jti-update", NOW.plus(2)).await.unwrap(), Some(s2));
    }

    async fn an_expired_session_reads_as_absent_and_may_be_created_again(stores: Stores) {
        let s = session("jti-expired");
        stores.session.put(&s, None, NOW).await.unwrap();
        assert!(stores.session.get("jti-expired", s.ttl.minus(1)).await.unwrap().is_some());
        assert_eq!(stores.session.get("jti-expired", s.ttl).await.unwrap(), None);

        let later = s.ttl.plus(10);
        let fresh = Session::initiate(
            "jti-expired", "alice", "client-1", later.plus(3600), later, &SessionLimits::default(),
        );
        stores.session.put(&fresh, None, later).await.unwrap();
        assert_eq!(stores.session.get("jti-expired", later).await.unwrap(), Some(fresh));
    }

    async fn a_malformed_session_item_is_reported_as_malformed(stores: Stores) {
        let mut bad = session("jti-bad").to_item();
        bad.insert("stepUpStatus".into(), Attr::s("STEP_UP_MAYBE"));
        stores.put_raw_session_item(bad).await.unwrap();
        match stores.session.get("jti-bad", NOW).await {
            Err(StoreError::Malformed { key, .. }) => assert_eq!(key, "jti-bad"),
            other => panic!("expected Malformed, got {other:?}"),
        }

        let mut wrong_type = session("jti-bad-type").to_item();
        wrong_type.insert("completedAt".into(), Attr::s("yesterday"));
        stores.put_raw_session_item(wrong_type).await.unwrap();
        let r = stores.session.get("jti-bad-type", NOW).await;
        assert!(matches!(r, Err(StoreError::Malformed { .. })), "{r:?}");
    }

    async fn a_session_written_without_a_version_by_the_seed_can_be_completed(stores: Stores) {
        let mut legacy = session("jti-seed").to_item();
        legacy.remove("version");
        stores.put_raw_session_item(legacy).await.unwrap();
        let read = stores.session.get("jti-seed", NOW).await.unwrap().unwrap();
        assert_eq!(read.version, 0);
        let done = read.after_success(Factor::SoftwareToken, NOW);
        stores.session.put(&done, Some(0), NOW).await.unwrap();
        assert_eq!(stores.session.get("jti-seed", NOW).await.unwrap(), Some(done.clone()));
        // Once versioned, version 0 is stale.
        let r = stores.session.put(&done, Some(0), NOW).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        // Version 0 never creates an item that is not there.
        let r = stores.session.put(&session("jti-none"), Some(0), NOW).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    }

    async fn claim_once_is_true_the_first_time_and_false_after(stores: Stores) {
        assert!(stores.session.claim_once("replay#abc", NOW.plus(300), NOW).await.unwrap());
        assert!(!stores.session.claim_once("replay#abc", NOW.plus(300), NOW).await.unwrap());
        assert!(!stores.session.claim_once("replay#abc", NOW.plus(600), NOW.plus(299)).await.unwrap());
        assert!(stores.session.claim_once("replay#other", NOW.plus(300), NOW).await.unwrap());
    }

    async fn claim_once_succeeds_again_after_the_marker_expired(stores: Stores) {
        assert!(stores.session.claim_once("replay#exp", NOW.plus(10), NOW).await.unwrap());
        assert!(!stores.session.claim_once("replay#exp", NOW.plus(20), NOW.plus(9)).await.unwrap());
        assert!(stores.session.claim_once("replay#exp", NOW.plus(30), NOW.plus(10)).await.unwrap());
        assert!(!stores.session.claim_once("replay#exp", NOW.plus(40), NOW.plus(29)).await.unwrap());
    }

    async fn fifty_racing_reservations_grant_exactly_the_limit_and_refuse_the_rest(
        stores: Stores
    ) {
        let limits = SessionLimits { max_failed_attempts: 5, ttl_margin: 300 };
        stores.session.put(&session("jti-burst"), None, NOW).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = stores.session.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .change("jti-burst", SessionChange::ReserveAttempt { limits }, NOW.plus(1))
                        .await
                })
            })
            .collect();
        let (mut granted, mut refused) = (Vec::new(), 0);
        for t in tasks {
            match t.await.unwrap().unwrap() {
                ChangeOutcome::Applied(s) => granted.push(s.failed_attempts),
                ChangeOutcome::Refused(Some(s)) => {
                    assert!(s.locked_until(NOW.plus(1), &limits).is_some());
                    refused += 1;
                }
                ChangeOutcome::Refused(None) => panic!("the session exists"),
            }
        }
        granted.sort_unstable();
        assert_eq!(granted, [1, 2, 3, 4, 5], "each reservation counted exactly once");
        assert_eq!(refused, 45);
        let stored = stores.session.get("jti-burst", NOW.plus(1)).await.unwrap().unwrap();
        assert_eq!(stored.failed_attempts, 5);
    }

    async fn a_success_completes_and_gives_its_reserved_attempt_back(stores: Stores) {
        let limits = SessionLimits::default();
        stores.session.put(&session("jti-done"), None, NOW).await.unwrap();
        let change = SessionChange::ReserveAttempt { limits };
        stores.session.change("jti-done", change, NOW).await.unwrap();
        stores.session.change("jti-done", change, NOW).await.unwrap();
        let done = stores
            .session
            .change("jti-done", SessionChange::Complete { factor: Factor::Sms }, NOW.plus(5))
            .await
            .unwrap();
        let ChangeOutcome::Applied(done) = done else { panic!("{done:?}") };
        assert_eq!(done.failed_attempts, 1, "one failure stays counted");
        assert_eq!(done.status, SessionStatus::Completed);
        assert_eq!(done.completed_at, Some(NOW.plus(5)));
        assert_eq!(stores.session.get("jti-done", NOW.plus(5)).await.unwrap(), Some(done));
        // Release takes back one reservation, never below zero.
        stores.session.change("jti-done", SessionChange::ReleaseAttempt, NOW.plus(6)).await.unwrap();
        let r = stores.session.change("jti-done", SessionChange::ReleaseAttempt, NOW.plus(6)).await;
        assert!(matches!(r, Ok(ChangeOutcome::Refused(Some(_)))), "{r:?}");
    }

    async fn a_change_to_an_absent_or_expired_session_is_refused_without_a_session(
        stores: Stores
    ) {
        let limits = SessionLimits::default();
        let change = SessionChange::ReserveAttempt { limits };
        let r = stores.session.change("jti-none", change, NOW).await.unwrap();
        assert_eq!(r, ChangeOutcome::Refused(None));
        let s = session("jti-old");
        stores.session.put(&s, None, NOW).await.unwrap();
        let r = stores.session.change("jti-old", change, s.ttl).await.unwrap();
        assert_eq!(r, ChangeOutcome::Refused(None));
        assert!(stores.get_raw_session_item("jti-none").await.is_none(), "nothing created");
    }

    async fn seed_session_items_read_as_the_seed_wrote_them_and_keep_their_attributes(
        stores: Stores
    ) {
        // Exactly the seed's shape: ISO-8601 string timestamps, no completedAt, no version.
        let seed = |id: &str, status: &str| item(&[
            ("sessionId", Attr::s(id)),
            ("userId", Attr::s("alice")),
            ("clientId", Attr::s("client-1")),
            ("token", Attr::s("eyJhbGciOi...")),
            ("referrerUrl", Attr::s("https://app.example/transfer")),
            ("stepUpStatus", Attr::s(status)),
            ("createTimestamp", Attr::s("2096-10-02T07:06:40.000Z")),
            ("lastUpdateTimestamp", Attr::s("2096-10-02T07:07:00.345Z")),
            ("ttl", Attr::n(NOW.plus(3600))),
        ]);
        stores.put_raw_session_item(seed("jti-seed-req", "STEP_UP_REQUIRED")).await.unwrap();
        stores.put_raw_session_item(seed("jti-seed-done", "STEP_UP_COMPLETED")).await.unwrap();
        let required = stores.session.get("jti-seed-req", NOW).await.unwrap().unwrap();
        assert_eq!(required.status, SessionStatus::Required);
        assert_eq!(required.created_at, NOW);
        let done = stores.session.get("jti-seed-done", NOW).await.unwrap().unwrap();
        assert_eq!(
            Session::view(Some(&done), NOW.plus(30)),
            stepup_core::session::SessionView::Completed { at: NOW.plus(20), factor: None }
        );

        // stepup's changes write only their attributes, as the seed's types.
        let limits = SessionLimits::default();
        let r = stores
            .session
            .change("jti-seed-req", SessionChange::ReserveAttempt { limits }, NOW.plus(40))
            .await
            .unwrap();
        assert!(matches!(r, ChangeOutcome::Applied(ref s) if s.failed_attempts == 1), "{r:?}");
        let raw = stores.get_raw_session_item("jti-seed-req").await.unwrap();
        assert_eq!(raw["token"], Attr::s("eyJhbGciOi..."));
        assert_eq!(raw["referrerUrl"], Attr::s("https://app.example/transfer"));
        assert_eq!(raw["createTimestamp"], Attr::s("2096-10-02T07:06:40.000Z"));
        assert_eq!(raw["lastUpdateTimestamp"], Attr::s("2096-10-02T07:07:20.000Z"));
        assert_eq!(raw["failedAttempts"], Attr::n(1u64));
    }

    async fn of_eight_racing_updates_at_the_same_version_exactly_one_wins(stores: Stores) {
        let limits = SessionLimits::default();
        let s1 = session("jti-race");
        stores.session.put(&s1, None, NOW).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let store = stores.session.clone();
                let barrier = barrier.clone();
                let next = s1.reserve_attempt(NOW.plus(1 + i), &limits).unwrap();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.put(&next, Some(1), NOW.plus(1)).await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(wins, 1);
        let stored = stores.session.get("jti-race", NOW.plus(1)).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.failed_attempts), (2, 1));
    }
}

/// DynamoDB only: a store that cannot be reached answers `Unavailable` promptly (here with
/// one attempt and short timeouts), so that a privileged request fails closed instead of
/// hanging. Needs no DynamoDB Local.
#[tokio::test]
async fn an_unreachable_dynamodb_is_unavailable_quickly() {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    let config = dynamo::local_config("http://127.0.0.1:1")
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let sessions = DynamoSessionStore::new(client.clone(), "step-up-auth-session-down");
    let settings = DynamoSettingStore::new(client, "step-up-auth-setting-down");

    let limit = Duration::from_secs(10);
    let got = tokio::time::timeout(limit, sessions.get("jti", NOW))
        .await
        .expect("get hung");
    let scanned = tokio::time::timeout(limit, settings.scan())
        .await
        .expect("scan hung")
        .map(|_| ());
    let put = tokio::time::timeout(limit, sessions.put(&session("jti"), None, NOW))
        .await
        .expect("put hung");
    // Each is the endpoint being unreachable, naming its operation and table: never an
    // absent session or an empty policy (which would read as "no step-up needed").
    for (result, operation, table) in [
        (
            got.map(|_| ()),
            "GetItem",
            "session table `step-up-auth-session-down`",
        ),
        (scanned, "Scan", "setting table `step-up-auth-setting-down`"),
        (put, "PutItem", "session table `step-up-auth-session-down`"),
    ] {
        match result {
            Err(StoreError::Aws(e)) => {
                assert_eq!(e.operation, operation);
                assert_eq!(
                    e.cause,
                    stepup_core::aws_error::AwsCause::Unreachable,
                    "{e}"
                );
                assert!(e.to_string().contains(table), "{e}");
            }
            other => panic!("{operation}: expected the endpoint unreachable, got {other:?}"),
        }
    }
}

/// DynamoDB only: `create_tables` may run again on existing tables (scripts and the demo
/// call it at every start), and sets TTL on the session table's `ttl`.
#[tokio::test]
async fn creating_the_tables_twice_is_fine_and_enables_ttl() {
    let Some(endpoint) = common::dynamodb_endpoint() else {
        return;
    };
    let client = dynamo::local_client(&endpoint);
    let names = TableNames::with_prefix(&common::unique_prefix("create_tables"));
    dynamo::create_tables(&client, &names).await.unwrap();
    dynamo::create_tables(&client, &names).await.unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&names.session)
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some("ttl"));
    let keys = client
        .describe_table()
        .table_name(&names.setting)
        .send()
        .await
        .unwrap();
    let schema = keys.table().unwrap().key_schema();
    assert_eq!(schema[0].attribute_name(), "id");
}
