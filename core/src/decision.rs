//! The decision: one pure function, used by every enforcement point.
//!
//! Inputs are what the [`crate::engine::Engine`] gathered: the token verification result,
//! the governing rule, the session (only when a rule needs one) and `now`. The output is
//! a [`Decision`] that knows how it looks on the wire: status code, `WWW-Authenticate`
//! (RFC 6750 / RFC 9470), JSON body, headers for the upstream, and the seed's `step_up`
//! context label for API Gateway.
//!
//! ```text
//!   token missing / header malformed / token invalid ────► Unauthenticated (401)
//!   rule: none / NOT_REQUIRED ───────────────────────────► Allow (not_required)
//!   rule: DENY ──────────────────────────────────────────► Denied (403)
//!   rule: REQUIRED ─┬─ claims mode: acr ∈ acrValues, amr ∩ amrValues,
//!                   │  auth_time fresh ──────────────────────────────► Allow (complete)
//!                   └─ session mode: completed, factor ok, fresh ─────► Allow (complete)
//!                      session store unreachable ─────────────────────► Denied (403, fail closed)
//!                      otherwise ─────────────────────────────────────► StepUpRequired (401)
//! ```

use crate::clock::UnixSeconds;
use crate::policy::{Rule, StepUpState};
use crate::session::{Factor, SessionView};
use crate::token::{AccessClaims, BearerError};
use serde_json::json;

/// Header naming the step-up status for the upstream (`not_required` or `complete`).
pub const STATUS_HEADER: &str = "x-stepup-status";
/// Header naming the user for the upstream.
pub const USER_HEADER: &str = "x-stepup-user";
/// Header naming the OAuth client for the upstream.
pub const CLIENT_HEADER: &str = "x-stepup-client-id";
/// Header naming, for a request allowed only because its rule is audited, the outcome it
/// would have had (`required`, `deny` or `error`); `none` on every other allow, so that a
/// value sent by the client never reaches the upstream.
pub const AUDIT_HEADER: &str = "x-stepup-audit";
/// Headers an enforcement point must remove from client requests before adding its own.
pub const UPSTREAM_HEADERS: [&str; 4] = [STATUS_HEADER, USER_HEADER, CLIENT_HEADER, AUDIT_HEADER];

/// Every [`Decision::label`], in [`Decision::outcome_index`] order.
pub const OUTCOMES: [&str; 7] = [
    "not_required",
    "complete",
    "audit",
    "unauthenticated",
    "required",
    "deny",
    "error",
];

/// Why a request is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowStatus {
    /// No rule, or a `STEP_UP_NOT_REQUIRED` rule.
    NotRequired,
    /// A step-up rule is satisfied.
    Complete,
    /// The governing rule is audited (report-only) and would have refused the request.
    Audit(Audited),
}

/// What an audited request would have got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audited {
    /// The label of the decision it would have had: `required`, `deny` or `error`.
    pub outcome: &'static str,
    /// Its reason ([`Decision::reason`]).
    pub reason: &'static str,
}

impl AllowStatus {
    /// The value of [`STATUS_HEADER`] and of the seed's `step_up` context.
    pub fn as_str(self) -> &'static str {
        match self {
            AllowStatus::NotRequired => "not_required",
            AllowStatus::Complete => "complete",
            AllowStatus::Audit(_) => "audit",
        }
    }
}

/// Why a request is refused with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// A `STEP_UP_DENY` rule (or the quarantine rule of a malformed item).
    Policy,
    /// The path has no canonical form.
    MalformedPath,
    /// The policy index was never loaded: whether the path is privileged is unknown.
    PolicyUnavailable,
    /// The session store could not be read for a privileged path (fail closed).
    SessionUnavailable,
}

impl DenyReason {
    /// The `code` of the JSON body and a metrics label.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::Policy => "STEP_UP_DENY",
            DenyReason::MalformedPath => "MALFORMED_PATH",
            DenyReason::PolicyUnavailable => "POLICY_UNAVAILABLE",
            DenyReason::SessionUnavailable => "SESSION_UNAVAILABLE",
        }
    }

    /// Whether the refusal comes from a failure rather than from policy (the seed's
    /// `step_up: error` context).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            DenyReason::PolicyUnavailable | DenyReason::SessionUnavailable
        )
    }
}

/// Why a request is refused with 401 before any rule is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (or an empty one): `WWW-Authenticate: Bearer` with no
    /// error code (RFC 6750 §3.1).
    Missing,
    /// An `Authorization` header that is not `Bearer <token>` (a bare token, `Basic ...`,
    /// `Bearer` alone): `error="invalid_request"`.
    MalformedHeader,
    /// A bearer token that does not verify: `error="invalid_token"`.
    InvalidToken,
}

impl AuthFailure {
    /// The RFC 6750 `error` code of the challenge, if any.
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            AuthFailure::Missing => None,
            AuthFailure::MalformedHeader => Some("invalid_request"),
            AuthFailure::InvalidToken => Some("invalid_token"),
        }
    }

    /// A short snake_case label for metrics and logs.
    pub fn metric_label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::MalformedHeader => "malformed_header",
            AuthFailure::InvalidToken => "invalid_token",
        }
    }

    fn description(self) -> &'static str {
        match self {
            AuthFailure::Missing => "A valid access token is required",
            AuthFailure::MalformedHeader => {
                "The Authorization header must be the Bearer scheme followed by an access token"
            }
            AuthFailure::InvalidToken => "The access token is invalid or expired",
        }
    }
}

impl From<BearerError> for AuthFailure {
    fn from(e: BearerError) -> AuthFailure {
        match e {
            BearerError::Missing => AuthFailure::Missing,
            BearerError::Malformed => AuthFailure::MalformedHeader,
        }
    }
}

/// What a step-up challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The rule's `maxAgeSeconds`.
    pub max_age: Option<u64>,
    /// `acr` values that satisfy the rule in claims mode.
    pub acr_values: Vec<String>,
    /// `amr` values of which claims mode needs at least one (in the JSON body only: RFC
    /// 9470 has no challenge parameter for them).
    pub amr_values: Vec<String>,
    /// Factors accepted in session mode (empty: any); `None` if session mode is off.
    pub factors: Option<Vec<Factor>>,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow {
        /// why
        status: AllowStatus,
        /// the token's `username`
        user: String,
        /// the token's `client_id`
        client_id: String,
    },
    /// No token, a malformed `Authorization` header, or an invalid token.
    Unauthenticated {
        /// which of the three (it decides the `WWW-Authenticate` error code)
        reason: AuthFailure,
    },
    /// The rule needs a (fresher) step-up.
    StepUpRequired(Challenge),
    /// Refused.
    Denied(DenyReason),
}

/// What the token check found.
#[derive(Debug, Clone, Copy)]
pub enum TokenOutcome<'a> {
    /// No `Authorization` header (or an empty one).
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    MalformedHeader,
    /// A token that did not verify.
    Invalid,
    /// A verified access token.
    Valid(&'a AccessClaims),
}

/// The first stage: everything but the session.
#[derive(Debug)]
pub enum Stage<'a> {
    /// Decided without a session.
    Done(Decision),
    /// The rule may be satisfied by a session: look it up and call [`with_session`].
    NeedSession {
        /// the verified claims
        claims: &'a AccessClaims,
        /// the governing rule
        rule: &'a Rule,
    },
}

/// Decides as far as possible without the session store.
pub fn decide<'a>(token: TokenOutcome<'a>, rule: Option<&'a Rule>, now: UnixSeconds) -> Stage<'a> {
    let reason = match token {
        TokenOutcome::Missing => AuthFailure::Missing,
        TokenOutcome::MalformedHeader => AuthFailure::MalformedHeader,
        TokenOutcome::Invalid => AuthFailure::InvalidToken,
        TokenOutcome::Valid(c) => return decide_valid(c, rule, now),
    };
    Stage::Done(Decision::Unauthenticated { reason })
}

fn decide_valid<'a>(
    claims: &'a AccessClaims,
    rule: Option<&'a Rule>,
    now: UnixSeconds,
) -> Stage<'a> {
    let Some(rule) = rule else {
        return Stage::Done(allow(claims, AllowStatus::NotRequired));
    };
    match rule.state {
        StepUpState::NotRequired => Stage::Done(allow(claims, AllowStatus::NotRequired)),
        StepUpState::Deny => Stage::Done(Decision::Denied(DenyReason::Policy)),
        StepUpState::Required if claims_satisfy(rule, claims, now) => {
            Stage::Done(allow(claims, AllowStatus::Complete))
        }
        StepUpState::Required if rule.allows_session_mode() => Stage::NeedSession { claims, rule },
        StepUpState::Required => Stage::Done(Decision::StepUpRequired(challenge(rule))),
    }
}

/// Finishes a decision with the session found for the token (`Err` = the store could not
/// be read: fail closed).
pub fn with_session<E>(
    claims: &AccessClaims,
    rule: &Rule,
    session: Result<SessionView, E>,
    now: UnixSeconds,
) -> Decision {
    match session {
        Err(_) => Decision::Denied(DenyReason::SessionUnavailable),
        Ok(SessionView::Completed { at, factor }) if session_satisfies(rule, at, factor, now) => {
            allow(claims, AllowStatus::Complete)
        }
        Ok(_) => Decision::StepUpRequired(challenge(rule)),
    }
}

/// Claims mode (RFC 9470): the token's `acr` is one of the rule's `acrValues` (when it
/// names any), its `amr` list holds at least one of the rule's `amrValues` (when it names
/// any), and, with a `maxAge`, its `auth_time` is recent enough. A rule naming both lists
/// needs both; a token without `auth_time` never satisfies a `maxAge`.
pub fn claims_satisfy(rule: &Rule, claims: &AccessClaims, now: UnixSeconds) -> bool {
    if !rule.allows_claims_mode() {
        return false;
    }
    let acr_ok = rule.acr_values.is_empty()
        || claims
            .acr
            .as_deref()
            .is_some_and(|acr| rule.acr_values.iter().any(|v| v == acr));
    let amr_ok = rule.amr_values.is_empty()
        || claims
            .amr
            .iter()
            .any(|method| rule.amr_values.contains(method));
    acr_ok && amr_ok && fresh(rule.max_age, claims.auth_time, now)
}

/// Session mode: completed with an accepted factor, recently enough. A session completed
/// without a recorded factor (written by the seed) counts only where any factor does.
pub fn session_satisfies(
    rule: &Rule,
    completed_at: UnixSeconds,
    factor: Option<Factor>,
    now: UnixSeconds,
) -> bool {
    let factor_ok = rule.factors.is_empty() || factor.is_some_and(|f| rule.factors.contains(&f));
    factor_ok && fresh(rule.max_age, Some(completed_at), now)
}

/// `at` is within `max_age` of `now`. A time in the future (clock skew between writers)
/// counts as now.
fn fresh(max_age: Option<u64>, at: Option<UnixSeconds>, now: UnixSeconds) -> bool {
    match (max_age, at) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(max), Some(at)) => now.seconds_since(at) <= max,
    }
}

/// The decision under an audited (report-only) rule: a challenge or a denial becomes an
/// allow marked [`AllowStatus::Audit`] with the outcome it would have had; any other
/// decision stays as it is. A token that does not verify is never audited away: that
/// check is not a rule's.
pub fn audit(decision: Decision, claims: &AccessClaims) -> Decision {
    match decision {
        Decision::StepUpRequired(_) | Decision::Denied(_) => allow(
            claims,
            AllowStatus::Audit(Audited {
                outcome: decision.label(),
                reason: decision.reason(),
            }),
        ),
        other => other,
    }
}

fn allow(claims: &AccessClaims, status: AllowStatus) -> Decision {
    Decision::Allow {
        status,
        user: claims.username.clone(),
        client_id: claims.client_id.clone(),
    }
}

fn challenge(rule: &Rule) -> Challenge {
    Challenge {
        max_age: rule.max_age,
        acr_values: rule.acr_values.clone(),
        amr_values: rule.amr_values.clone(),
        factors: rule.allows_session_mode().then(|| rule.factors.clone()),
    }
}

/// Escapes a value for a quoted-string auth-param.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

impl Decision {
    /// The HTTP status the client gets.
    pub fn status_code(&self) -> u16 {
        match self {
            Decision::Allow { .. } => 200,
            Decision::Unauthenticated { .. } | Decision::StepUpRequired(_) => 401,
            Decision::Denied(_) => 403,
        }
    }

    /// Whether the request goes through.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The seed's `step_up` context value: `not_required | complete | required | deny |
    /// error`, and `unauthenticated` for a missing token, a malformed `Authorization`
    /// header or an invalid token ([`AuthFailure::metric_label`] tells them apart).
    pub fn label(&self) -> &'static str {
        OUTCOMES[self.outcome_index()]
    }

    /// The position of [`Decision::label`] in [`OUTCOMES`].
    pub fn outcome_index(&self) -> usize {
        match self {
            Decision::Allow {
                status: AllowStatus::NotRequired,
                ..
            } => 0,
            Decision::Allow {
                status: AllowStatus::Complete,
                ..
            } => 1,
            Decision::Allow {
                status: AllowStatus::Audit(_),
                ..
            } => 2,
            Decision::Unauthenticated { .. } => 3,
            Decision::StepUpRequired(_) => 4,
            Decision::Denied(r) if r.is_error() => 6,
            Decision::Denied(_) => 5,
        }
    }

    /// Why, in one word: the allow status, the 401's [`AuthFailure::metric_label`],
    /// `step_up_required`, or the 403's [`DenyReason::code`].
    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Allow { status, .. } => status.as_str(),
            Decision::Unauthenticated { reason } => reason.metric_label(),
            Decision::StepUpRequired(_) => "step_up_required",
            Decision::Denied(r) => r.code(),
        }
    }

    /// For a request allowed only because its rule is audited: what it would have got.
    pub fn audited(&self) -> Option<Audited> {
        match self {
            Decision::Allow {
                status: AllowStatus::Audit(audited),
                ..
            } => Some(*audited),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` header of a 401.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Decision::Unauthenticated { reason } => Some(match reason.error_code() {
                None => r#"Bearer realm="stepup""#.to_owned(),
                Some(error) => format!(
                    r#"Bearer realm="stepup", error="{error}", error_description="{}""#,
                    reason.description()
                ),
            }),
            Decision::StepUpRequired(c) => {
                let mut v = String::from(
                    r#"Bearer realm="stepup", error="insufficient_user_authentication", error_description="A step-up authentication is required for this resource""#,
                );
                if let Some(max_age) = c.max_age {
                    v.push_str(&format!(", max_age={}", quoted(&max_age.to_string())));
                }
                if !c.acr_values.is_empty() {
                    v.push_str(&format!(", acr_values={}", quoted(&c.acr_values.join(" "))));
                }
                Some(v)
            }
            Decision::Allow { .. } | Decision::Denied(_) => None,
        }
    }

    /// The JSON body of a refusal.
    pub fn body(&self) -> Option<serde_json::Value> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Unauthenticated { reason } => {
                let mut body = json!({
                    "code": "UNAUTHENTICATED",
                    "message": reason.description(),
                });
                if let Some(error) = reason.error_code() {
                    body["error"] = json!(error);
                }
                Some(body)
            }
            Decision::StepUpRequired(c) => {
                let mut body = json!({
                    "code": "STEP_UP_REQUIRED",
                    "error": "insufficient_user_authentication",
                    "message": "A step-up authentication is required for this resource",
                    "initiateAuth": "/initiate-auth",
                    "respondToChallenge": "/respond-to-challenge",
                });
                if let Some(max_age) = c.max_age {
                    body["maxAge"] = json!(max_age);
                }
                if !c.acr_values.is_empty() {
                    body["acrValues"] = json!(c.acr_values);
                }
                if !c.amr_values.is_empty() {
                    body["amrValues"] = json!(c.amr_values);
                }
                if let Some(factors) = &c.factors {
                    let names: Vec<&str> = factors.iter().map(|f| f.as_str()).collect();
                    body["factors"] = json!(names);
                }
                Some(body)
            }
            Decision::Denied(reason) => Some(json!({
                "code": reason.code(),
                "message": match reason {
                    DenyReason::Policy => "Access to this resource is denied",
                    DenyReason::MalformedPath => "The request path is malformed",
                    DenyReason::PolicyUnavailable | DenyReason::SessionUnavailable =>
                        "Step-up status cannot be checked right now; try again later",
                },
            })),
        }
    }

    /// Headers to add to the request for the upstream when allowed. Control characters of
    /// the token's values are dropped, so that every value is a valid header value (bytes
    /// over 0x7f pass as they are): an enforcement point never has to leave a header out,
    /// which in Envoy's HTTP mode would let a value the client sent reach the upstream.
    pub fn upstream_headers(&self) -> Vec<(&'static str, String)> {
        let clean = |v: &str| v.chars().filter(|c| !c.is_control()).collect::<String>();
        match self {
            Decision::Allow {
                status,
                user,
                client_id,
            } => vec![
                (STATUS_HEADER, status.as_str().to_owned()),
                (USER_HEADER, clean(user)),
                (CLIENT_HEADER, clean(client_id)),
                (
                    AUDIT_HEADER,
                    match status {
                        AllowStatus::Audit(a) => a.outcome,
                        _ => "none",
                    }
                    .to_owned(),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PathPattern;

    const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);

    fn claims() -> AccessClaims {
        serde_json::from_value(json!({
            "sub": "s", "iss": "https://issuer", "client_id": "c", "token_use": "access",
            "username": "alice", "jti": "j", "exp": NOW.plus(3600), "auth_time": NOW.minus(100),
        }))
        .unwrap()
    }

    fn required(max_age: Option<u64>) -> Rule {
        let mut r = Rule::new("/t", PathPattern::Exact("/t".into()), StepUpState::Required);
        r.max_age = max_age;
        r
    }

    fn done(stage: Stage<'_>) -> Decision {
        match stage {
            Stage::Done(d) => d,
            Stage::NeedSession { .. } => panic!("unexpected NeedSession"),
        }
    }

    #[test]
    fn no_token_is_unauthenticated_whatever_the_rule() {
        let d = done(decide(TokenOutcome::Missing, None, NOW));
        assert_eq!(d.status_code(), 401);
        assert_eq!(d.www_authenticate().unwrap(), r#"Bearer realm="stepup""#);
        let d = done(decide(TokenOutcome::Invalid, Some(&required(None)), NOW));
        assert!(
            d.www_authenticate()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
    }

    #[test]
    fn each_unauthenticated_reason_has_its_own_challenge_and_body() {
        let cases = [
            (TokenOutcome::Missing, r#"Bearer realm="stepup""#, None),
            (
                TokenOutcome::MalformedHeader,
                r#"Bearer realm="stepup", error="invalid_request", error_description="The Authorization header must be the Bearer scheme followed by an access token""#,
                Some("invalid_request"),
            ),
            (
                TokenOutcome::Invalid,
                r#"Bearer realm="stepup", error="invalid_token", error_description="The access token is invalid or expired""#,
                Some("invalid_token"),
            ),
        ];
        for (outcome, www, error) in cases {
            let d = done(decide(outcome, Some(&required(None)), NOW));
            assert_eq!((d.status_code(), d.label()), (401, "unauthenticated"));
            assert_eq!(d.www_authenticate().as_deref(), Some(www));
            let body = d.body().unwrap();
            assert_eq!(body["code"], "UNAUTHENTICATED");
            assert_eq!(body.get("error").and_then(|e| e.as_str()), error);
        }
    }

    #[test]
    fn bearer_errors_map_to_their_reasons_with_distinct_labels() {
        assert_eq!(
            AuthFailure::from(BearerError::Missing),
            AuthFailure::Missing
        );
        assert_eq!(
            AuthFailure::from(BearerError::Malformed),
            AuthFailure::MalformedHeader
        );
        let labels = [
            AuthFailure::Missing,
            AuthFailure::MalformedHeader,
            AuthFailure::InvalidToken,
        ]
        .map(AuthFailure::metric_label);
        assert_eq!(labels, ["missing", "malformed_header", "invalid_token"]);
    }

    #[test]
    fn no_rule_and_not_required_allow_with_user_headers() {
        let c = claims();
        let d = done(decide(TokenOutcome::Valid(&c), None, NOW));
        assert_eq!(d.label(), "not_required");
        assert!(
            d.upstream_headers()
                .contains(&(USER_HEADER, "alice".to_owned()))
        );
        let r = Rule::new(
            "/i",
            PathPattern::Exact("/i".into()),
            StepUpState::NotRequired,
        );
        assert!(done(decide(TokenOutcome::Valid(&c), Some(&r), NOW)).is_allowed());
    }

    #[test]
    fn deny_rule_is_403() {
        let c = claims();
        let r = Rule::new("/d", PathPattern::Exact("/d".into()), StepUpState::Deny);
        let d = done(decide(TokenOutcome::Valid(&c), Some(&r), NOW));
        assert_eq!((d.status_code(), d.label()), (403, "deny"));
    }

    #[test]
    fn a_fresh_completed_session_allows_and_a_stale_one_challenges_with_max_age() {
        let c = claims();
        let r = required(Some(300));
        let Stage::NeedSession { claims, rule } = decide(TokenOutcome::Valid(&c), Some(&r), NOW)
        else {
            panic!("expected NeedSession")
        };
        let fresh = SessionView::Completed {
            at: NOW.minus(300),
            factor: Some(Factor::Sms),
        };
        assert!(with_session::<()>(claims, rule, Ok(fresh), NOW).is_allowed());
        let stale = SessionView::Completed {
            at: NOW.minus(301),
            factor: Some(Factor::Sms),
        };
        let d = with_session::<()>(claims, rule, Ok(stale), NOW);
        assert_eq!(d.status_code(), 401);
        let h = d.www_authenticate().unwrap();
        assert!(
            h.starts_with(r#"Bearer realm="stepup", error="insufficient_user_authentication""#)
        );
        assert!(h.contains(r#"max_age="300""#), "{h}");
        assert_eq!(d.body().unwrap()["initiateAuth"], "/initiate-auth");
        assert_eq!(d.body().unwrap()["maxAge"], 300);
    }

    #[test]
    fn pending_or_absent_sessions_challenge_and_store_errors_fail_closed() {
        let c = claims();
        let r = required(None);
        for view in [SessionView::Absent, SessionView::Pending] {
            assert_eq!(
                with_session::<()>(&c, &r, Ok(view), NOW).label(),
                "required"
            );
        }
        let d = with_session(&c, &r, Err("down"), NOW);
        assert_eq!(d, Decision::Denied(DenyReason::SessionUnavailable));
        assert_eq!((d.status_code(), d.label()), (403, "error"));
    }

    #[test]
    fn a_rule_naming_factors_refuses_sessions_completed_with_another() {
        let c = claims();
        let mut r = required(None);
        r.factors = vec![Factor::SoftwareToken];
        let sms = SessionView::Completed {
            at: NOW,
            factor: Some(Factor::Sms),
        };
        assert_eq!(with_session::<()>(&c, &r, Ok(sms), NOW).label(), "required");
        let legacy = SessionView::Completed {
            at: NOW,
            factor: None,
        };
        assert_eq!(
            with_session::<()>(&c, &r, Ok(legacy), NOW).label(),
            "required"
        );
        let totp = SessionView::Completed {
            at: NOW,
            factor: Some(Factor::SoftwareToken),
        };
        assert!(with_session::<()>(&c, &r, Ok(totp), NOW).is_allowed());
    }

    #[test]
    fn claims_mode_needs_a_listed_acr_and_a_fresh_auth_time() {
        let mut c = claims();
        let mut r = required(Some(600));
        r.acr_values = vec!["urn:cognito:loa:3".into()];
        // acr-only rule: no session mode, challenge carries acr_values.
        let d = done(decide(TokenOutcome::Valid(&c), Some(&r), NOW));
        let h = d.www_authenticate().unwrap();
        assert!(h.contains(r#"acr_values="urn:cognito:loa:3""#), "{h}");
        assert_eq!(d.body().unwrap().get("factors"), None);
        c.acr = Some("urn:cognito:loa:3".into());
        assert!(done(decide(TokenOutcome::Valid(&c), Some(&r), NOW)).is_allowed());
        c.auth_time = Some(NOW.minus(601));
        assert!(!done(decide(TokenOutcome::Valid(&c), Some(&r), NOW)).is_allowed());
        c.auth_time = None;
        assert!(!done(decide(TokenOutcome::Valid(&c), Some(&r), NOW)).is_allowed());
    }

    #[test]
    fn a_rule_with_acr_values_and_factors_accepts_either_mode() {
        let c = claims();
        let mut r = required(None);
        r.acr_values = vec!["loa3".into()];
        r.factors = vec![Factor::Sms];
        assert!(matches!(
            decide(TokenOutcome::Valid(&c), Some(&r), NOW),
            Stage::NeedSession { .. }
        ));
    }

    fn claims_rule(acr: &[&str], amr: &[&str], max_age: Option<u64>) -> Rule {
        let mut r = required(max_age);
        r.acr_values = acr.iter().map(|v| (*v).to_owned()).collect();
        r.amr_values = amr.iter().map(|v| (*v).to_owned()).collect();
        r
    }

    fn token_with(acr: Option<&str>, amr: &[&str], auth_time: Option<UnixSeconds>) -> AccessClaims {
        let mut c = claims();
        c.acr = acr.map(str::to_owned);
        c.amr = amr.iter().map(|v| (*v).to_owned()).collect();
        c.auth_time = auth_time;
        c
    }

    #[test]
    fn an_amr_only_rule_needs_one_of_its_methods_and_is_claims_mode_only() {
        let r = claims_rule(&[], &["otp", "hwk"], None);
        assert!(r.allows_claims_mode() && !r.allows_session_mode());
        let with_otp = token_with(None, &["pwd", "otp", "mfa"], Some(NOW));
        assert!(done(decide(TokenOutcome::Valid(&with_otp), Some(&r), NOW)).is_allowed());
        let pwd_only = token_with(None, &["pwd"], Some(NOW));
        let d = done(decide(TokenOutcome::Valid(&pwd_only), Some(&r), NOW));
        assert_eq!(d.label(), "required");
        // RFC 9470 has no challenge parameter for amr: it is in the body only.
        let h = d.www_authenticate().unwrap();
        assert!(!h.contains("amr") && !h.contains("acr_values"), "{h}");
        assert_eq!(d.body().unwrap()["amrValues"], json!(["otp", "hwk"]));
    }

    #[test]
    fn claims_mode_table() {
        let loa3 = "urn:cognito:loa:3";
        // (rule acr, rule amr, rule maxAge, token acr, token amr, token auth_time, allowed)
        type Case<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            Option<u64>,
            Option<&'a str>,
            &'a [&'a str],
            Option<UnixSeconds>,
            bool,
        );
        let cases: &[Case<'_>] = &[
            (&[loa3], &[], None, Some(loa3), &[], None, true),
            (
                &[loa3],
                &[],
                None,
                Some("urn:cognito:loa:2"),
                &[],
                None,
                false,
            ),
            (&[loa3], &[], None, None, &["mfa"], None, false),
            (&[], &["mfa"], None, None, &["pwd", "mfa"], None, true),
            (&[], &["mfa"], None, Some(loa3), &["pwd"], None, false),
            (&[loa3], &["mfa"], None, Some(loa3), &["mfa"], None, true),
            (&[loa3], &["mfa"], None, Some(loa3), &["pwd"], None, false),
            (&[loa3], &["mfa"], None, Some("loa2"), &["mfa"], None, false),
            (
                &[loa3],
                &[],
                Some(300),
                Some(loa3),
                &[],
                Some(NOW.minus(300)),
                true,
            ),
            (
                &[loa3],
                &[],
                Some(300),
                Some(loa3),
                &[],
                Some(NOW.minus(301)),
                false,
            ),
            (&[loa3], &[], Some(300), Some(loa3), &[], None, false),
            (
                &[loa3],
                &[],
                Some(300),
                Some(loa3),
                &[],
                Some(NOW.plus(30)),
                true,
            ),
            (
                &[],
                &["otp"],
                Some(60),
                None,
                &["otp"],
                Some(NOW.minus(61)),
                false,
            ),
            // Values are compared exactly: no case folding, no prefix match.
            (
                &[loa3],
                &[],
                None,
                Some("URN:COGNITO:LOA:3"),
                &[],
                None,
                false,
            ),
            (&[], &["mfa"], None, None, &["mfa2"], None, false),
        ];
        for (i, &(acr, amr, max_age, t_acr, t_amr, t_auth, allowed)) in cases.iter().enumerate() {
            let r = claims_rule(acr, amr, max_age);
            let c = token_with(t_acr, t_amr, t_auth);
            let d = done(decide(TokenOutcome::Valid(&c), Some(&r), NOW));
            assert_eq!(d.is_allowed(), allowed, "case {i}: {:?}", cases[i]);
            assert_eq!(claims_satisfy(&r, &c, NOW), allowed, "case {i}");
        }
    }

    proptest::proptest! {
        /// Whatever the token carries, claims mode allows exactly when every list the rule
        /// names is met and `auth_time` is within `maxAge`; a rule naming neither list
        /// never allows by claims.
        #[test]
        fn claims_mode_allows_exactly_when_every_named_condition_holds(
            rule_acr in proptest::collection::vec("[ab]", 0..3),
            rule_amr in proptest::collection::vec("[xyz]", 0..3),
            max_age in proptest::option::of(0u64..1000),
            token_acr in proptest::option::of("[abc]"),
            token_amr in proptest::collection::vec("[wxyz]", 0..4),
            age in proptest::option::of(0u64..2000),
        ) {
            let mut r = required(max_age);
            r.acr_values = rule_acr.clone();
            r.amr_values = rule_amr.clone();
            let mut c = claims();
            c.acr = token_acr.clone();
            c.amr = token_amr.clone();
            c.auth_time = age.map(|a| NOW.minus(a));
            let named = !rule_acr.is_empty() || !rule_amr.is_empty();
            let acr_ok = rule_acr.is_empty() || token_acr.is_some_and(|a| rule_acr.contains(&a));
            let amr_ok = rule_amr.is_empty() || token_amr.iter().any(|m| rule_amr.contains(m));
            let fresh_ok = match (max_age, age) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(max), Some(a)) => a <= max,
            };
            proptest::prop_assert_eq!(
                claims_satisfy(&r, &c, NOW),
                named && acr_ok && amr_ok && fresh_ok
            );
        }
    }

    #[test]
    fn upstream_header_values_lose_control_characters_only() {
        let mut c = claims();
        c.username = "jos\u{e9}\r\nx-evil: 1".into();
        let d = done(decide(TokenOutcome::Valid(&c), None, NOW));
        assert!(
            d.upstream_headers()
                .contains(&(USER_HEADER, "jos\u{e9}x-evil: 1".to_owned()))
        );
    }

    #[test]
    fn quoted_values_cannot_break_out_of_the_header() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("a\r\nb"), r#""ab""#);
    }
}
