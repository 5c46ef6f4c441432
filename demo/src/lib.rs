//! # stepup-demo
//!
//! The one-command demo of stepup (`cargo run -p stepup-demo`), kept out of the
//! production binaries: the sidecar and its image contain no identity provider that
//! registers users and mints tokens.
//!
//! - [`app`]: the page, the sample API behind the same decision engine as the sidecar
//!   (through [`stepup_core::layer::StepUpLayer`]), the step-up API, in-memory stores;
//! - [`devidp`]: a development identity provider standing in for Amazon Cognito.

pub mod app;
pub mod devidp;

pub use app::{Demo, DemoArgs, main};
