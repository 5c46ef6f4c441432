//! The only place that reads the wall clock. Everything else takes `now` as a parameter
//! (Unix seconds), so tests control time (kanidm's rule, enforced by `clippy.toml`).

/// Seconds since the Unix epoch.
pub type UnixSeconds = u64;

/// The current time in Unix seconds (0 if the clock is before 1970, which only a broken
/// host reports; every freshness check then fails closed because nothing is fresh "before"
/// a completed step-up).
#[allow(clippy::disallowed_methods)]
pub fn now() -> UnixSeconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
