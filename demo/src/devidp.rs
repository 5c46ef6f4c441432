//! A local **development** identity provider that stands in for an Amazon Cognito user
//! pool, so that stepup can be tried with no AWS account (the `stepup-demo`
//! command). It sits behind the same traits as Cognito: [`IdentityProvider`] for the
//! step-up API and [`JwksFetcher`] for token verification.
//!
//! - users with passwords (salted SHA-256; sign-up is confirmed at once);
//! - Cognito-shaped RS256 access tokens (`sub`, `iss`, `client_id`, `origin_jti`,
//!   `token_use=access`, `scope`, `auth_time`, `iat`, `exp`, `jti`, `username`, and the
//!   `acr` / `amr` of the sign-in) signed by a key generated at start ([`keys`]), with
//!   their JWKS;
//! - password sign-ins with Cognito's MFA challenge ([`signin`]): `USER_PASSWORD_AUTH`
//!   for the step-up API's default verification, and `USER_AUTH` with
//!   `TARGET_ACR_VALUES` for claims mode (tokens with `acr` `urn:cognito:loa:4` after a
//!   TOTP, `urn:cognito:loa:3` after an SMS code);
//! - TOTP software tokens as Cognito does them: associate (a secret, an `otpauth://` URI
//!   and a QR code), verify once to enable, set as preferred MFA; codes checked by
//!   RFC 6238 ([`totp`]);
//! - SMS codes, which are not sent anywhere: they go to an [`SmsSink`], by default the
//!   console;
//! - [`routes`]: the HTTP endpoints a web page calls (sign-up, sign-in, step-up
//!   sign-in, software-token set-up, MFA preference, JWKS).
//!
//! **Never use it in production**: it keeps everything in memory, prints SMS codes, and
//! trusts whoever can reach it to create users. Time is a parameter of every method that
//! needs it (`*_at`); only the [`IdentityProvider`] implementation, the edge the step-up
//! API calls, reads the (injectable) clock.
//!
//! ```text
//!  sign_up ─► sign_in ─► access token ─► associate_software_token ─► (secret, otpauth URI, QR)
//!                                     └► verify_software_token(code) ─► enabled
//!                                     └► set_mfa_preference(SoftwareToken, preferred)
//!  step-up API (default): start_sign_in(password) ─► Mfa(SOFTWARE_TOKEN_MFA | SMS_MFA)
//!                         ─► respond_to_sign_in(code) ─► SignedIn (same `sub`)
//!  step-up API (seed-compatible): get_user ─► verify_software_token(code)
//! ```

pub mod keys;
pub mod routes;
pub mod signin;
pub mod totp;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use keys::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use signin::{AuthMethods, PendingSignIn, SignInFlow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use stepup_core::api::{
    AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep, UserInfo,
};
use stepup_core::clock::{self, UnixSeconds};
use stepup_core::token::{JwksError, JwksFetcher, VerifierConfig};
use totp::TotpKey;

pub use routes::{DEV_IDP_PREFIX, router};

/// What went wrong in the development identity provider. The texts are for logs; HTTP
/// answers carry a fixed message per kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevIdpError {
    /// Wrong user name or password, an unknown, expired or revoked access token, or an
    /// unknown, expired or used sign-in session.
    #[error("not authorized")]
    NotAuthorized,
    /// A sign-in through an app client the provider does not have.
    #[error("unknown app client")]
    UnknownClient,
    /// Sign-up with a user name that is taken.
    #[error("user name exists")]
    UsernameExists,
    /// A request that does not fit (bad user name, short password, no software token
    /// associated, no phone number, ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    /// A wrong code.
    #[error("code mismatch")]
    CodeMismatch,
    /// An SMS code past its lifetime.
    #[error("code expired")]
    ExpiredCode,
    /// Key generation, signing, randomness, a poisoned lock.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DevIdpError {
    /// Cognito's name of the error (`__type`), also the metric label.
    pub fn cognito_type(&self) -> &'static str {
        match self {
            DevIdpError::NotAuthorized => "NotAuthorizedException",
            DevIdpError::UnknownClient => "ResourceNotFoundException",
            DevIdpError::UsernameExists => "UsernameExistsException",
            DevIdpError::InvalidParameter(_) => "InvalidParameterException",
            DevIdpError::CodeMismatch => "CodeMismatchException",
            DevIdpError::ExpiredCode => "ExpiredCodeException",
            DevIdpError::Internal(_) => "InternalErrorException",
        }
    }
}

impl From<DevIdpError> for IdpError {
    fn from(e: DevIdpError) -> IdpError {
        match e {
            DevIdpError::NotAuthorized => IdpError::NotAuthorized,
            DevIdpError::UnknownClient => {
                IdpError::Misconfigured("the app client does not exist".to_owned())
            }
            DevIdpError::UsernameExists | DevIdpError::InvalidParameter(_) => {
                IdpError::InvalidParameter
            }
            DevIdpError::CodeMismatch => IdpError::CodeMismatch,
            DevIdpError::ExpiredCode => IdpError::ExpiredCode,
            DevIdpError::Internal(detail) => IdpError::Unavailable(detail),
        }
    }
}

/// Where SMS codes go instead of a phone: `(phone number, code)`.
pub type SmsSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The default [`SmsSink`]: prints the code on standard error, marked as development only.
pub fn console_sms_sink() -> SmsSink {
    Arc::new(|phone: &str, code: &str| {
        eprintln!(
            "[stepup dev-idp] DEVELOPMENT ONLY - SMS to {phone}: your verification code is {code}"
        );
    })
}

/// Settings of the development identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevIdpConfig {
    /// The `iss` of the tokens, e.g. `http://127.0.0.1:8080/dev-idp`; the JWKS is served at
    /// `{issuer}/.well-known/jwks.json` by [`router()`] when mounted at that place.
    pub issuer: String,
    /// The app client the tokens are issued to (`client_id`).
    pub client_id: String,
    /// Access-token lifetime.
    pub token_lifetime_secs: u64,
    /// The issuer label authenticator apps show next to the account.
    pub totp_issuer: String,
    /// How long an SMS code stays valid.
    pub sms_code_lifetime_secs: u64,
}

impl DevIdpConfig {
    /// One-hour tokens (Cognito's default), 5-minute SMS codes.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> DevIdpConfig {
        DevIdpConfig {
            issuer: issuer.into(),
            client_id: client_id.into(),
            token_lifetime_secs: 3600,
            totp_issuer: "stepup demo".to_owned(),
            sms_code_lifetime_secs: 300,
        }
    }
}

/// A signed-in session's access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The RS256 access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

/// What [`DevIdp::associate_software_token_at`] gives the user: the secret, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// Base32 secret (Cognito's `SecretCode`).
    pub secret_code: String,
    /// `otpauth://totp/...`.
    pub otpauth_uri: String,
    /// The QR code of the URI, an SVG picture in a `data:` URL.
    pub qr_code_data_url: String,
}

/// An MFA preference change (Cognito's `SetUserMFAPreference` settings of one factor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MfaPreference {
    /// The factor is enabled.
    pub enabled: bool,
    /// The factor is the preferred one.
    pub preferred: bool,
}

struct User {
    password_salt: [u8; 16],
    password_hash: [u8; 32],
    sub: String,
    phone_number: Option<String>,
    totp: Option<TotpKey>,
    totp_verified: bool,
    mfa_settings: Vec<MfaSetting>,
    preferred_mfa: Option<MfaSetting>,
    sms_code: Option<(String, UnixSeconds)>,
}

struct TokenRecord {
    username: String,
    exp: UnixSeconds,
}

#[derive(Default)]
struct State {
    users: HashMap<String, User>,
    /// SHA-256 of issued access tokens: the provider recognises its own tokens, as
    /// Cognito's user-context API does (and can revoke them).
    tokens: HashMap<[u8; 32], TokenRecord>,
    /// Sign-ins waiting for a code or a choice, by the SHA-256 of their session.
    sign_ins: HashMap<[u8; 32], PendingSignIn>,
}

/// The development identity provider. Share it in an `Arc`.
pub struct DevIdp {
    config: DevIdpConfig,
    key: SigningKey,
    state: Mutex<State>,
    sms: SmsSink,
    clock: fn() -> UnixSeconds,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// A provider with a freshly generated signing key and no users. Logs a warning: it is
    /// for development only.
    pub fn new(config: DevIdpConfig) -> Result<DevIdp, DevIdpError> {
        tracing::warn!(
            issuer = %config.issuer,
            "the development identity provider is running: for local development only, never in production"
        );
        Ok(DevIdp {
            key: SigningKey::generate()?,
            config,
            state: Mutex::new(State::default()),
            sms: console_sms_sink(),
            clock: clock::now,
        })
    }

    /// Sends SMS codes to `sink` instead of the console.
    pub fn with_sms_sink(mut self, sink: SmsSink) -> DevIdp {
        self.sms = sink;
        self
    }

    /// Reads time from `clock` in the [`IdentityProvider`] methods (tests).
    pub fn with_clock(mut self, clock: fn() -> UnixSeconds) -> DevIdp {
        self.clock = clock;
        self
    }

    /// The settings.
    pub fn config(&self) -> &DevIdpConfig {
        &self.config
    }

    /// The public keys of the tokens.
    pub fn jwks(&self) -> &JwkSet {
        self.key.jwks()
    }

    /// What a [`stepup_core::token::TokenVerifier`] needs to accept this provider's tokens.
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            issuer: self.config.issuer.clone(),
            jwks_url: format!("{}/.well-known/jwks.json", self.config.issuer),
            allowed_client_ids: vec![self.config.client_id.clone()],
            leeway_secs: VerifierConfig::DEFAULT_LEEWAY_SECS,
            jwks_refetch_interval_secs: VerifierConfig::DEFAULT_JWKS_REFETCH_INTERVAL_SECS,
            token_cache_size: VerifierConfig::DEFAULT_TOKEN_CACHE_SIZE,
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, DevIdpError> {
        self.state
            .lock()
            .map_err(|_| DevIdpError::Internal("state lock poisoned".to_owned()))
    }

    /// Creates a confirmed user. A phone number, when given, counts as verified.
    pub fn sign_up(
        &self,
        username: &str,
        password: &str,
        phone_number: Option<&str>,
    ) -> Result<(), DevIdpError> {
        if username.is_empty()
            || username.len() > 128
            || !username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
        {
            return Err(DevIdpError::InvalidParameter("username"));
        }
        if password.chars().count() < 8 || password.len() > 256 {
            return Err(DevIdpError::InvalidParameter("password"));
        }
        if let Some(p) = phone_number {
            let digits = p.strip_prefix('+').unwrap_or("");
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DevIdpError::InvalidParameter("phone_number"));
            }
        }
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let user = User {
            password_salt: salt,
            password_hash: password_hash(&salt, password),
            sub: random_hex(16)?,
            phone_number: phone_number.map(str::to_owned),
            totp: None,
            totp_verified: false,
            mfa_settings: Vec::new(),
            preferred_mfa: None,
            sms_code: None,
        };
        let mut state = self.state()?;
        if state.users.contains_key(username) {
            return Err(DevIdpError::UsernameExists);
        }
        state.users.insert(username.to_owned(), user);
        Ok(())
    }

    /// Checks the password and issues an access token at `now` (`acr`
    /// `urn:cognito:loa:1`, `amr` `["pwd"]`). A step-up is *not* asked for at sign-in:
    /// that is the point of step-up authentication.
    pub fn sign_in_at(
        &self,
        username: &str,
        password: &str,
        now: UnixSeconds,
    ) -> Result<SignedIn, DevIdpError> {
        let mut state = self.state()?;
        match state.users.get(username) {
            Some(u) if password_hash(&u.password_salt, password) == u.password_hash => {}
            _ => return Err(DevIdpError::NotAuthorized),
        }
        self.issue_token(&mut state, username, AuthMethods::PASSWORD, now)
    }

    /// Signs and records an access token of `username` at `now` for a sign-in that proved
    /// `methods`; `auth_time` is `now`.
    fn issue_token(
        &self,
        state: &mut State,
        username: &str,
        methods: AuthMethods,
        now: UnixSeconds,
    ) -> Result<SignedIn, DevIdpError> {
        let sub = state
            .users
            .get(username)
            .map(|u| u.sub.clone())
            .ok_or(DevIdpError::NotAuthorized)?;
        let jti = uuid_like()?;
        let exp = now.plus(self.config.token_lifetime_secs);
        let claims = json!({
            "sub": sub,
            "iss": self.config.issuer,
            "client_id": self.config.client_id,
            "origin_jti": uuid_like()?,
            "event_id": uuid_like()?,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": now,
            "iat": now,
            "exp": exp,
            "jti": jti,
            "username": username,
            "acr": methods.level().acr(),
            "amr": methods.amr(),
        });
        let access_token = self.key.sign(&claims)?;
        state.tokens.retain(|_, t| t.exp > now);
        state.tokens.insert(
            token_hash(&access_token),
            TokenRecord {
                username: username.to_owned(),
                exp,
            },
        );
        Ok(SignedIn {
            access_token,
            expires_in: self.config.token_lifetime_secs,
        })
    }

    /// Revokes every token of the token's user (Cognito's `GlobalSignOut`).
    pub fn sign_out_at(&self, access_token: &str, now: UnixSeconds) -> Result<(), DevIdpError> {
        let mut state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        state.tokens.retain(|_, t| t.username != username);
        Ok(())
    }

    /// Starts a software-token set-up: a new secret (replacing any earlier, unverified
    /// or not), to be verified with [`DevIdp::verify_software_token_at`].
    pub fn associate_software_token_at(
        &self,
        access_token: &str,
        now: UnixSeconds,
    ) -> Result<Association, DevIdpError> {
        let mut secret = vec![0u8; 20];
        fill_random(&mut secret)?;
        let mut state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        let key = TotpKey::authenticator(secret, &self.config.totp_issuer, &username)?;
        let association = Association {
            secret_code: key.secret_base32(),
            otpauth_uri: key.otpauth_uri()?,
            qr_code_data_url: key.qr_svg_data_url()?,
        };
        let user = user_mut(&mut state, &username)?;
        user.totp = Some(key);
        user.totp_verified = false;
        user.mfa_settings
            .retain(|m| *m != MfaSetting::SoftwareToken);
        if user.preferred_mfa == Some(MfaSetting::SoftwareToken) {
            user.preferred_mfa = None;
        }
        Ok(association)
    }

    /// Checks a TOTP code of the user's software token at `now`; the first success after
    /// an association marks the token verified (Cognito's `VerifySoftwareToken`).
    pub fn verify_software_token_at(
        &self,
        access_token: &str,
        code: &str,
        now: UnixSeconds,
    ) -> Result<(), DevIdpError> {
        let mut state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        let user = user_mut(&mut state, &username)?;
        let key = user.totp.as_ref().ok_or(DevIdpError::InvalidParameter(
            "no software token associated",
        ))?;
        if key.verify(code, now).is_none() {
            return Err(DevIdpError::CodeMismatch);
        }
        user.totp_verified = true;
        Ok(())
    }

    /// Enables, disables or prefers a factor (Cognito's `SetUserMFAPreference`). A
    /// software token must be verified, SMS needs a phone number.
    pub fn set_mfa_preference_at(
        &self,
        access_token: &str,
        software_token: Option<MfaPreference>,
        sms: Option<MfaPreference>,
        now: UnixSeconds,
    ) -> Result<(), DevIdpError> {
        let mut state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        let user = user_mut(&mut state, &username)?;
        if software_token.is_some_and(|p| p.enabled) && !user.totp_verified {
            return Err(DevIdpError::InvalidParameter("software token not verified"));
        }
        if sms.is_some_and(|p| p.enabled) && user.phone_number.is_none() {
            return Err(DevIdpError::InvalidParameter("no phone number"));
        }
        for (factor, pref) in [
            (MfaSetting::SoftwareToken, software_token),
            (MfaSetting::Sms, sms),
        ] {
            let Some(pref) = pref else { continue };
            user.mfa_settings.retain(|m| *m != factor);
            if pref.enabled {
                user.mfa_settings.push(factor);
            }
            if pref.enabled && pref.preferred {
                user.preferred_mfa = Some(factor);
            } else if user.preferred_mfa == Some(factor) {
                user.preferred_mfa = None;
            }
        }
        Ok(())
    }

    /// Who the token belongs to and which factors the user has (Cognito's `GetUser`).
    pub fn get_user_at(
        &self,
        access_token: &str,
        now: UnixSeconds,
    ) -> Result<UserInfo, DevIdpError> {
        let state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        let user = state
            .users
            .get(&username)
            .ok_or(DevIdpError::NotAuthorized)?;
        Ok(UserInfo {
            username,
            preferred_mfa: user.preferred_mfa,
            mfa_settings: user.mfa_settings.clone(),
            has_phone_number: user.phone_number.is_some(),
            phone_number_verified: user.phone_number.is_some(),
        })
    }

    /// Makes a new SMS code (valid for the configured lifetime) and hands it to the
    /// [`SmsSink`].
    pub fn send_sms_code_at(
        &self,
        access_token: &str,
        now: UnixSeconds,
    ) -> Result<(), DevIdpError> {
        let code = random_code()?;
        let phone = {
            let mut state = self.state()?;
            let username = user_of(&state, access_token, now)?;
            let user = user_mut(&mut state, &username)?;
            let phone = user
                .phone_number
                .clone()
                .ok_or(DevIdpError::InvalidParameter("no phone number"))?;
            user.sms_code = Some((code.clone(), now.plus(self.config.sms_code_lifetime_secs)));
            phone
        };
        (self.sms)(&phone, &code);
        Ok(())
    }

    /// Checks the last SMS code sent; a right code is used up.
    pub fn verify_sms_code_at(
        &self,
        access_token: &str,
        code: &str,
        now: UnixSeconds,
    ) -> Result<(), DevIdpError> {
        let mut state = self.state()?;
        let username = user_of(&state, access_token, now)?;
        let user = user_mut(&mut state, &username)?;
        match &user.sms_code {
            Some((expected, _)) if expected.as_bytes() != code.trim().as_bytes() => {
                Err(DevIdpError::CodeMismatch)
            }
            Some((_, until)) if *until < now => {
                user.sms_code = None;
                Err(DevIdpError::ExpiredCode)
            }
            Some(_) => {
                user.sms_code = None;
                Ok(())
            }
            None => Err(DevIdpError::CodeMismatch),
        }
    }
}

fn user_of(state: &State, access_token: &str, now: UnixSeconds) -> Result<String, DevIdpError> {
    match state.tokens.get(&token_hash(access_token)) {
        Some(t) if t.exp > now && state.users.contains_key(&t.username) => Ok(t.username.clone()),
        _ => Err(DevIdpError::NotAuthorized),
    }
}

fn user_mut<'s>(state: &'s mut State, username: &str) -> Result<&'s mut User, DevIdpError> {
    state
        .users
        .get_mut(username)
        .ok_or(DevIdpError::NotAuthorized)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn password_hash(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().into()
}

fn fill_random(buf: &mut [u8]) -> Result<(), DevIdpError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| DevIdpError::Internal("random bytes".to_owned()))
}

/// `n` random bytes in lower-case hex.
pub(crate) fn random_hex(n: usize) -> Result<String, DevIdpError> {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random six-digit code (an SMS code).
fn random_code() -> Result<String, DevIdpError> {
    let mut bytes = [0u8; 4];
    fill_random(&mut bytes)?;
    Ok(format!("{:06}", u32::from_be_bytes(bytes) % 1_000_000))
}

/// A random UUID-shaped string (as Cognito's `jti`).
fn uuid_like() -> Result<String, DevIdpError> {
    let h = random_hex(16)?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// A random password of `len` letters and digits (for a demo user).
pub fn random_password(len: usize) -> Result<String, DevIdpError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut buf = vec![0u8; len];
    fill_random(&mut buf)?;
    Ok(buf
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

#[async_trait]
impl IdentityProvider for DevIdp {
    async fn get_user(&self, access_token: &str) -> Result<UserInfo, IdpError> {
        Ok(self.get_user_at(access_token, (self.clock)())?)
    }

    async fn send_sms_code(&self, access_token: &str) -> Result<(), IdpError> {
        Ok(self.send_sms_code_at(access_token, (self.clock)())?)
    }

    async fn verify_software_token(&self, access_token: &str, code: &str) -> Result<(), IdpError> {
        Ok(self.verify_software_token_at(access_token, code, (self.clock)())?)
    }

    async fn verify_sms_code(&self, access_token: &str, code: &str) -> Result<(), IdpError> {
        Ok(self.verify_sms_code_at(access_token, code, (self.clock)())?)
    }

    async fn start_sign_in(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<SignInStep, IdpError> {
        self.start_sign_in_at(
            client_id,
            username,
            password,
            SignInFlow::UserPassword,
            (self.clock)(),
        )
        .map_err(sign_in_error)
    }

    async fn respond_to_sign_in(
        &self,
        client_id: &str,
        username: &str,
        session: &AuthSession,
        reply: ChallengeReply<'_>,
    ) -> Result<SignInStep, IdpError> {
        self.respond_to_sign_in_at(client_id, username, &session.0, reply, (self.clock)())
            .map_err(sign_in_error)
    }
}

/// A refused sign-in is [`IdpError::SignInRefused`] (Cognito's `NotAuthorizedException` of
/// `InitiateAuth` / `RespondToAuthChallenge`), not a refused access token.
fn sign_in_error(e: DevIdpError) -> IdpError {
    match e {
        DevIdpError::NotAuthorized => IdpError::SignInRefused,
        other => other.into(),
    }
}

/// The provider serves its own JWKS in-process (no HTTP round trip to itself).
#[async_trait]
impl JwksFetcher for DevIdp {
    async fn fetch(&self, _url: &str) -> Result<JwkSet, JwksError> {
        Ok(self.key.jwks().clone())
    }
}

#[cfg(test)]
mod tests;
