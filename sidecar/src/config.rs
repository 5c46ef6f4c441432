//! The sidecar's configuration: command-line flags, each with a `STEPUP_*` environment
//! variable, checked once at start by [`Config::validate`]. The settings it shares with
//! the Lambda functions and the operator (region, pool, issuer, JWKS, client ids, tables,
//! endpoints, `use_origin_jti`; the step-up API's verification and CORS) are
//! [`stepup_runtime`]'s, flattened in, and normalised there.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use stepup_core::api::{CorsError, CorsPolicy};
use stepup_core::session::SessionLimits;
use stepup_runtime::args::ApiArgs;
use stepup_runtime::aws::AwsEndpoints;
use stepup_runtime::{CommonArgs, LogFormat};

use crate::listen::ListenAddr;

/// `stepup-sidecar`: the Envoy / Istio ext_authz service (gRPC and HTTP modes) of stepup.
#[derive(Debug, Clone, Parser)]
#[command(name = "stepup-sidecar", version, about, long_about = None)]
pub struct Config {
    /// Region, pool, issuer, JWKS, client ids, tables, endpoints, `use_origin_jti`.
    #[command(flatten)]
    pub common: CommonArgs,

    /// gRPC ext_authz listener (`envoy.service.auth.v3.Authorization`): `ip:port`, or
    /// `unix:<path>` for a Unix socket shared with Envoy in the same pod (Envoy `pipe`).
    #[arg(long, env = "STEPUP_GRPC_LISTEN", default_value = "127.0.0.1:9001")]
    pub grpc_listen: ListenAddr,

    /// HTTP ext_authz listener (Envoy `http_service` mode): `ip:port` or `unix:<path>`.
    #[arg(long, env = "STEPUP_HTTP_LISTEN", default_value = "127.0.0.1:9002")]
    pub http_listen: ListenAddr,

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

    /// Failed answers to a challenge after which the session is locked until its TTL
    /// (the step-up API then answers 429).
    #[arg(long, env = "STEPUP_MAX_FAILED_ATTEMPTS", default_value_t = 5)]
    pub max_failed_attempts: u32,

    /// At most one SMS code per user in this many seconds.
    #[arg(long, env = "STEPUP_SMS_MIN_INTERVAL_SECS", default_value_t = 30)]
    pub sms_min_interval_secs: u64,

    /// The step-up API's verification and CORS.
    #[command(flatten)]
    pub api: ApiArgs,

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
    /// A shared setting that cannot work (missing pool or client ids, a bad URL).
    #[error(transparent)]
    Common(#[from] stepup_runtime::Error),
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
        addr: ListenAddr,
    },
}

impl Config {
    /// Checks the values clap cannot check; call once at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
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
            ("grpc-listen", self.grpc_listen.clone()),
            ("http-listen", self.http_listen.clone()),
            ("api-listen", ListenAddr::Tcp(self.api_listen)),
            ("admin-listen", ListenAddr::Tcp(self.admin_listen)),
        ];
        for (i, (a, addr_a)) in listeners.iter().enumerate() {
            for (b, addr_b) in &listeners[i + 1..] {
                if addr_a.clashes_with(addr_b) {
                    return Err(ConfigError::SameAddress {
                        a,
                        b,
                        addr: addr_a.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The region and endpoint overrides for the AWS clients.
    pub fn aws_endpoints(&self) -> AwsEndpoints {
        self.common.aws_endpoints()
    }

    /// The step-up API's CORS policy.
    pub fn cors(&self) -> Result<CorsPolicy, CorsError> {
        self.api.cors()
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
    use stepup_core::api::Verification;
    use stepup_core::store::TableNames;

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
        assert_eq!(c.common.identity.client_ids(), ["a", "b"]);
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:9002");
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:9003");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9004");
        assert_eq!(c.path_prefix, "/authz");
        assert_eq!(c.policy_refresh_interval(), Duration::from_secs(10));
        assert!(!c.common.use_origin_jti());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.session_limits().max_failed_attempts, 5);
        assert_eq!(c.sms_min_interval_secs, 30);
        assert_eq!(c.api.cors_allow_origin, "*");
        assert_eq!(c.api.verification, Verification::CognitoMfa);
        assert!(c.cors().unwrap().allow_headers.contains("Identification"));
        assert_eq!(c.completion_cache(), Some((10_000, 30)));
        let v = c.common.verifier_config();
        assert_eq!(
            v.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
        assert_eq!(v.jwks_url, format!("{}/.well-known/jwks.json", v.issuer));
        assert_eq!(c.common.table_names(), TableNames::with_prefix(""));
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
        let v = c.common.verifier_config();
        assert_eq!(v.issuer, "http://127.0.0.1:5000/pool");
        assert_eq!(
            v.jwks_url,
            "http://127.0.0.1:5000/pool/.well-known/jwks.json"
        );
        assert_eq!(c.common.table_names().setting, "step-up-auth-setting-dev");
        assert_eq!(c.common.table_names().session, "sessions");
        assert!(c.common.use_origin_jti());
        let c = parse(&["--jwks-url", "https://keys.example/jwks"]).unwrap();
        assert_eq!(
            c.common.verifier_config().jwks_url,
            "https://keys.example/jwks"
        );
        let c = parse(&["--env-prefix", "prod"]).unwrap();
        assert_eq!(c.common.table_names().session, "step-up-auth-session-prod");
        let c = parse(&["--use-origin-jti", "false"]).unwrap();
        assert!(!c.common.use_origin_jti());
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
        let e = parse(&[
            "--grpc-listen",
            "unix:/run/stepup.sock",
            "--http-listen",
            "unix:/run/stepup.sock",
        ])
        .unwrap()
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--grpc-listen and --http-listen both listen on unix:/run/stepup.sock"
        );
        let c = parse(&[
            "--grpc-listen",
            "unix:/run/g.sock",
            "--http-listen",
            "unix:/run/h.sock",
        ])
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.grpc_listen.to_string(), "unix:/run/g.sock");
        let e = parse(&["--grpc-listen", "unix:"]).unwrap_err();
        assert!(e.to_string().contains("needs a socket path"), "{e}");
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
        assert_eq!(
            c.validate().unwrap_err(),
            ConfigError::Common(stepup_runtime::Error::NoClientIds)
        );
        let c = Config::try_parse_from(["x", "--region", "r"]).unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Common(stepup_runtime::Error::Missing {
                flag: "user-pool-id",
                ..
            }))
        ));
    }

    #[test]
    fn the_sidecar_and_the_lambda_read_one_environment_alike() {
        // The Lambda's spellings, an issuer with a trailing `/` and an empty table variable.
        let vars = std::collections::HashMap::from([
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_USER_POOL_ID", "eu-west-1_Pool"),
            ("STEPUP_CLIENT_IDS", " a, b ,"),
            ("ENV_PREFIX", "dev"),
            ("STEPUP_ISSUER", "http://127.0.0.1:5000/pool/"),
            ("STEPUP_SETTING_TABLE", ""),
            ("STEPUP_USE_ORIGIN_JTI", "true"),
            ("STEPUP_CORS_ALLOW_ORIGIN", "https://app.example.com"),
        ]);
        let get = |k: &str| vars.get(k).map(|v| (*v).to_owned());
        let sidecar: Config = stepup_runtime::env::from_lookup(get).unwrap();
        sidecar.validate().unwrap();
        let lambda = stepup_lambda::Config::from_lookup(get).unwrap();
        let v = sidecar.common.verifier_config();
        assert_eq!(v, lambda.common.verifier_config());
        assert_eq!(v.issuer, "http://127.0.0.1:5000/pool");
        assert_eq!(v.allowed_client_ids, ["a", "b"]);
        assert_eq!(sidecar.common.table_names(), lambda.common.table_names());
        assert_eq!(sidecar.common.table_names(), TableNames::with_prefix("dev"));
        assert_eq!(sidecar.aws_endpoints(), lambda.common.aws_endpoints());
        assert!(sidecar.common.use_origin_jti() && lambda.common.use_origin_jti());
        assert_eq!(sidecar.cors(), lambda.api.cors());
    }
}
