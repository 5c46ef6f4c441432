//! `POST /respond-to-challenge`: one reserved attempt, the code checked by Cognito
//! (its MFA challenge by default, the seed's enrolment calls in `seed-compatible` mode),
//! then the session completed, bound to the token and never on a replayed code.

use super::error::ApiError;
use super::idp::{AuthSession, ChallengeReply, IdpError, SignInStep, SignedInToken};
use super::initiate::{awaiting_code, settle_failure};
use super::routes::{Caller, Done, reserve_attempt};
use super::state::{ApiState, Verification};
use super::wire::{Answer, StepUpType, parse_answer};
use crate::clock::UnixSeconds;
use crate::session::{Factor, SessionChange, replay_key};
use crate::store::ChangeOutcome;
use crate::token::AccessClaims;
use axum::response::IntoResponse;
use serde_json::json;

pub(crate) async fn respond_to_challenge(
    state: &ApiState,
    caller: &Caller<'_>,
    body: &[u8],
    now: UnixSeconds,
) -> Result<Done, ApiError> {
    let answer = parse_answer(body)?;
    if state.verification == Verification::CognitoMfa
        && answer.password.is_none()
        && answer.auth_session.is_none()
    {
        return Err(ApiError::PasswordRequired);
    }
    let reserved = reserve_attempt(state, &caller.claims, now).await?;
    let checked = match state.verification {
        Verification::CognitoMfa => check_with_sign_in(state, &caller.claims, &answer, now).await,
        Verification::SeedCompatible => check_with_enrolment_calls(state, caller, &answer).await,
    };
    match checked {
        Ok(factor) => complete(state, &caller.claims, factor, &answer.code, now).await,
        Err(e) => Err(settle_failure(state, &caller.claims, &reserved, now, e).await),
    }
}

/// Cognito's MFA challenge: a sign-in with the password (or the one `/initiate-auth`
/// started), answered with the code; the signed-in user must be the token's.
async fn check_with_sign_in(
    state: &ApiState,
    claims: &AccessClaims,
    answer: &Answer,
    now: UnixSeconds,
) -> Result<Factor, ApiError> {
    let (mfa, session) = match (&answer.password, &answer.auth_session) {
        (Some(password), _) => {
            let step = state
                .idp
                .start_sign_in(&claims.client_id, &claims.username, password.as_str())
                .await
                .map_err(ApiError::from_idp)?;
            awaiting_code(state, claims, step, answer.step_up.mfa()).await?
        }
        (None, Some(session)) => (answer.step_up.mfa(), AuthSession(session.clone())),
        (None, None) => return Err(ApiError::PasswordRequired),
    };
    let step = state
        .idp
        .respond_to_sign_in(
            &claims.client_id,
            &claims.username,
            &session,
            ChallengeReply::Code {
                factor: mfa,
                code: &answer.code,
            },
        )
        .await
        .map_err(ApiError::from_idp)?;
    match step {
        SignInStep::SignedIn { access_token } => {
            same_user(state, claims, &access_token, now).await?;
            Ok(StepUpType::of_mfa(mfa).factor())
        }
        SignInStep::Other(name) => {
            tracing::info!(challenge = %name.escape_debug(), "sign-in asked for more than the code");
            Err(ApiError::UnsupportedChallenge)
        }
        SignInStep::Mfa { .. } | SignInStep::SelectMfa { .. } => {
            Err(ApiError::UnsupportedChallenge)
        }
    }
}

/// The token Cognito issued after the code must be valid and belong to the user whose
/// token is being stepped up.
async fn same_user(
    state: &ApiState,
    claims: &AccessClaims,
    signed_in: &SignedInToken,
    now: UnixSeconds,
) -> Result<(), ApiError> {
    let new = state
        .verifier
        .verify(&signed_in.0, now)
        .await
        .map_err(|e| ApiError::Unavailable {
            reason: "signed_in_token_invalid",
            detail: format!("the token of the step-up sign-in failed verification: {e}"),
        })?;
    if new.sub == claims.sub {
        Ok(())
    } else {
        tracing::warn!("step-up sign-in was for another user than the token's: refused");
        Err(ApiError::ChallengeFailed("sub_mismatch"))
    }
}

/// The seed's way (weak): `VerifySoftwareToken` / `VerifyUserAttribute` with the caller's
/// own access token.
async fn check_with_enrolment_calls(
    state: &ApiState,
    caller: &Caller<'_>,
    answer: &Answer,
) -> Result<Factor, ApiError> {
    let factor = answer.step_up.factor();
    let verified = match factor {
        Factor::SoftwareToken => {
            state
                .idp
                .verify_software_token(caller.token, &answer.code)
                .await
        }
        Factor::Sms => state.idp.verify_sms_code(caller.token, &answer.code).await,
    };
    match verified {
        Ok(()) => Ok(factor),
        // A wrong answer for this user (including "no software token associated").
        Err(e @ (IdpError::CodeMismatch | IdpError::ExpiredCode | IdpError::InvalidParameter)) => {
            Err(ApiError::ChallengeFailed(e.metric_label()))
        }
        Err(e) => Err(ApiError::from_idp(e)),
    }
}

/// A right code: refused if already used once, else the session is completed now.
async fn complete(
    state: &ApiState,
    claims: &AccessClaims,
    factor: Factor,
    code: &str,
    now: UnixSeconds,
) -> Result<Done, ApiError> {
    // Claimed only after the provider accepted the code: a failed verification must not
    // burn a code the user may still need.
    let first_use = state
        .sessions
        .claim_once(
            &replay_key(&claims.username, factor, code),
            now.plus(factor.replay_window()),
            now,
        )
        .await?;
    if !first_use {
        return Err(ApiError::ChallengeFailed("replay"));
    }
    let key = claims.session_key(state.use_origin_jti);
    match state
        .sessions
        .change(key, SessionChange::Complete { factor }, now)
        .await?
    {
        ChangeOutcome::Applied(_) => Ok(Done {
            outcome: "success",
            response: axum::Json(json!({"name": "Status", "details": "Challenge Successful"}))
                .into_response(),
        }),
        // The session ended or was reset by hand while the code was checked.
        ChangeOutcome::Refused(_) => Err(ApiError::ChallengeFailed("session_changed")),
    }
}
