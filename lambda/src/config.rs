//! The functions' configuration, read once per execution environment from environment
//! variables (Lambda has no command line). A lookup function is passed in so that tests
//! never touch the process environment.

use std::time::Duration;
use stepup_core::api::{CorsPolicy, Verification};
use stepup_core::store::TableNames;
use stepup_core::token::VerifierConfig;

/// Default interval of the background policy refresh.
pub const DEFAULT_POLICY_REFRESH_SECS: u64 = 30;
/// Default interval of the background JWKS refresh (an unknown `kid` refetches at once).
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 3600;

/// A configuration error: names the variable, never echoes a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// the variable
        name: &'static str,
        /// why
        reason: String,
    },
}

/// Settings of both functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// AWS region (`STEPUP_REGION`, else `AWS_REGION`, which Lambda sets).
    pub region: String,
    /// Cognito user pool id (`STEPUP_USER_POOL_ID`).
    pub user_pool_id: String,
    /// Accepted app client ids (`STEPUP_CLIENT_IDS`, comma separated).
    pub client_ids: Vec<String>,
    /// Table-name prefix (`ENV_PREFIX`, as in the seed).
    pub table_prefix: String,
    /// JWKS URL override (`STEPUP_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// Issuer override (`STEPUP_ISSUER`), for a stand-in identity provider.
    pub issuer: Option<String>,
    /// DynamoDB endpoint override (`STEPUP_DYNAMODB_ENDPOINT`), e.g. DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// Cognito endpoint override (`STEPUP_COGNITO_ENDPOINT`), e.g. moto.
    pub cognito_endpoint: Option<String>,
    /// Key sessions by `origin_jti` (`STEPUP_USE_ORIGIN_JTI=true`).
    pub use_origin_jti: bool,
    /// Background policy refresh interval (`STEPUP_POLICY_REFRESH_SECS`).
    pub policy_refresh: Duration,
    /// Background JWKS refresh interval (`STEPUP_JWKS_REFRESH_SECS`).
    pub jwks_refresh: Duration,
    /// How the step-up API checks codes (`STEPUP_VERIFICATION`: `cognito-mfa`, the
    /// default, or the weak `seed-compatible`).
    pub verification: Verification,
    /// The step-up API's CORS policy (`STEPUP_CORS_ALLOW_ORIGIN`, comma-separated, default
    /// `*`; `STEPUP_CORS_ALLOW_HEADERS`, default the seed's list).
    pub cors: CorsPolicy,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let opt = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let region = opt("STEPUP_REGION")
            .or_else(|| opt("AWS_REGION"))
            .ok_or(ConfigError::Missing("STEPUP_REGION or AWS_REGION"))?;
        let user_pool_id =
            opt("STEPUP_USER_POOL_ID").ok_or(ConfigError::Missing("STEPUP_USER_POOL_ID"))?;
        let client_ids: Vec<String> = opt("STEPUP_CLIENT_IDS")
            .ok_or(ConfigError::Missing("STEPUP_CLIENT_IDS"))?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if client_ids.is_empty() {
            return Err(ConfigError::Missing("STEPUP_CLIENT_IDS"));
        }
        let secs = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match opt(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected a positive number of seconds, got `{v}`"),
                    }),
                },
            }
        };
        let use_origin_jti = match opt("STEPUP_USE_ORIGIN_JTI").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    name: "STEPUP_USE_ORIGIN_JTI",
                    reason: format!("expected true or false, got `{v}`"),
                });
            }
        };
        let verification = match opt("STEPUP_VERIFICATION") {
            None => Verification::default(),
            Some(v) => Verification::parse(&v).ok_or_else(|| ConfigError::Invalid {
                name: "STEPUP_VERIFICATION",
                reason: format!("expected cognito-mfa or seed-compatible, got `{v}`"),
            })?,
        };
        let cors = CorsPolicy::parse(
            &opt("STEPUP_CORS_ALLOW_ORIGIN").unwrap_or_else(|| "*".to_owned()),
            &opt("STEPUP_CORS_ALLOW_HEADERS").unwrap_or_default(),
        )
        .map_err(|e| ConfigError::Invalid {
            name: "STEPUP_CORS_ALLOW_ORIGIN / STEPUP_CORS_ALLOW_HEADERS",
            reason: e.to_string(),
        })?;
        Ok(Config {
            verification,
            cors,
            region,
            user_pool_id,
            client_ids,
            table_prefix: opt("ENV_PREFIX").unwrap_or_default(),
            jwks_url: opt("STEPUP_JWKS_URL"),
            issuer: opt("STEPUP_ISSUER"),
            dynamodb_endpoint: opt("STEPUP_DYNAMODB_ENDPOINT"),
            cognito_endpoint: opt("STEPUP_COGNITO_ENDPOINT"),
            use_origin_jti,
            policy_refresh: secs("STEPUP_POLICY_REFRESH_SECS", DEFAULT_POLICY_REFRESH_SECS)?,
            jwks_refresh: secs("STEPUP_JWKS_REFRESH_SECS", DEFAULT_JWKS_REFRESH_SECS)?,
        })
    }

    /// The token checks: the pool's issuer and JWKS unless overridden.
    pub fn verifier_config(&self) -> VerifierConfig {
        let mut v =
            VerifierConfig::cognito(&self.region, &self.user_pool_id, self.client_ids.clone());
        if let Some(issuer) = &self.issuer {
            v.issuer = issuer.clone();
            v.jwks_url = format!("{issuer}/.well-known/jwks.json");
        }
        if let Some(jwks) = &self.jwks_url {
            v.jwks_url = jwks.clone();
        }
        v
    }

    /// The region and endpoint overrides for the AWS clients.
    pub fn aws_endpoints(&self) -> stepup_core::aws::AwsEndpoints {
        stepup_core::aws::AwsEndpoints {
            region: self.region.clone(),
            dynamodb: self.dynamodb_endpoint.clone(),
            cognito: self.cognito_endpoint.clone(),
        }
    }

    /// The seed's table names for [`Config::table_prefix`].
    pub fn table_names(&self) -> TableNames {
        TableNames::with_prefix(&self.table_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_pool_gives_issuer_jwks_and_the_prefix_gives_table_names() {
        let c = parse(&[
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_USER_POOL_ID", "eu-west-1_abc"),
            ("STEPUP_CLIENT_IDS", " a, b ,"),
            ("ENV_PREFIX", "dev"),
        ])
        .unwrap();
        assert_eq!(c.client_ids, ["a", "b"]);
        let v = c.verifier_config();
        assert_eq!(
            v.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(v.jwks_url, format!("{}/.well-known/jwks.json", v.issuer));
        assert_eq!(c.table_names(), TableNames::with_prefix("dev"));
        assert_eq!(
            c.policy_refresh,
            Duration::from_secs(DEFAULT_POLICY_REFRESH_SECS)
        );
    }

    #[test]
    fn overrides_replace_issuer_and_jwks_url_and_stepup_region_wins() {
        let c = parse(&[
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_REGION", "us-east-1"),
            ("STEPUP_USER_POOL_ID", "p"),
            ("STEPUP_CLIENT_IDS", "c"),
            ("STEPUP_ISSUER", "http://127.0.0.1:1/pool"),
            ("STEPUP_JWKS_URL", "http://127.0.0.1:2/jwks"),
        ])
        .unwrap();
        assert_eq!(c.region, "us-east-1");
        let v = c.verifier_config();
        assert_eq!(
            (v.issuer.as_str(), v.jwks_url.as_str()),
            ("http://127.0.0.1:1/pool", "http://127.0.0.1:2/jwks")
        );
    }

    #[test]
    fn missing_pool_or_clients_and_bad_numbers_are_refused() {
        assert!(matches!(
            parse(&[("AWS_REGION", "r")]),
            Err(ConfigError::Missing("STEPUP_USER_POOL_ID"))
        ));
        assert!(matches!(
            parse(&[
                ("AWS_REGION", "r"),
                ("STEPUP_USER_POOL_ID", "p"),
                ("STEPUP_CLIENT_IDS", ",")
            ]),
            Err(ConfigError::Missing("STEPUP_CLIENT_IDS"))
        ));
        let e = parse(&[
            ("AWS_REGION", "r"),
            ("STEPUP_USER_POOL_ID", "p"),
            ("STEPUP_CLIENT_IDS", "c"),
            ("STEPUP_POLICY_REFRESH_SECS", "0"),
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("STEPUP_POLICY_REFRESH_SECS is invalid"),
            "{e}"
        );
    }
}
