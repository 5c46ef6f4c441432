//! Session items exactly as the seed writes them (ISO-8601 string timestamps, no
//! `completedAt`, no `version`, its `token` and `referrerUrl`), read through the engine on
//! every store (DynamoDB Local and in memory): a required item gives the challenge, a
//! completed one allows within the rule's `maxAge` and challenges after it, and a broken
//! item gives the challenge — never a 403 as if the store were down.

#![cfg(feature = "dynamodb")]

use crate::common;

use std::sync::Arc;
use stepup_core::Decision;
use stepup_core::clock::UnixSeconds;
use stepup_core::engine::{CheckRequest, Engine, EngineConfig};
use stepup_core::item::{Attr, Item};
use stepup_core::policy::PolicyCache;
use stepup_core::testkit::{TestIssuer, item};
use stepup_core::timestamp::to_iso8601;

/// Far in the future of the real clock, so DynamoDB Local's TTL sweep leaves items alone.
const NOW: UnixSeconds = UnixSeconds::from_secs(4_000_000_000);

/// A session item as the seed's `initiate-auth` / `respond-to-challenge` Lambdas write it.
fn seed_session(jti: &str, status: &str, last_update: UnixSeconds) -> Item {
    item(&[
        ("sessionId", Attr::s(jti)),
        ("userId", Attr::s("alice")),
        ("clientId", Attr::s("test-client")),
        ("token", Attr::s("eyJraWQiOi...")),
        ("referrerUrl", Attr::s("https://app.example/transfer")),
        ("stepUpStatus", Attr::s(status)),
        (
            "createTimestamp",
            Attr::s(to_iso8601(last_update.minus(30))),
        ),
        ("lastUpdateTimestamp", Attr::s(to_iso8601(last_update))),
        ("ttl", Attr::n(NOW.plus(3600))),
    ])
}

/// `/transfer` needs a step-up no older than 5 minutes.
async fn engine(stores: &common::Stores) -> Engine {
    stores
        .setting
        .put(item(&[
            ("id", Attr::s("/transfer")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
            ("maxAgeSeconds", Attr::n(300u64)),
        ]))
        .await
        .unwrap();
    let cache = Arc::new(PolicyCache::new());
    cache.refresh(stores.setting.as_ref(), NOW).await.unwrap();
    Engine::new(
        cache,
        Arc::new(ISSUER.verifier(NOW).await),
        stores.session.clone(),
        EngineConfig::default(),
    )
}

static ISSUER: std::sync::LazyLock<TestIssuer> = std::sync::LazyLock::new(TestIssuer::new);

async fn transfer(engine: &Engine, jti: &str) -> Decision {
    let auth = format!("Bearer {}", ISSUER.token("alice", jti, NOW));
    let req = CheckRequest {
        method: "POST",
        host: "api.example.com",
        path: "/transfer",
        authorization: Some(&auth),
    };
    engine.check(&req, NOW).await
}

fn is_challenge(d: &Decision) -> bool {
    matches!(d, Decision::StepUpRequired(_))
}

test_with_all_store_impls! {
    async fn a_seed_required_item_gives_the_challenge(stores: Stores) {
        let engine = engine(&stores).await;
        stores.put_raw_session_item(seed_session("jti-req", "STEP_UP_REQUIRED", NOW.minus(10))).await.unwrap();
        let d = transfer(&engine, "jti-req").await;
        assert!(is_challenge(&d), "{d:?}");
    }

    async fn a_seed_completed_item_allows_within_max_age_and_challenges_after(stores: Stores) {
        let engine = engine(&stores).await;
        stores.put_raw_session_item(seed_session("jti-fresh", "STEP_UP_COMPLETED", NOW.minus(60))).await.unwrap();
        stores.put_raw_session_item(seed_session("jti-stale", "STEP_UP_COMPLETED", NOW.minus(600))).await.unwrap();
        let fresh = transfer(&engine, "jti-fresh").await;
        assert!(fresh.is_allowed(), "{fresh:?}");
        let stale = transfer(&engine, "jti-stale").await;
        assert!(is_challenge(&stale), "{stale:?}");
    }

    async fn a_broken_session_item_gives_the_challenge_not_a_403(stores: Stores) {
        let engine = engine(&stores).await;
        let mut broken = seed_session("jti-broken", "STEP_UP_COMPLETED", NOW.minus(60));
        broken.insert("lastUpdateTimestamp".into(), Attr::s("last tuesday"));
        stores.put_raw_session_item(broken).await.unwrap();
        let mut unknown = seed_session("jti-unknown", "STEP_UP_MAYBE", NOW.minus(60));
        unknown.insert("ttl".into(), Attr::s("soon"));
        stores.put_raw_session_item(unknown).await.unwrap();
        for jti in ["jti-broken", "jti-unknown"] {
            let d = transfer(&engine, jti).await;
            assert!(is_challenge(&d), "{jti}: {d:?}");
        }
    }
}
