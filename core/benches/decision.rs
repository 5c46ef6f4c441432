//! The decision with warm caches: token signature verified every time (RS256, aws-lc-rs),
//! policy index and session in memory. `cargo bench -p stepup-core --bench decision`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use stepup_core::engine::CheckRequest;
use stepup_core::policy::PolicyIndex;
use support::NOW;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (engine, auth) = support::world(&rt);
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
    let index = PolicyIndex::from_items(&support::items());
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
