//! # stepup-core
//!
//! Everything that *decides* in stepup, shared by every enforcement point (the Envoy
//! ext_authz sidecar, the API Gateway Lambda authorizer, the in-process tower layer):
//!
//! - [`canonical`]: the one canonical form of a request path that rules are matched on;
//! - [`policy`]: rules (`EXACT | PREFIX | TEMPLATE`, methods, hosts, state, freshness,
//!   factors) parsed from setting-table items, and the [`policy::PolicyIndex`] that answers
//!   "which rule governs (method, host, path)";
//! - [`token`]: verification of Cognito access tokens against a cached JWKS;
//! - [`decision`]: the pure decision function (allow / unauthenticated / step-up required /
//!   denied) and the [`engine::Engine`] that feeds it from the caches and stores;
//! - [`session`]: the step-up session state machine as pure transitions;
//! - [`store`]: the setting and session store traits, with in-memory and DynamoDB
//!   implementations that persist the same [`item::Item`]s;
//! - [`aws_error`]: AWS failures as one line a person can act on (cause and what to try);
//! - `layer` (feature `api`): the tower layer that enforces step-up inside any axum
//!   application, without Envoy;
//!
//! Time is always a parameter (`now`, Unix seconds); only [`clock`] reads the clock.

#[cfg(feature = "api")]
pub mod api;
pub mod aws_error;
pub mod canonical;
pub mod clock;
pub mod completion_cache;
#[cfg(feature = "crd")]
pub mod crd;
pub mod decision;
pub mod decision_log;
pub mod engine;
pub mod item;
pub mod latency;
#[cfg(feature = "api")]
pub mod layer;
pub mod outcome_metrics;
pub mod policy;
pub mod refresh;
pub mod session;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod timestamp;
pub mod token;

pub use decision::{Decision, DenyReason};
pub use engine::Engine;
