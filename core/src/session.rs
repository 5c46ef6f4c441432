//! Step-up sessions: the record kept per access token (`sessionId` = the token's `jti`,
//! or `origin_jti` when configured) and its state machine as pure transitions.
//!
//! ```text
//!              initiate                      right code
//!   (absent) ───────────► REQUIRED ─────────────────────────► COMPLETED ──┐ right code again:
//!                          │   ▲                                  ▲       │ completedAt := now
//!                          │   └─ wrong code, failures < max      └───────┘ (fresh for maxAge)
//!                          │
//!                          └─ wrong code, failures = max ──► locked (lockedUntil = ttl)
//!                                                            every attempt refused (429)
//!   any state ── ttl passes ──► (absent): a read treats an item past its `ttl` as gone,
//!                                         whether or not DynamoDB has swept it yet.
//! ```
//!
//! Every transition returns a new [`Session`] with `version + 1`; the stores write it only
//! if the stored version is still the one read (optimistic concurrency), so two requests
//! racing on one session can never both count or both complete.
//!
//! A code that was accepted once is refused afterwards: [`replay_key`] names a short-lived
//! marker that the store creates with a conditional put ([`crate::store::SessionStore::claim_once`]).

use crate::clock::UnixSeconds;
use crate::item::{Attr, AttrError, Item, ItemExt};
use sha2::{Digest, Sha256};
use std::fmt;

/// `stepUpStatus` of a session item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// `STEP_UP_REQUIRED`: a challenge was initiated and not yet answered.
    Required,
    /// `STEP_UP_COMPLETED`: a code was verified at `completedAt`.
    Completed,
}

impl SessionStatus {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Required => "STEP_UP_REQUIRED",
            SessionStatus::Completed => "STEP_UP_COMPLETED",
        }
    }
}

/// A second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// A TOTP software token (Cognito `SOFTWARE_TOKEN_MFA`).
    SoftwareToken,
    /// A code sent by SMS.
    Sms,
}

impl Factor {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::SoftwareToken => "SOFTWARE_TOKEN",
            Factor::Sms => "SMS",
        }
    }

    /// Parses the item spelling (`SOFTWARE_TOKEN`, `SMS`) and the `StepUpPolicy` spelling
    /// (`SoftwareToken`, `Sms`), case-insensitively.
    pub fn parse(s: &str) -> Option<Factor> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        match folded.as_str() {
            "softwaretoken" | "totp" | "softwaretokenmfa" => Some(Factor::SoftwareToken),
            "sms" | "smsmfa" => Some(Factor::Sms),
            _ => None,
        }
    }

    /// How long an accepted code stays refused. A TOTP code is valid for its 30 s step plus
    /// Cognito's clock-skew window; an SMS verification code lives up to 24 h.
    pub fn replay_window(self) -> u64 {
        match self {
            Factor::SoftwareToken => 300,
            Factor::Sms => 24 * 3600,
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Failed answers after which the session is locked until its `ttl`.
    pub max_failed_attempts: u32,
    /// Seconds a session outlives its token's `exp` (the item's `ttl` is `exp + margin`).
    pub ttl_margin: u64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_failed_attempts: 5,
            ttl_margin: 300,
        }
    }
}

/// A step-up session item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `sessionId`: the token's `jti` (or `origin_jti`).
    pub session_id: String,
    /// `userId`: the token's `username`.
    pub user_id: String,
    /// `clientId`: the token's `client_id`.
    pub client_id: String,
    /// `stepUpStatus`
    pub status: SessionStatus,
    /// `completedAt`: when the last right code was accepted.
    pub completed_at: Option<UnixSeconds>,
    /// `factor`: the factor of the last accepted code.
    pub factor: Option<Factor>,
    /// `failedAttempts`
    pub failed_attempts: u32,
    /// `lockedUntil`: attempts are refused before this time.
    pub locked_until: Option<UnixSeconds>,
    /// `createTimestamp`
    pub created_at: UnixSeconds,
    /// `lastUpdateTimestamp`
    pub updated_at: UnixSeconds,
    /// `ttl`: DynamoDB's expiry attribute; never later than the token's `exp` plus the margin.
    pub ttl: UnixSeconds,
    /// `version`: incremented by every transition; writes are conditional on it.
    pub version: u64,
}

/// Why an answer to a challenge is not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttemptRefused {
    /// Too many failed answers: locked until the given time.
    #[error("session locked until {until}")]
    Locked {
        /// end of the lockout
        until: UnixSeconds,
    },
}

/// What the decision needs to know about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionView {
    /// No session (or one past its `ttl`).
    Absent,
    /// A challenge is pending.
    Pending,
    /// Completed at the given time with the given factor.
    Completed {
        /// `completedAt`
        at: UnixSeconds,
        /// `factor`
        factor: Option<Factor>,
    },
}

impl Session {
    /// A new `STEP_UP_REQUIRED` session for a token expiring at `token_exp`.
    pub fn initiate(
        session_id: &str,
        user_id: &str,
        client_id: &str,
        token_exp: UnixSeconds,
        now: UnixSeconds,
        limits: &SessionLimits,
    ) -> Session {
        Session {
            session_id: session_id.to_owned(),
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            status: SessionStatus::Required,
            completed_at: None,
            factor: None,
            failed_attempts: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
            ttl: token_exp.saturating_add(limits.ttl_margin),
            version: 1,
        }
    }

    /// True once the item's `ttl` has passed: the session no longer exists.
    pub fn is_expired(&self, now: UnixSeconds) -> bool {
        self.ttl <= now
    }

    /// Whether an answer may be checked now.
    pub fn check_attempt_allowed(&self, now: UnixSeconds) -> Result<(), AttemptRefused> {
        match self.locked_until {
            Some(until) if until > now => Err(AttemptRefused::Locked { until }),
            _ => Ok(()),
        }
    }

    /// The session after a wrong answer: counted, and locked until its `ttl` once the
    /// count reaches the limit.
    pub fn after_failure(&self, now: UnixSeconds, limits: &SessionLimits) -> Session {
        let failed_attempts = self.failed_attempts.saturating_add(1);
        let locked_until = if failed_attempts >= limits.max_failed_attempts {
            Some(self.ttl)
        } else {
            self.locked_until
        };
        Session {
            failed_attempts,
            locked_until,
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The session after a right answer with `factor`: completed now. The failure count is
    /// kept (a lockout is per session, not per success), so a success does not reset the
    /// attempts an attacker already spent.
    pub fn after_success(&self, factor: Factor, now: UnixSeconds) -> Session {
        Session {
            status: SessionStatus::Completed,
            completed_at: Some(now),
            factor: Some(factor),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// What the decision sees of an optional session at `now`.
    pub fn view(session: Option<&Session>, now: UnixSeconds) -> SessionView {
        match session {
            None => SessionView::Absent,
            Some(s) if s.is_expired(now) => SessionView::Absent,
            Some(s) => match (s.status, s.completed_at) {
                (SessionStatus::Completed, Some(at)) => SessionView::Completed {
                    at,
                    factor: s.factor,
                },
                _ => SessionView::Pending,
            },
        }
    }

    /// The item written to the session table.
    pub fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert("sessionId".into(), Attr::s(&self.session_id));
        item.insert("userId".into(), Attr::s(&self.user_id));
        item.insert("clientId".into(), Attr::s(&self.client_id));
        item.insert("stepUpStatus".into(), Attr::s(self.status.as_str()));
        if let Some(at) = self.completed_at {
            item.insert("completedAt".into(), Attr::n(at));
        }
        if let Some(f) = self.factor {
            item.insert("factor".into(), Attr::s(f.as_str()));
        }
        item.insert("failedAttempts".into(), Attr::n(self.failed_attempts));
        if let Some(until) = self.locked_until {
            item.insert("lockedUntil".into(), Attr::n(until));
        }
        item.insert("createTimestamp".into(), Attr::n(self.created_at));
        item.insert("lastUpdateTimestamp".into(), Attr::n(self.updated_at));
        item.insert("ttl".into(), Attr::n(self.ttl));
        item.insert("version".into(), Attr::n(self.version));
        item
    }

    /// Reads a session item. A malformed item is an error, which the decision treats as
    /// "no completed step-up" (fail closed).
    pub fn from_item(item: &Item) -> Result<Session, AttrError> {
        let status = match item.req_s("stepUpStatus")? {
            "STEP_UP_REQUIRED" => SessionStatus::Required,
            "STEP_UP_COMPLETED" => SessionStatus::Completed,
            other => {
                return Err(AttrError::Invalid {
                    name: "stepUpStatus",
                    detail: format!("unknown state `{other}`"),
                });
            }
        };
        let factor = match item.opt_s("factor")? {
            None => None,
            Some(f) => Some(Factor::parse(f).ok_or_else(|| AttrError::Invalid {
                name: "factor",
                detail: format!("unknown factor `{f}`"),
            })?),
        };
        let failed = item.opt_u64("failedAttempts")?.unwrap_or(0);
        let created_at = item.opt_u64("createTimestamp")?.unwrap_or(0);
        Ok(Session {
            session_id: item.req_s("sessionId")?.to_owned(),
            user_id: item.opt_s("userId")?.unwrap_or_default().to_owned(),
            client_id: item.opt_s("clientId")?.unwrap_or_default().to_owned(),
            status,
            completed_at: item.opt_u64("completedAt")?,
            factor,
            failed_attempts: u32::try_from(failed).unwrap_or(u32::MAX),
            locked_until: item.opt_u64("lockedUntil")?,
            created_at,
            updated_at: item.opt_u64("lastUpdateTimestamp")?.unwrap_or(created_at),
            // The seed's items carry `ttl`; one without it never expires by itself, which
            // is what DynamoDB does with it too.
            ttl: item.opt_u64("ttl")?.unwrap_or(u64::MAX),
            version: item.opt_u64("version")?.unwrap_or(0),
        })
    }
}

/// The session-table key of the marker that refuses a second use of `code` by `user_id`
/// with `factor`. The code is hashed with the user and factor so that the table never
/// holds a code in clear text.
pub fn replay_key(user_id: &str, factor: Factor, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(user_id.as_bytes());
    h.update([0]);
    h.update(factor.as_str().as_bytes());
    h.update([0]);
    h.update(code.trim().as_bytes());
    let digest = h.finalize();
    let mut key = String::with_capacity(7 + 64);
    key.push_str("replay#");
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn fresh() -> Session {
        Session::initiate(
            "jti-1",
            "alice",
            "client",
            NOW + 3600,
            NOW,
            &SessionLimits::default(),
        )
    }

    #[test]
    fn initiate_sets_ttl_to_token_expiry_plus_margin() {
        let s = fresh();
        assert_eq!(s.status, SessionStatus::Required);
        assert_eq!(s.ttl, NOW + 3600 + 300);
        assert_eq!(Session::view(Some(&s), NOW), SessionView::Pending);
    }

    #[test]
    fn wrong_codes_lock_the_session_until_its_ttl_at_the_limit() {
        let limits = SessionLimits {
            max_failed_attempts: 3,
            ttl_margin: 300,
        };
        let mut s = fresh();
        for i in 1..=2 {
            s = s.after_failure(NOW + i, &limits);
            assert_eq!(s.failed_attempts, i as u32);
            assert!(s.check_attempt_allowed(NOW + i).is_ok());
        }
        s = s.after_failure(NOW + 3, &limits);
        assert_eq!(
            s.check_attempt_allowed(NOW + 4),
            Err(AttemptRefused::Locked { until: s.ttl })
        );
        assert!(
            s.check_attempt_allowed(s.ttl).is_ok(),
            "the lock ends with the session"
        );
        assert_eq!(s.version, 4);
    }

    #[test]
    fn success_completes_and_a_later_success_refreshes_completed_at() {
        let s = fresh().after_success(Factor::SoftwareToken, NOW + 10);
        assert_eq!(
            Session::view(Some(&s), NOW + 11),
            SessionView::Completed {
                at: NOW + 10,
                factor: Some(Factor::SoftwareToken)
            }
        );
        let s2 = s.after_success(Factor::Sms, NOW + 100);
        assert_eq!(s2.completed_at, Some(NOW + 100));
        assert_eq!(s2.version, s.version + 1);
    }

    #[test]
    fn a_session_past_its_ttl_is_absent_even_if_still_stored() {
        let s = fresh().after_success(Factor::Sms, NOW);
        assert_eq!(Session::view(Some(&s), s.ttl), SessionView::Absent);
    }

    #[test]
    fn items_round_trip_and_bad_states_are_errors() {
        let s = fresh().after_failure(NOW + 1, &SessionLimits::default());
        assert_eq!(Session::from_item(&s.to_item()).unwrap(), s);
        let mut bad = s.to_item();
        bad.insert("stepUpStatus".into(), Attr::s("STEP_UP_MAYBE"));
        assert!(Session::from_item(&bad).is_err());
        let mut bad = s.to_item();
        bad.insert("completedAt".into(), Attr::s("yesterday"));
        assert!(Session::from_item(&bad).is_err());
    }

    #[test]
    fn replay_keys_differ_by_user_factor_and_code_and_hide_the_code() {
        let a = replay_key("alice", Factor::SoftwareToken, "123456");
        assert!(!a.contains("123456"));
        assert_ne!(a, replay_key("bob", Factor::SoftwareToken, "123456"));
        assert_ne!(a, replay_key("alice", Factor::Sms, "123456"));
        assert_ne!(a, replay_key("alice", Factor::SoftwareToken, "123457"));
        assert_eq!(a, replay_key("alice", Factor::SoftwareToken, " 123456 "));
    }
}
