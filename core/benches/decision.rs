//! The decision with warm caches: token signature verified every time (RS256, aws-lc-rs),
//! policy index and session in memory. `cargo bench -p stepup-core --bench decision`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use stepup_core::engine::{CheckRequest, Engine, EngineConfig};
use stepup_core::item::{Attr, Item};
use stepup_core::policy::{PolicyCache, PolicyIndex};
use stepup_core::session::{Factor, Session, SessionLimits};
use stepup_core::store::SessionStore;
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::TestIssuer;

const NOW: u64 = 1_800_000_000;

fn items() -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mk = |pairs: &[(&str, Attr)]| -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    items.push(mk(&[
        ("id", Attr::s("/info")),
        ("stepUpState", Attr::s("STEP_UP_NOT_REQUIRED")),
    ]));
    items.push(mk(&[
        ("id", Attr::s("/transfer")),
        ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
    ]));
    // A realistic amount of other rules around them.
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
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
        sessions
            .put(
                &s.after_success(Factor::SoftwareToken, NOW),
                Some(s.version),
                NOW,
            )
            .await
            .unwrap();
        Engine::new(
            Arc::new(PolicyCache::with_index(PolicyIndex::from_items(&items()))),
            Arc::new(issuer.verifier(NOW).await),
            sessions.clone(),
            EngineConfig::default(),
        )
    });
    let auth = format!("Bearer {}", issuer.token("alice", "jti-1", NOW));
    let req = |path: &'static str| CheckRequest {
        method: "POST",
        host: "api.example.com",
        path,
        authorization: Some(auth.as_str()),
    };
    let transfer = req("/transfer");
    let info = req("/info");
    assert_eq!(
        rt.block_on(engine.check(&transfer, NOW)).label(),
        "complete"
    );

    c.bench_function("decision/privileged_completed_session", |b| {
        b.iter(|| rt.block_on(engine.check(black_box(&transfer), NOW)))
    });
    c.bench_function("decision/not_required", |b| {
        b.iter(|| rt.block_on(engine.check(black_box(&info), NOW)))
    });
    let index = PolicyIndex::from_items(&items());
    c.bench_function("policy_index/lookup_template", |b| {
        b.iter(|| {
            index.lookup(
                "POST",
                "api.example.com",
                black_box("/svc42/accounts/7/transfer"),
            )
        })
    });
    c.bench_function("canonical/respelled_path", |b| {
        b.iter(|| stepup_core::canonical::canonicalize(black_box("/info/..;/%74ransfer//")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
