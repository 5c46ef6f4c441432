//! # stepup-runtime
//!
//! The start-up plumbing every stepup binary needs, written once so that the copies cannot
//! drift (linkerd2's `policy-controller/runtime` idea): each binary's `main` parses its
//! flags, calls into here, builds its clients once and runs.
//!
//! | module | what | used by |
//! |---|---|---|
//! | [`logging`] | one [`LogFormat`] and one [`init_logging`] | sidecar, operator, Lambda |
//! | `metrics` (feature `server`) | the Prometheus recorder, with per-binary histogram buckets | sidecar, operator |
//! | `admin` (feature `server`) | `/healthz`, `/readyz`, `/metrics`, over a readiness check | sidecar, operator |
//! | `signal` (feature `server`) | one `shutdown_signal()`: SIGTERM or Ctrl-C | sidecar, operator |
//! | [`aws`] | the AWS SDK configuration and the DynamoDB (and Cognito) clients | sidecar, operator, Lambda |
//! | [`args`] | the common settings, as clap args each binary flattens, each value normalised once | sidecar, operator, Lambda |
//! | [`env`] | reading clap args from environment variables: an empty variable is unset; the Lambda's reader | sidecar, operator, Lambda |
//!
//! `stepup-core` decides and does no start-up I/O; this crate does the start-up I/O and
//! decides nothing.

pub mod args;
pub mod aws;
pub mod env;
pub mod exit;
pub mod logging;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod signal;

pub use args::{CommonArgs, DynamoArgs, IdentityArgs};
pub use logging::{LogFormat, LogOptions, init_logging};
#[cfg(feature = "server")]
pub use signal::shutdown_signal;

/// A start-up failure: a setting that cannot work, or plumbing that cannot be installed.
/// Messages name the flag and its environment variable, and never echo a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required setting is unset (or empty).
    #[error("--{flag} ({env}) is required")]
    Missing {
        /// the flag
        flag: &'static str,
        /// the environment variable(s)
        env: &'static str,
    },
    /// No usable client id.
    #[error(
        "--allowed-client-ids (STEPUP_ALLOWED_CLIENT_IDS or STEPUP_CLIENT_IDS) lists no client id: every token would be refused"
    )]
    NoClientIds,
    /// A URL that is not http(s).
    #[error("--{flag} must be an http:// or https:// URL, got `{value}`")]
    BadUrl {
        /// the flag
        flag: &'static str,
        /// the value
        value: String,
    },
    /// An environment variable that does not parse (the environment-only reader).
    #[error("{name} is invalid: {reason}")]
    Env {
        /// the variable
        name: String,
        /// why
        reason: String,
    },
    /// The log subscriber or the metrics recorder cannot be installed.
    #[error("installing the {what}: {reason}")]
    Install {
        /// what was being installed
        what: &'static str,
        /// why it failed
        reason: String,
    },
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Missing { .. } | Error::NoClientIds | Error::BadUrl { .. } => "config",
            Error::Env { .. } => "env",
            Error::Install { .. } => "install",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
