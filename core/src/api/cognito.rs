//! The Amazon Cognito [`IdentityProvider`]: the public calls of the Cognito user pools
//! API — the sign-in with its MFA challenge (`InitiateAuth` `USER_PASSWORD_AUTH`,
//! `RespondToAuthChallenge`) and the user-context calls made with the user's access token
//! (`GetUser`, and for the seed-compatible mode `GetUserAttributeVerificationCode`,
//! `VerifySoftwareToken`, `VerifyUserAttribute`) — and the mapping of Cognito's error
//! codes to [`IdpError`].
//!
//! The binaries build the [`Client`] (region, credentials, retries, timeouts) from
//! `aws-config`; [`local_client`] serves tests and local stand-ins such as moto.

use super::idp::{
    AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep, SignedInToken,
    UserInfo,
};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, AuthenticationResultType, ChallengeNameType, VerifySoftwareTokenResponseType,
};

/// The attribute an SMS code is sent to and verified for.
const PHONE_NUMBER: &str = "phone_number";

/// Cognito user pools, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct CognitoIdp {
    client: Client,
}

impl CognitoIdp {
    /// The provider using `client` (built by the caller, with its region and endpoint).
    pub fn new(client: Client) -> Self {
        CognitoIdp { client }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// What a Cognito error code means for the step-up API.
fn classify(code: Option<&str>) -> Option<IdpError> {
    Some(match code? {
        // Real Cognito answers a wrong `VerifySoftwareToken` code with
        // `EnableSoftwareTokenMFAException` ("Code mismatch"); moto with `CodeMismatchException`.
        "CodeMismatchException" | "EnableSoftwareTokenMFAException" => IdpError::CodeMismatch,
        "ExpiredCodeException" => IdpError::ExpiredCode,
        "LimitExceededException"
        | "TooManyRequestsException"
        | "TooManyFailedAttemptsException" => IdpError::LimitExceeded,
        // The token no longer stands for a usable user: revoked or signed out, or the user
        // was disabled, deleted, unconfirmed or must reset the password; WAF refused it.
        "NotAuthorizedException"
        | "UserNotFoundException"
        | "UserNotConfirmedException"
        | "PasswordResetRequiredException"
        | "ForbiddenException" => IdpError::NotAuthorized,
        // Asked for something the user does not have (no software token associated, no
        // phone number, ...).
        "InvalidParameterException" | "SoftwareTokenMFANotFoundException" => {
            IdpError::InvalidParameter
        }
        _ => return None,
    })
}

/// What a Cognito error of a sign-in call (`InitiateAuth`, `RespondToAuthChallenge`)
/// means: there `NotAuthorizedException` is a wrong password or an expired sign-in
/// session, not a revoked token — except "Unable to verify secret hash", which is a
/// client configured with a secret.
fn classify_sign_in(op: SignInCall, code: Option<&str>, message: Option<&str>) -> Option<IdpError> {
    let message = message.unwrap_or_default();
    Some(match code? {
        // An answer that does not fit the challenge (the client named another factor than
        // the one Cognito asked for): the client's mistake, not the configuration's.
        "InvalidParameterException" if op == SignInCall::Respond => IdpError::InvalidParameter,
        "NotAuthorizedException" if message.to_ascii_lowercase().contains("secret hash") => {
            IdpError::Misconfigured(format!(
                "Cognito: {message} (the app client has a secret; stepup signs in with public clients only)"
            ))
        }
        // `ResourceNotFoundException`: a sign-in session that no longer exists (the client
        // id comes from a verified token, so it is not the client that is missing).
        "NotAuthorizedException"
        | "UserNotFoundException"
        | "UserNotConfirmedException"
        | "PasswordResetRequiredException"
        | "ResourceNotFoundException" => IdpError::SignInRefused,
        "InvalidParameterException" | "InvalidUserPoolConfigurationException" => {
            IdpError::Misconfigured(format!(
                "Cognito: {message} (does the app client allow ALLOW_USER_PASSWORD_AUTH?)"
            ))
        }
        other => return classify(Some(other)),
    })
}

/// The two calls of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignInCall {
    /// `InitiateAuth`
    Initiate,
    /// `RespondToAuthChallenge`
    Respond,
}

/// Maps an SDK error of a sign-in call (see [`classify_sign_in`]).
fn sign_in_error<E, R>(op: SignInCall, err: SdkError<E, R>) -> IdpError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let name = match op {
        SignInCall::Initiate => "InitiateAuth",
        SignInCall::Respond => "RespondToAuthChallenge",
    };
    match classify_sign_in(op, err.code(), err.message()) {
        Some(mapped) => {
            tracing::debug!(
                op = name,
                code = err.code(),
                "Cognito refused the sign-in step"
            );
            mapped
        }
        None => idp_error(name, err),
    }
}

/// Where a sign-in stands after an `InitiateAuth` / `RespondToAuthChallenge` answer.
fn sign_in_step(
    challenge: Option<&ChallengeNameType>,
    session: Option<&str>,
    result: Option<&AuthenticationResultType>,
) -> Result<SignInStep, IdpError> {
    let session = || {
        session.map(|s| AuthSession(s.to_owned())).ok_or_else(|| {
            IdpError::Unavailable("Cognito sent a challenge without a session".into())
        })
    };
    match challenge {
        Some(ChallengeNameType::SoftwareTokenMfa) => Ok(SignInStep::Mfa {
            factor: MfaSetting::SoftwareToken,
            session: session()?,
        }),
        Some(ChallengeNameType::SmsMfa) => Ok(SignInStep::Mfa {
            factor: MfaSetting::Sms,
            session: session()?,
        }),
        Some(ChallengeNameType::SelectMfaType) => Ok(SignInStep::SelectMfa {
            session: session()?,
        }),
        Some(other) => Ok(SignInStep::Other(other.as_str().to_owned())),
        None => match result.and_then(|r| r.access_token()) {
            Some(token) => Ok(SignInStep::SignedIn {
                access_token: SignedInToken(token.to_owned()),
            }),
            None => Err(IdpError::Unavailable(
                "Cognito answered with neither a challenge nor tokens".into(),
            )),
        },
    }
}

/// Maps an SDK error of operation `op` to an [`IdpError`]. The texts kept for the log
/// name the operation, Cognito's error code and message; requests (holding the token and
/// the code) are never part of them.
fn idp_error<E, R>(op: &str, err: SdkError<E, R>) -> IdpError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(mapped) = classify(err.code()) {
        tracing::debug!(op, code = err.code(), "Cognito refused the request");
        return mapped;
    }
    let detail = match &err {
        SdkError::ServiceError(_) => format!(
            "Cognito {op}: {} ({})",
            err.code().unwrap_or("no error code"),
            err.message().unwrap_or("no message")
        ),
        // Timeouts, connection failures, unparseable responses.
        _ => format!("Cognito {op}: {}", DisplayErrorContext(&err)),
    };
    IdpError::Unavailable(detail)
}

#[async_trait]
impl IdentityProvider for CognitoIdp {
    async fn get_user(&self, access_token: &str) -> Result<UserInfo, IdpError> {
        let out = self
            .client
            .get_user()
            .access_token(access_token)
            .send()
            .await
            .map_err(|e| idp_error("GetUser", e))?;
        let attr = |name: &str| {
            out.user_attributes()
                .iter()
                .find(|a| a.name() == name)
                .and_then(|a| a.value())
        };
        Ok(UserInfo {
            username: out.username().to_owned(),
            preferred_mfa: out.preferred_mfa_setting().and_then(MfaSetting::parse),
            mfa_settings: out
                .user_mfa_setting_list()
                .iter()
                .filter_map(|s| MfaSetting::parse(s))
                .collect(),
            has_phone_number: attr(PHONE_NUMBER).is_some_and(|v| !v.is_empty()),
            phone_number_verified: attr("phone_number_verified") == Some("true"),
        })
    }

    async fn send_sms_code(&self, access_token: &str) -> Result<(), IdpError> {
        self.client
            .get_user_attribute_verification_code()
            .access_token(access_token)
            .attribute_name(PHONE_NUMBER)
            .send()
            .await
            .map_err(|e| idp_error("GetUserAttributeVerificationCode", e))?;
        Ok(())
    }

    async fn verify_software_token(&self, access_token: &str, code: &str) -> Result<(), IdpError> {
        let out = self
            .client
            .verify_software_token()
            .access_token(access_token)
            .user_code(code)
            .send()
            .await
            .map_err(|e| idp_error("VerifySoftwareToken", e))?;
        match out.status() {
            Some(VerifySoftwareTokenResponseType::Success) => Ok(()),
            _ => Err(IdpError::CodeMismatch),
        }
    }

    async fn start_sign_in(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<SignInStep, IdpError> {
        let out = self
            .client
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(client_id)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| sign_in_error(SignInCall::Initiate, e))?;
        sign_in_step(
            out.challenge_name(),
            out.session(),
            out.authentication_result(),
        )
    }

    async fn respond_to_sign_in(
        &self,
        client_id: &str,
        username: &str,
        session: &AuthSession,
        reply: ChallengeReply<'_>,
    ) -> Result<SignInStep, IdpError> {
        let request = self
            .client
            .respond_to_auth_challenge()
            .client_id(client_id)
            .session(&session.0)
            .challenge_responses("USERNAME", username);
        let request = match reply {
            ChallengeReply::Code {
                factor: MfaSetting::SoftwareToken,
                code,
            } => request
                .challenge_name(ChallengeNameType::SoftwareTokenMfa)
                .challenge_responses("SOFTWARE_TOKEN_MFA_CODE", code),
            ChallengeReply::Code {
                factor: MfaSetting::Sms,
                code,
            } => request
                .challenge_name(ChallengeNameType::SmsMfa)
                .challenge_responses("SMS_MFA_CODE", code),
            ChallengeReply::Select(factor) => request
                .challenge_name(ChallengeNameType::SelectMfaType)
                .challenge_responses("ANSWER", factor.as_str()),
        };
        let out = request
            .send()
            .await
            .map_err(|e| sign_in_error(SignInCall::Respond, e))?;
        sign_in_step(
            out.challenge_name(),
            out.session(),
            out.authentication_result(),
        )
    }

    async fn verify_sms_code(&self, access_token: &str, code: &str) -> Result<(), IdpError> {
        self.client
            .verify_user_attribute()
            .access_token(access_token)
            .attribute_name(PHONE_NUMBER)
            .code(code)
            .send()
            .await
            .map_err(|e| idp_error("VerifyUserAttribute", e))?;
        Ok(())
    }
}

/// A client configuration for a local Cognito stand-in (moto) at `endpoint`, e.g.
/// `http://127.0.0.1:5000`: the given region, static dummy credentials, the latest
/// behaviour version. Tests adjust it (retries, timeouts) before `build()`.
///
/// For local use and tests only: production binaries build their client from `aws-config`.
pub fn local_config(
    endpoint: &str,
    region: &str,
) -> aws_sdk_cognitoidentityprovider::config::Builder {
    aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("dummy", "dummy", None, None, "static"))
        .endpoint_url(endpoint)
}

/// A client for a local Cognito stand-in at `endpoint`; see [`local_config`]. For local
/// use and tests only.
pub fn local_client(endpoint: &str, region: &str) -> Client {
    Client::from_conf(local_config(endpoint, region).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_error_codes_map_to_the_api_answers() {
        let cases = [
            ("CodeMismatchException", Some(IdpError::CodeMismatch)),
            (
                "EnableSoftwareTokenMFAException",
                Some(IdpError::CodeMismatch),
            ),
            ("ExpiredCodeException", Some(IdpError::ExpiredCode)),
            ("LimitExceededException", Some(IdpError::LimitExceeded)),
            ("TooManyRequestsException", Some(IdpError::LimitExceeded)),
            (
                "TooManyFailedAttemptsException",
                Some(IdpError::LimitExceeded),
            ),
            ("NotAuthorizedException", Some(IdpError::NotAuthorized)),
            ("UserNotFoundException", Some(IdpError::NotAuthorized)),
            (
                "InvalidParameterException",
                Some(IdpError::InvalidParameter),
            ),
            (
                "SoftwareTokenMFANotFoundException",
                Some(IdpError::InvalidParameter),
            ),
            ("InternalErrorException", None),
            ("NotImplementedError", None),
        ];
        for (code, want) in cases {
            assert_eq!(classify(Some(code)), want, "{code}");
        }
        assert_eq!(classify(None), None);
    }

    #[test]
    fn sign_in_refusals_are_wrong_passwords_unless_the_client_is_misconfigured() {
        use SignInCall::{Initiate, Respond};
        let wrong = classify_sign_in(
            Initiate,
            Some("NotAuthorizedException"),
            Some("Incorrect username or password."),
        );
        assert_eq!(wrong, Some(IdpError::SignInRefused));
        assert!(matches!(
            classify_sign_in(
                Initiate,
                Some("NotAuthorizedException"),
                Some("Unable to verify secret hash for client abc")
            ),
            Some(IdpError::Misconfigured(_))
        ));
        assert!(matches!(
            classify_sign_in(
                Initiate,
                Some("InvalidParameterException"),
                Some("USER_PASSWORD_AUTH flow not enabled for this client")
            ),
            Some(IdpError::Misconfigured(_))
        ));
        assert_eq!(
            classify_sign_in(Respond, Some("InvalidParameterException"), None),
            Some(IdpError::InvalidParameter)
        );
        assert_eq!(
            classify_sign_in(Respond, Some("CodeMismatchException"), None),
            Some(IdpError::CodeMismatch)
        );
        assert_eq!(
            classify_sign_in(Respond, Some("InternalErrorException"), None),
            None
        );
    }

    #[test]
    fn challenges_map_to_sign_in_steps_and_tokens_without_a_challenge_are_a_sign_in() {
        let step = sign_in_step(Some(&ChallengeNameType::SmsMfa), Some("s"), None).unwrap();
        assert_eq!(
            step,
            SignInStep::Mfa {
                factor: MfaSetting::Sms,
                session: AuthSession("s".into())
            }
        );
        assert!(sign_in_step(Some(&ChallengeNameType::SoftwareTokenMfa), None, None).is_err());
        assert_eq!(
            sign_in_step(
                Some(&ChallengeNameType::NewPasswordRequired),
                Some("s"),
                None
            )
            .unwrap(),
            SignInStep::Other("NEW_PASSWORD_REQUIRED".into())
        );
        let tokens = AuthenticationResultType::builder()
            .access_token("t")
            .build();
        assert_eq!(
            sign_in_step(None, None, Some(&tokens)).unwrap(),
            SignInStep::SignedIn {
                access_token: SignedInToken("t".into())
            }
        );
        assert!(sign_in_step(None, None, None).is_err());
    }
}
