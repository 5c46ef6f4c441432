//! Verification of Amazon Cognito access tokens (RS256 JWTs) against the user pool's
//! JWKS, fetched from a configurable URL and cached.
//!
//! - [`cache`]: verified tokens by the SHA-256 of their bytes, so a repeated token skips
//!   the RSA verification;
//! - [`claims`]: the access-token claims stepup reads;
//! - [`jwks`]: the key cache (refetch on an unknown `kid`, rate limited);
//! - [`verify`]: the checks (algorithm, signature, `iss`, `token_use`, `client_id`,
//!   `exp`/`nbf` with leeway), with `now` passed in.

pub mod cache;
pub mod claims;
pub mod jwks;
pub mod verify;

pub use cache::{TokenCache, TokenCacheStats};
pub use claims::AccessClaims;
#[cfg(feature = "http-jwks")]
pub use jwks::HttpJwksFetcher;
pub use jwks::{JwksCache, JwksError, JwksFetcher};
pub use verify::{BearerError, TokenError, TokenVerifier, VerifierConfig, extract_bearer};
