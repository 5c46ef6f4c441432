//! The world both decision benchmarks run in: the seed's two items among 150 other rules
//! (exact, template and prefix), a completed session in the in-memory store, and a token
//! signed by the test key — every cache warm, the completed session answered by the
//! completion cache (the sidecar's default). With `token_cache_size` 0 the RS256
//! signature is verified on every call (a token seen for the first time); otherwise the
//! verified-token cache answers (the same token again).

use std::sync::Arc;
use stepup_core::clock::UnixSeconds;
use stepup_core::completion_cache::CompletionCache;
use stepup_core::engine::{Engine, EngineConfig};
use stepup_core::item::{Attr, Item};
use stepup_core::policy::{PolicyCache, PolicyIndex};
use stepup_core::session::Factor;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::{TestIssuer, item as mk, put_completed_session, seed_item};

pub const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

pub fn items() -> Vec<Item> {
    let mut items = vec![
        seed_item("/info", "STEP_UP_NOT_REQUIRED"),
        seed_item("/transfer", "STEP_UP_REQUIRED"),
    ];
    for i in 0..50 {
        items.push(mk(&[
            ("id", Attr::s(format!("/svc{i}/exact"))),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ]));
        items.push(mk(&[
            ("id", Attr::s(format!("t{i}"))),
            ("path", Attr::s(format!("/svc{i}/accounts/{{id}}/transfer"))),
            ("match", Attr::s("TEMPLATE")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ]));
        items.push(mk(&[
            ("id", Attr::s(format!("p{i}"))),
            ("path", Attr::s(format!("/svc{i}/admin"))),
            ("match", Attr::s("PREFIX")),
            ("stepUpState", Attr::s("STEP_UP_DENY")),
        ]));
    }
    items
}

/// The engine and an `Authorization` header value whose token has a completed session.
pub fn world(rt: &tokio::runtime::Runtime, token_cache_size: usize) -> (Engine, String) {
    let issuer = TestIssuer::new();
    let sessions = Arc::new(MemorySessionStore::new());
    let engine = rt.block_on(async {
        put_completed_session(
            sessions.as_ref(),
            "jti-1",
            "alice",
            "c",
            NOW.plus(3600),
            NOW,
            Factor::SoftwareToken,
        )
        .await
        .unwrap();
        Engine::new(
            Arc::new(PolicyCache::with_index(PolicyIndex::from_items(&items()))),
            Arc::new(
                issuer
                    .verifier_with_token_cache(NOW, token_cache_size)
                    .await,
            ),
            sessions.clone(),
            EngineConfig::default(),
        )
        // The completion cache as the sidecar runs it by default (30 s, 10000 sessions).
        .with_completion_cache(Arc::new(CompletionCache::new(10_000, 30)))
    });
    (
        engine,
        format!("Bearer {}", issuer.token("alice", "jti-1", NOW)),
    )
}
