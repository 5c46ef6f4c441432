//! The step-up API's one error type: each [`ApiError`] is a fixed answer for the client
//! (status and body, the seed's `name`/`details` fields where the seed's web app reads
//! them) plus a metric label; what went wrong in detail goes to the log only.

use super::idp::IdpError;
use crate::store::StoreError;
use axum::response::{IntoResponse, Response};
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

/// A refused or failed request.
#[derive(Debug)]
pub enum ApiError {
    /// 401 `{"code":"UNAUTHENTICATED"}`: no token, an invalid one, or one Cognito refuses.
    Unauthenticated {
        /// metric label
        reason: &'static str,
        /// The `error` of `WWW-Authenticate` (`invalid_token`, `invalid_request`), if any.
        error: Option<&'static str>,
    },
    /// 400 `{"name":"Status","details":"Bad Request"}`.
    BadRequest(&'static str),
    /// 400 `{"code":"PASSWORD_REQUIRED"}`: Cognito's MFA challenge needs the password.
    PasswordRequired,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 401 `{"name":"Status","details":"Challenge Failed - Code Mismatch or Expired Code"}`.
    ChallengeFailed(&'static str),
    /// 403 `{"code":"MFA_NOT_ENROLLED"}`: the password alone signed the user in; a step-up
    /// needs a second factor.
    MfaNotEnrolled,
    /// 403 `{"code":"UNSUPPORTED_CHALLENGE"}`: Cognito asked for something stepup does not
    /// answer (a new password, MFA set-up, ...).
    UnsupportedChallenge,
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
            ApiError::PasswordRequired => "password_required",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::ChallengeFailed(reason) => reason,
            ApiError::MfaNotEnrolled => "mfa_not_enrolled",
            ApiError::UnsupportedChallenge => "unsupported_challenge",
            ApiError::TooManyRequests { reason, .. } => reason,
            ApiError::Unavailable { reason, .. } => reason,
        }
    }

    pub(crate) fn unauthenticated(reason: &'static str, error: Option<&'static str>) -> ApiError {
        ApiError::Unauthenticated { reason, error }
    }

    pub(crate) fn too_many(reason: &'static str, retry_after: Option<u64>) -> ApiError {
        ApiError::TooManyRequests {
            reason,
            retry_after,
        }
    }

    /// An identity-provider failure.
    pub(crate) fn from_idp(e: IdpError) -> ApiError {
        match e {
            IdpError::NotAuthorized => {
                ApiError::unauthenticated("idp_not_authorized", Some("invalid_token"))
            }
            IdpError::LimitExceeded => ApiError::too_many("idp_limit_exceeded", None),
            IdpError::InvalidParameter => ApiError::BadRequest("idp_invalid_parameter"),
            IdpError::CodeMismatch | IdpError::ExpiredCode | IdpError::SignInRefused => {
                ApiError::ChallengeFailed(e.metric_label())
            }
            IdpError::Misconfigured(detail) => ApiError::Unavailable {
                reason: "idp_misconfigured",
                detail,
            },
            IdpError::Unavailable(detail) => ApiError::Unavailable {
                reason: "idp_unavailable",
                detail,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        // DynamoDB throttling one busy session item (a burst on one token) is our own
        // contention: "slow down", never an outage.
        if matches!(e, StoreError::Throttled) {
            return ApiError::too_many("store_throttled", Some(1));
        }
        let reason = match e {
            StoreError::Unavailable(_) | StoreError::Aws(_) => "store_unavailable",
            StoreError::Throttled => "store_throttled",
            StoreError::Conflict => "store_conflict",
            StoreError::Malformed { .. } => "session_unreadable",
        };
        ApiError::Unavailable {
            reason,
            detail: e.to_string(),
        }
    }
}

fn status_body(status: StatusCode, details: &str, code: Option<&str>) -> Response {
    let body = match code {
        Some(code) => json!({"name": "Status", "details": details, "code": code}),
        None => json!({"name": "Status", "details": details}),
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthenticated { error, .. } => {
                let challenge = match error {
                    Some("invalid_request") => r#"Bearer error="invalid_request""#,
                    Some(_) => r#"Bearer error="invalid_token""#,
                    None => "Bearer",
                };
                (
                    StatusCode::UNAUTHORIZED,
                    [(WWW_AUTHENTICATE, challenge)],
                    axum::Json(json!({"code": "UNAUTHENTICATED"})),
                )
                    .into_response()
            }
            ApiError::BadRequest(_) => status_body(StatusCode::BAD_REQUEST, "Bad Request", None),
            ApiError::PasswordRequired => status_body(
                StatusCode::BAD_REQUEST,
                "Password Required",
                Some("PASSWORD_REQUIRED"),
            ),
            ApiError::PayloadTooLarge => {
                status_body(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large", None)
            }
            ApiError::ChallengeFailed(_) => status_body(
                StatusCode::UNAUTHORIZED,
                "Challenge Failed - Code Mismatch or Expired Code",
                None,
            ),
            ApiError::MfaNotEnrolled => status_body(
                StatusCode::FORBIDDEN,
                "No Second Factor Enrolled",
                Some("MFA_NOT_ENROLLED"),
            ),
            ApiError::UnsupportedChallenge => status_body(
                StatusCode::FORBIDDEN,
                "Sign-in Challenge Not Supported",
                Some("UNSUPPORTED_CHALLENGE"),
            ),
            ApiError::TooManyRequests { retry_after, .. } => {
                let mut res = status_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                    Some("TOO_MANY_REQUESTS"),
                );
                if let Some(secs) = retry_after {
                    res.headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
                }
                res
            }
            ApiError::Unavailable { .. } => status_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                Some("UNAVAILABLE"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_store_is_429_with_retry_after_and_an_unreachable_one_503() {
        let throttled = ApiError::from(StoreError::Throttled).into_response();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers()[RETRY_AFTER], "1");
        let down = ApiError::from(StoreError::Unavailable("timeout".into())).into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
