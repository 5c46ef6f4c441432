//! The step-up API as an axum [`Router`]: `POST /initiate-auth` and
//! `POST /respond-to-challenge`, wire-compatible with the seed's web app, plus its CORS
//! preflight. The sidecar serves it; the Lambda binary runs the same router.
//!
//! ```text
//!  /initiate-auth         token ─► GetUser ─► factor? ─┬─ TOTP        ─► SOFTWARE_TOKEN_STEP_UP
//!                                   session created    ├─ SMS ─► 1 per interval ─► send ─► SMS_STEP_UP
//!                                   (kept if live)     └─ unknown     ─► MAYBE_SOFTWARE_TOKEN_STEP_UP
//!  /respond-to-challenge  token ─► body ─► session (created if absent) ─► locked? 429
//!                           ─► IdP verifies ─┬─ wrong/expired ─► failedAttempts+1 ─► 401 (429 at the limit)
//!                                            └─ right ─► replay marker new? ─► COMPLETED, 200 (else 401)
//! ```
//!
//! Session writes are conditional on the version read and retried on a conflict, so
//! concurrent answers neither lose a failure nor double-complete. The clock is read once
//! per request, in the handler; everything below takes `now`.
//!
//! Clients get fixed bodies only; what went wrong in detail goes to the log, which never
//! holds a token or a code. Every answer is counted in
//! `stepup_api_requests_total{endpoint, outcome}`.

use super::idp::{IdentityProvider, IdpError, MfaSetting, UserInfo};
use crate::clock::{self, UnixSeconds};
use crate::session::{Factor, Session, SessionLimits, replay_key};
use crate::store::{SessionStore, StoreError};
use crate::token::{AccessClaims, TokenVerifier, extract_bearer};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The path of the initiate call.
pub const INITIATE_AUTH_PATH: &str = "/initiate-auth";
/// The path of the respond call.
pub const RESPOND_TO_CHALLENGE_PATH: &str = "/respond-to-challenge";
/// The largest `/respond-to-challenge` body accepted (the seed's is about 70 bytes).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// `Access-Control-Allow-Headers` of the preflight, as the seed's API Gateway answers it.
pub const CORS_ALLOW_HEADERS: &str =
    "Content-Type,Authorization,X-Amz-Date,X-Api-Key,X-Amz-Security-Token";
/// `Access-Control-Allow-Methods` of the preflight.
pub const CORS_ALLOW_METHODS: &str = "OPTIONS,POST";

/// Conditional session writes retried after a conflict (after the first attempt).
const WRITE_RETRIES: usize = 3;

/// What the step-up API works with. Cheap to clone (shared parts are behind `Arc`s).
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Verifies the caller's access token.
    pub verifier: Arc<TokenVerifier>,
    /// The session table (sessions, replay markers, SMS rate-limit markers).
    pub sessions: Arc<dyn SessionStore>,
    /// Cognito (or a stand-in).
    pub idp: Arc<dyn IdentityProvider>,
    /// Lockout and TTL limits of sessions.
    pub limits: SessionLimits,
    /// Key sessions by `origin_jti` (a step-up survives a token refresh) instead of `jti`.
    pub use_origin_jti: bool,
    /// At most one SMS per user in this many seconds.
    pub sms_min_interval_secs: u64,
    /// `Access-Control-Allow-Origin` on every answer.
    pub cors_allow_origin: String,
}

impl ApiState {
    /// The default of [`ApiState::sms_min_interval_secs`].
    pub const DEFAULT_SMS_MIN_INTERVAL_SECS: u64 = 30;
    /// The default of [`ApiState::cors_allow_origin`] (the seed's).
    pub const DEFAULT_CORS_ALLOW_ORIGIN: &'static str = "*";

    /// A state with the default limits, sessions keyed by `jti`, one SMS per 30 s and
    /// `Access-Control-Allow-Origin: *`.
    pub fn new(
        verifier: Arc<TokenVerifier>,
        sessions: Arc<dyn SessionStore>,
        idp: Arc<dyn IdentityProvider>,
    ) -> Self {
        ApiState {
            verifier,
            sessions,
            idp,
            limits: SessionLimits::default(),
            use_origin_jti: false,
            sms_min_interval_secs: Self::DEFAULT_SMS_MIN_INTERVAL_SECS,
            cors_allow_origin: Self::DEFAULT_CORS_ALLOW_ORIGIN.to_owned(),
        }
    }

    /// Sets the session limits.
    pub fn with_limits(mut self, limits: SessionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keys sessions by `origin_jti` when `on`.
    pub fn with_origin_jti(mut self, on: bool) -> Self {
        self.use_origin_jti = on;
        self
    }

    /// Sets the least time between two SMS to one user.
    pub fn with_sms_min_interval_secs(mut self, secs: u64) -> Self {
        self.sms_min_interval_secs = secs;
        self
    }

    /// Sets `Access-Control-Allow-Origin`.
    pub fn with_cors_allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_allow_origin = origin.into();
        self
    }
}

/// The challenge kinds of the seed's wire format (`code` of `/initiate-auth`,
/// `step-up-type` of `/respond-to-challenge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpType {
    /// `SOFTWARE_TOKEN_STEP_UP`: the user prefers a TOTP app.
    SoftwareToken,
    /// `SMS_STEP_UP`: a code was sent by SMS.
    Sms,
    /// `MAYBE_SOFTWARE_TOKEN_STEP_UP`: no preference known; the user may have a TOTP app.
    MaybeSoftwareToken,
}

impl StepUpType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StepUpType::SoftwareToken => "SOFTWARE_TOKEN_STEP_UP",
            StepUpType::Sms => "SMS_STEP_UP",
            StepUpType::MaybeSoftwareToken => "MAYBE_SOFTWARE_TOKEN_STEP_UP",
        }
    }

    /// Parses the wire spelling (exactly).
    pub fn parse(s: &str) -> Option<StepUpType> {
        match s {
            "SOFTWARE_TOKEN_STEP_UP" => Some(StepUpType::SoftwareToken),
            "SMS_STEP_UP" => Some(StepUpType::Sms),
            "MAYBE_SOFTWARE_TOKEN_STEP_UP" => Some(StepUpType::MaybeSoftwareToken),
            _ => None,
        }
    }

    /// The factor an answer of this kind is verified with.
    pub fn factor(self) -> Factor {
        match self {
            StepUpType::Sms => Factor::Sms,
            StepUpType::SoftwareToken | StepUpType::MaybeSoftwareToken => Factor::SoftwareToken,
        }
    }

    /// The challenge for `user`, as the seed chooses it: a preferred software token; SMS
    /// when preferred or the only factor set up; otherwise "maybe a software token".
    ///
    /// Unlike the seed, SMS is chosen only for a *verified* phone number: a code sent to
    /// a number that whoever holds the token just put there would prove nothing.
    pub fn choose(user: &UserInfo) -> StepUpType {
        let sms_usable = user.has_phone_number && user.phone_number_verified;
        let sms_only = user.mfa_settings.contains(&MfaSetting::Sms)
            && !user.mfa_settings.contains(&MfaSetting::SoftwareToken);
        match user.preferred_mfa {
            Some(MfaSetting::SoftwareToken) => StepUpType::SoftwareToken,
            Some(MfaSetting::Sms) if sms_usable => StepUpType::Sms,
            None if sms_only && sms_usable => StepUpType::Sms,
            _ => StepUpType::MaybeSoftwareToken,
        }
    }
}

/// True for a code Cognito could have issued: 6 to 8 ASCII digits.
fn is_valid_code(code: &str) -> bool {
    (6..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}

/// The `/respond-to-challenge` body. Not `Debug`: it holds a code.
#[derive(Deserialize)]
struct ChallengeAnswer {
    #[serde(rename = "step-up-type")]
    step_up_type: String,
    #[serde(rename = "challenge-response")]
    challenge_response: String,
}

/// A failed request: the status and a fixed body for the client, a label for the metric,
/// and (for server-side failures) a detail for the log only.
#[derive(Debug)]
pub enum ApiError {
    /// 401 `{"code":"UNAUTHENTICATED"}`: no token, an invalid one, or one Cognito refuses.
    Unauthenticated {
        /// metric label
        reason: &'static str,
        /// a token was sent (`WWW-Authenticate: Bearer error="invalid_token"`)
        token_sent: bool,
    },
    /// 400 `{"name":"Status","details":"Bad Request"}`.
    BadRequest(&'static str),
    /// 413: the body is over [`MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// 401 `{"name":"Status","details":"Challenge Failed - Code Mismatch or Expired Code"}`.
    ChallengeFailed(&'static str),
    /// 429 `{"code":"TOO_MANY_REQUESTS"}`, with `Retry-After` when known.
    TooManyRequests {
        /// metric label
        reason: &'static str,
        /// seconds
        retry_after: Option<u64>,
    },
    /// 503 `{"code":"UNAVAILABLE"}`: the session store or the identity provider failed.
    Unavailable {
        /// metric label
        reason: &'static str,
        /// for the log
        detail: String,
    },
}

impl ApiError {
    /// The `outcome` label of `stepup_api_requests_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { reason, .. } => reason,
            ApiError::BadRequest(reason) => reason,
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::ChallengeFailed(reason) => reason,
            ApiError::TooManyRequests { reason, .. } => reason,
            ApiError::Unavailable { reason, .. } => reason,
        }
    }

    fn unauthenticated(reason: &'static str, token_sent: bool) -> ApiError {
        ApiError::Unauthenticated { reason, token_sent }
    }

    fn too_many(reason: &'static str, retry_after: Option<u64>) -> ApiError {
        ApiError::TooManyRequests {
            reason,
            retry_after,
        }
    }

    /// An identity-provider failure outside of checking a code.
    fn from_idp(e: IdpError) -> ApiError {
        match e {
            IdpError::NotAuthorized => ApiError::unauthenticated("idp_not_authorized", true),
            IdpError::LimitExceeded => ApiError::too_many("idp_limit_exceeded", None),
            IdpError::InvalidParameter => ApiError::BadRequest("idp_invalid_parameter"),
            IdpError::CodeMismatch | IdpError::ExpiredCode => {
                ApiError::ChallengeFailed(e.metric_label())
            }
            IdpError::Unavailable(detail) => ApiError::Unavailable {
                reason: "idp_unavailable",
                detail,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let reason = match e {
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::Throttled => "store_throttled",
            StoreError::Conflict => "store_conflict",
            StoreError::Malformed { .. } => "store_malformed",
        };
        ApiError::Unavailable {
            reason,
            detail: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status_body = |status: StatusCode, details: &str| {
            (
                status,
                axum::Json(json!({"name": "Status", "details": details})),
            )
                .into_response()
        };
        match self {
            ApiError::Unauthenticated { token_sent, .. } => {
                let challenge = if token_sent {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                (
                    StatusCode::UNAUTHORIZED,
                    [(WWW_AUTHENTICATE, challenge)],
                    axum::Json(json!({"code": "UNAUTHENTICATED"})),
                )
                    .into_response()
            }
            ApiError::BadRequest(_) => status_body(StatusCode::BAD_REQUEST, "Bad Request"),
            ApiError::PayloadTooLarge => {
                status_body(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
            }
            ApiError::ChallengeFailed(_) => status_body(
                StatusCode::UNAUTHORIZED,
                "Challenge Failed - Code Mismatch or Expired Code",
            ),
            ApiError::TooManyRequests { retry_after, .. } => {
                // `name`/`details` too, so that the seed's web app has a text to show.
                let body = axum::Json(json!({
                    "code": "TOO_MANY_REQUESTS",
                    "name": "Status",
                    "details": "Too Many Requests",
                }));
                let mut res = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
                if let Some(secs) = retry_after {
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
                }
                res
            }
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "code": "UNAVAILABLE",
                    "name": "Status",
                    "details": "Service Unavailable",
                })),
            )
                .into_response(),
        }
    }
}

/// A successful answer and its metric label.
struct Done {
    outcome: &'static str,
    response: Response,
}

/// The step-up API router (state applied). Mount it at the root or nest it.
pub fn router(state: ApiState) -> Router {
    let origin = match HeaderValue::from_str(&state.cors_allow_origin) {
        Ok(v) => Some(v),
        Err(_) => {
            // Fail closed: without the header browsers refuse the answers; never widen to `*`.
            tracing::error!(
                origin = %state.cors_allow_origin.escape_debug(),
                "cors_allow_origin is not a valid header value; no Access-Control-Allow-Origin will be sent"
            );
            None
        }
    };
    let state = Arc::new(state);
    Router::new()
        .route(
            INITIATE_AUTH_PATH,
            post(initiate_auth_handler).options(preflight),
        )
        .route(
            RESPOND_TO_CHALLENGE_PATH,
            post(respond_to_challenge_handler)
                .options(preflight)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
        .layer(axum::middleware::map_response_with_state(
            origin,
            allow_origin,
        ))
}

/// Adds `Access-Control-Allow-Origin` to every answer.
async fn allow_origin(State(origin): State<Option<HeaderValue>>, mut res: Response) -> Response {
    if let Some(origin) = origin {
        res.headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    res
}

/// The CORS preflight, answered as the seed's API Gateway mock integration does.
async fn preflight() -> Response {
    (
        StatusCode::OK,
        [
            (ACCESS_CONTROL_ALLOW_HEADERS, CORS_ALLOW_HEADERS),
            (ACCESS_CONTROL_ALLOW_METHODS, CORS_ALLOW_METHODS),
        ],
    )
        .into_response()
}

async fn initiate_auth_handler(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let now = clock::now();
    finish("initiate_auth", initiate_auth(&state, &headers, now).await)
}

async fn respond_to_challenge_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let now = clock::now();
    finish(
        "respond_to_challenge",
        respond_to_challenge(&state, &headers, body, now).await,
    )
}

/// Counts the answer and logs failures (never a token or a code).
fn finish(endpoint: &'static str, result: Result<Done, ApiError>) -> Response {
    let (outcome, response) = match result {
        Ok(done) => (done.outcome, done.response),
        Err(e) => {
            let outcome = e.metric_label();
            match &e {
                ApiError::Unavailable { detail, .. } => {
                    tracing::warn!(endpoint, outcome, detail = %detail, "step-up API request failed");
                }
                _ => tracing::info!(endpoint, outcome, "step-up API request refused"),
            }
            (outcome, e.into_response())
        }
    };
    metrics::counter!("stepup_api_requests_total", "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
    response
}

/// The bearer token of the request and its verified claims.
async fn authenticate<'h>(
    state: &ApiState,
    headers: &'h HeaderMap,
    now: UnixSeconds,
) -> Result<(&'h str, AccessClaims), ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(extract_bearer)
        .ok_or(ApiError::unauthenticated("no_token", false))?;
    let claims = state
        .verifier
        .verify(token, now)
        .await
        .map_err(|e| ApiError::unauthenticated(e.metric_label(), true))?;
    Ok((token, claims))
}

/// The live session of the token, created (`STEP_UP_REQUIRED`) when there is none.
async fn load_or_create(
    state: &ApiState,
    claims: &AccessClaims,
    now: UnixSeconds,
) -> Result<Session, ApiError> {
    let key = claims.session_key(state.use_origin_jti);
    if let Some(session) = state.sessions.get(key, now).await? {
        return Ok(session);
    }
    let fresh = Session::initiate(
        key,
        &claims.username,
        &claims.client_id,
        claims.exp,
        now,
        &state.limits,
    );
    match state.sessions.put(&fresh, None, now).await {
        Ok(()) => Ok(fresh),
        // Another request created it in between: use theirs.
        Err(StoreError::Conflict) => {
            state
                .sessions
                .get(key, now)
                .await?
                .ok_or_else(|| ApiError::Unavailable {
                    reason: "store_conflict",
                    detail: "session create conflicted but no live session was found".to_owned(),
                })
        }
        Err(e) => Err(e.into()),
    }
}

/// 429 while the session is locked.
fn refuse_if_locked(session: &Session, now: UnixSeconds) -> Result<(), ApiError> {
    session.check_attempt_allowed(now).map_err(|refused| {
        let crate::session::AttemptRefused::Locked { until } = refused;
        ApiError::too_many("locked", Some(until.saturating_sub(now)))
    })
}

/// Writes `change(current)` conditionally on `current`'s version; on a conflict reads the
/// session again and retries, up to [`WRITE_RETRIES`] times.
async fn update_session(
    state: &ApiState,
    claims: &AccessClaims,
    mut current: Session,
    now: UnixSeconds,
    change: impl Fn(&Session) -> Result<Session, ApiError>,
) -> Result<Session, ApiError> {
    for _ in 0..=WRITE_RETRIES {
        let next = change(&current)?;
        match state.sessions.put(&next, Some(current.version), now).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict) => current = load_or_create(state, claims, now).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

async fn initiate_auth(
    state: &ApiState,
    headers: &HeaderMap,
    now: UnixSeconds,
) -> Result<Done, ApiError> {
    let (token, claims) = authenticate(state, headers, now).await?;
    let user = state
        .idp
        .get_user(token)
        .await
        .map_err(ApiError::from_idp)?;
    let session = load_or_create(state, &claims, now).await?;
    refuse_if_locked(&session, now)?;
    let step_up = StepUpType::choose(&user);
    if step_up == StepUpType::Sms {
        let interval = state.sms_min_interval_secs;
        let marker = format!("sms#{}", claims.username);
        if !state
            .sessions
            .claim_once(&marker, now.saturating_add(interval), now)
            .await?
        {
            return Err(ApiError::too_many("sms_rate_limited", Some(interval)));
        }
        state
            .idp
            .send_sms_code(token)
            .await
            .map_err(ApiError::from_idp)?;
    }
    let outcome = match step_up {
        StepUpType::SoftwareToken => "software_token",
        StepUpType::Sms => "sms_sent",
        StepUpType::MaybeSoftwareToken => "maybe_software_token",
    };
    Ok(Done {
        outcome,
        response: axum::Json(json!({"code": step_up.as_str()})).into_response(),
    })
}

/// Parses and checks the answer: a known type and a code of 6 to 8 digits.
fn parse_answer(body: &[u8]) -> Result<(StepUpType, String), ApiError> {
    let answer: ChallengeAnswer =
        serde_json::from_slice(body).map_err(|_| ApiError::BadRequest("bad_body"))?;
    let step_up =
        StepUpType::parse(&answer.step_up_type).ok_or(ApiError::BadRequest("bad_step_up_type"))?;
    if !is_valid_code(&answer.challenge_response) {
        return Err(ApiError::BadRequest("bad_code"));
    }
    Ok((step_up, answer.challenge_response))
}

async fn respond_to_challenge(
    state: &ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    now: UnixSeconds,
) -> Result<Done, ApiError> {
    let (token, claims) = authenticate(state, headers, now).await?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("bad_body")
        }
    })?;
    let (step_up, code) = parse_answer(&body)?;
    let factor = step_up.factor();

    let session = load_or_create(state, &claims, now).await?;
    refuse_if_locked(&session, now)?;

    let verified = match factor {
        Factor::SoftwareToken => state.idp.verify_software_token(token, &code).await,
        Factor::Sms => state.idp.verify_sms_code(token, &code).await,
    };
    match verified {
        Ok(()) => {
            // Claimed only after the provider accepted the code: a failed verification must
            // not burn a code the user may still need.
            let first_use = state
                .sessions
                .claim_once(
                    &replay_key(&claims.username, factor, &code),
                    now.saturating_add(factor.replay_window()),
                    now,
                )
                .await?;
            if !first_use {
                return Err(ApiError::ChallengeFailed("replay"));
            }
            update_session(state, &claims, session, now, |s| {
                // A concurrent failure may have locked the session since it was read.
                refuse_if_locked(s, now)?;
                Ok(s.after_success(factor, now))
            })
            .await?;
            Ok(Done {
                outcome: "success",
                response: axum::Json(json!({"name": "Status", "details": "Challenge Successful"}))
                    .into_response(),
            })
        }
        // A wrong answer for this user (including "no software token associated"): counted.
        Err(e @ (IdpError::CodeMismatch | IdpError::ExpiredCode | IdpError::InvalidParameter)) => {
            let updated = update_session(state, &claims, session, now, |s| {
                Ok(s.after_failure(now, &state.limits))
            })
            .await?;
            // The failure that reached the limit is answered with the lockout (429).
            refuse_if_locked(&updated, now)?;
            Err(ApiError::ChallengeFailed(e.metric_label()))
        }
        Err(e) => Err(ApiError::from_idp(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(preferred: Option<MfaSetting>, settings: &[MfaSetting], phone: bool) -> UserInfo {
        UserInfo {
            username: "alice".into(),
            preferred_mfa: preferred,
            mfa_settings: settings.to_vec(),
            has_phone_number: phone,
            phone_number_verified: phone,
        }
    }

    #[test]
    fn the_challenge_is_chosen_as_the_seed_chooses_it() {
        use MfaSetting::*;
        let cases = [
            (
                user(Some(SoftwareToken), &[SoftwareToken, Sms], true),
                StepUpType::SoftwareToken,
            ),
            (
                user(Some(Sms), &[SoftwareToken, Sms], true),
                StepUpType::Sms,
            ),
            (user(None, &[Sms], true), StepUpType::Sms),
            (
                user(None, &[SoftwareToken, Sms], true),
                StepUpType::MaybeSoftwareToken,
            ),
            (user(None, &[], true), StepUpType::MaybeSoftwareToken),
            (user(None, &[], false), StepUpType::MaybeSoftwareToken),
        ];
        for (u, want) in cases {
            assert_eq!(StepUpType::choose(&u), want, "{u:?}");
        }
    }

    #[test]
    fn sms_is_never_chosen_for_an_unverified_phone_number() {
        let mut u = user(Some(MfaSetting::Sms), &[MfaSetting::Sms], true);
        u.phone_number_verified = false;
        assert_eq!(StepUpType::choose(&u), StepUpType::MaybeSoftwareToken);
    }

    #[test]
    fn step_up_types_round_trip_and_map_to_factors() {
        for t in [
            StepUpType::SoftwareToken,
            StepUpType::Sms,
            StepUpType::MaybeSoftwareToken,
        ] {
            assert_eq!(StepUpType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StepUpType::parse("sms_step_up"), None);
        assert_eq!(StepUpType::Sms.factor(), Factor::Sms);
        assert_eq!(
            StepUpType::MaybeSoftwareToken.factor(),
            Factor::SoftwareToken
        );
    }

    #[test]
    fn codes_are_six_to_eight_ascii_digits() {
        for ok in ["123456", "1234567", "12345678"] {
            assert!(is_valid_code(ok), "{ok}");
        }
        for bad in [
            "",
            "12345",
            "123456789",
            "12345a",
            " 123456",
            "１２３４５６",
            "12 456",
        ] {
            assert!(!is_valid_code(bad), "{bad:?}");
        }
    }
}
