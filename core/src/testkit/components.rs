//! The one rule for tests that need a real component (DynamoDB Local, moto, Envoy, Helm,
//! Chromium): `./scripts/test` starts it and exports where it is; without it a test is
//! skipped with a note on stderr that says what is missing, except under `CI=true`, where
//! a skipped test would hide a broken set-up and the test fails instead.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// `CI=true`: a missing component is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says that `what` is missing and why: a panic under `CI=true`, a note otherwise (the
/// caller then returns, skipping the test).
#[allow(clippy::panic)]
pub fn skip_or_fail(what: &str, why: &str) {
    if in_ci() {
        panic!("{what} missing under CI=true: {why} (run the tests with ./scripts/test)");
    }
    eprintln!("skipping: {what} missing: {why} (run ./scripts/test)");
}

/// The endpoint in the environment variable `var` (set by `./scripts/test`), or `None`
/// after [`skip_or_fail`] when it is unset or empty.
pub fn endpoint(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(e) if !e.trim().is_empty() => Some(e),
        _ => {
            skip_or_fail(what, &format!("{var} is not set"));
            None
        }
    }
}

/// DynamoDB Local's endpoint (`DYNAMODB_ENDPOINT`); see [`endpoint`].
pub fn dynamodb() -> Option<String> {
    endpoint("DYNAMODB_ENDPOINT", "DynamoDB Local")
}

/// moto's endpoint (`MOTO_ENDPOINT`); see [`endpoint`].
pub fn moto() -> Option<String> {
    endpoint("MOTO_ENDPOINT", "moto (Cognito stand-in)")
}

/// A table-name prefix no other test (or earlier run against the same DynamoDB Local)
/// uses: `name`, a per-process counter and a random number.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().build_hasher().finish() % 1_000_000_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{name}-{n}-{random}")
}
