//! The AWS clients every binary builds once at start-up, from one `aws-config` load
//! (credential chain, region) plus the endpoint overrides used for DynamoDB Local and
//! moto. One [`sdk_config`] for all three binaries:
//!
//! - the region is the configured one, else the SDK's chain (`AWS_REGION`, profile, ...);
//! - with a DynamoDB endpoint on a loopback address (DynamoDB Local), a missing region
//!   is `us-east-1` and missing credentials are dummies, since DynamoDB Local checks no
//!   signature (without them the SDK would ask the instance metadata service, slowly and
//!   in vain);
//! - endpoint overrides are set per client, so a DynamoDB Local endpoint never redirects
//!   Cognito.
//!
//! The DynamoDB client's timeouts depend on who waits for it ([`DynamoTimeouts`]): a
//! decision must fail closed within Envoy's and API Gateway's budgets, a batch write of
//! the operator may take the SDK's default time.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::time::Duration;

/// DynamoDB timeouts on the request path: a session read must succeed or fail (and the
/// privileged request be refused, fail closed) well within Envoy's 2 s ext_authz timeout
/// and API Gateway's authorizer budget; an authz timeout is an error to Envoy.
const DECISION_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(700);
const DECISION_OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const DECISION_MAX_ATTEMPTS: u32 = 2;

/// The region used with a loopback DynamoDB endpoint when none is configured.
const LOCAL_REGION: &str = "us-east-1";

/// Region and endpoint overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEndpoints {
    /// The AWS region (also of the Cognito user pool); `None`: the SDK's chain.
    pub region: Option<String>,
    /// DynamoDB endpoint override (DynamoDB Local).
    pub dynamodb: Option<String>,
    /// Cognito endpoint override (moto).
    pub cognito: Option<String>,
}

/// How long a DynamoDB call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoTimeouts {
    /// The request path (sidecar, Lambda): 700 ms an attempt, 1.5 s in all, 2 attempts.
    Decision,
    /// The SDK's defaults (the operator's sync and reconcile writes, which nobody waits on
    /// with a deadline).
    Sdk,
}

/// Loads the AWS configuration: credential chain, the configured region, and the
/// loopback defaults (see the module doc).
pub async fn sdk_config(endpoints: &AwsEndpoints) -> SdkConfig {
    let local = endpoints.dynamodb.as_deref().is_some_and(is_loopback);
    let env_set = |names: &[&str]| {
        names
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    match &endpoints.region {
        Some(r) => loader = loader.region(Region::new(r.clone())),
        None if local && !env_set(&["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"]) => {
            loader = loader.region(Region::new(LOCAL_REGION));
        }
        None => {}
    }
    if local
        && !env_set(&[
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ])
    {
        loader =
            loader.credentials_provider(Credentials::new("dummy", "dummy", None, None, "loopback"));
    }
    loader.load().await
}

/// The DynamoDB client from a loaded configuration, with the endpoint override.
pub fn dynamodb(
    sdk: &SdkConfig,
    endpoints: &AwsEndpoints,
    timeouts: DynamoTimeouts,
) -> aws_sdk_dynamodb::Client {
    let mut ddb = aws_sdk_dynamodb::config::Builder::from(sdk);
    if timeouts == DynamoTimeouts::Decision {
        ddb = ddb
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(DECISION_ATTEMPT_TIMEOUT)
                    .operation_attempt_timeout(DECISION_ATTEMPT_TIMEOUT)
                    .operation_timeout(DECISION_OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(DECISION_MAX_ATTEMPTS),
            );
    }
    if let Some(endpoint) = &endpoints.dynamodb {
        ddb = ddb.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(ddb.build())
}

/// Loads the configuration and builds the DynamoDB client alone (the operator).
pub async fn dynamodb_client(
    endpoints: &AwsEndpoints,
    timeouts: DynamoTimeouts,
) -> aws_sdk_dynamodb::Client {
    dynamodb(&sdk_config(endpoints).await, endpoints, timeouts)
}

/// The clients of the enforcement points (sidecar, Lambda).
#[cfg(feature = "api")]
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB (setting and session tables), with the request path's timeouts.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Cognito user pools (for the step-up API).
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
}

#[cfg(feature = "api")]
impl AwsClients {
    /// Loads the AWS configuration ([`sdk_config`]) and builds the clients with the
    /// endpoint overrides.
    pub async fn load(endpoints: &AwsEndpoints) -> AwsClients {
        AwsClients::from_sdk(&sdk_config(endpoints).await, endpoints)
    }

    /// The clients from an already loaded AWS configuration (tests pass static
    /// credentials).
    pub fn from_sdk(sdk: &SdkConfig, endpoints: &AwsEndpoints) -> AwsClients {
        let mut cognito = aws_sdk_cognitoidentityprovider::config::Builder::from(sdk);
        if let Some(endpoint) = &endpoints.cognito {
            cognito = cognito.endpoint_url(endpoint);
        }
        AwsClients {
            dynamodb: dynamodb(sdk, endpoints, DynamoTimeouts::Decision),
            cognito: aws_sdk_cognitoidentityprovider::Client::from_conf(cognito.build()),
        }
    }
}

/// Is the URL's host `localhost` or a loopback address?
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_recognised() {
        for yes in [
            "http://127.0.0.1:8000",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "127.0.0.2",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    fn static_sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build()
    }

    #[test]
    fn the_request_path_client_has_short_timeouts_and_the_operators_the_sdks() {
        let endpoints = AwsEndpoints {
            dynamodb: Some("http://127.0.0.1:8000".into()),
            ..AwsEndpoints::default()
        };
        let decision = dynamodb(&static_sdk(), &endpoints, DynamoTimeouts::Decision);
        let timeouts = decision.config().timeout_config().unwrap();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(DECISION_OPERATION_TIMEOUT)
        );
        assert_eq!(
            decision.config().retry_config().unwrap().max_attempts(),
            DECISION_MAX_ATTEMPTS
        );
        let sdk = dynamodb(&static_sdk(), &endpoints, DynamoTimeouts::Sdk);
        assert_eq!(
            sdk.config()
                .timeout_config()
                .and_then(|t| t.operation_timeout()),
            None
        );
    }

    #[tokio::test]
    async fn a_loopback_endpoint_without_a_region_gets_one() {
        let endpoints = AwsEndpoints {
            dynamodb: Some("http://127.0.0.1:8000".into()),
            ..AwsEndpoints::default()
        };
        let sdk = sdk_config(&endpoints).await;
        assert!(sdk.region().is_some());
        let endpoints = AwsEndpoints {
            region: Some("ap-south-1".into()),
            ..endpoints
        };
        assert_eq!(
            sdk_config(&endpoints).await.region().map(|r| r.as_ref()),
            Some("ap-south-1")
        );
    }
}
