//! Test support shared by the workspace's tests and benchmarks (feature `testkit`, never
//! enabled in a release build): a token issuer signing Cognito-shaped access tokens with
//! the test-only fixture key of `core/tests/fixtures/`, a fixed JWKS fetcher, item and
//! completed-session fixtures, and TOTP codes as an authenticator app computes them.

pub mod components;
pub mod offline;
pub mod world;
use crate::clock::UnixSeconds;
use crate::item::{Attr, Item};
use crate::session::{Factor, Session, SessionLimits};
use crate::store::{SessionStore, StoreError};
use crate::token::{JwksError, JwksFetcher, TokenVerifier, VerifierConfig};
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;

/// The test-only private key (`kid` `test-key-1`). Never trust it anywhere.
pub const TEST_KEY_PEM: &[u8] = include_bytes!("../../tests/fixtures/test_key_1.pem");
/// Its JWKS.
pub const TEST_JWKS: &str = include_str!("../../tests/fixtures/test_key_1.jwks.json");
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
        self.verifier_with_token_cache(now, self.config.token_cache_size)
            .await
    }

    /// [`Self::verifier`] remembering at most `token_cache_size` verified tokens (0: none).
    pub async fn verifier_with_token_cache(
        &self,
        now: UnixSeconds,
        token_cache_size: usize,
    ) -> TokenVerifier {
        let config = VerifierConfig {
            token_cache_size,
            ..self.config.clone()
        };
        let v = TokenVerifier::new(config, Arc::new(StaticJwks(self.jwks.clone())));
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
            "exp": now.plus(3600),
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

/// `Authorization` values that are not `Bearer <token>` for a valid `token`: the bare
/// token, another scheme, the token behind another scheme, a lone `Bearer`. Every
/// enforcement point must answer each with 401 `invalid_request`.
pub fn malformed_authorizations(token: &str) -> Vec<String> {
    vec![
        token.to_owned(),
        "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned(),
        format!("Token {token}"),
        "Token x".to_owned(),
        "Bearer".to_owned(),
    ]
}

/// An item with these attributes.
pub fn item(pairs: &[(&str, Attr)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A setting item as the seed's README makes it by hand: `id` and `stepUpState` only
/// (exact path = `id`, any method, any host).
pub fn seed_item(id: &str, state: &str) -> Item {
    item(&[("id", Attr::s(id)), ("stepUpState", Attr::s(state))])
}

/// Writes a session for `session_id` as the step-up API leaves it after a right answer:
/// created (conditionally, so there must be no live one) and then completed with `factor`,
/// both at `at`, for a token of `user` and `client_id` expiring at `token_exp`. Returns the
/// completed session.
pub async fn put_completed_session(
    store: &dyn SessionStore,
    session_id: &str,
    user: &str,
    client_id: &str,
    token_exp: UnixSeconds,
    at: UnixSeconds,
    factor: Factor,
) -> Result<Session, StoreError> {
    let pending = Session::initiate(
        session_id,
        user,
        client_id,
        token_exp,
        at,
        &SessionLimits::default(),
    );
    store.put(&pending, None, at).await?;
    let done = pending.after_success(factor, at);
    store.put(&done, Some(pending.version), at).await?;
    Ok(done)
}

/// The secret moto hands out for every `AssociateSoftwareToken` (base32).
pub const MOTO_TOTP_SECRET: &str = "asdfasdfasdf";

/// RFC 4648 base32, case-insensitive, padding optional; leftover bits are dropped. `None`
/// for a character outside the alphabet.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').chars() {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 6238 TOTP with HMAC-SHA1 and 30 s steps (what Cognito, moto and authenticator apps
/// use), `digits` long. Tests compute codes with it as a user's app would.
pub fn totp_sha1(secret: &[u8], unix_secs: UnixSeconds, digits: u32) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &(unix_secs.as_secs() / 30).to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The 6-digit code moto accepts at `now` for its fixed secret.
pub fn moto_totp(now: UnixSeconds) -> String {
    let secret = base32_decode(MOTO_TOTP_SECRET).unwrap_or_default();
    totp_sha1(&secret, now, 6)
}

/// The claims of a JWT, read without checking anything (tests read the `jti` of tokens an
/// identity provider issued). `Value::Null` for a string that is not a JWT.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// moto standing in for Cognito user pools: a pool with an app client, users, sign-in and
/// software-token set-up, shared by the Cognito client tests and the Envoy end-to-end
/// tests. The helpers panic on a failed call, as test code does.
#[cfg(feature = "cognito")]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod moto {
    use super::{MOTO_TOTP_SECRET, moto_totp};
    use crate::clock;
    use aws_sdk_cognitoidentityprovider::Client;
    use aws_sdk_cognitoidentityprovider::config::retry::RetryConfig;
    use aws_sdk_cognitoidentityprovider::config::timeout::TimeoutConfig;
    use aws_sdk_cognitoidentityprovider::types::{
        AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
        SoftwareTokenMfaSettingsType,
    };
    use std::time::Duration;

    /// The region moto's pools live in.
    pub const REGION: &str = "us-east-1";
    /// The password of every test user.
    pub const PASSWORD: &str = "Str0ng-Passw0rd!";

    /// A client for moto: one attempt per call (moto answers unimplemented calls with a
    /// 500, which the SDK would otherwise retry) and a 10 s timeout.
    pub fn client(endpoint: &str) -> Client {
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(10))
            .build();
        Client::from_conf(
            crate::api::cognito::local_config(endpoint, REGION)
                .retry_config(RetryConfig::standard().with_max_attempts(1))
                .timeout_config(timeouts)
                .build(),
        )
    }

    /// The code moto accepts now, at least 3 s before its step ends (moto allows no
    /// clock-skew window).
    pub async fn totp_now() -> String {
        let mut now = clock::now();
        if now.as_secs() % 30 >= 27 {
            tokio::time::sleep(Duration::from_secs(30 - now.as_secs() % 30)).await;
            now = clock::now();
        }
        moto_totp(now)
    }

    /// A user pool with an app client allowing `USER_PASSWORD_AUTH`.
    #[derive(Debug, Clone)]
    pub struct MotoPool {
        /// The SDK client talking to moto.
        pub client: Client,
        /// The pool id.
        pub pool_id: String,
        /// The app client id.
        pub client_id: String,
    }

    impl MotoPool {
        /// Creates a fresh pool named `name` with its app client.
        pub async fn create(client: Client, name: &str) -> MotoPool {
            let pool_id = client
                .create_user_pool()
                .pool_name(name)
                .send()
                .await
                .unwrap()
                .user_pool()
                .and_then(|p| p.id())
                .unwrap()
                .to_owned();
            let client_id = client
                .create_user_pool_client()
                .user_pool_id(&pool_id)
                .client_name("stepup")
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
                .send()
                .await
                .unwrap()
                .user_pool_client()
                .and_then(|c| c.client_id())
                .unwrap()
                .to_owned();
            MotoPool {
                client,
                pool_id,
                client_id,
            }
        }

        /// The issuer (`iss`) of the pool's tokens: the real AWS form, as moto writes it.
        pub fn issuer(&self) -> String {
            format!(
                "https://cognito-idp.{REGION}.amazonaws.com/{}",
                self.pool_id
            )
        }

        /// The pool's JWKS URL on the moto server at `endpoint`.
        pub fn jwks_url(&self, endpoint: &str) -> String {
            format!("{endpoint}/{}/.well-known/jwks.json", self.pool_id)
        }

        /// Creates a confirmed user with [`PASSWORD`], with a verified phone number if given.
        pub async fn create_user(&self, username: &str, phone: Option<&str>) {
            let mut create = self
                .client
                .admin_create_user()
                .user_pool_id(&self.pool_id)
                .username(username)
                .message_action(MessageActionType::Suppress);
            if let Some(phone) = phone {
                for (name, value) in [("phone_number", phone), ("phone_number_verified", "true")] {
                    create = create.user_attributes(
                        AttributeType::builder()
                            .name(name)
                            .value(value)
                            .build()
                            .unwrap(),
                    );
                }
            }
            create.send().await.unwrap();
            self.client
                .admin_set_user_password()
                .user_pool_id(&self.pool_id)
                .username(username)
                .password(PASSWORD)
                .permanent(true)
                .send()
                .await
                .unwrap();
        }

        /// Signs the user in with its password: a new access token (its own `jti`).
        pub async fn sign_in(&self, username: &str) -> String {
            let auth = self
                .client
                .initiate_auth()
                .client_id(&self.client_id)
                .auth_flow(AuthFlowType::UserPasswordAuth)
                .auth_parameters("USERNAME", username)
                .auth_parameters("PASSWORD", PASSWORD)
                .send()
                .await
                .unwrap();
            auth.authentication_result()
                .and_then(|r| r.access_token())
                .expect("an access token")
                .to_owned()
        }

        /// AssociateSoftwareToken: moto's secret is always [`MOTO_TOTP_SECRET`].
        pub async fn associate_software_token(&self, access_token: &str) {
            let out = self
                .client
                .associate_software_token()
                .access_token(access_token)
                .send()
                .await
                .unwrap();
            assert_eq!(out.secret_code(), Some(MOTO_TOTP_SECRET));
        }

        /// Associates, verifies and prefers a software token for the token's user, so that
        /// `/initiate-auth` answers `SOFTWARE_TOKEN_STEP_UP`.
        pub async fn prefer_software_token(&self, access_token: &str) {
            self.associate_software_token(access_token).await;
            // Cognito (and moto) accept the preference only for a verified token.
            self.client
                .verify_software_token()
                .access_token(access_token)
                .user_code(totp_now().await)
                .send()
                .await
                .unwrap();
            self.set_software_token_preferred(access_token).await;
        }

        /// Makes an already verified software token the user's preferred MFA.
        pub async fn set_software_token_preferred(&self, access_token: &str) {
            self.client
                .set_user_mfa_preference()
                .access_token(access_token)
                .software_token_mfa_settings(
                    SoftwareTokenMfaSettingsType::builder()
                        .enabled(true)
                        .preferred_mfa(true)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_sha1_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                totp_sha1(secret, UnixSeconds::from_secs(t), 8),
                want,
                "t={t}"
            );
        }
    }

    #[test]
    fn jwt_claims_reads_the_payload_of_a_signed_token() {
        let issuer = TestIssuer::new();
        assert_eq!(
            jwt_claims(&issuer.token("alice", "j-1", UnixSeconds::from_secs(10)))["jti"],
            "j-1"
        );
        assert_eq!(jwt_claims("not a jwt"), Value::Null);
    }

    #[test]
    fn base32_follows_rfc_4648() {
        assert_eq!(base32_decode("MZXW6YTBOI======"), Some(b"foobar".to_vec()));
        assert_eq!(base32_decode("mzxw6ytboi"), Some(b"foobar".to_vec()));
        assert_eq!(base32_decode("MZ1"), None);
    }
}
