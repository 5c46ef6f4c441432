//! The world both decision benchmarks run in: the seed's two items among 150 other rules
//! (exact, template and prefix), a completed session in the in-memory store, and a token
//! signed by the test key — every cache warm, the RS256 signature verified on every call.

use std::sync::Arc;
use stepup_core::engine::{Engine, EngineConfig};
use stepup_core::item::{Attr, Item};
use stepup_core::policy::{PolicyCache, PolicyIndex};
use stepup_core::session::{Factor, Session, SessionLimits};
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::TestIssuer;

pub const NOW: u64 = 1_800_000_000;

fn mk(pairs: &[(&str, Attr)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn items() -> Vec<Item> {
    let mut items = vec![
        mk(&[
            ("id", Attr::s("/info")),
            ("stepUpState", Attr::s("STEP_UP_NOT_REQUIRED")),
        ]),
        mk(&[
            ("id", Attr::s("/transfer")),
            ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ]),
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
pub fn world(rt: &tokio::runtime::Runtime) -> (Engine, String) {
    let issuer = TestIssuer::new();
    let sessions = Arc::new(MemorySessionStore::new());
    let engine = rt.block_on(async {
        let s = Session::initiate(
            "jti-1",
            "alice",
            "c",
            NOW + 3600,
            NOW,
            &SessionLimits::default(),
        );
        sessions.put(&s, None, NOW).await.unwrap();
        let done = s.after_success(Factor::SoftwareToken, NOW);
        sessions.put(&done, Some(s.version), NOW).await.unwrap();
        Engine::new(
            Arc::new(PolicyCache::with_index(PolicyIndex::from_items(&items()))),
            Arc::new(issuer.verifier(NOW).await),
            sessions.clone(),
            EngineConfig::default(),
        )
    });
    (
        engine,
        format!("Bearer {}", issuer.token("alice", "jti-1", NOW)),
    )
}
