//! stepup-operator's integration tests, one module per subject, in one test binary: one
//! compile and one link for all of them (docs/test-time.md). Run one subject with
//! `./scripts/test -p stepup-operator --test integration sync::`.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod chart;
mod controller;
mod lease;
mod manifests;
mod offline;
mod sync;
