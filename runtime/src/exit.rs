//! How a binary ends when it cannot start: one line naming the error and every cause
//! under it (`a: b: c`), and a distinct status, 2 for a setting that cannot work, 1 for
//! anything else. The line goes through the log subscriber when one is installed (the
//! full error value at `debug` beside it), else straight to stderr, so that a failure to
//! install logging itself is still seen.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::process::ExitCode;

/// The exit status of a configuration error.
pub const USAGE: u8 = 2;
/// The exit status of any other start-up failure.
pub const FAILURE: u8 = 1;

/// Ends on a configuration error (exit 2).
pub fn usage(binary: &str, error: &(dyn StdError + '_)) -> ExitCode {
    report(binary, error, USAGE)
}

/// Ends on any other start-up failure (exit 1).
pub fn failure(binary: &str, error: &(dyn StdError + '_)) -> ExitCode {
    report(binary, error, FAILURE)
}

/// `error` and its sources, `: `-separated, each once (a source whose text its parent
/// already holds, as `anyhow`'s context chains often do, is not repeated).
pub fn chain(error: &(dyn StdError + '_)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            let _ = write!(line, ": {text}");
        }
        source = cause.source();
    }
    line
}

fn report(binary: &str, error: &(dyn StdError + '_), status: u8) -> ExitCode {
    let line = chain(error);
    if tracing::dispatcher::has_been_set() {
        tracing::debug!(error = ?error, "cannot start");
        tracing::error!(error = %line, "{binary} cannot start");
    } else {
        eprintln!("{binary}: {line}");
    }
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn the_line_holds_every_cause_once() {
        let e = Outer(Inner(std::io::Error::other("refused")));
        assert_eq!(chain(&e), "outer: inner: refused");
        let wrapped = anyhow::Error::new(e).context("building the JWKS client");
        let boxed: Box<dyn StdError + Send + Sync> = wrapped.into();
        assert_eq!(
            chain(boxed.as_ref()),
            "building the JWKS client: outer: inner: refused"
        );
    }
}
