//! The sidecar's configuration: command-line flags, each with a `STEPUP_*` environment
//! variable, checked once at start by [`Config::validate`].

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;
use stepup_core::api::{CorsError, CorsPolicy, Verification};
use stepup_core::session::SessionLimits;
use stepup_core::store::TableNames;
use stepup_core::token::VerifierConfig;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default; for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// `stepup-sidecar`: the Envoy / Istio ext_authz service (gRPC and HTTP modes) of stepup.
#[derive(Debug, Clone, Parser)]
#[command(name = "stepup-sidecar", version, about, long_about = None)]
pub struct Config {
    /// AWS region of the user pool and the DynamoDB tables.
    #[arg(long, env = "STEPUP_REGION")]
    pub region: String,

    /// Cognito user pool id (e.g. `eu-west-1_AbCdEf123`).
    #[arg(long, env = "STEPUP_USER_POOL_ID")]
    pub user_pool_id: String,

    /// App client ids whose access tokens are accepted (comma-separated). Required: an
    /// empty list would refuse every token.
    #[arg(
        long,
        env = "STEPUP_ALLOWED_CLIENT_IDS",
        value_delimiter = ',',
        required = true
    )]
    pub allowed_client_ids: Vec<String>,

    /// JWKS URL (default: `<issuer>/.well-known/jwks.json`).
    #[arg(long, env = "STEPUP_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Token issuer (default: `https://cognito-idp.<region>.amazonaws.com/<pool>`).
    #[arg(long, env = "STEPUP_ISSUER")]
    pub issuer: Option<String>,

    /// Table name suffix, as the seed's `ENV_PREFIX`: tables
    /// `step-up-auth-setting-<prefix>` and `step-up-auth-session-<prefix>`.
    #[arg(long, env = "STEPUP_TABLE_PREFIX")]
    pub table_prefix: Option<String>,

    /// The seed's variable, used when `--table-prefix` is not given.
    #[arg(long, env = "ENV_PREFIX", hide = true)]
    pub env_prefix: Option<String>,

    /// Setting table name (overrides the prefix rule).
    #[arg(long, env = "STEPUP_SETTING_TABLE")]
    pub setting_table: Option<String>,

    /// Session table name (overrides the prefix rule).
    #[arg(long, env = "STEPUP_SESSION_TABLE")]
    pub session_table: Option<String>,

    /// DynamoDB endpoint override (DynamoDB Local, a VPC endpoint, ...).
    #[arg(long, env = "STEPUP_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// Cognito endpoint override (a test stand-in).
    #[arg(long, env = "STEPUP_COGNITO_ENDPOINT")]
    pub cognito_endpoint: Option<String>,

    /// gRPC ext_authz listener (`envoy.service.auth.v3.Authorization`).
    #[arg(long, env = "STEPUP_GRPC_LISTEN", default_value = "127.0.0.1:9001")]
    pub grpc_listen: SocketAddr,

    /// HTTP ext_authz listener (Envoy `http_service` mode).
    #[arg(long, env = "STEPUP_HTTP_LISTEN", default_value = "127.0.0.1:9002")]
    pub http_listen: SocketAddr,

    /// Step-up API listener: `POST /initiate-auth`, `POST /respond-to-challenge` and their
    /// CORS preflight.
    #[arg(long, env = "STEPUP_API_LISTEN", default_value = "127.0.0.1:9003")]
    pub api_listen: SocketAddr,

    /// Admin listener: `/healthz`, `/readyz`, `/metrics`.
    #[arg(long, env = "STEPUP_ADMIN_LISTEN", default_value = "127.0.0.1:9004")]
    pub admin_listen: SocketAddr,

    /// The `path_prefix` Envoy's `http_service` puts before the original path.
    #[arg(long, env = "STEPUP_PATH_PREFIX", default_value = "/authz")]
    pub path_prefix: String,

    /// Seconds between two reads of the setting table.
    #[arg(long, env = "STEPUP_POLICY_REFRESH_SECS", default_value_t = 10)]
    pub policy_refresh_secs: u64,

    /// Seconds between two scheduled JWKS fetches (an unknown `kid` also refetches,
    /// rate limited).
    #[arg(long, env = "STEPUP_JWKS_REFRESH_SECS", default_value_t = 600)]
    pub jwks_refresh_secs: u64,

    /// Key sessions by the token's `origin_jti`, so a step-up survives a token refresh.
    #[arg(long, env = "STEPUP_USE_ORIGIN_JTI", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), default_value_t = false,
          num_args = 0..=1, default_missing_value = "true")]
    pub use_origin_jti: bool,

    /// Failed answers to a challenge after which the session is locked until its TTL
    /// (the step-up API then answers 429).
    #[arg(long, env = "STEPUP_MAX_FAILED_ATTEMPTS", default_value_t = 5)]
    pub max_failed_attempts: u32,

    /// At most one SMS code per user in this many seconds.
    #[arg(long, env = "STEPUP_SMS_MIN_INTERVAL_SECS", default_value_t = 30)]
    pub sms_min_interval_secs: u64,

    /// Origins allowed to call the step-up API from a browser, comma-separated (the
    /// seed's `*` by default; name the web app's origin in production). A listed origin
    /// is echoed in `Access-Control-Allow-Origin`, with `Vary: Origin`.
    #[arg(long, env = "STEPUP_CORS_ALLOW_ORIGIN", default_value = "*")]
    pub cors_allow_origin: String,

    /// `Access-Control-Allow-Headers` of the step-up API's preflight (default: the seed's
    /// API Gateway list, `Identification` included).
    #[arg(long, env = "STEPUP_CORS_ALLOW_HEADERS", default_value = CorsPolicy::DEFAULT_ALLOW_HEADERS)]
    pub cors_allow_headers: String,

    /// How the step-up API checks a code. `cognito-mfa` (default): the user signs in
    /// again with the password and Cognito checks the code against the factor already
    /// enrolled. `seed-compatible`: WEAK, the seed's VerifySoftwareToken enrolment call,
    /// which anyone holding the user's access token can pass by enrolling their own
    /// authenticator; only for the seed's unchanged web app.
    #[arg(long, env = "STEPUP_VERIFICATION", default_value = "cognito-mfa",
          value_parser = parse_verification)]
    pub verification: Verification,

    /// Seconds a completed step-up is remembered in memory, so that its token's privileged
    /// requests skip the session read (also bounded by the token's `exp` and the session's
    /// `ttl`); 0 turns the cache off. Pending or missing sessions are never cached.
    #[arg(long, env = "STEPUP_COMPLETION_CACHE_SECS", default_value_t = 30)]
    pub completion_cache_secs: u64,

    /// Most completed step-ups held by the completion cache.
    #[arg(
        long,
        env = "STEPUP_COMPLETION_CACHE_CAPACITY",
        default_value_t = 10_000
    )]
    pub completion_cache_capacity: usize,

    /// Log format.
    #[arg(long, env = "STEPUP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required value is empty.
    #[error("--{flag} must not be empty")]
    Empty {
        /// the flag
        flag: &'static str,
    },
    /// No usable client id.
    #[error("--allowed-client-ids lists no client id: every token would be refused")]
    NoClientIds,
    /// A URL that is not http(s).
    #[error("--{flag} must be an http:// or https:// URL, got `{value}`")]
    BadUrl {
        /// the flag
        flag: &'static str,
        /// the value
        value: String,
    },
    /// A bad path prefix.
    #[error(
        "--path-prefix must start with `/`, not end with `/` and contain no `?`, `#` or `%`, got `{0}`"
    )]
    BadPathPrefix(String),
    /// An interval of zero.
    #[error("--{flag} must be at least 1 second")]
    ZeroInterval {
        /// the flag
        flag: &'static str,
    },
    /// A value that must be positive.
    #[error("--{flag} must be at least 1")]
    Zero {
        /// the flag
        flag: &'static str,
    },
    /// A CORS setting that cannot be used.
    #[error("--cors-allow-origin / --cors-allow-headers: {0}")]
    BadCors(#[from] CorsError),
    /// Two listeners on one address.
    #[error("--{a} and --{b} both listen on {addr}")]
    SameAddress {
        /// first flag
        a: &'static str,
        /// second flag
        b: &'static str,
        /// the address
        addr: SocketAddr,
    },
}

fn parse_verification(s: &str) -> Result<Verification, String> {
    Verification::parse(s).ok_or_else(|| "expected `cognito-mfa` or `seed-compatible`".to_owned())
}

fn non_empty(flag: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::Empty { flag });
    }
    Ok(())
}

fn url(flag: &'static str, value: Option<&str>) -> Result<(), ConfigError> {
    match value {
        Some(v) if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() < 9 => {
            Err(ConfigError::BadUrl {
                flag,
                value: v.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

impl Config {
    /// Checks the values clap cannot check; call once at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("region", &self.region)?;
        non_empty("user-pool-id", &self.user_pool_id)?;
        if self.client_ids().is_empty() {
            return Err(ConfigError::NoClientIds);
        }
        url("jwks-url", self.jwks_url.as_deref())?;
        url("issuer", self.issuer.as_deref())?;
        url("dynamodb-endpoint", self.dynamodb_endpoint.as_deref())?;
        url("cognito-endpoint", self.cognito_endpoint.as_deref())?;
        for (flag, v) in [
            ("setting-table", &self.setting_table),
            ("session-table", &self.session_table),
        ] {
            if let Some(v) = v {
                non_empty(flag, v)?;
            }
        }
        let p = &self.path_prefix;
        if !p.starts_with('/') || p.ends_with('/') || p.contains(['?', '#', '%']) {
            return Err(ConfigError::BadPathPrefix(p.clone()));
        }
        if self.policy_refresh_secs == 0 {
            return Err(ConfigError::ZeroInterval {
                flag: "policy-refresh-secs",
            });
        }
        if self.jwks_refresh_secs == 0 {
            return Err(ConfigError::ZeroInterval {
                flag: "jwks-refresh-secs",
            });
        }
        if self.max_failed_attempts == 0 {
            return Err(ConfigError::Zero {
                flag: "max-failed-attempts",
            });
        }
        if self.completion_cache_secs > 0 && self.completion_cache_capacity == 0 {
            return Err(ConfigError::Zero {
                flag: "completion-cache-capacity",
            });
        }
        self.cors()?;
        let listeners = [
            ("grpc-listen", self.grpc_listen),
            ("http-listen", self.http_listen),
            ("api-listen", self.api_listen),
            ("admin-listen", self.admin_listen),
        ];
        for (i, (a, addr_a)) in listeners.iter().enumerate() {
            for (b, addr_b) in &listeners[i + 1..] {
                if addr_a == addr_b && addr_a.port() != 0 {
                    return Err(ConfigError::SameAddress {
                        a,
                        b,
                        addr: *addr_a,
                    });
                }
            }
        }
        Ok(())
    }

    /// The allowed client ids, trimmed, without empty entries.
    pub fn client_ids(&self) -> Vec<String> {
        self.allowed_client_ids
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The token verifier settings: the Cognito defaults, with the issuer and JWKS URL
    /// overrides applied (an overridden issuer moves the default JWKS URL with it).
    pub fn verifier_config(&self) -> VerifierConfig {
        let mut v = VerifierConfig::cognito(&self.region, &self.user_pool_id, self.client_ids());
        if let Some(issuer) = &self.issuer {
            v.issuer = issuer.trim_end_matches('/').to_owned();
            v.jwks_url = format!("{}/.well-known/jwks.json", v.issuer);
        }
        if let Some(jwks) = &self.jwks_url {
            v.jwks_url = jwks.clone();
        }
        v
    }

    /// The table names: explicit names, else the prefix rule (`--table-prefix`, else
    /// The region and endpoint overrides for the AWS clients.
    pub fn aws_endpoints(&self) -> stepup_core::aws::AwsEndpoints {
        stepup_core::aws::AwsEndpoints {
            region: self.region.clone(),
            dynamodb: self.dynamodb_endpoint.clone(),
            cognito: self.cognito_endpoint.clone(),
        }
    }

    /// `ENV_PREFIX`, else none).
    pub fn table_names(&self) -> TableNames {
        let prefix = self
            .table_prefix
            .as_deref()
            .or(self.env_prefix.as_deref())
            .unwrap_or("");
        let mut names = TableNames::with_prefix(prefix);
        if let Some(t) = &self.setting_table {
            names.setting = t.clone();
        }
        if let Some(t) = &self.session_table {
            names.session = t.clone();
        }
        names
    }

    /// The step-up API's CORS policy.
    pub fn cors(&self) -> Result<CorsPolicy, CorsError> {
        CorsPolicy::parse(&self.cors_allow_origin, &self.cors_allow_headers)
    }

    /// The lockout and TTL limits of step-up sessions.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            max_failed_attempts: self.max_failed_attempts,
            ..SessionLimits::default()
        }
    }

    /// The completion cache's (capacity, max age in seconds), or `None` when it is off.
    pub fn completion_cache(&self) -> Option<(usize, u64)> {
        (self.completion_cache_secs > 0)
            .then_some((self.completion_cache_capacity, self.completion_cache_secs))
    }

    /// The policy refresh interval.
    pub fn policy_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.policy_refresh_secs)
    }

    /// The scheduled JWKS refresh interval.
    pub fn jwks_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let base = [
            "stepup-sidecar",
            "--region",
            "eu-west-1",
            "--user-pool-id",
            "eu-west-1_Pool",
            "--allowed-client-ids",
            "a, b,,",
        ];
        Config::try_parse_from(base.iter().chain(args))
    }

    #[test]
    fn defaults_and_derived_values() {
        let c = parse(&[]).unwrap();
        c.validate().unwrap();
        assert_eq!(c.client_ids(), ["a", "b"]);
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:9002");
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:9003");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9004");
        assert_eq!(c.path_prefix, "/authz");
        assert_eq!(c.policy_refresh_interval(), Duration::from_secs(10));
        assert!(!c.use_origin_jti);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.session_limits().max_failed_attempts, 5);
        assert_eq!(c.sms_min_interval_secs, 30);
        assert_eq!(c.cors_allow_origin, "*");
        assert_eq!(c.verification, Verification::CognitoMfa);
        assert!(c.cors().unwrap().allow_headers.contains("Identification"));
        assert_eq!(c.completion_cache(), Some((10_000, 30)));
        let v = c.verifier_config();
        assert_eq!(
            v.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
        assert_eq!(v.jwks_url, format!("{}/.well-known/jwks.json", v.issuer));
        assert_eq!(c.table_names(), TableNames::with_prefix(""));
    }

    #[test]
    fn overrides() {
        let c = parse(&[
            "--issuer",
            "http://127.0.0.1:5000/pool/",
            "--table-prefix",
            "dev",
            "--session-table",
            "sessions",
            "--use-origin-jti",
            "--log-format",
            "text",
        ])
        .unwrap();
        c.validate().unwrap();
        let v = c.verifier_config();
        assert_eq!(v.issuer, "http://127.0.0.1:5000/pool");
        assert_eq!(
            v.jwks_url,
            "http://127.0.0.1:5000/pool/.well-known/jwks.json"
        );
        assert_eq!(c.table_names().setting, "step-up-auth-setting-dev");
        assert_eq!(c.table_names().session, "sessions");
        assert!(c.use_origin_jti);
        let c = parse(&["--jwks-url", "https://keys.example/jwks"]).unwrap();
        assert_eq!(c.verifier_config().jwks_url, "https://keys.example/jwks");
        let c = parse(&["--env-prefix", "prod"]).unwrap();
        assert_eq!(c.table_names().session, "step-up-auth-session-prod");
        let c = parse(&["--use-origin-jti", "false"]).unwrap();
        assert!(!c.use_origin_jti);
        let c = parse(&[
            "--max-failed-attempts",
            "3",
            "--completion-cache-secs",
            "0",
            "--cors-allow-origin",
            "https://app.example.com",
        ])
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.session_limits().max_failed_attempts, 3);
        assert_eq!(c.completion_cache(), None);
    }

    #[test]
    fn validation_errors_are_clear() {
        let e = parse(&["--path-prefix", "authz/"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("--path-prefix"), "{e}");
        let e = parse(&["--jwks-url", "ftp://x"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--jwks-url must be an http:// or https:// URL, got `ftp://x`"
        );
        let e = parse(&["--http-listen", "127.0.0.1:9001"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--grpc-listen and --http-listen both listen on 127.0.0.1:9001"
        );
        let e = parse(&["--policy-refresh-secs", "0"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("at least 1 second"));
        let e = parse(&["--max-failed-attempts", "0"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.to_string(), "--max-failed-attempts must be at least 1");
        let e = parse(&["--cors-allow-origin", "https://a.example\nx"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(matches!(e, ConfigError::BadCors(_)));
        assert!(parse(&["--verification", "weak"]).is_err());
        let c = Config::try_parse_from([
            "x",
            "--region",
            "r",
            "--user-pool-id",
            "p",
            "--allowed-client-ids",
            " , ",
        ])
        .unwrap();
        assert_eq!(c.validate().unwrap_err(), ConfigError::NoClientIds);
        assert!(Config::try_parse_from(["x", "--region", "r"]).is_err());
    }
}
