//! Verification of a Cognito access token, with `now` passed in.
//!
//! The checks, in order (the first failure is the answer):
//!
//! 1. the header parses, `alg` is `RS256` (never `none`, never HMAC: a public key used
//!    as an HMAC secret must not verify), and it names a `kid`; `jku`, `jwk` and `x5u`
//!    header parameters are ignored, keys come from the configured JWKS only;
//! 2. the key for the `kid` (from the [`JwksCache`], refetched on a miss, rate limited);
//! 3. the RS256 signature, then the claims parse into [`AccessClaims`];
//! 4. `iss` is the configured issuer, `token_use` is `access` (an ID token is refused),
//!    `client_id` is allowed, `exp` and `nbf` hold with the configured leeway.
//!
//! jsonwebtoken's own time checks are switched off because they read the system clock;
//! ours use `now`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use crate::clock::UnixSeconds;
use crate::token::cache::{self, TokenCache};
use crate::token::claims::AccessClaims;
use crate::token::jwks::{JwksCache, JwksError, JwksFetcher};

/// Tokens longer than this are refused before any parsing. Cognito access tokens are a
/// few kilobytes even with many groups; Envoy's default header limit is 60 KiB.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token was refused. The texts name the failed check only, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, a header or claims that do not parse, or a required claim missing.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not RS256 (`none`, HMAC, other RSA/EC variants...).
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The header names no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// The `kid` is not in the JWKS (even after a refetch, or the refetch was rate limited).
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("token issued by another issuer")]
    WrongIssuer,
    /// `token_use` is not `access` (an ID token, say).
    #[error("not an access token")]
    NotAccessToken,
    /// `client_id` is not in the allowed list.
    #[error("token issued to a client that is not allowed")]
    ClientNotAllowed,
    /// `exp` (plus leeway) has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus leeway) is still ahead.
    #[error("token not yet valid")]
    NotYetValid,
    /// The JWKS could not be fetched when a refetch was needed.
    #[error("signing keys unavailable: {0}")]
    Jwks(#[from] JwksError),
}

impl TokenError {
    /// A short snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::MissingKid => "missing_kid",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::NotAccessToken => "not_access_token",
            TokenError::ClientNotAllowed => "client_not_allowed",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Jwks(JwksError::Fetch(_)) => "jwks_fetch",
            TokenError::Jwks(JwksError::BadDocument(_)) => "jwks_bad_document",
            TokenError::Jwks(JwksError::NoUsableKeys) => "jwks_no_usable_keys",
        }
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The exact `iss` accepted.
    pub issuer: String,
    /// Where the signing keys are fetched from.
    pub jwks_url: String,
    /// The app clients whose tokens are accepted. **Empty refuses every client** (fail
    /// closed): a missing setting must not mean "any client of the pool".
    pub allowed_client_ids: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// The least time between two JWKS refetches caused by unknown `kid`s.
    pub jwks_refetch_interval_secs: u64,
    /// How many verified tokens are remembered (see [`crate::token::cache`]); 0 verifies
    /// every token's signature every time.
    pub token_cache_size: usize,
}

impl VerifierConfig {
    /// The leeway [`VerifierConfig::cognito`] sets.
    pub const DEFAULT_LEEWAY_SECS: u64 = 60;
    /// The refetch interval [`VerifierConfig::cognito`] sets.
    pub const DEFAULT_JWKS_REFETCH_INTERVAL_SECS: u64 = 60;
    /// The token cache size [`VerifierConfig::cognito`] sets: about 3.5 MiB of claims (730
    /// bytes a Cognito token, measured by the `decision_latency` bench).
    pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 5_000;

    /// The settings for a Cognito user pool: issuer
    /// `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`, JWKS at
    /// `{issuer}/.well-known/jwks.json`, 60 s leeway, 60 s refetch interval.
    pub fn cognito(
        region: impl AsRef<str>,
        user_pool_id: impl AsRef<str>,
        client_ids: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let issuer = format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            region.as_ref(),
            user_pool_id.as_ref()
        );
        Self {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            allowed_client_ids: client_ids.into_iter().map(Into::into).collect(),
            leeway_secs: Self::DEFAULT_LEEWAY_SECS,
            jwks_refetch_interval_secs: Self::DEFAULT_JWKS_REFETCH_INTERVAL_SECS,
            token_cache_size: Self::DEFAULT_TOKEN_CACHE_SIZE,
        }
    }
}

/// Verifies access tokens against one issuer and its JWKS.
#[derive(Debug)]
pub struct TokenVerifier {
    config: VerifierConfig,
    jwks: JwksCache,
    /// Built once: RS256 only, every time/audience check off (done with `now` instead).
    validation: Validation,
    /// Tokens verified a moment ago (`None`: `token_cache_size` is 0).
    cache: Option<TokenCache>,
    /// RS256 signature checks made since start.
    signature_checks: AtomicU64,
}

impl TokenVerifier {
    /// A verifier with an empty key cache; load it with `jwks().refresh(now)`.
    pub fn new(config: VerifierConfig, fetcher: Arc<dyn JwksFetcher>) -> Self {
        let jwks = JwksCache::new(
            fetcher,
            config.jwks_url.clone(),
            config.jwks_refetch_interval_secs,
        );
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let cache = (config.token_cache_size > 0).then(|| TokenCache::new(config.token_cache_size));
        Self {
            config,
            jwks,
            validation,
            cache,
            signature_checks: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The key cache (for the initial load, background refresh and readiness).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// The verified-token cache, if on.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// How many RS256 signatures were checked since start (cache hits check none).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// Verifies `token` (the JWT without its scheme, see [`extract_bearer`]) at time `now`.
    ///
    /// A token found in the cache (same bytes, verified under the current JWKS) skips the
    /// header parsing and the signature, not the claim and time checks.
    pub async fn verify(
        &self,
        token: &str,
        now: UnixSeconds,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let Some(cache) = &self.cache else {
            return self.verify_signature(token, now).await.map(Arc::new);
        };
        // Read before the key is fetched: see JwksCache::generation.
        let generation = self.jwks.generation();
        let digest = cache::digest(token);
        if let Some(claims) = cache.get(&digest, generation) {
            self.check_claims(&claims, now)?;
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_signature(token, now).await?);
        cache.insert(digest, Arc::clone(&claims), generation);
        Ok(claims)
    }

    /// Every check, without the cache.
    async fn verify_signature(
        &self,
        token: &str,
        now: UnixSeconds,
    ) -> Result<AccessClaims, TokenError> {
        // A header jsonwebtoken cannot represent (`"alg": "none"` among them) fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        // RFC 7515 §4.1.11: refuse critical extensions we do not understand (all of them).
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let kid = header
            .kid
            .as_deref()
            .filter(|kid| !kid.is_empty())
            .ok_or(TokenError::MissingKid)?;
        let key = self.jwks.key(kid, now).await?;
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|e| decode_error(e.kind()))?
            .claims;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &AccessClaims, now: UnixSeconds) -> Result<(), TokenError> {
        if claims.iss != self.config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.token_use != "access" {
            return Err(TokenError::NotAccessToken);
        }
        if !self.config.allowed_client_ids.contains(&claims.client_id) {
            return Err(TokenError::ClientNotAllowed);
        }
        let leeway = self.config.leeway_secs;
        if claims.exp.plus(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.plus(leeway)) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// Maps a jsonwebtoken decode failure (after the header was accepted) to our kinds.
fn decode_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenError::UnsupportedAlgorithm,
        _ => TokenError::Malformed,
    }
}

/// Why an `Authorization` header gives no bearer token.
///
/// The two cases get different answers (RFC 6750 §3.1): a request without credentials is
/// told only which scheme to use, a request with credentials that are not `Bearer <token>`
/// is told it is malformed (`error="invalid_request"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization` header, or an empty one.
    #[error("no Authorization header")]
    Missing,
    /// Anything else that is not `Bearer <token>`: a bare token, another scheme (`Basic`,
    /// `Token`), `Bearer` alone, a token with whitespace inside.
    #[error("the Authorization header is not `Bearer <token>`")]
    Malformed,
}

impl BearerError {
    /// A short snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            BearerError::Missing => "missing",
            BearerError::Malformed => "malformed_header",
        }
    }
}

/// The token of an `Authorization` header value (`None`: the request has no such header).
///
/// Only `Bearer <token>` gives a token (RFC 6750 §2.1): the scheme in any case (RFC 9110
/// §11.1), whitespace around the parts trimmed. The token is returned whatever it looks
/// like, so that a bad one is verified and reported as invalid. No header, or one that is
/// empty or only whitespace, is [`BearerError::Missing`]; every other value is
/// [`BearerError::Malformed`], including a bare JWT with no scheme: a credential sent
/// without its scheme is refused rather than guessed at.
pub fn extract_bearer(header_value: Option<&str>) -> Result<&str, BearerError> {
    let value = header_value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(BearerError::Missing);
    }
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(BearerError::Malformed)?;
    let token = rest.trim();
    // A JWT is ASCII without spaces: a byte scan finds that at once (this runs on every
    // request over a kilobyte or so); only a token with a byte outside printable ASCII
    // is looked at char by char, for Unicode whitespace.
    let plain = token.bytes().all(|b| b.is_ascii_graphic());
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || (!plain && token.contains(|c: char| c.is_whitespace()))
    {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_whitespace_is_trimmed() {
        for value in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER abc.def.ghi",
            "BeArEr abc.def.ghi",
            "  Bearer \t abc.def.ghi  ",
        ] {
            assert_eq!(extract_bearer(Some(value)), Ok("abc.def.ghi"), "{value:?}");
        }
    }

    #[test]
    fn a_bearer_token_is_returned_even_if_it_does_not_look_like_a_jwt() {
        assert_eq!(extract_bearer(Some("Bearer garbage")), Ok("garbage"));
    }

    #[test]
    fn no_header_or_an_empty_one_is_missing() {
        for value in [None, Some(""), Some("   "), Some("\t")] {
            assert_eq!(
                extract_bearer(value),
                Err(BearerError::Missing),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_bare_jwt_is_malformed_even_though_the_seed_web_app_sends_one() {
        assert_eq!(
            extract_bearer(Some("eyJh.eyJz.c2ln")),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            extract_bearer(Some(" eyJh.eyJz.c2ln ")),
            Err(BearerError::Malformed)
        );
    }

    #[test]
    fn other_schemes_a_lone_scheme_and_inner_whitespace_are_malformed() {
        for value in [
            "Bearer",
            "Bearer   ",
            "bearer",
            "Basic dXNlcjpwYXNz",
            "Token abc.def.ghi",
            "Bearerabc.def.ghi",
            "Bearer a b",
            "Bearer abc.def.ghi extra",
            "Bearer, abc.def.ghi",
            "garbage",
            "abc.def",
        ] {
            assert_eq!(
                extract_bearer(Some(value)),
                Err(BearerError::Malformed),
                "{value:?}"
            );
        }
    }

    #[test]
    fn bearer_error_labels_name_the_case() {
        assert_eq!(BearerError::Missing.metric_label(), "missing");
        assert_eq!(BearerError::Malformed.metric_label(), "malformed_header");
    }

    #[test]
    fn error_labels_are_distinct_snake_case() {
        let errors = [
            TokenError::Malformed,
            TokenError::UnsupportedAlgorithm,
            TokenError::MissingKid,
            TokenError::UnknownKey,
            TokenError::BadSignature,
            TokenError::WrongIssuer,
            TokenError::NotAccessToken,
            TokenError::ClientNotAllowed,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::Jwks(JwksError::Fetch("x".to_owned())),
            TokenError::Jwks(JwksError::BadDocument("x".to_owned())),
            TokenError::Jwks(JwksError::NoUsableKeys),
        ];
        let mut labels: Vec<&str> = errors.iter().map(TokenError::metric_label).collect();
        assert!(
            labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), errors.len());
    }

    #[test]
    fn cognito_config_derives_issuer_and_jwks_url_from_region_and_pool() {
        let config = VerifierConfig::cognito("eu-west-1", "eu-west-1_Abc", ["client-1"]);
        assert_eq!(
            config.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc"
        );
        assert_eq!(
            config.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc/.well-known/jwks.json"
        );
        assert_eq!(config.allowed_client_ids, vec!["client-1"]);
        assert_eq!(config.leeway_secs, 60);
        assert_eq!(config.jwks_refetch_interval_secs, 60);
    }
}
