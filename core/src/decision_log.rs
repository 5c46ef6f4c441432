//! The decision log: one JSON line per refused or audited decision (and, sampled, per
//! allowed one), for a platform team to see whom a policy stops before and after it is
//! enforced.
//!
//! A line holds the time, the outcome and its reason, the governing rule and its owning
//! `StepUpPolicy`, the request's method, canonical host and canonical path, the user's
//! `sub` and `client_id`, the SHA-256 of the token's `jti` (enough to correlate lines,
//! not to find the token) and how long the decision took. It never holds a token, a code
//! or a password. Every line carries `"log": "stepup.decision"`, so that on stdout
//! (where the enforcement points write nothing else; their own logs go to stderr) a log
//! shipper can route it apart; it can also go to a file of its own.
//!
//! Allows are sampled deterministically: a rate `r` logs one allow in `round(1/r)`.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;
use crate::decision::Decision;
use crate::timestamp::to_iso8601;

/// The value of every line's `log` field.
pub const LOG_TAG: &str = "stepup.decision";

/// Where the decision log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to this file.
    File(PathBuf),
}

/// Why a log target does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a decision log target: use stdout, off or file:<path>")]
pub struct LogTargetError(String);

impl FromStr for LogTarget {
    type Err = LogTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(LogTarget::Off),
            "stdout" => Ok(LogTarget::Stdout),
            _ => match s.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(LogTarget::File(PathBuf::from(path))),
                _ => Err(LogTargetError(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Off => f.write_str("off"),
            LogTarget::Stdout => f.write_str("stdout"),
            LogTarget::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// One decision, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    /// Always [`LOG_TAG`].
    pub log: &'static str,
    /// ISO 8601, seconds.
    pub time: String,
    /// [`Decision::label`].
    pub outcome: &'static str,
    /// [`Decision::reason`]; for an audited request, the reason it would have been refused.
    pub reason: &'static str,
    /// The HTTP status the client got.
    pub status: u16,
    /// For an audited request: the outcome it would have had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_have_been: Option<&'static str>,
    /// The governing rule's item id.
    pub rule: Option<&'a str>,
    /// The owning `StepUpPolicy`, `namespace/name`.
    pub policy: Option<&'a str>,
    /// Upper case.
    pub method: &'a str,
    /// Canonical (lower case, no port).
    pub host: &'a str,
    /// Canonical; `None` when the path has no canonical form.
    pub path: Option<&'a str>,
    /// The token's `sub`, when it verified.
    pub sub: Option<&'a str>,
    /// The token's `client_id`, when it verified.
    pub client_id: Option<&'a str>,
    /// Hex SHA-256 of the token's `jti`, when it verified.
    pub jti_sha256: Option<String>,
    /// How long the decision took, in microseconds.
    pub duration_us: u64,
}

impl<'a> Entry<'a> {
    /// An entry for `decision` at `now`; the request details are filled in by the caller.
    pub fn new(decision: &Decision, now: UnixSeconds, duration: std::time::Duration) -> Self {
        let audited = decision.audited();
        Entry {
            log: LOG_TAG,
            time: to_iso8601(now),
            outcome: decision.label(),
            reason: audited.map_or(decision.reason(), |a| a.reason),
            status: decision.status_code(),
            would_have_been: audited.map(|a| a.outcome),
            rule: None,
            policy: None,
            method: "",
            host: "",
            path: None,
            sub: None,
            client_id: None,
            jti_sha256: None,
            duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// The hex SHA-256 of a `jti`.
pub fn hash_jti(jti: &str) -> String {
    Sha256::digest(jti.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes entries, one JSON line each, to one target.
pub struct DecisionLog {
    out: Mutex<Box<dyn Write + Send>>,
    /// Log one allow in this many (0: none).
    allow_every: u64,
    allows: AtomicU64,
}

impl fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionLog")
            .field("allow_every", &self.allow_every)
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// A log to `target` (`None` for [`LogTarget::Off`]) sampling allows at
    /// `sample_allows` (0.0 to 1.0).
    pub fn open(target: &LogTarget, sample_allows: f64) -> std::io::Result<Option<DecisionLog>> {
        let out: Box<dyn Write + Send> = match target {
            LogTarget::Off => return Ok(None),
            LogTarget::Stdout => Box::new(std::io::LineWriter::new(std::io::stdout())),
            LogTarget::File(path) => Box::new(std::io::LineWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        Ok(Some(DecisionLog::to_writer(out, sample_allows)))
    }

    /// A log to any writer (tests).
    pub fn to_writer(out: Box<dyn Write + Send>, sample_allows: f64) -> DecisionLog {
        let allow_every = if sample_allows > 0.0 {
            (1.0 / sample_allows.min(1.0)).round() as u64
        } else {
            0
        };
        DecisionLog {
            out: Mutex::new(out),
            allow_every,
            allows: AtomicU64::new(0),
        }
    }

    /// Whether `decision` is logged: every refusal and audited request, sampled allows.
    pub fn wants(&self, decision: &Decision) -> bool {
        if !decision.is_allowed() || decision.audited().is_some() {
            return true;
        }
        self.allow_every > 0
            && self
                .allows
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.allow_every)
    }

    /// Writes one line. A write error is reported once per failure to the process log,
    /// never to the request.
    pub fn write(&self, entry: &Entry<'_>) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        let result = match self.out.lock() {
            Ok(mut out) => out.write_all(&line),
            Err(_) => return,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "decision log write failed");
            metrics::counter!("stepup_decision_log_errors_total").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{AuthFailure, DenyReason};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn allow() -> Decision {
        Decision::Allow {
            status: crate::decision::AllowStatus::NotRequired,
            user: "u".into(),
            client_id: "c".into(),
        }
    }

    #[test]
    fn targets_parse_and_print_back() {
        for text in ["off", "stdout", "file:/var/log/stepup/decisions.jsonl"] {
            assert_eq!(text.parse::<LogTarget>().unwrap().to_string(), text);
        }
        for bad in ["", "file:", "stderr", "/tmp/x"] {
            assert!(bad.parse::<LogTarget>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_are_always_logged_and_allows_are_sampled() {
        let never = DecisionLog::to_writer(Box::new(Shared::default()), 0.0);
        assert!(never.wants(&Decision::Denied(DenyReason::Policy)));
        assert!(never.wants(&Decision::Unauthenticated {
            reason: AuthFailure::Missing
        }));
        assert!((0..100).all(|_| !never.wants(&allow())));
        let tenth = DecisionLog::to_writer(Box::new(Shared::default()), 0.1);
        assert_eq!((0..100).filter(|_| tenth.wants(&allow())).count(), 10);
        let all = DecisionLog::to_writer(Box::new(Shared::default()), 1.0);
        assert!((0..10).all(|_| all.wants(&allow())));
    }

    #[test]
    fn a_line_is_tagged_json_and_holds_the_jti_only_hashed() {
        let out = Shared::default();
        let log = DecisionLog::to_writer(Box::new(out.clone()), 0.0);
        let decision = Decision::Denied(DenyReason::Policy);
        let mut entry = Entry::new(
            &decision,
            UnixSeconds::from_secs(1_800_000_000),
            std::time::Duration::from_micros(42),
        );
        entry.method = "POST";
        entry.jti_sha256 = Some(hash_jti("jti-1"));
        log.write(&entry);
        log.write(&entry);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["log"], LOG_TAG);
        assert_eq!(line["outcome"], "deny");
        assert_eq!(line["reason"], "STEP_UP_DENY");
        assert_eq!(line["status"], 403);
        assert_eq!(line["duration_us"], 42);
        assert_eq!(line["time"], "2027-01-15T08:00:00.000Z");
        assert_eq!(line["jti_sha256"].as_str().unwrap().len(), 64);
        assert!(!text.contains("jti-1"));
    }
}
