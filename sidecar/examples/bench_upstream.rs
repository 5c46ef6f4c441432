//! A tiny, fast upstream for `scripts/bench-envoy.sh`: `GET /jwks.json` serves the test
//! fixture JWKS (the benchmark's sidecar fetches it from here), every other request gets
//! `200 ok`. Usage: `bench_upstream PORT` (binds 127.0.0.1 only).

use axum::Router;
use axum::routing::get;
use stepup_core::testkit::TEST_JWKS;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: bench_upstream PORT")?
        .parse()?;
    let app = Router::new()
        .route(
            "/jwks.json",
            get(|| async { ([("content-type", "application/json")], TEST_JWKS) }),
        )
        .fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
