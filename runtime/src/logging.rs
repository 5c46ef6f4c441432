//! Logging: one tracing subscriber for every binary, on stderr, filtered by `RUST_LOG`
//! (default `info`, with the AWS SDK's credential and region probing at `error`: each
//! provider that finds nothing — the instance metadata service (IMDS) on a laptop, say —
//! would otherwise print a warning of a thousand characters, while the call that needed
//! them fails with one line that says the same in plain words, [`stepup_core::aws_error`];
//! `RUST_LOG=debug` shows them all). JSON is one flat object per line (the event's fields beside
//! `message`, no span list), the shape log collectors and CloudWatch Logs Insights read
//! without configuration; text is for people at a terminal.

use crate::{Error, Result};
use tracing_subscriber::EnvFilter;

/// Log output format (`--log-format`, `STEPUP_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default; for log collectors).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// How to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// JSON or text.
    pub format: LogFormat,
    /// Whether each line carries a timestamp.
    pub timestamps: bool,
}

impl LogOptions {
    /// `format`, with timestamps.
    pub fn new(format: LogFormat) -> LogOptions {
        LogOptions {
            format,
            timestamps: true,
        }
    }

    /// The Lambda functions': JSON without a timestamp, since CloudWatch stamps every line
    /// it receives (a second timestamp would only cost bytes on every invocation).
    pub fn lambda() -> LogOptions {
        LogOptions {
            format: LogFormat::Json,
            timestamps: false,
        }
    }
}

/// Installs the process-wide subscriber in `format`, with timestamps; call once, first
/// thing in `main`.
pub fn init_logging(format: LogFormat) -> Result<()> {
    init_logging_with(LogOptions::new(format))
}

/// Installs the process-wide subscriber as `options` say.
pub fn init_logging_with(options: LogOptions) -> Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    let result = match (options.format, options.timestamps) {
        (LogFormat::Json, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        (LogFormat::Json, false) => builder
            .without_time()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        (LogFormat::Text, true) => builder.try_init(),
        (LogFormat::Text, false) => builder.without_time().try_init(),
    };
    result.map_err(|e| Error::Install {
        what: "log subscriber",
        reason: e.to_string(),
    })
}

/// The filter when `RUST_LOG` is unset: `info`, the SDK's provider probing quiet.
pub const DEFAULT_FILTER: &str = "info,aws_config=error";

/// `RUST_LOG`, else [`DEFAULT_FILTER`].
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn formats_parse_by_their_flag_names_and_json_is_the_default() {
        assert_eq!(LogFormat::from_str("json", true), Ok(LogFormat::Json));
        assert_eq!(LogFormat::from_str("text", true), Ok(LogFormat::Text));
        assert_eq!(LogFormat::default(), LogFormat::Json);
        assert!(!LogOptions::lambda().timestamps);
        assert!(LogOptions::new(LogFormat::Text).timestamps);
    }

    #[test]
    fn a_second_installation_is_an_error_not_a_panic() {
        // The first may fail too, when another test of this binary installed one before.
        let _ = init_logging_with(LogOptions::lambda());
        let second = init_logging(LogFormat::Text);
        assert_eq!(second.map_err(|e| e.metric_label()), Err("install"));
    }
}
