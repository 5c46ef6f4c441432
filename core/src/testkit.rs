//! Test support shared by the workspace's tests and benchmarks (feature `testkit`, never
//! enabled in a release build): a token issuer signing Cognito-shaped access tokens with
//! the test-only fixture key of `core/tests/fixtures/`, and a fixed JWKS fetcher.

use crate::clock::UnixSeconds;
use crate::token::{JwksError, JwksFetcher, TokenVerifier, VerifierConfig};
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;

/// The test-only private key (`kid` `test-key-1`). Never trust it anywhere.
pub const TEST_KEY_PEM: &[u8] = include_bytes!("../tests/fixtures/test_key_1.pem");
/// Its JWKS.
pub const TEST_JWKS: &str = include_str!("../tests/fixtures/test_key_1.jwks.json");
/// The region of the test user pool.
pub const TEST_REGION: &str = "us-east-1";
/// The test user pool.
pub const TEST_POOL: &str = "us-east-1_StepUpTest";
/// The app client the test tokens are issued to.
pub const TEST_CLIENT_ID: &str = "stepup-test-client";

/// Serves one fixed JWKS and never fails.
#[derive(Debug, Clone)]
pub struct StaticJwks(pub JwkSet);

#[async_trait]
impl JwksFetcher for StaticJwks {
    async fn fetch(&self, _url: &str) -> Result<JwkSet, JwksError> {
        Ok(self.0.clone())
    }
}

/// Signs test access tokens.
#[derive(Debug, Clone)]
pub struct TestIssuer {
    key: Arc<EncodingKey>,
    jwks: JwkSet,
    config: VerifierConfig,
}

impl TestIssuer {
    /// The issuer of the test pool, signing with the fixture key.
    #[allow(clippy::expect_used)]
    pub fn new() -> TestIssuer {
        TestIssuer {
            key: Arc::new(EncodingKey::from_rsa_pem(TEST_KEY_PEM).expect("fixture key parses")),
            jwks: serde_json::from_str(TEST_JWKS).expect("fixture JWKS parses"),
            config: VerifierConfig::cognito(TEST_REGION, TEST_POOL, [TEST_CLIENT_ID]),
        }
    }

    /// The verifier configuration matching the issued tokens.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The issuer URL (`iss`).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The JWKS of the signing key.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A verifier for these tokens with its JWKS already loaded.
    pub async fn verifier(&self, now: UnixSeconds) -> TokenVerifier {
        let v = TokenVerifier::new(self.config.clone(), Arc::new(StaticJwks(self.jwks.clone())));
        let _ = v.jwks().refresh(now).await;
        v
    }

    /// The claims of a valid access token for `username` with this `jti`, issued at `now`
    /// for an hour.
    pub fn claims(&self, username: &str, jti: &str, now: UnixSeconds) -> Value {
        json!({
            "sub": format!("sub-{username}"),
            "iss": self.config.issuer,
            "client_id": TEST_CLIENT_ID,
            "origin_jti": format!("origin-{jti}"),
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
            "jti": jti,
            "username": username,
        })
    }

    /// Signs `claims` (RS256, `kid` `test-key-1`).
    #[allow(clippy::expect_used)]
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing with the fixture key")
    }

    /// A valid signed access token.
    pub fn token(&self, username: &str, jti: &str, now: UnixSeconds) -> String {
        self.sign(&self.claims(username, jti, now))
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}
