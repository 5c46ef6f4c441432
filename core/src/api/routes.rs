//! The step-up API as an axum [`Router`]: `POST /initiate-auth` and
//! `POST /respond-to-challenge`, wire-compatible with the seed's web app, plus the CORS
//! preflight; and what both handlers share: authenticating the caller, finding or creating
//! its session, reserving an attempt, and counting every answer.
//!
//! ```text
//!  /initiate-auth        token ─► GetUser ─► session (created if absent) ─► locked? 429
//!                          ├─ no password: what to send ({"code", "requires"})
//!                          └─ password: reserve attempt ─► InitiateAuth ─► MFA challenge ─► {"auth-session"}
//!  /respond-to-challenge token ─► body ─► reserve attempt (429 at the limit) ─► Cognito checks the code
//!                          ├─ wrong ─► attempt stays counted ─► 401 (429 when it was the last)
//!                          └─ right, same sub ─► replay marker new? ─► COMPLETED, attempt given back ─► 200
//! ```
//!
//! The flows themselves live in [`super::initiate`] and [`super::respond`]. The clock is
//! read once per request, in the handler; everything below takes `now`. Clients get fixed
//! bodies only ([`ApiError`]); details go to the log, which never holds a token, a code or
//! a password. Every answer is counted in `stepup_api_requests_total{endpoint, outcome}`
//! and timed in `stepup_api_request_duration_seconds{endpoint}`.

use super::error::ApiError;
use super::state::ApiState;
use super::{initiate, respond};
use crate::clock::{self, UnixSeconds};
use crate::session::{Session, SessionChange};
use crate::store::{ChangeOutcome, StoreError};
use crate::token::{AccessClaims, BearerError, extract_bearer};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    AUTHORIZATION, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use std::sync::Arc;

/// The path of the initiate call.
pub const INITIATE_AUTH_PATH: &str = "/initiate-auth";
/// The path of the respond call.
pub const RESPOND_TO_CHALLENGE_PATH: &str = "/respond-to-challenge";
/// The largest body accepted (the seed's is about 70 bytes; a Cognito session a few KiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// `Access-Control-Allow-Methods` of the preflight.
pub const CORS_ALLOW_METHODS: &str = "OPTIONS,POST";

/// A successful answer and its metric label.
pub(crate) struct Done {
    pub(crate) outcome: &'static str,
    pub(crate) response: Response,
}

/// The authenticated caller: its bearer token and the token's verified claims.
pub(crate) struct Caller<'h> {
    pub(crate) token: &'h str,
    pub(crate) claims: Arc<AccessClaims>,
}

/// The step-up API router (state applied). Mount it at the root or nest it.
pub fn router(state: ApiState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(
            INITIATE_AUTH_PATH,
            post(initiate_auth_handler).options(preflight),
        )
        .route(
            RESPOND_TO_CHALLENGE_PATH,
            post(respond_to_challenge_handler).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// Adds `Access-Control-Allow-Origin` (and `Vary: Origin` for a list of origins) to every
/// answer. An origin that is not allowed gets no header: the browser then refuses the
/// answer; the request itself is still authenticated by its token.
async fn cors(
    State(state): State<Arc<ApiState>>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut res = next.run(req).await;
    let allowed = state
        .cors
        .allowed_origin(origin.as_deref())
        .and_then(|o| HeaderValue::from_str(o).ok());
    let headers = res.headers_mut();
    if let Some(allowed) = allowed {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    }
    if state.cors.varies() {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// The CORS preflight, answered as the seed's API Gateway mock integration does, with the
/// configured headers.
async fn preflight(State(state): State<Arc<ApiState>>) -> Response {
    let mut res = StatusCode::OK.into_response();
    let headers = res.headers_mut();
    match HeaderValue::from_str(&state.cors.allow_headers) {
        Ok(v) => {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        // Settings are checked at start-up; an invalid value here sends no header, so the
        // browser refuses (never wider than configured).
        Err(_) => tracing::error!("cors allow_headers is not a valid header value"),
    }
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(CORS_ALLOW_METHODS),
    );
    res
}

async fn initiate_auth_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        "initiate_auth",
        &state,
        &headers,
        body,
        |state, caller, body, now| Box::pin(initiate::initiate_auth(state, caller, body, now)),
    )
    .await
}

async fn respond_to_challenge_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        "respond_to_challenge",
        &state,
        &headers,
        body,
        |state, caller, body, now| {
            Box::pin(respond::respond_to_challenge(state, caller, body, now))
        },
    )
    .await
}

/// A flow of the API: what it answers for an authenticated caller and a read body.
type Flow = for<'a> fn(
    &'a ApiState,
    &'a Caller<'a>,
    &'a [u8],
    UnixSeconds,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Done, ApiError>> + Send + 'a>,
>;

/// What both endpoints do around their flow: read the clock once, authenticate the
/// caller, read the body, then count and log the answer.
async fn handle(
    endpoint: &'static str,
    state: &ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    flow: Flow,
) -> Response {
    let now = clock::now();
    let watch = clock::Stopwatch::start();
    let result = match authenticate(state, headers, now).await {
        Ok(caller) => match read_body(body) {
            Ok(body) => flow(state, &caller, &body, now).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let response = finish(endpoint, result);
    metrics::histogram!(crate::latency::API_DURATION, "endpoint" => endpoint)
        .record(watch.elapsed().as_secs_f64());
    response
}

fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("bad_body")
        }
    })
}

/// Counts the answer and logs failures (never a token, a code or a password).
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
) -> Result<Caller<'h>, ApiError> {
    let bearer_error = |e: BearerError| match e {
        BearerError::Missing => ApiError::unauthenticated("no_token", None),
        BearerError::Malformed => {
            ApiError::unauthenticated("malformed_authorization", Some("invalid_request"))
        }
    };
    let value = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().map_err(|_| BearerError::Malformed))
        .transpose()
        .map_err(bearer_error)?;
    let token = extract_bearer(value).map_err(bearer_error)?;
    let claims = state
        .verifier
        .verify(token, now)
        .await
        .map_err(|e| ApiError::unauthenticated(e.metric_label(), Some("invalid_token")))?;
    Ok(Caller { token, claims })
}

/// The live session of the token, created (`STEP_UP_REQUIRED`) when there is none.
pub(crate) async fn load_or_create(
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
        Err(StoreError::Conflict) => state
            .sessions
            .get(key, now)
            .await?
            .ok_or(ApiError::ChallengeFailed("session_gone")),
        Err(e) => Err(e.into()),
    }
}

/// 429 with `Retry-After` while `session` is locked.
pub(crate) fn refuse_if_locked(
    state: &ApiState,
    session: &Session,
    now: UnixSeconds,
) -> Result<(), ApiError> {
    match session.locked_until(now, &state.limits) {
        Some(until) => Err(ApiError::too_many("locked", Some(now.seconds_until(until)))),
        None => Ok(()),
    }
}

/// Reserves one attempt on the token's session (created if absent) with one atomic
/// conditional write, before anything reaches the identity provider: at most
/// `max_failed_attempts` answers per session are ever checked, however many arrive at
/// once. The session after the reservation, or 429 while locked.
pub(crate) async fn reserve_attempt(
    state: &ApiState,
    claims: &AccessClaims,
    now: UnixSeconds,
) -> Result<Session, ApiError> {
    let key = claims.session_key(state.use_origin_jti);
    let change = SessionChange::ReserveAttempt {
        limits: state.limits,
    };
    for _ in 0..2 {
        match state.sessions.change(key, change, now).await? {
            ChangeOutcome::Applied(session) => return Ok(session),
            ChangeOutcome::Refused(Some(current)) => {
                refuse_if_locked(state, &current, now)?;
                // Refused but not locked: only a lock that ended in between; try again.
            }
            ChangeOutcome::Refused(None) => {
                load_or_create(state, claims, now).await?;
            }
        }
    }
    // Two refusals in a row without a lock: the session changes under us; answer as the
    // limit would, never as an outage.
    Err(ApiError::too_many("attempt_contention", Some(1)))
}

/// Gives a reserved attempt back (the password was right; nothing was a failure).
pub(crate) async fn release_attempt(
    state: &ApiState,
    claims: &AccessClaims,
    now: UnixSeconds,
) -> Result<(), ApiError> {
    let key = claims.session_key(state.use_origin_jti);
    state
        .sessions
        .change(key, SessionChange::ReleaseAttempt, now)
        .await?;
    Ok(())
}

/// The answer to a wrong code or password: the reserved attempt stays counted; 429 when
/// it was the last one (the session is now locked), else `err` (401).
pub(crate) fn failed(
    state: &ApiState,
    reserved: &Session,
    now: UnixSeconds,
    err: ApiError,
) -> ApiError {
    match refuse_if_locked(state, reserved, now) {
        Err(locked) => locked,
        Ok(()) => err,
    }
}
