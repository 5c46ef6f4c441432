//! A cache of *completed* step-ups, so that a privileged request whose token already
//! stepped up does not read the session table every time.
//!
//! Only completions are cached: a missing or pending session is always read again, so a
//! step-up completed a moment ago takes effect on the very next request. An entry lives
//! until the earliest of the token's `exp`, the session's `ttl` and a maximum age (bounding
//! how long a session deleted by an operator is still honoured). Freshness (`maxAge`) is
//! checked per rule on every request against the cached `completedAt`; when the cached
//! completion is too old for a rule, the engine reads the table again (the user may have
//! stepped up once more) and replaces the entry.

use crate::clock::UnixSeconds;
use crate::session::{Factor, Session, SessionView};

#[derive(Debug, Clone, Copy)]
struct Entry {
    completed_at: UnixSeconds,
    factor: Option<Factor>,
    valid_until: UnixSeconds,
}

/// Completed step-ups by session key.
#[derive(Debug)]
pub struct CompletionCache {
    entries: quick_cache::sync::Cache<String, Entry>,
    max_age_secs: u64,
}

impl CompletionCache {
    /// A cache of at most `capacity` sessions, each kept at most `max_age_secs`.
    pub fn new(capacity: usize, max_age_secs: u64) -> CompletionCache {
        CompletionCache {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            max_age_secs,
        }
    }

    /// The cached completion of `key`, if any and still valid at `now`.
    pub fn get(&self, key: &str, now: UnixSeconds) -> Option<SessionView> {
        let entry = self.entries.get(key)?;
        if now >= entry.valid_until {
            self.entries.remove(key);
            return None;
        }
        Some(SessionView::Completed {
            at: entry.completed_at,
            factor: entry.factor,
        })
    }

    /// Remembers `session` under `key` if it is completed and live; `token_exp` bounds the
    /// entry's life.
    pub fn remember(&self, key: &str, session: &Session, token_exp: UnixSeconds, now: UnixSeconds) {
        let SessionView::Completed { at, factor } = Session::view(Some(session), now) else {
            return;
        };
        let valid_until = token_exp.min(session.ttl).min(now.plus(self.max_age_secs));
        if valid_until > now {
            self.entries.insert(
                key.to_owned(),
                Entry {
                    completed_at: at,
                    factor,
                    valid_until,
                },
            );
        }
    }

    /// Number of cached sessions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionLimits;

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn session() -> Session {
        Session::initiate(
            "j",
            "u",
            "c",
            NOW.plus(3600),
            NOW,
            &SessionLimits::default(),
        )
    }

    #[test]
    fn only_completed_sessions_are_cached() {
        let cache = CompletionCache::new(10, 60);
        cache.remember("j", &session(), NOW.plus(3600), NOW);
        assert_eq!(cache.get("j", NOW), None);
        cache.remember(
            "j",
            &session().after_success(Factor::Sms, NOW),
            NOW.plus(3600),
            NOW,
        );
        assert_eq!(
            cache.get("j", NOW.plus(1)),
            Some(SessionView::Completed {
                at: NOW,
                factor: Some(Factor::Sms)
            })
        );
    }

    #[test]
    fn entries_end_at_the_earliest_of_token_expiry_session_ttl_and_max_age() {
        let done = session().after_success(Factor::Sms, NOW);
        let cache = CompletionCache::new(10, 60);
        cache.remember("a", &done, NOW.plus(30), NOW);
        assert!(cache.get("a", NOW.plus(29)).is_some());
        assert_eq!(cache.get("a", NOW.plus(30)), None);
        cache.remember("b", &done, NOW.plus(3600), NOW);
        assert!(cache.get("b", NOW.plus(59)).is_some());
        assert_eq!(cache.get("b", NOW.plus(60)), None);
        let mut short = done.clone();
        short.ttl = NOW.plus(10);
        cache.remember("c", &short, NOW.plus(3600), NOW);
        assert_eq!(cache.get("c", NOW.plus(10)), None);
    }
}
