//! What the step-up API works with ([`ApiState`]) and its settings: how codes are verified
//! ([`Verification`]) and which browsers may call it ([`CorsPolicy`]).

use super::idp::IdentityProvider;
use crate::session::SessionLimits;
use crate::store::SessionStore;
use crate::token::TokenVerifier;
use std::sync::Arc;

/// How `/respond-to-challenge` checks a code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verification {
    /// Cognito's own MFA challenge (the default): the user signs in again with the
    /// password and Cognito checks the code against the factor already enrolled; the
    /// signed-in `sub` must be the token's. A thief holding only the access token fails.
    #[default]
    CognitoMfa,
    /// **Weak**, for the seed's unchanged web app: `VerifySoftwareToken` /
    /// `VerifyUserAttribute` with the access token. Whoever holds the token can enrol its
    /// own authenticator (`AssociateSoftwareToken`) and pass.
    SeedCompatible,
}

impl Verification {
    /// The setting's spelling (`cognito-mfa`, `seed-compatible`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::CognitoMfa => "cognito-mfa",
            Verification::SeedCompatible => "seed-compatible",
        }
    }

    /// Parses the setting's spelling (case and surrounding space ignored).
    pub fn parse(s: &str) -> Option<Verification> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cognito-mfa" => Some(Verification::CognitoMfa),
            "seed-compatible" => Some(Verification::SeedCompatible),
            _ => None,
        }
    }

    /// The warning every binary logs at start-up in the weak mode.
    pub const SEED_COMPATIBLE_WARNING: &'static str = "verification=seed-compatible: codes are checked with Cognito's enrolment calls (VerifySoftwareToken); anyone holding a user's access token can enrol their own authenticator and pass the step-up. Use only for the seed's unchanged web app, and move to cognito-mfa.";
}

/// Which browser origins and request headers the step-up API allows (CORS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// Allowed origins; `*` allows any. Compared exactly with the request's `Origin`.
    pub allow_origins: Vec<String>,
    /// `Access-Control-Allow-Headers` of the preflight.
    pub allow_headers: String,
}

impl CorsPolicy {
    /// The seed's API Gateway list, `Identification` included (the seed's web app sends
    /// its ID token in it).
    pub const DEFAULT_ALLOW_HEADERS: &'static str =
        "Content-Type,X-Amz-Date,Authorization,Identification,X-Api-Key,X-Amz-Security-Token";

    /// Any origin, the seed's headers.
    pub fn any_origin() -> CorsPolicy {
        CorsPolicy {
            allow_origins: vec!["*".to_owned()],
            allow_headers: Self::DEFAULT_ALLOW_HEADERS.to_owned(),
        }
    }

    /// These origins only, the seed's headers.
    pub fn origins<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> CorsPolicy {
        CorsPolicy {
            allow_origins: origins.into_iter().map(Into::into).collect(),
            allow_headers: Self::DEFAULT_ALLOW_HEADERS.to_owned(),
        }
    }

    /// The policy from its settings: a comma-separated list of origins (`*` for any) and
    /// the `Access-Control-Allow-Headers` value (empty: the seed's list). Every value must
    /// be a valid header value, and an origin `*` or `scheme://host[:port]`.
    pub fn parse(origins: &str, headers: &str) -> Result<CorsPolicy, CorsError> {
        let allow_origins: Vec<String> = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if allow_origins.is_empty() {
            return Err(CorsError::NoOrigin);
        }
        for origin in &allow_origins {
            let shaped = origin == "*"
                || (origin.contains("://")
                    && !origin.ends_with('/')
                    && http::HeaderValue::from_str(origin).is_ok());
            if !shaped {
                return Err(CorsError::BadOrigin(origin.escape_debug().to_string()));
            }
        }
        let headers = headers.trim();
        let allow_headers = if headers.is_empty() {
            Self::DEFAULT_ALLOW_HEADERS.to_owned()
        } else if http::HeaderValue::from_str(headers).is_ok() {
            headers.to_owned()
        } else {
            return Err(CorsError::BadHeaders);
        };
        Ok(CorsPolicy {
            allow_origins,
            allow_headers,
        })
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allowed_origin<'a>(&'a self, origin: Option<&'a str>) -> Option<&'a str> {
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some("*");
        }
        let origin = origin?;
        self.allow_origins
            .iter()
            .any(|o| o == origin)
            .then_some(origin)
    }

    /// True when the answer depends on the request's `Origin` (`Vary: Origin`).
    pub fn varies(&self) -> bool {
        !self.allow_origins.iter().any(|o| o == "*")
    }
}

/// A CORS setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsError {
    /// The origin list is empty.
    #[error("no allowed origin given (use `*` for any)")]
    NoOrigin,
    /// An origin is neither `*` nor `scheme://host[:port]` without a trailing `/`.
    #[error("allowed origin `{0}` is not `*` nor `scheme://host[:port]`")]
    BadOrigin(String),
    /// The allowed headers are not a valid header value.
    #[error("allowed headers are not a valid header value")]
    BadHeaders,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        CorsPolicy::any_origin()
    }
}

/// What the step-up API works with. Cheap to clone (shared parts are behind `Arc`s).
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Verifies the caller's access token (and the one a sign-in returns).
    pub verifier: Arc<TokenVerifier>,
    /// The session table (sessions, replay markers, SMS rate-limit markers).
    pub sessions: Arc<dyn SessionStore>,
    /// Cognito (or a stand-in).
    pub idp: Arc<dyn IdentityProvider>,
    /// Lockout and TTL limits of sessions.
    pub limits: SessionLimits,
    /// Key sessions by `origin_jti` (a step-up survives a token refresh) instead of `jti`.
    pub use_origin_jti: bool,
    /// At most one SMS per user in this many seconds.
    pub sms_min_interval_secs: u64,
    /// How codes are verified.
    pub verification: Verification,
    /// Allowed origins and headers.
    pub cors: CorsPolicy,
}

impl ApiState {
    /// The default of [`ApiState::sms_min_interval_secs`].
    pub const DEFAULT_SMS_MIN_INTERVAL_SECS: u64 = 30;

    /// A state with the default limits, sessions keyed by `jti`, one SMS per 30 s,
    /// Cognito's MFA challenge and CORS for any origin with the seed's headers.
    pub fn new(
        verifier: Arc<TokenVerifier>,
        sessions: Arc<dyn SessionStore>,
        idp: Arc<dyn IdentityProvider>,
    ) -> Self {
        ApiState {
            verifier,
            sessions,
            idp,
            limits: SessionLimits::default(),
            use_origin_jti: false,
            sms_min_interval_secs: Self::DEFAULT_SMS_MIN_INTERVAL_SECS,
            verification: Verification::default(),
            cors: CorsPolicy::default(),
        }
    }

    /// Sets the session limits.
    pub fn with_limits(mut self, limits: SessionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keys sessions by `origin_jti` when `on`.
    pub fn with_origin_jti(mut self, on: bool) -> Self {
        self.use_origin_jti = on;
        self
    }

    /// Sets the least time between two SMS to one user.
    pub fn with_sms_min_interval_secs(mut self, secs: u64) -> Self {
        self.sms_min_interval_secs = secs;
        self
    }

    /// Sets how codes are verified.
    pub fn with_verification(mut self, verification: Verification) -> Self {
        self.verification = verification;
        self
    }

    /// Sets the CORS policy.
    pub fn with_cors(mut self, cors: CorsPolicy) -> Self {
        self.cors = cors;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_settings_parse_their_spellings_only() {
        for v in [Verification::CognitoMfa, Verification::SeedCompatible] {
            assert_eq!(Verification::parse(v.as_str()), Some(v));
        }
        assert_eq!(
            Verification::parse(" Seed-Compatible "),
            Some(Verification::SeedCompatible)
        );
        assert_eq!(Verification::parse("seed"), None);
        assert_eq!(Verification::default(), Verification::CognitoMfa);
    }

    #[test]
    fn cors_settings_parse_lists_and_refuse_what_a_browser_could_not_match() {
        let p = CorsPolicy::parse(" https://a.example , https://b.example:8443 ", "").unwrap();
        assert_eq!(
            p.allow_origins,
            ["https://a.example", "https://b.example:8443"]
        );
        assert_eq!(p.allow_headers, CorsPolicy::DEFAULT_ALLOW_HEADERS);
        assert_eq!(
            CorsPolicy::parse("*", "Authorization")
                .unwrap()
                .allow_headers,
            "Authorization"
        );
        assert_eq!(CorsPolicy::parse(" , ", ""), Err(CorsError::NoOrigin));
        assert!(matches!(
            CorsPolicy::parse("https://a.example/", ""),
            Err(CorsError::BadOrigin(_))
        ));
        assert!(matches!(
            CorsPolicy::parse("a.example", ""),
            Err(CorsError::BadOrigin(_))
        ));
        assert_eq!(CorsPolicy::parse("*", "a\nb"), Err(CorsError::BadHeaders));
    }

    #[test]
    fn origins_are_echoed_only_when_listed() {
        let cors = CorsPolicy::origins(["https://app.example"]);
        assert_eq!(
            cors.allowed_origin(Some("https://app.example")),
            Some("https://app.example")
        );
        assert_eq!(cors.allowed_origin(Some("https://evil.example")), None);
        assert_eq!(cors.allowed_origin(None), None);
        assert!(cors.varies());
        let any = CorsPolicy::any_origin();
        assert_eq!(any.allowed_origin(Some("https://evil.example")), Some("*"));
        assert!(!any.varies());
        assert!(any.allow_headers.contains("Identification"));
    }
}
