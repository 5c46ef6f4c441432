//! Latency distribution, single-core throughput and heap allocations of the decision with
//! warm caches (criterion reports means and medians; the design's targets are p50/p99 and
//! decisions per second per core), for a token in the verified-token cache and for one
//! verified every time. `cargo bench -p stepup-core --bench decision_latency`.
//!
//! Allocations are counted with `dhat` (its global allocator, a testing-mode profiler that
//! runs only around the counted calls and saves nothing).
//!
//! Under `cargo test` (no `--bench` argument) it runs a few hundred iterations only, as a
//! smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::time::Instant;
use stepup_core::engine::CheckRequest;
use support::NOW;

// Forwards to the system allocator; counts only while a dhat profiler runs (not during
// the timed loop).
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let iterations: usize = if full { 200_000 } else { 500 };
    for (label, token_cache_size) in [("cached token", 1024), ("cold token", 0)] {
        run(label, token_cache_size, iterations);
    }
    if full {
        full_token_cache();
    }
}

/// The heap the verified-token cache holds when full: the sidecar's default size
/// of distinct valid tokens, with realistic Cognito claims (groups,
/// scope, `origin_jti`), measured by dhat as live bytes after minus before.
fn full_token_cache() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let issuer = stepup_core::testkit::TestIssuer::new();
    let size = stepup_core::token::VerifierConfig::DEFAULT_TOKEN_CACHE_SIZE;
    let verifier = rt.block_on(issuer.verifier_with_token_cache(NOW, size));
    let tokens: Vec<String> = (0..size)
        .map(|i| {
            let mut claims = issuer.claims(&format!("user-{i}"), &format!("jti-{i:08}"), NOW);
            claims["cognito:groups"] = serde_json::json!(["payments", "admins"]);
            issuer.sign(&claims)
        })
        .collect();
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().curr_bytes;
    rt.block_on(async {
        for token in &tokens {
            verifier.verify(token, NOW).await.unwrap();
        }
    });
    let cache = verifier.cache().unwrap();
    let bytes = dhat::HeapStats::get().curr_bytes - before;
    println!(
        "full token cache: {} tokens cached (size {}), {:.1} MiB of heap, {:.0} bytes per token",
        cache.len(),
        cache.capacity(),
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / cache.len() as f64
    );
}

fn run(label: &str, token_cache_size: usize, iterations: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (engine, auth) = support::world(&rt, token_cache_size);
    let req = CheckRequest {
        method: "POST",
        host: "api.example.com",
        path: "/transfer",
        authorization: Some(auth.as_str()),
    };
    assert_eq!(rt.block_on(engine.check(&req, NOW)).label(), "complete");

    let allocations = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let before = dhat::HeapStats::get().total_blocks;
        rt.block_on(async {
            for _ in 0..1000 {
                std::hint::black_box(engine.check(&req, NOW).await);
            }
        });
        (dhat::HeapStats::get().total_blocks - before) as f64 / 1000.0
    };

    let mut samples = Vec::with_capacity(iterations);
    let start = Instant::now();
    rt.block_on(async {
        for _ in 0..iterations {
            let t = Instant::now();
            let d = engine.check(&req, NOW).await;
            samples.push(t.elapsed().as_nanos() as u64);
            std::hint::black_box(d);
        }
    });
    let total = start.elapsed();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!(
        "decision_latency ({label}; privileged path, completed session, {iterations} calls on one core): \
         p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs; {:.0} decisions/s; \
         {allocations:.1} heap allocations per decision",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        iterations as f64 / total.as_secs_f64()
    );
}
