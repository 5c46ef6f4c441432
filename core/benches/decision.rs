//! The decision with warm caches: policy index and session in memory, the token either
//! answered by the verified-token cache (`…`) or verified every time (`…/cold_token`:
//! RS256, aws-lc-rs, as for a token seen for the first time).
//! `cargo bench -p stepup-core --bench decision`.

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
    let (engine, auth) = support::world(&rt, 1024);
    let (cold_engine, cold_auth) = support::world(&rt, 0);
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
    let cold = CheckRequest {
        authorization: Some(cold_auth.as_str()),
        ..transfer
    };
    c.bench_function("decision/privileged_completed_session/cold_token", |b| {
        b.iter(|| rt.block_on(cold_engine.check(black_box(&cold), NOW)))
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
