//! The only place that reads the wall clock. Everything else takes `now` as a parameter
//! (Unix seconds), so tests control time (kanidm's rule, enforced by `clippy.toml`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type UnixSeconds = u64;

/// What a clock before 1970 reads as: far in the future (year ~292 billion, yet far from
/// overflow for `now + interval`), so that every token, session and cache entry counts as
/// expired and every request is refused. Reading it as 0 would do the opposite: with
/// `now = 0` no token would ever be expired.
pub const BROKEN_CLOCK: UnixSeconds = u64::MAX / 2;

/// The current time in Unix seconds ([`BROKEN_CLOCK`] if the host's clock is before 1970).
#[allow(clippy::disallowed_methods)]
pub fn now() -> UnixSeconds {
    unix_seconds(SystemTime::now())
}

/// `t` in Unix seconds; [`BROKEN_CLOCK`] before 1970.
pub fn unix_seconds(t: SystemTime) -> UnixSeconds {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(BROKEN_CLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_clock_before_1970_reads_as_the_far_future() {
        assert_eq!(
            unix_seconds(UNIX_EPOCH - Duration::from_secs(1)),
            BROKEN_CLOCK
        );
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
        assert!(BROKEN_CLOCK.checked_add(u64::from(u32::MAX)).is_some());
    }
}
