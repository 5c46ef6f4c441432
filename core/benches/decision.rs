//! The decision with warm caches: policy index and session in memory, the token either
//! answered by the verified-token cache (`…`) or verified every time (`…/cold_token`:
//! RS256, aws-lc-rs, as for a token seen for the first time).
//! `…/telemetry_on` is the same decision with what production adds around it: a
//! Prometheus recorder taking every counter and the latency histogram, and the decision
//! log with its default sampling (refusals only: this allow writes nothing), against `…`
//! with neither; `…/telemetry_on_every_decision_logged` writes a line (to a sink) for
//! every decision, the worst case of `--decision-log-sample-allows 1`.
//! `cargo bench -p stepup-core --bench decision`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::hint::black_box;
use stepup_core::clock::Stopwatch;
use stepup_core::decision_log::DecisionLog;
use stepup_core::engine::CheckRequest;
use stepup_core::latency::{DECISION_DURATION, DECISION_DURATION_BUCKETS};
use stepup_core::outcome_metrics::ByOutcome;
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
    // What production adds: a Prometheus recorder (the engine's counters, registered at
    // its first decision, and the latency histogram the enforcement point records) and
    // the decision log, with its default sampling (refusals only) and, as a worst case,
    // with every decision written. A new engine per variant, so that its counters
    // register with this recorder.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(DECISION_DURATION.to_owned()),
            &DECISION_DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let with_log = |sample_allows: f64| {
        let (engine, _) = support::world(&rt, 1024);
        engine.with_decision_log(std::sync::Arc::new(DecisionLog::to_writer(
            Box::new(std::io::sink()),
            sample_allows,
        )))
    };
    for (name, logged) in [
        (
            "decision/privileged_completed_session/telemetry_on",
            with_log(0.0),
        ),
        (
            "decision/privileged_completed_session/telemetry_on_every_decision_logged",
            with_log(1.0),
        ),
    ] {
        metrics::with_local_recorder(&recorder, || {
            let durations = ByOutcome::histograms(DECISION_DURATION, &[("point", "grpc".into())]);
            c.bench_function(name, |b| {
                b.iter(|| {
                    let watch = Stopwatch::start();
                    let d = rt.block_on(logged.check(black_box(&transfer), NOW));
                    durations.of(&d).record(watch.elapsed().as_secs_f64());
                    d
                })
            });
        });
    }
    assert!(
        recorder
            .handle()
            .render()
            .contains("stepup_decision_duration_seconds_bucket")
    );
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
