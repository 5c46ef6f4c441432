//! # stepup-sidecar
//!
//! The Envoy / Istio enforcement point of stepup: an ext_authz service in both of Envoy's
//! modes, deciding every request with the shared [`stepup_core::Engine`].
//!
//! | listener | default | what |
//! |---|---|---|
//! | gRPC | `127.0.0.1:9001` (or `unix:<path>`, [`listen`]) | `envoy.service.auth.v3.Authorization/Check` ([`grpc`]) |
//! | HTTP check | `127.0.0.1:9002` (or `unix:<path>`) | Envoy `http_service` mode under `/authz` ([`http_check`]) |
//! | step-up API | `127.0.0.1:9003` | `POST /initiate-auth`, `POST /respond-to-challenge`, CORS preflight ([`stepup_core::api`]) |
//! | admin | `127.0.0.1:9004` | `/healthz`, `/readyz`, `/metrics` ([`admin`]) |
//!
//! [`run`] builds the AWS clients once, [`assemble`]s the stores, JWKS cache, engine (with
//! its completion cache) and step-up API state, tries the first policy and JWKS loads (and
//! starts anyway, not ready, when they fail), keeps both fresh in the background, serves,
//! and drains on SIGTERM / SIGINT. [`serve`], [`spawn`] and [`spawn_with_api`] serve a
//! prebuilt [`stepup_core::Engine`] (and API router), for tests and embedding.

pub mod admin;
pub mod config;
pub mod grpc;
pub mod http_check;
pub mod listen;
pub mod serve;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testutil;
pub mod wiring;

pub use config::Config;
pub use serve::{
    BoundAddrs, DRAIN_TIMEOUT, Listeners, RunningSidecar, ServeOptions, serve, spawn, spawn_on,
    spawn_with_api,
};
pub use stepup_core::refresh::initial_load;
pub use stepup_runtime::aws::AwsClients;
pub use stepup_runtime::shutdown_signal;
pub use wiring::{Parts, assemble, run};
