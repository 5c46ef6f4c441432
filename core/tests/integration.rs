//! stepup-core's integration tests, one module per subject, in one test binary: one
//! compile and one link for all of them (docs/test-time.md). Run one subject with
//! `./scripts/test -p stepup-core --test integration store::`.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The store macro (`test_with_all_store_impls!`) is used by the modules declared after it.
#[macro_use]
mod common;
mod api_support;

mod api;
mod api_mfa;
mod cognito_moto;
mod crd;
mod engine;
mod seed_sessions;
mod store;
mod token;
mod upstream_headers;
