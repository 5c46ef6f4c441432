//! The only place that reads the wall clock. Everything else takes `now` as a parameter
//! (a [`UnixSeconds`]), so tests control time (kanidm's rule, enforced by `clippy.toml`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: seconds since the Unix epoch.
///
/// A newtype, so that a time cannot be passed where a duration, a count or a margin (all
/// plain `u64` seconds or numbers) is meant, nor the other way round. Intervals stay
/// `u64` seconds: `t.plus(secs)`, `t.minus(secs)`, `later.seconds_since(earlier)`.
/// All arithmetic saturates (see [`BROKEN_CLOCK`] for why it never comes near).
///
/// It (de)serialises as the plain integer it wraps, and displays as that integer, so
/// JWT claims, items, JSON bodies and log lines read as they always did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixSeconds(u64);

impl UnixSeconds {
    /// The epoch itself.
    pub const EPOCH: UnixSeconds = UnixSeconds(0);

    /// The last representable time: "never" (a session item without a `ttl`).
    pub const MAX: UnixSeconds = UnixSeconds(u64::MAX);

    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> UnixSeconds {
        UnixSeconds(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `secs` seconds later (saturating).
    #[must_use]
    pub const fn plus(self, secs: u64) -> UnixSeconds {
        UnixSeconds(self.0.saturating_add(secs))
    }

    /// `secs` seconds earlier (saturating at the epoch).
    #[must_use]
    pub const fn minus(self, secs: u64) -> UnixSeconds {
        UnixSeconds(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`; 0 if `earlier` is not earlier.
    pub const fn seconds_since(self, earlier: UnixSeconds) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds from `self` to `later`; 0 if `later` is not later.
    pub const fn seconds_until(self, later: UnixSeconds) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

impl fmt::Display for UnixSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// For writing a time as a number (`Attr::n(t)`, metrics): the wire format is the integer.
impl From<UnixSeconds> for u64 {
    fn from(t: UnixSeconds) -> u64 {
        t.0
    }
}

/// What a clock before 1970 reads as: far in the future (year ~292 billion, yet far from
/// overflow for `now.plus(interval)`), so that every token, session and cache entry counts
/// as expired and every request is refused. Reading it as the epoch would do the opposite:
/// with `now = 0` no token would ever be expired.
pub const BROKEN_CLOCK: UnixSeconds = UnixSeconds(u64::MAX / 2);

/// The current time ([`BROKEN_CLOCK`] if the host's clock is before 1970).
#[allow(clippy::disallowed_methods)]
pub fn now() -> UnixSeconds {
    unix_seconds(SystemTime::now())
}

/// A monotonic timer for durations that are measured, never decided on (the decision
/// log's and the latency metrics' durations).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts it.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// `t` in Unix seconds; [`BROKEN_CLOCK`] before 1970.
pub fn unix_seconds(t: SystemTime) -> UnixSeconds {
    t.duration_since(UNIX_EPOCH)
        .map(|d| UnixSeconds(d.as_secs()))
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
        assert_eq!(
            unix_seconds(UNIX_EPOCH + Duration::from_secs(5)),
            UnixSeconds::from_secs(5)
        );
        assert!(
            BROKEN_CLOCK
                .as_secs()
                .checked_add(u64::from(u32::MAX))
                .is_some()
        );
    }

    #[test]
    fn arithmetic_saturates_and_intervals_are_plain_seconds() {
        let t = UnixSeconds::from_secs(100);
        assert_eq!(t.plus(5), UnixSeconds::from_secs(105));
        assert_eq!(t.minus(5), UnixSeconds::from_secs(95));
        assert_eq!(t.minus(500), UnixSeconds::EPOCH);
        assert_eq!(UnixSeconds::from_secs(u64::MAX).plus(1).as_secs(), u64::MAX);
        assert_eq!(t.plus(7).seconds_since(t), 7);
        assert_eq!(t.seconds_since(t.plus(7)), 0);
        assert_eq!(t.seconds_until(t.plus(7)), 7);
        assert_eq!(t.plus(7).seconds_until(t), 0);
    }

    #[test]
    fn the_wire_format_and_display_are_the_plain_integer() {
        let t = UnixSeconds::from_secs(1_700_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000");
        assert_eq!(
            serde_json::from_str::<UnixSeconds>("1700000000").unwrap(),
            t
        );
        assert_eq!(t.to_string(), "1700000000");
        assert_eq!(u64::from(t), 1_700_000_000);
    }
}
