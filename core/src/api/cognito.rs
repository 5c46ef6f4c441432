//! The Amazon Cognito [`IdentityProvider`]: the user-context calls of the Cognito user
//! pools API (`GetUser`, `GetUserAttributeVerificationCode`, `VerifySoftwareToken`,
//! `VerifyUserAttribute`), made with the user's access token, and the mapping of Cognito's
//! error codes to [`IdpError`].
//!
//! The binaries build the [`Client`] (region, credentials, retries, timeouts) from
//! `aws-config`; [`local_client`] serves tests and local stand-ins such as moto.

use super::idp::{IdentityProvider, IdpError, MfaSetting, UserInfo};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::VerifySoftwareTokenResponseType;

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
}
