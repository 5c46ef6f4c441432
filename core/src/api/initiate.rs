//! `POST /initiate-auth`: which challenge the caller must answer, and, when the password
//! comes with it, the start of Cognito's own MFA challenge (for SMS this is what makes
//! Cognito send the code).

use super::error::ApiError;
use super::idp::{AuthSession, ChallengeReply, MfaSetting, SignInStep};
use super::routes::{
    Caller, Done, failed, load_or_create, refuse_if_locked, release_attempt, reserve_attempt,
};
use super::state::{ApiState, Verification};
use super::wire::{StepUpType, parse_initiate};
use crate::clock::UnixSeconds;
use axum::response::IntoResponse;
use serde_json::json;

/// The `verification` field of the answers in the default mode.
pub(crate) const COGNITO_MFA: &str = "COGNITO_MFA";

pub(crate) async fn initiate_auth(
    state: &ApiState,
    caller: &Caller<'_>,
    body: &[u8],
    now: UnixSeconds,
) -> Result<Done, ApiError> {
    let password = parse_initiate(body)?;
    // GetUser with the caller's token: Cognito refuses a revoked or signed-out token here.
    let user = state
        .idp
        .get_user(caller.token)
        .await
        .map_err(ApiError::from_idp)?;
    let session = load_or_create(state, &caller.claims, now).await?;
    refuse_if_locked(state, &session, now)?;
    let step_up = StepUpType::choose(&user);

    match (state.verification, password) {
        (Verification::SeedCompatible, _) => {
            if step_up == StepUpType::Sms {
                limit_sms(state, &caller.claims.username, now).await?;
                state
                    .idp
                    .send_sms_code(caller.token)
                    .await
                    .map_err(ApiError::from_idp)?;
            }
            Ok(done(step_up, json!({"code": step_up.as_str()})))
        }
        (Verification::CognitoMfa, None) => {
            // Nothing is sent yet: SMS needs the password first (Cognito sends the code
            // after it), TOTP takes password and code in one `/respond-to-challenge`.
            let requires: &[&str] = if step_up == StepUpType::Sms {
                &["password"]
            } else {
                &["password", "challenge-response"]
            };
            Ok(done(
                step_up,
                json!({"code": step_up.as_str(), "verification": COGNITO_MFA, "requires": requires}),
            ))
        }
        (Verification::CognitoMfa, Some(password)) => {
            if step_up == StepUpType::Sms {
                limit_sms(state, &caller.claims.username, now).await?;
            }
            let reserved = reserve_attempt(state, &caller.claims, now).await?;
            let started = state
                .idp
                .start_sign_in(
                    &caller.claims.client_id,
                    &caller.claims.username,
                    password.as_str(),
                )
                .await
                .map_err(ApiError::from_idp);
            let awaiting = match started {
                Ok(step) => awaiting_code(state, &caller.claims, step, step_up.mfa()).await,
                Err(e) => Err(e),
            };
            match awaiting {
                Ok((mfa, session)) => {
                    // The password was right: the reservation was no failure.
                    release_attempt(state, &caller.claims, now).await?;
                    let kind = StepUpType::of_mfa(mfa);
                    Ok(done(
                        kind,
                        json!({
                            "code": kind.as_str(),
                            "verification": COGNITO_MFA,
                            "auth-session": session.0,
                            "requires": ["challenge-response", "auth-session"],
                        }),
                    ))
                }
                Err(e) => Err(settle_failure(state, &caller.claims, &reserved, now, e).await),
            }
        }
    }
}

fn done(step_up: StepUpType, body: serde_json::Value) -> Done {
    let outcome = match step_up {
        StepUpType::SoftwareToken => "software_token",
        StepUpType::Sms => "sms",
        StepUpType::MaybeSoftwareToken => "maybe_software_token",
    };
    Done {
        outcome,
        response: axum::Json(body).into_response(),
    }
}

/// At most one SMS per user per interval: a conditional marker, checked before Cognito
/// is asked to send anything.
async fn limit_sms(state: &ApiState, username: &str, now: UnixSeconds) -> Result<(), ApiError> {
    let interval = state.sms_min_interval_secs;
    let marker = format!("sms#{username}");
    if state
        .sessions
        .claim_once(&marker, now.plus(interval), now)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::too_many("sms_rate_limited", Some(interval)))
    }
}

/// The MFA challenge to answer after the password: Cognito's `SOFTWARE_TOKEN_MFA` or
/// `SMS_MFA`, `SELECT_MFA_TYPE` answered with `wanted`. Tokens after the password alone
/// are refused: a step-up never completes without a second factor.
pub(crate) async fn awaiting_code(
    state: &ApiState,
    claims: &crate::token::AccessClaims,
    step: SignInStep,
    wanted: MfaSetting,
) -> Result<(MfaSetting, AuthSession), ApiError> {
    let step = match step {
        SignInStep::SelectMfa { session } => state
            .idp
            .respond_to_sign_in(
                &claims.client_id,
                &claims.username,
                &session,
                ChallengeReply::Select(wanted),
            )
            .await
            .map_err(ApiError::from_idp)?,
        other => other,
    };
    match step {
        SignInStep::Mfa { factor, session } => Ok((factor, session)),
        SignInStep::SignedIn { .. } => {
            tracing::info!("sign-in needed no second factor: step-up refused");
            Err(ApiError::MfaNotEnrolled)
        }
        SignInStep::SelectMfa { .. } => Err(ApiError::UnsupportedChallenge),
        SignInStep::Other(name) => {
            tracing::info!(challenge = %name.escape_debug(), "sign-in challenge stepup does not answer");
            Err(ApiError::UnsupportedChallenge)
        }
    }
}

/// After a refused check: a wrong password or code keeps its attempt counted (429 if it
/// was the last); a refusal that was no failure of the user's (no second factor, an
/// unsupported challenge) gives the attempt back.
pub(crate) async fn settle_failure(
    state: &ApiState,
    claims: &crate::token::AccessClaims,
    reserved: &crate::session::Session,
    now: UnixSeconds,
    err: ApiError,
) -> ApiError {
    match err {
        ApiError::ChallengeFailed(_) => failed(state, reserved, now, err),
        ApiError::MfaNotEnrolled | ApiError::UnsupportedChallenge => {
            if let Err(e) = release_attempt(state, claims, now).await {
                tracing::warn!(
                    error = e.metric_label(),
                    "could not give a reserved attempt back"
                );
            }
            err
        }
        other => other,
    }
}
