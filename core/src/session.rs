//! Step-up sessions: the record kept per access token (`sessionId` = the token's `jti`,
//! or `origin_jti` when configured) and its state machine as pure transitions.
//!
//! ```text
//!              initiate              reserve attempt              right code
//!   (absent) ───────────► REQUIRED ──────────────────► (in flight) ──────────► COMPLETED
//!                          ▲  failedAttempts + 1            │      attempt given back,
//!                          │  (refused at the limit: 429)   │      completedAt := now
//!                          └── wrong code: the attempt stays counted
//!
//!   failedAttempts >= max_failed_attempts ──► locked until `ttl`: every reservation refused
//!   any state ── ttl passes ──► (absent): a read treats an item past its `ttl` as gone,
//!                                         whether or not DynamoDB has swept it yet.
//! ```
//!
//! An attempt is *reserved* before a code goes to the identity provider, in one atomic
//! conditional update ([`SessionChange::ReserveAttempt`]): however many answers arrive at
//! once, at most `max_failed_attempts` of them are ever checked. Every change is a
//! [`SessionChange`] that the stores apply atomically (DynamoDB: one `UpdateItem` of the
//! changed attributes, so attributes stepup does not know survive); [`Session::apply`] is
//! its pure definition, which the in-memory store runs and the shared store tests hold the
//! DynamoDB store to.
//!
//! Items written by the seed read as they are: ISO-8601 timestamps, no `completedAt` (a
//! `STEP_UP_COMPLETED` item counts as completed at its `lastUpdateTimestamp`), no
//! `version`.
//!
//! A code that was accepted once is refused afterwards: [`replay_key`] names a short-lived
//! marker that the store creates with a conditional put ([`crate::store::SessionStore::claim_once`]).

use crate::clock::UnixSeconds;
use crate::item::{Attr, AttrError, Item, ItemExt};
use crate::timestamp::{opt_time, to_iso8601};
use sha2::{Digest, Sha256};
use std::fmt;

/// `stepUpStatus` of a session item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// `STEP_UP_REQUIRED`: a challenge was initiated and not yet answered.
    Required,
    /// `STEP_UP_COMPLETED`: a code was verified at `completedAt`.
    Completed,
    /// `STEP_UP_NOT_REQUIRED`: written by the seed for a path without step-up; never a
    /// completion.
    NotRequired,
}

impl SessionStatus {
    /// The item value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Required => "STEP_UP_REQUIRED",
            SessionStatus::Completed => "STEP_UP_COMPLETED",
            SessionStatus::NotRequired => "STEP_UP_NOT_REQUIRED",
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
    /// Failed answers (attempts reserved and not given back) after which the session is
    /// locked until its `ttl`.
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
    /// `failedAttempts`: attempts reserved and not given back by a success.
    pub failed_attempts: u32,
    /// `lockedUntil`: attempts are refused before this time. stepup locks by
    /// `failedAttempts` alone; this is read so that an operator can lock a session by hand.
    pub locked_until: Option<UnixSeconds>,
    /// `createTimestamp` (written as ISO-8601, as the seed does)
    pub created_at: UnixSeconds,
    /// `lastUpdateTimestamp` (written as ISO-8601, as the seed does)
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

/// An atomic change of a stored session (see [`Session::apply`] for what each does and
/// when it is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// One more attempt counted, refused while the session is locked.
    ReserveAttempt {
        /// The lockout limit.
        limits: SessionLimits,
    },
    /// A reserved attempt given back; refused when none is counted.
    ReleaseAttempt,
    /// Completed now with this factor, the reserved attempt given back.
    Complete {
        /// The factor whose code was accepted.
        factor: Factor,
    },
}

impl SessionChange {
    /// The item attributes the change writes (the stores write exactly these).
    pub fn written_attributes(self) -> &'static [&'static str] {
        match self {
            SessionChange::ReserveAttempt { .. } | SessionChange::ReleaseAttempt => {
                &["failedAttempts", "version", "lastUpdateTimestamp"]
            }
            SessionChange::Complete { .. } => &[
                "failedAttempts",
                "version",
                "lastUpdateTimestamp",
                "stepUpStatus",
                "completedAt",
                "factor",
            ],
        }
    }
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
            ttl: token_exp.plus(limits.ttl_margin),
            version: 1,
        }
    }

    /// True once the item's `ttl` has passed: the session no longer exists.
    pub fn is_expired(&self, now: UnixSeconds) -> bool {
        self.ttl <= now
    }

    /// Until when answers are refused at `now`, if they are: the session's `ttl` once
    /// `max_failed_attempts` failures are counted, or a future `lockedUntil`.
    pub fn locked_until(&self, now: UnixSeconds, limits: &SessionLimits) -> Option<UnixSeconds> {
        let by_count = (self.failed_attempts >= limits.max_failed_attempts).then_some(self.ttl);
        let by_hand = self.locked_until.filter(|until| *until > now);
        match (by_count, by_hand) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether an answer may be checked now.
    pub fn check_attempt_allowed(
        &self,
        now: UnixSeconds,
        limits: &SessionLimits,
    ) -> Result<(), AttemptRefused> {
        match self.locked_until(now, limits) {
            Some(until) => Err(AttemptRefused::Locked { until }),
            None => Ok(()),
        }
    }

    /// The session with one more attempt reserved, or why none may be.
    pub fn reserve_attempt(
        &self,
        now: UnixSeconds,
        limits: &SessionLimits,
    ) -> Result<Session, AttemptRefused> {
        self.check_attempt_allowed(now, limits)?;
        Ok(Session {
            failed_attempts: self.failed_attempts.saturating_add(1),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// The session with a reserved attempt given back (the password was right and a code
    /// is now awaited): the reservation was not a failure.
    pub fn release_attempt(&self, now: UnixSeconds) -> Session {
        Session {
            failed_attempts: self.failed_attempts.saturating_sub(1),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The session after a right answer with `factor`: completed now, and the attempt
    /// reserved for it given back, so `failedAttempts` counts failures only.
    pub fn after_success(&self, factor: Factor, now: UnixSeconds) -> Session {
        Session {
            status: SessionStatus::Completed,
            completed_at: Some(now),
            factor: Some(factor),
            failed_attempts: self.failed_attempts.saturating_sub(1),
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The pure definition of a store's atomic [`SessionChange`]: the new session, or
    /// `None` when the change's condition does not hold (the stores then change nothing).
    /// The caller has already checked that the session is live.
    pub fn apply(&self, change: SessionChange, now: UnixSeconds) -> Option<Session> {
        match change {
            SessionChange::ReserveAttempt { limits } => self.reserve_attempt(now, &limits).ok(),
            SessionChange::ReleaseAttempt => {
                (self.failed_attempts > 0).then(|| self.release_attempt(now))
            }
            // Only after a reservation: its attempt is given back in the same write.
            SessionChange::Complete { factor } => {
                (self.failed_attempts > 0).then(|| self.after_success(factor, now))
            }
        }
    }

    /// What the decision sees of an optional session at `now`.
    pub fn view(session: Option<&Session>, now: UnixSeconds) -> SessionView {
        match session {
            None => SessionView::Absent,
            Some(s) if s.is_expired(now) => SessionView::Absent,
            Some(s) => match s.status {
                // The seed writes no `completedAt`: its last update is when it completed.
                SessionStatus::Completed => SessionView::Completed {
                    at: s.completed_at.unwrap_or(s.updated_at),
                    factor: s.factor,
                },
                SessionStatus::Required | SessionStatus::NotRequired => SessionView::Pending,
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
        item.insert(
            "createTimestamp".into(),
            Attr::s(to_iso8601(self.created_at)),
        );
        item.insert(
            "lastUpdateTimestamp".into(),
            Attr::s(to_iso8601(self.updated_at)),
        );
        item.insert("ttl".into(), Attr::n(self.ttl));
        item.insert("version".into(), Attr::n(self.version));
        item
    }

    /// Reads a session item, as stepup or the seed wrote it. A malformed item is an error,
    /// which the decision treats as "no completed step-up" (the challenge).
    pub fn from_item(item: &Item) -> Result<Session, AttrError> {
        let status = match item.req_s("stepUpStatus")? {
            "STEP_UP_REQUIRED" => SessionStatus::Required,
            "STEP_UP_COMPLETED" => SessionStatus::Completed,
            "STEP_UP_NOT_REQUIRED" => SessionStatus::NotRequired,
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
        let created_at = opt_time(item, "createTimestamp")?.unwrap_or(UnixSeconds::EPOCH);
        Ok(Session {
            session_id: item.req_s("sessionId")?.to_owned(),
            user_id: item.opt_s("userId")?.unwrap_or_default().to_owned(),
            client_id: item.opt_s("clientId")?.unwrap_or_default().to_owned(),
            status,
            completed_at: opt_time(item, "completedAt")?,
            factor,
            failed_attempts: u32::try_from(failed).unwrap_or(u32::MAX),
            locked_until: item.opt_u64("lockedUntil")?.map(UnixSeconds::from_secs),
            created_at,
            updated_at: opt_time(item, "lastUpdateTimestamp")?.unwrap_or(created_at),
            // The seed's items carry `ttl`; one without it never expires by itself, which
            // is what DynamoDB does with it too.
            ttl: item
                .opt_u64("ttl")?
                .map_or(UnixSeconds::MAX, UnixSeconds::from_secs),
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

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn fresh() -> Session {
        Session::initiate(
            "jti-1",
            "alice",
            "client",
            NOW.plus(3600),
            NOW,
            &SessionLimits::default(),
        )
    }

    #[test]
    fn initiate_sets_ttl_to_token_expiry_plus_margin() {
        let s = fresh();
        assert_eq!(s.status, SessionStatus::Required);
        assert_eq!(s.ttl, NOW.plus(3600 + 300));
        assert_eq!(Session::view(Some(&s), NOW), SessionView::Pending);
    }

    #[test]
    fn reserved_attempts_lock_the_session_until_its_ttl_at_the_limit() {
        let limits = SessionLimits {
            max_failed_attempts: 3,
            ttl_margin: 300,
        };
        let mut s = fresh();
        for i in 1..=3 {
            s = s.reserve_attempt(NOW.plus(i), &limits).unwrap();
            assert_eq!(s.failed_attempts, i as u32);
        }
        assert_eq!(
            s.reserve_attempt(NOW.plus(4), &limits),
            Err(AttemptRefused::Locked { until: s.ttl })
        );
        assert_eq!(
            s.apply(SessionChange::ReserveAttempt { limits }, NOW.plus(4)),
            None
        );
        assert_eq!(s.version, 4);
    }

    #[test]
    fn a_success_gives_its_attempt_back_so_only_failures_count() {
        let limits = SessionLimits::default();
        let s = fresh().reserve_attempt(NOW, &limits).unwrap();
        let done = s
            .apply(
                SessionChange::Complete {
                    factor: Factor::Sms,
                },
                NOW.plus(1),
            )
            .unwrap();
        assert_eq!(done.failed_attempts, 0);
        assert_eq!(done.status, SessionStatus::Completed);
        let released = s.apply(SessionChange::ReleaseAttempt, NOW.plus(1)).unwrap();
        assert_eq!(released.failed_attempts, 0);
        assert_eq!(
            released.apply(SessionChange::ReleaseAttempt, NOW.plus(2)),
            None
        );
    }

    #[test]
    fn a_hand_written_lock_refuses_attempts_until_it_ends() {
        let limits = SessionLimits::default();
        let mut s = fresh();
        s.locked_until = Some(NOW.plus(60));
        assert_eq!(
            s.check_attempt_allowed(NOW, &limits),
            Err(AttemptRefused::Locked {
                until: NOW.plus(60)
            })
        );
        assert!(s.check_attempt_allowed(NOW.plus(60), &limits).is_ok());
    }

    fn seed_item(status: &str) -> Item {
        [
            ("sessionId", Attr::s("jti-seed")),
            ("userId", Attr::s("alice")),
            ("clientId", Attr::s("client")),
            ("token", Attr::s("eyJ...")),
            ("referrerUrl", Attr::s("https://app.example/transfer")),
            ("stepUpStatus", Attr::s(status)),
            ("createTimestamp", Attr::s("2026-11-30T08:00:00.000Z")),
            ("lastUpdateTimestamp", Attr::s("2026-11-30T08:01:02.345Z")),
            ("ttl", Attr::n(1_796_112_000u64)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn seed_items_read_with_iso_timestamps_and_complete_at_their_last_update() {
        let done = Session::from_item(&seed_item("STEP_UP_COMPLETED")).unwrap();
        assert_eq!(done.created_at, UnixSeconds::from_secs(1_796_025_600));
        assert_eq!(done.version, 0);
        assert_eq!(
            Session::view(Some(&done), UnixSeconds::from_secs(1_796_025_700)),
            SessionView::Completed {
                at: UnixSeconds::from_secs(1_796_025_662),
                factor: None
            }
        );
        for pending in ["STEP_UP_REQUIRED", "STEP_UP_NOT_REQUIRED"] {
            let s = Session::from_item(&seed_item(pending)).unwrap();
            assert_eq!(
                Session::view(Some(&s), UnixSeconds::from_secs(1_796_025_700)),
                SessionView::Pending,
                "{pending}"
            );
        }
    }

    #[test]
    fn timestamps_are_written_as_the_seed_writes_them() {
        let item = fresh().to_item();
        assert_eq!(
            item["createTimestamp"],
            Attr::s(crate::timestamp::to_iso8601(NOW))
        );
        assert!(matches!(item["ttl"], Attr::N(_)));
        let done = fresh().after_success(Factor::Sms, NOW).to_item();
        assert_eq!(done["completedAt"], Attr::n(NOW));
    }

    #[test]
    fn success_completes_and_a_later_success_refreshes_completed_at() {
        let s = fresh().after_success(Factor::SoftwareToken, NOW.plus(10));
        assert_eq!(
            Session::view(Some(&s), NOW.plus(11)),
            SessionView::Completed {
                at: NOW.plus(10),
                factor: Some(Factor::SoftwareToken)
            }
        );
        let s2 = s.after_success(Factor::Sms, NOW.plus(100));
        assert_eq!(s2.completed_at, Some(NOW.plus(100)));
        assert_eq!(s2.version, s.version + 1);
    }

    #[test]
    fn a_session_past_its_ttl_is_absent_even_if_still_stored() {
        let s = fresh().after_success(Factor::Sms, NOW);
        assert_eq!(Session::view(Some(&s), s.ttl), SessionView::Absent);
    }

    #[test]
    fn items_round_trip_and_bad_states_are_errors() {
        let s = fresh()
            .reserve_attempt(NOW.plus(1), &SessionLimits::default())
            .unwrap();
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
