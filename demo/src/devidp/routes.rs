//! The development identity provider over HTTP, for a web page: JSON endpoints shaped
//! after Cognito's user-context calls, under [`DEV_IDP_PREFIX`]:
//!
//! | endpoint | Cognito call | body → answer |
//! |---|---|---|
//! | `POST /dev-idp/sign-up` | `SignUp` + `AdminConfirmSignUp` | `{username, password, phoneNumber?}` → `{userConfirmed}` |
//! | `POST /dev-idp/sign-in` | `InitiateAuth` (`USER_PASSWORD_AUTH`) | `{username, password}` → `{accessToken, expiresIn, tokenType}` |
//! | `POST /dev-idp/initiate-auth` | `InitiateAuth` (`USER_AUTH` with `TARGET_ACR_VALUES`, `MAX_AGE`; or `USER_PASSWORD_AUTH`) | `{authFlow?, username, password, targetAcrValues?, maxAge?}` → `{challengeName, session}` or `{accessToken, expiresIn, tokenType}` |
//! | `POST /dev-idp/respond-to-auth-challenge` | `RespondToAuthChallenge` | `{challengeName, session, username, code?, answer?}` → the same |
//! | `POST /dev-idp/sign-out` | `GlobalSignOut` | bearer → `{}` |
//! | `POST /dev-idp/get-user` | `GetUser` | bearer → `{username, preferredMfaSetting, userMfaSettingList, …}` |
//! | `POST /dev-idp/associate-software-token` | `AssociateSoftwareToken` | bearer → `{secretCode, otpauthUri, qrCode}` |
//! | `POST /dev-idp/verify-software-token` | `VerifySoftwareToken` | `{userCode}` → `{status: "SUCCESS"}` |
//! | `POST /dev-idp/set-user-mfa-preference` | `SetUserMFAPreference` | `{softwareTokenMfaSettings?, smsMfaSettings?}` → `{}` |
//! | `GET /dev-idp/.well-known/jwks.json` | the pool's JWKS | → JWKS |
//!
//! `initiate-auth` is the client's own step-up sign-in of claims mode (RFC 9470): after a
//! `401` naming `acr_values` and `max_age`, the client signs in again with the password and
//! the code the challenge asks for, and gets a token whose `acr`, `amr` and fresh
//! `auth_time` satisfy the rule (see [`super::signin`]). `/sign-in` stays a password-only
//! sign-in (`acr` `urn:cognito:loa:1`): a step-up is not asked for at sign-in.
//!
//! Errors answer `{"__type": "<Cognito exception name>", "message": "<fixed text>"}`;
//! internal details go to the log only. The clock is read here, once per request.

use super::signin::SignInFlow;
use super::{DevIdp, DevIdpError, MfaPreference};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use stepup_core::api::{ChallengeReply, MfaSetting, SignInStep};
use stepup_core::clock;
use stepup_core::token::extract_bearer;

/// Where [`router()`] mounts its endpoints; the provider's issuer should be
/// `http://<host:port>/dev-idp` so that `{issuer}/.well-known/jwks.json` is served here.
pub const DEV_IDP_PREFIX: &str = "/dev-idp";

/// The development identity provider's endpoints (absolute paths under
/// [`DEV_IDP_PREFIX`]); merge it into an application's router.
pub fn router(idp: Arc<DevIdp>) -> Router {
    let p = |path: &str| format!("{DEV_IDP_PREFIX}{path}");
    Router::new()
        .route(&p("/sign-up"), post(sign_up))
        .route(&p("/sign-in"), post(sign_in))
        .route(&p("/initiate-auth"), post(initiate_auth))
        .route(
            &p("/respond-to-auth-challenge"),
            post(respond_to_auth_challenge),
        )
        .route(&p("/sign-out"), post(sign_out))
        .route(&p("/get-user"), post(get_user))
        .route(&p("/associate-software-token"), post(associate))
        .route(&p("/verify-software-token"), post(verify))
        .route(&p("/set-user-mfa-preference"), post(set_preference))
        .route(&p("/.well-known/jwks.json"), get(jwks))
        .with_state(idp)
}

/// One failed request.
#[derive(Debug)]
enum Failure {
    Idp(DevIdpError),
    BadBody,
}

impl From<DevIdpError> for Failure {
    fn from(e: DevIdpError) -> Failure {
        Failure::Idp(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, kind, message) = match &self {
            Failure::BadBody => (
                StatusCode::BAD_REQUEST,
                "InvalidParameterException",
                "The request body is not valid JSON of the expected shape",
            ),
            Failure::Idp(e) => {
                let (status, message) = match e {
                    DevIdpError::NotAuthorized => (
                        StatusCode::UNAUTHORIZED,
                        "Incorrect username or password, or an invalid access token",
                    ),
                    DevIdpError::UnknownClient => {
                        (StatusCode::BAD_REQUEST, "User pool client does not exist")
                    }
                    DevIdpError::UsernameExists => (StatusCode::BAD_REQUEST, "User already exists"),
                    DevIdpError::InvalidParameter(_) => (
                        StatusCode::BAD_REQUEST,
                        "Invalid parameter (user name, password of at least 8 characters, phone number as +digits, or a software token not set up)",
                    ),
                    DevIdpError::CodeMismatch => {
                        (StatusCode::BAD_REQUEST, "Invalid code received for user")
                    }
                    DevIdpError::ExpiredCode => (StatusCode::BAD_REQUEST, "The code has expired"),
                    DevIdpError::Internal(detail) => {
                        tracing::warn!(detail = %detail, "development identity provider failed");
                        (StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
                    }
                };
                (status, e.cognito_type(), message)
            }
        };
        (
            status,
            axum::Json(json!({"__type": kind, "message": message})),
        )
            .into_response()
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|_| Failure::BadBody)
}

fn bearer(headers: &HeaderMap) -> Result<&str, Failure> {
    extract_bearer(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .map_err(|_| Failure::Idp(DevIdpError::NotAuthorized))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    phone_number: Option<String>,
}

async fn sign_up(State(idp): State<Arc<DevIdp>>, bytes: Bytes) -> Result<Response, Failure> {
    let c: Credentials = body(&bytes)?;
    let phone = c.phone_number.as_deref().filter(|p| !p.is_empty());
    idp.sign_up(c.username.trim(), &c.password, phone)?;
    Ok(axum::Json(json!({"userConfirmed": true})).into_response())
}

async fn sign_in(State(idp): State<Arc<DevIdp>>, bytes: Bytes) -> Result<Response, Failure> {
    let c: Credentials = body(&bytes)?;
    let signed = idp.sign_in_at(c.username.trim(), &c.password, clock::now())?;
    Ok(axum::Json(json!({
        "accessToken": signed.access_token,
        "expiresIn": signed.expires_in,
        "tokenType": "Bearer",
    }))
    .into_response())
}

/// The `InitiateAuth` body. Not `Debug`: it holds a password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitiateAuth {
    #[serde(default)]
    auth_flow: Option<String>,
    username: String,
    password: String,
    /// Cognito's `TARGET_ACR_VALUES`. (`maxAge`, Cognito's `MAX_AGE`, is accepted and
    /// not read: a sign-in here always authenticates now, which meets any `max_age`.)
    #[serde(default)]
    target_acr_values: Option<String>,
}

async fn initiate_auth(State(idp): State<Arc<DevIdp>>, bytes: Bytes) -> Result<Response, Failure> {
    let b: InitiateAuth = body(&bytes)?;
    let flow = match (b.auth_flow.as_deref(), b.target_acr_values.as_deref()) {
        (None | Some("USER_AUTH"), Some(targets)) => SignInFlow::user_auth(targets)?,
        (Some("USER_PASSWORD_AUTH"), None) => SignInFlow::UserPassword,
        _ => return Err(Failure::Idp(DevIdpError::InvalidParameter("authFlow"))),
    };
    let client_id = idp.config().client_id.clone();
    let step = idp.start_sign_in_at(
        &client_id,
        b.username.trim(),
        &b.password,
        flow,
        clock::now(),
    )?;
    Ok(step_response(&idp, step))
}

/// The `RespondToAuthChallenge` body. Not `Debug`: it holds a code.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChallengeResponse {
    challenge_name: String,
    session: String,
    username: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    answer: Option<String>,
}

async fn respond_to_auth_challenge(
    State(idp): State<Arc<DevIdp>>,
    bytes: Bytes,
) -> Result<Response, Failure> {
    let b: ChallengeResponse = body(&bytes)?;
    let invalid = || Failure::Idp(DevIdpError::InvalidParameter("challenge response"));
    let reply = match (b.challenge_name.as_str(), &b.code, &b.answer) {
        ("SELECT_MFA_TYPE", None, Some(answer)) => {
            ChallengeReply::Select(MfaSetting::parse(answer).ok_or_else(invalid)?)
        }
        (name, Some(code), None) => ChallengeReply::Code {
            factor: MfaSetting::parse(name).ok_or_else(invalid)?,
            code: code.trim(),
        },
        _ => return Err(invalid()),
    };
    let client_id = idp.config().client_id.clone();
    let step = idp.respond_to_sign_in_at(
        &client_id,
        b.username.trim(),
        &b.session,
        reply,
        clock::now(),
    )?;
    Ok(step_response(&idp, step))
}

/// A sign-in step as JSON: the challenge to answer, or the tokens.
fn step_response(idp: &DevIdp, step: SignInStep) -> Response {
    let body = match step {
        SignInStep::Mfa { factor, session } => {
            json!({"challengeName": factor.as_str(), "session": session.0})
        }
        SignInStep::SelectMfa { session } => {
            json!({"challengeName": "SELECT_MFA_TYPE", "session": session.0})
        }
        SignInStep::SignedIn { access_token } => json!({
            "accessToken": access_token.0,
            "expiresIn": idp.config().token_lifetime_secs,
            "tokenType": "Bearer",
        }),
        SignInStep::Other(name) => json!({"challengeName": name}),
    };
    axum::Json(body).into_response()
}

async fn sign_out(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Result<Response, Failure> {
    idp.sign_out_at(bearer(&headers)?, clock::now())?;
    Ok(axum::Json(json!({})).into_response())
}

async fn get_user(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Result<Response, Failure> {
    let user = idp.get_user_at(bearer(&headers)?, clock::now())?;
    let list: Vec<&str> = user.mfa_settings.iter().map(|m| m.as_str()).collect();
    Ok(axum::Json(json!({
        "username": user.username,
        "preferredMfaSetting": user.preferred_mfa.map(|m| m.as_str()),
        "userMfaSettingList": list,
        "phoneNumberVerified": user.phone_number_verified,
    }))
    .into_response())
}

async fn associate(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let a = idp.associate_software_token_at(bearer(&headers)?, clock::now())?;
    Ok(axum::Json(json!({
        "secretCode": a.secret_code,
        "otpauthUri": a.otpauth_uri,
        "qrCode": a.qr_code_data_url,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserCode {
    user_code: String,
}

async fn verify(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Failure> {
    let token = bearer(&headers)?;
    let c: UserCode = body(&bytes)?;
    idp.verify_software_token_at(token, &c.user_code, clock::now())?;
    Ok(axum::Json(json!({"status": "SUCCESS"})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preference {
    enabled: bool,
    #[serde(default)]
    preferred_mfa: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preferences {
    #[serde(default)]
    software_token_mfa_settings: Option<Preference>,
    #[serde(default)]
    sms_mfa_settings: Option<Preference>,
}

async fn set_preference(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Failure> {
    let token = bearer(&headers)?;
    let p: Preferences = body(&bytes)?;
    let conv = |p: Option<Preference>| {
        p.map(|p| MfaPreference {
            enabled: p.enabled,
            preferred: p.preferred_mfa,
        })
    };
    idp.set_mfa_preference_at(
        token,
        conv(p.software_token_mfa_settings),
        conv(p.sms_mfa_settings),
        clock::now(),
    )?;
    Ok(axum::Json(json!({})).into_response())
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    match serde_json::to_value(idp.jwks()) {
        Ok(v) => axum::Json::<Value>(v).into_response(),
        Err(e) => Failure::Idp(DevIdpError::Internal(format!("JWKS: {e}"))).into_response(),
    }
}
