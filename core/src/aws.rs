//! The AWS clients every binary builds once at start-up, from one `aws-config` load
//! (credential chain, region) plus the endpoint overrides used for DynamoDB Local and
//! moto. Shared by the sidecar and the Lambda functions so that both talk to DynamoDB
//! with the same short timeouts.

use std::time::Duration;

/// DynamoDB timeouts: a session read must succeed or fail (and the privileged request be
/// refused, fail closed) well within Envoy's 2 s ext_authz timeout and API Gateway's
/// authorizer budget; an authz timeout is an error to Envoy.
const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(700);
const DYNAMODB_OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);

/// Region and endpoint overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEndpoints {
    /// The AWS region (also of the Cognito user pool).
    pub region: String,
    /// DynamoDB endpoint override (DynamoDB Local).
    pub dynamodb: Option<String>,
    /// Cognito endpoint override (moto).
    pub cognito: Option<String>,
}

/// The AWS clients.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB (setting and session tables), with short timeouts and 2 attempts.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Cognito user pools (for the step-up API).
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
}

impl AwsClients {
    /// Loads the AWS configuration (credential chain, the given region) and builds the
    /// clients with the endpoint overrides.
    pub async fn load(endpoints: &AwsEndpoints) -> AwsClients {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(endpoints.region.clone()))
            .load()
            .await;
        AwsClients::from_sdk(&sdk, endpoints)
    }

    /// The clients from an already loaded AWS configuration (tests pass static
    /// credentials).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, endpoints: &AwsEndpoints) -> AwsClients {
        let mut ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(DYNAMODB_ATTEMPT_TIMEOUT)
                    .operation_attempt_timeout(DYNAMODB_ATTEMPT_TIMEOUT)
                    .operation_timeout(DYNAMODB_OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &endpoints.dynamodb {
            ddb = ddb.endpoint_url(endpoint);
        }
        let mut cognito = aws_sdk_cognitoidentityprovider::config::Builder::from(sdk);
        if let Some(endpoint) = &endpoints.cognito {
            cognito = cognito.endpoint_url(endpoint);
        }
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
            cognito: aws_sdk_cognitoidentityprovider::Client::from_conf(cognito.build()),
        }
    }
}
