//! Timestamps in items as the seed writes them: `createTimestamp` and
//! `lastUpdateTimestamp` are ISO-8601 strings with milliseconds in UTC
//! (`2026-11-30T08:01:02.345Z`, JavaScript's `Date.toISOString()`), while stepup's own
//! attributes (`completedAt`, `ttl`, ...) are numbers of Unix seconds. Reads accept both
//! spellings for either kind, so items written by the seed, by stepup, or by hand all read.
//!
//! `jiff` does the calendar arithmetic (RFC 3339 parsing with offsets and fractions).

use crate::clock::UnixSeconds;
use crate::item::{Attr, AttrError, Item, parse_u64};

/// `t` as the seed writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn to_iso8601(t: UnixSeconds) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => format!("{ts:.3}"),
        // Past jiff's range (year 9999): the largest time it can write.
        Err(_) => format!("{:.3}", jiff::Timestamp::MAX),
    }
}

/// Parses an RFC 3339 / ISO-8601 date-time with an offset (`Z` or `±hh:mm`) to Unix
/// seconds, dropping fractions. `None` for anything else, and for times before 1970.
pub fn parse_iso8601(s: &str) -> Option<UnixSeconds> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    u64::try_from(ts.as_second())
        .ok()
        .map(UnixSeconds::from_secs)
}

/// A time attribute given as a number of Unix seconds or as an ISO-8601 string.
pub fn opt_time(item: &Item, name: &'static str) -> Result<Option<UnixSeconds>, AttrError> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::N(n)) => parse_u64(name, n).map(|secs| Some(UnixSeconds::from_secs(secs))),
        Some(Attr::S(s)) => parse_iso8601(s)
            .map(Some)
            .ok_or_else(|| AttrError::Invalid {
                name,
                detail: format!("`{}` is not an ISO-8601 date-time", s.escape_debug()),
            }),
        Some(other) => Err(AttrError::WrongType {
            name,
            found: other.type_name(),
            expected: "N or S (ISO-8601)",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_the_seed_writes_them() {
        assert_eq!(to_iso8601(UnixSeconds::EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            to_iso8601(UnixSeconds::from_secs(1_796_025_662)),
            "2026-11-30T08:01:02.000Z"
        );
    }

    #[test]
    fn seed_strings_offsets_and_fractions_parse() {
        assert_eq!(
            parse_iso8601("2026-11-30T08:01:02.345Z"),
            Some(UnixSeconds::from_secs(1_796_025_662))
        );
        assert_eq!(
            parse_iso8601("2026-11-30T09:01:02+01:00"),
            Some(UnixSeconds::from_secs(1_796_025_662))
        );
        assert_eq!(
            parse_iso8601(&to_iso8601(UnixSeconds::from_secs(1_700_000_000))),
            Some(UnixSeconds::from_secs(1_700_000_000))
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-30",
            "2026-11-30T08:01:02",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_attributes_read_numbers_and_strings_and_refuse_other_types() {
        let item: Item = [
            ("n".to_owned(), Attr::n(5u64)),
            ("s".to_owned(), Attr::s("1970-01-01T00:00:05.000Z")),
            ("bad".to_owned(), Attr::s("soon")),
            ("b".to_owned(), Attr::Bool(true)),
        ]
        .into();
        assert_eq!(opt_time(&item, "n"), Ok(Some(UnixSeconds::from_secs(5))));
        assert_eq!(opt_time(&item, "s"), Ok(Some(UnixSeconds::from_secs(5))));
        assert_eq!(opt_time(&item, "absent"), Ok(None));
        assert!(opt_time(&item, "bad").is_err());
        assert!(opt_time(&item, "b").is_err());
    }
}
