//! What the step-up API needs from the identity provider (Amazon Cognito), as a trait: the
//! router decides, an [`IdentityProvider`] only talks to the provider. The Cognito
//! implementation lives in [`crate::api::cognito`]; tests use a double that answers like
//! Cognito.
//!
//! Every call is a public (unauthenticated or user-context) Cognito call: the API never
//! needs administrator credentials for the pool.
//!
//! Two ways to check a code:
//! - **Cognito's MFA challenge** (the default, [`IdentityProvider::start_sign_in`] and
//!   [`IdentityProvider::respond_to_sign_in`]): the user signs in again with the password,
//!   and Cognito checks the code against the factor *already enrolled*. A thief holding
//!   only the access token has neither the password nor the user's authenticator.
//! - **The seed's enrolment calls** ([`IdentityProvider::verify_software_token`],
//!   [`IdentityProvider::verify_sms_code`]), kept for the seed's web app behind the
//!   `seed-compatible` setting: whoever holds the access token can associate its own
//!   authenticator and pass them.

use async_trait::async_trait;

/// Cognito's `PreferredMfaSetting` / `UserMFASettingList` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MfaSetting {
    /// `SOFTWARE_TOKEN_MFA`: a TOTP authenticator app.
    SoftwareToken,
    /// `SMS_MFA`: a code sent by text message.
    Sms,
}

impl MfaSetting {
    /// Cognito's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaSetting::SoftwareToken => "SOFTWARE_TOKEN_MFA",
            MfaSetting::Sms => "SMS_MFA",
        }
    }

    /// Parses Cognito's spelling; other values (e.g. `EMAIL_OTP`) are `None`.
    pub fn parse(s: &str) -> Option<MfaSetting> {
        match s {
            "SOFTWARE_TOKEN_MFA" => Some(MfaSetting::SoftwareToken),
            "SMS_MFA" => Some(MfaSetting::Sms),
            _ => None,
        }
    }
}

/// What `GetUser` tells about the token's user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name in the pool.
    pub username: String,
    /// `PreferredMfaSetting`, when set and one of the factors stepup knows.
    pub preferred_mfa: Option<MfaSetting>,
    /// `UserMFASettingList` (factors stepup does not know are left out).
    pub mfa_settings: Vec<MfaSetting>,
    /// The user has a `phone_number` attribute.
    pub has_phone_number: bool,
    /// `phone_number_verified` is `true`.
    pub phone_number_verified: bool,
}

/// Why an identity-provider call failed. Texts are for logs; the router never shows them
/// to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// The code is not the right one (`CodeMismatchException`, or a `VerifySoftwareToken`
    /// status other than `SUCCESS`).
    #[error("code mismatch")]
    CodeMismatch,
    /// The code was right once but has expired (`ExpiredCodeException`).
    #[error("code expired")]
    ExpiredCode,
    /// The provider asks us to slow down (`LimitExceededException`,
    /// `TooManyRequestsException`, `TooManyFailedAttemptsException`).
    #[error("identity provider limit exceeded")]
    LimitExceeded,
    /// The access token is not (or no longer) accepted (`NotAuthorizedException`: revoked,
    /// signed out, user disabled or deleted).
    #[error("access token not authorized by the identity provider")]
    NotAuthorized,
    /// The request is not valid for this user (`InvalidParameterException`: e.g. no
    /// software token associated, no phone number).
    #[error("invalid parameter")]
    InvalidParameter,
    /// A password sign-in was refused: a wrong password, or a sign-in session that expired
    /// or was already used (`NotAuthorizedException` from `InitiateAuth` /
    /// `RespondToAuthChallenge`). Counted as a failed attempt.
    #[error("sign-in refused")]
    SignInRefused,
    /// The provider refuses the flow itself for this app client (e.g. `USER_PASSWORD_AUTH`
    /// not enabled, a client secret required): an operator must fix the configuration.
    #[error("identity provider misconfigured: {0}")]
    Misconfigured(String),
    /// The provider could not be reached or failed (network, 5xx, an unknown error code).
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

impl IdpError {
    /// A short snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            IdpError::CodeMismatch => "code_mismatch",
            IdpError::ExpiredCode => "expired_code",
            IdpError::LimitExceeded => "limit_exceeded",
            IdpError::NotAuthorized => "not_authorized",
            IdpError::InvalidParameter => "invalid_parameter",
            IdpError::SignInRefused => "sign_in_refused",
            IdpError::Misconfigured(_) => "misconfigured",
            IdpError::Unavailable(_) => "unavailable",
        }
    }
}

/// Cognito's `Session` of a sign-in in progress (an opaque string, valid about three
/// minutes). Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSession(pub String);

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthSession(..)")
    }
}

/// Where a password sign-in stands after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInStep {
    /// Cognito asks for a code of `factor` (`SOFTWARE_TOKEN_MFA`, or `SMS_MFA`: Cognito
    /// has just sent the SMS).
    Mfa {
        /// The factor the code must come from.
        factor: MfaSetting,
        /// To answer with.
        session: AuthSession,
    },
    /// Cognito asks which factor to use (`SELECT_MFA_TYPE`: several enabled, none
    /// preferred).
    SelectMfa {
        /// To answer with.
        session: AuthSession,
    },
    /// Signed in: tokens were issued. After the password alone this means the user has
    /// no second factor (or MFA is off), which never completes a step-up.
    SignedIn {
        /// The access token issued, so that the caller can check whose sign-in it was.
        access_token: SignedInToken,
    },
    /// A challenge stepup does not answer (`NEW_PASSWORD_REQUIRED`, `MFA_SETUP`,
    /// `EMAIL_OTP`, ...), by Cognito's name.
    Other(String),
}

/// The access token of a completed sign-in. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedInToken(pub String);

impl std::fmt::Debug for SignedInToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedInToken(..)")
    }
}

/// An answer to a sign-in challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChallengeReply<'a> {
    /// The code for the `Mfa` challenge of `factor`.
    Code {
        /// The factor asked for.
        factor: MfaSetting,
        /// The user's code.
        code: &'a str,
    },
    /// The factor chosen at `SELECT_MFA_TYPE`.
    Select(MfaSetting),
}

impl std::fmt::Debug for ChallengeReply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeReply::Code { factor, .. } => write!(f, "Code({factor:?}, ..)"),
            ChallengeReply::Select(factor) => write!(f, "Select({factor:?})"),
        }
    }
}

/// The identity-provider calls of the step-up API, all made with the user's access token.
/// Implementations must never log the token or a code.
#[async_trait]
pub trait IdentityProvider: Send + Sync + std::fmt::Debug {
    /// `GetUser`: who the token belongs to and which second factors the user has.
    async fn get_user(&self, access_token: &str) -> Result<UserInfo, IdpError>;

    /// `GetUserAttributeVerificationCode` for `phone_number`: sends a code by SMS.
    async fn send_sms_code(&self, access_token: &str) -> Result<(), IdpError>;

    /// `VerifySoftwareToken`: `Ok` only for status `SUCCESS`, otherwise
    /// [`IdpError::CodeMismatch`].
    async fn verify_software_token(&self, access_token: &str, code: &str) -> Result<(), IdpError>;

    /// `VerifyUserAttribute` for `phone_number` with the code sent by
    /// [`IdentityProvider::send_sms_code`].
    async fn verify_sms_code(&self, access_token: &str, code: &str) -> Result<(), IdpError>;

    /// `InitiateAuth` with `USER_PASSWORD_AUTH` for `username` through the app client
    /// `client_id`: where the sign-in stands after the password. A wrong password is
    /// [`IdpError::SignInRefused`]. Implementations never log the password.
    async fn start_sign_in(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<SignInStep, IdpError>;

    /// `RespondToAuthChallenge`: answers the challenge of `session`. A wrong code is
    /// [`IdpError::CodeMismatch`], an expired sign-in [`IdpError::SignInRefused`].
    async fn respond_to_sign_in(
        &self,
        client_id: &str,
        username: &str,
        session: &AuthSession,
        reply: ChallengeReply<'_>,
    ) -> Result<SignInStep, IdpError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfa_settings_parse_cognito_spellings_only() {
        for s in [MfaSetting::SoftwareToken, MfaSetting::Sms] {
            assert_eq!(MfaSetting::parse(s.as_str()), Some(s));
        }
        assert_eq!(MfaSetting::parse("EMAIL_OTP"), None);
        assert_eq!(MfaSetting::parse("sms_mfa"), None);
    }

    #[test]
    fn error_labels_are_distinct_snake_case() {
        let errors = [
            IdpError::CodeMismatch,
            IdpError::ExpiredCode,
            IdpError::LimitExceeded,
            IdpError::NotAuthorized,
            IdpError::InvalidParameter,
            IdpError::SignInRefused,
            IdpError::Misconfigured("x".into()),
            IdpError::Unavailable("x".into()),
        ];
        let mut labels: Vec<&str> = errors.iter().map(IdpError::metric_label).collect();
        assert!(
            labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), errors.len());
    }
}
