//! AWS failures in words a person can act on: the one place where an AWS SDK error
//! becomes a cause ("no credentials found", "endpoint unreachable", "access denied",
//! "table missing", "throttled", ...) and a hint of what to try (`AWS_PROFILE`,
//! `AWS_REGION`, `--dynamodb-endpoint`, ...). Every binary prints these: the stores
//! return them ([`crate::store::StoreError::Aws`]), and the operator, the sidecar and the
//! Lambda functions print the one line of [`AwsError`]'s `Display`; the SDK's full error
//! chain ([`AwsError::detail`]) goes only to `debug` logs.
//!
//! The classification is pure ([`AwsCause::classify`] over [`ErrorFacts`]) and tested
//! here without the SDK; [`ErrorFacts::of_sdk`] (feature `dynamodb`) only reads an SDK
//! error into facts.

use std::fmt;

/// Why an AWS call failed, as a person would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AwsCause {
    /// No credential provider had credentials (no env keys, no profile, no role).
    #[error("no AWS credentials found")]
    NoCredentials,
    /// AWS refused the credentials (unknown key, bad signature, expired token).
    #[error("the AWS credentials were refused (invalid or expired)")]
    CredentialsRefused,
    /// No region was configured, so no endpoint could be chosen.
    #[error("no AWS region is set")]
    NoRegion,
    /// The endpoint could not be connected to (refused, DNS, network).
    #[error("the endpoint cannot be reached")]
    Unreachable,
    /// The call took too long.
    #[error("the request timed out")]
    TimedOut,
    /// The credentials are valid but not allowed to do this.
    #[error("access denied")]
    AccessDenied,
    /// The table (or user pool) does not exist in this account and region.
    #[error("it does not exist")]
    NotFound,
    /// AWS asked us to slow down.
    #[error("throttled")]
    Throttled,
    /// An answer that is not AWS's (another service at the endpoint, a proxy page).
    #[error("the endpoint did not answer like AWS")]
    BadResponse,
    /// Any other error code of the service.
    #[error("the service refused the request")]
    Service,
}

/// What a failed call tells about itself, read from the SDK's error (see
/// [`ErrorFacts::of_sdk`]); what [`AwsCause::classify`] decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFacts {
    /// How the SDK failed.
    pub kind: FailureKind,
    /// The service's error code (`AccessDeniedException`, ...), when it answered.
    pub code: Option<String>,
    /// The error and all its sources, joined (`DisplayErrorContext`).
    pub chain: String,
}

/// The SDK's kinds of failure (`SdkError`'s variants, dispatch split by cause).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureKind {
    /// The request could not be built (no region, bad endpoint URL).
    Construction,
    /// Sending failed on I/O (connection refused, DNS).
    DispatchIo,
    /// Sending timed out.
    DispatchTimeout,
    /// Sending failed otherwise (typically: credentials could not be loaded).
    #[default]
    DispatchOther,
    /// The whole operation timed out.
    Timeout,
    /// An answer that could not be read.
    Response,
    /// The service answered with an error.
    ServiceError,
}

impl AwsCause {
    /// The cause of a failure with these facts.
    pub fn classify(facts: &ErrorFacts) -> AwsCause {
        let chain = facts.chain.to_ascii_lowercase();
        let credentials = chain.contains("credentials") || chain.contains("credential provider");
        match facts.kind {
            FailureKind::ServiceError => Self::of_code(facts.code.as_deref().unwrap_or("")),
            FailureKind::Timeout | FailureKind::DispatchTimeout => AwsCause::TimedOut,
            FailureKind::DispatchIo => AwsCause::Unreachable,
            FailureKind::Response => AwsCause::BadResponse,
            _ if chain.contains("region")
                && (chain.contains("missing") || chain.contains("no region")) =>
            {
                AwsCause::NoRegion
            }
            _ if credentials && (chain.contains("expired") || chain.contains("invalid")) => {
                AwsCause::CredentialsRefused
            }
            _ if credentials => AwsCause::NoCredentials,
            _ if chain.contains("connect") || chain.contains("dns") => AwsCause::Unreachable,
            _ => AwsCause::Service,
        }
    }

    /// The cause of a service error code.
    fn of_code(code: &str) -> AwsCause {
        match code {
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException" => AwsCause::CredentialsRefused,
            "AccessDeniedException" | "AccessDenied" | "NotAuthorizedException" => {
                AwsCause::AccessDenied
            }
            "ResourceNotFoundException" => AwsCause::NotFound,
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "Throttling"
            | "TooManyRequestsException" => AwsCause::Throttled,
            _ => AwsCause::Service,
        }
    }
}

/// What the failed call was about: which table, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTarget {
    /// `setting table`, `session table`, `table`.
    pub what: &'static str,
    /// The table name or pool id.
    pub name: String,
    /// The endpoint override, when one is configured (DynamoDB Local, moto, a VPC
    /// endpoint); `None`: AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    /// The region the client was configured with.
    pub region: Option<String>,
}

impl fmt::Display for AwsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.what, self.name)?;
        match (&self.endpoint, &self.region) {
            (Some(e), _) => write!(f, " at {e}"),
            (None, Some(r)) => write!(f, " in {r}"),
            (None, None) => Ok(()),
        }
    }
}

/// A failed AWS call: what it was doing, why it failed, what to try. `Display` is the one
/// line a person reads; [`AwsError::detail`] is the SDK's chain, for `debug` logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} of {target}: {cause}; {}", self.hint())]
pub struct AwsError {
    /// `DynamoDB`, `Cognito`.
    pub service: &'static str,
    /// The API call (`Scan`, `GetItem`, ...).
    pub operation: &'static str,
    /// The table or pool, and where.
    pub target: AwsTarget,
    /// Why it failed.
    pub cause: AwsCause,
    /// The SDK's full error chain (never in the one-line message).
    pub detail: String,
}

impl AwsError {
    /// What to try, naming the flags and variables that change the outcome.
    pub fn hint(&self) -> String {
        // Only the DynamoDB stores make these errors today.
        let (flag, var) = ("--dynamodb-endpoint", "STEPUP_DYNAMODB_ENDPOINT");
        let endpoint_flag = format!("{flag} ({var})");
        let name_flags = match self.target.what {
            "setting table" => {
                "--setting-table / --table-prefix (STEPUP_SETTING_TABLE / STEPUP_TABLE_PREFIX)"
            }
            "session table" => {
                "--session-table / --table-prefix (STEPUP_SESSION_TABLE / STEPUP_TABLE_PREFIX)"
            }
            _ => "the table name",
        };
        match (self.cause, &self.target.endpoint) {
            (AwsCause::NoCredentials, _) => format!(
                "try: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or for a \
                 local stand-in pass {flag} http://127.0.0.1:8000 ({var})"
            ),
            (AwsCause::CredentialsRefused, _) => {
                "try: renew the credentials (`aws sso login`, new keys) or choose another AWS_PROFILE".to_owned()
            }
            (AwsCause::NoRegion, _) => {
                "try: set --region (STEPUP_REGION) or AWS_REGION, or a region in the AWS_PROFILE".to_owned()
            }
            (AwsCause::Unreachable | AwsCause::TimedOut, Some(e)) => {
                format!("try: start the service at {e} or correct {endpoint_flag}")
            }
            (AwsCause::Unreachable | AwsCause::TimedOut, None) => format!(
                "try: check the network and --region (STEPUP_REGION / AWS_REGION), or set {endpoint_flag}"
            ),
            (AwsCause::AccessDenied, _) => format!(
                "try: allow {}:{} on it in the IAM policy of the credentials, or choose another AWS_PROFILE",
                self.service.to_ascii_lowercase(),
                self.operation
            ),
            (AwsCause::NotFound, _) => format!(
                "try: create it, or name the right one with {name_flags} and --region (STEPUP_REGION / AWS_REGION)"
            ),
            (AwsCause::Throttled, _) => "try: again later, or raise the table's capacity".to_owned(),
            (AwsCause::BadResponse, _) => {
                format!("try: check that {endpoint_flag} points at the AWS service")
            }
            (AwsCause::Service, _) => "try: RUST_LOG=debug for the full AWS error".to_owned(),
        }
    }
}

#[cfg(feature = "dynamodb")]
impl ErrorFacts {
    /// Reads the facts of an SDK error.
    pub fn of_sdk<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> ErrorFacts
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata as _, SdkError};
        let kind = match err {
            SdkError::ConstructionFailure(_) => FailureKind::Construction,
            SdkError::TimeoutError(_) => FailureKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_io() => FailureKind::DispatchIo,
            SdkError::DispatchFailure(d) if d.is_timeout() => FailureKind::DispatchTimeout,
            SdkError::DispatchFailure(_) => FailureKind::DispatchOther,
            SdkError::ResponseError(_) => FailureKind::Response,
            _ => FailureKind::ServiceError,
        };
        ErrorFacts {
            kind,
            code: err.code().map(str::to_owned),
            chain: DisplayErrorContext(err).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: FailureKind, code: Option<&str>, chain: &str) -> ErrorFacts {
        ErrorFacts {
            kind,
            code: code.map(str::to_owned),
            chain: chain.to_owned(),
        }
    }

    fn error(cause: AwsCause, endpoint: Option<&str>) -> AwsError {
        AwsError {
            service: "DynamoDB",
            operation: "Scan",
            target: AwsTarget {
                what: "setting table",
                name: "step-up-auth-setting".into(),
                endpoint: endpoint.map(str::to_owned),
                region: Some("eu-west-1".into()),
            },
            cause,
            detail: "dispatch failure: io error: Connection refused (os error 111)".into(),
        }
    }

    #[test]
    fn the_sdks_failures_are_classified_by_kind_code_and_words() {
        use AwsCause::*;
        use FailureKind::{
            Construction, DispatchIo, DispatchOther, DispatchTimeout, Response, ServiceError,
            Timeout,
        };
        let cases = [
            (
                facts(
                    DispatchIo,
                    None,
                    "dispatch failure: io error: Connection refused",
                ),
                Unreachable,
            ),
            (facts(DispatchTimeout, None, "timeout"), TimedOut),
            (facts(Timeout, None, "operation timed out"), TimedOut),
            (
                facts(
                    DispatchOther,
                    None,
                    "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session token",
                ),
                NoCredentials,
            ),
            (
                facts(
                    DispatchOther,
                    None,
                    "other: the credential provider was not enabled: no providers in chain provided credentials",
                ),
                NoCredentials,
            ),
            (
                facts(
                    DispatchOther,
                    None,
                    "other: an error occurred while loading credentials: the SSO session has expired",
                ),
                CredentialsRefused,
            ),
            (
                facts(
                    Construction,
                    None,
                    "failed to construct request: Invalid Configuration: Missing Region",
                ),
                NoRegion,
            ),
            (
                facts(ServiceError, Some("UnrecognizedClientException"), ""),
                CredentialsRefused,
            ),
            (
                facts(ServiceError, Some("ExpiredTokenException"), ""),
                CredentialsRefused,
            ),
            (
                facts(ServiceError, Some("AccessDeniedException"), ""),
                AccessDenied,
            ),
            (
                facts(ServiceError, Some("ResourceNotFoundException"), ""),
                NotFound,
            ),
            (
                facts(ServiceError, Some("ThrottlingException"), ""),
                Throttled,
            ),
            (
                facts(ServiceError, Some("ValidationException"), ""),
                Service,
            ),
            (facts(Response, None, "response error"), BadResponse),
        ];
        for (f, expected) in cases {
            assert_eq!(AwsCause::classify(&f), expected, "{f:?}");
        }
    }

    #[test]
    fn the_line_says_what_why_and_what_to_try_without_the_chain() {
        let e = error(AwsCause::Unreachable, Some("http://127.0.0.1:9"));
        let line = e.to_string();
        assert_eq!(
            line,
            "DynamoDB Scan of setting table `step-up-auth-setting` at http://127.0.0.1:9: \
             the endpoint cannot be reached; try: start the service at http://127.0.0.1:9 \
             or correct --dynamodb-endpoint (STEPUP_DYNAMODB_ENDPOINT)"
        );
        assert!(!line.contains('\n') && !line.contains("os error"));
        let e = error(AwsCause::NoCredentials, None);
        assert!(e.to_string().starts_with(
            "DynamoDB Scan of setting table `step-up-auth-setting` in eu-west-1: no AWS credentials found; try: set AWS_PROFILE"
        ), "{e}");
    }

    #[test]
    fn every_cause_has_a_hint_naming_something_to_change() {
        use AwsCause::*;
        for cause in [
            NoCredentials,
            CredentialsRefused,
            NoRegion,
            Unreachable,
            TimedOut,
            AccessDenied,
            NotFound,
            Throttled,
            BadResponse,
            Service,
        ] {
            for endpoint in [None, Some("http://127.0.0.1:9")] {
                let hint = error(cause, endpoint).hint();
                assert!(hint.starts_with("try: "), "{cause:?}: {hint}");
            }
        }
        assert!(error(NotFound, None).hint().contains("--setting-table"));
        assert!(error(AccessDenied, None).hint().contains("dynamodb:Scan"));
        assert!(error(NoRegion, None).hint().contains("AWS_REGION"));
    }
}
