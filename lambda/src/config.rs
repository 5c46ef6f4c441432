//! The functions' configuration, read once per execution environment from environment
//! variables (Lambda has no command line). The variables are the flags' own: the same
//! clap args the sidecar flattens ([`CommonArgs`], [`ApiArgs`]), read through
//! [`stepup_runtime::env::from_lookup`], so every shared value (issuer, client ids, tables,
//! empty variables) is normalised by the sidecar's code. The Lambda's historical names are
//! read as well: `STEPUP_CLIENT_IDS`, `ENV_PREFIX`, `AWS_REGION` (which Lambda sets). A
//! lookup function is passed in so that tests never touch the process environment.

use clap::Parser;
use std::time::Duration;
use stepup_core::api::{CorsError, CorsPolicy};
use stepup_runtime::CommonArgs;
use stepup_runtime::args::ApiArgs;

/// Default interval of the background policy refresh.
pub const DEFAULT_POLICY_REFRESH_SECS: u64 = 30;
/// Default interval of the background JWKS refresh (an unknown `kid` refetches at once).
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 3600;

/// A configuration error: names the variable, never echoes a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A shared setting is missing or does not parse.
    #[error(transparent)]
    Runtime(#[from] stepup_runtime::Error),
    /// The CORS settings cannot be used.
    #[error("STEPUP_CORS_ALLOW_ORIGIN / STEPUP_CORS_ALLOW_HEADERS is invalid: {0}")]
    Cors(#[from] CorsError),
}

/// Settings of both functions.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "stepup-lambda")]
pub struct Config {
    /// Region, pool, issuer, JWKS, client ids, tables, endpoints, `use_origin_jti`.
    #[command(flatten)]
    pub common: CommonArgs,

    /// The step-up API's verification and CORS (`stepup-api`).
    #[command(flatten)]
    pub api: ApiArgs,

    /// Seconds between two background reads of the setting table.
    #[arg(long, env = "STEPUP_POLICY_REFRESH_SECS", default_value_t = DEFAULT_POLICY_REFRESH_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub policy_refresh_secs: u64,

    /// Seconds between two background JWKS fetches.
    #[arg(long, env = "STEPUP_JWKS_REFRESH_SECS", default_value_t = DEFAULT_JWKS_REFRESH_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub jwks_refresh_secs: u64,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get`, and checks them.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let config: Config = stepup_runtime::env::from_lookup(get)?;
        config.common.validate()?;
        config.cors()?;
        Ok(config)
    }

    /// The step-up API's CORS policy.
    pub fn cors(&self) -> Result<CorsPolicy, CorsError> {
        self.api.cors()
    }

    /// The background policy refresh interval.
    pub fn policy_refresh(&self) -> Duration {
        Duration::from_secs(self.policy_refresh_secs)
    }

    /// The background JWKS refresh interval.
    pub fn jwks_refresh(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use stepup_core::store::TableNames;

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
        assert_eq!(c.common.identity.client_ids(), ["a", "b"]);
        let v = c.common.verifier_config();
        assert_eq!(
            v.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(v.jwks_url, format!("{}/.well-known/jwks.json", v.issuer));
        assert_eq!(c.common.table_names(), TableNames::with_prefix("dev"));
        assert_eq!(
            c.policy_refresh(),
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
        assert_eq!(c.common.dynamo.region(), Some("us-east-1"));
        let v = c.common.verifier_config();
        assert_eq!(
            (v.issuer.as_str(), v.jwks_url.as_str()),
            ("http://127.0.0.1:1/pool", "http://127.0.0.1:2/jwks")
        );
    }

    #[test]
    fn missing_pool_or_clients_and_bad_numbers_are_refused() {
        assert!(matches!(
            parse(&[("AWS_REGION", "r")]),
            Err(ConfigError::Runtime(stepup_runtime::Error::Missing {
                flag: "user-pool-id",
                ..
            }))
        ));
        assert!(matches!(
            parse(&[
                ("AWS_REGION", "r"),
                ("STEPUP_USER_POOL_ID", "p"),
                ("STEPUP_CLIENT_IDS", ",")
            ]),
            Err(ConfigError::Runtime(stepup_runtime::Error::NoClientIds))
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

    #[test]
    fn an_issuer_with_a_trailing_slash_is_the_issuer_without() {
        let base = [
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_USER_POOL_ID", "p"),
            ("STEPUP_CLIENT_IDS", "c"),
        ];
        let with = |issuer| {
            let vars: Vec<_> = base
                .into_iter()
                .chain([("STEPUP_ISSUER", issuer)])
                .collect();
            parse(&vars).unwrap().common.verifier_config()
        };
        let v = with("http://127.0.0.1:1/pool/");
        assert_eq!(v, with("http://127.0.0.1:1/pool"));
        assert_eq!(v.issuer, "http://127.0.0.1:1/pool");
        assert_eq!(v.jwks_url, "http://127.0.0.1:1/pool/.well-known/jwks.json");
    }

    #[test]
    fn empty_variables_are_unset() {
        let c = parse(&[
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_USER_POOL_ID", "p"),
            ("STEPUP_CLIENT_IDS", "c"),
            ("ENV_PREFIX", "dev"),
            ("STEPUP_SETTING_TABLE", ""),
            ("STEPUP_POLICY_REFRESH_SECS", ""),
            ("STEPUP_CORS_ALLOW_ORIGIN", ""),
            ("STEPUP_USE_ORIGIN_JTI", ""),
        ])
        .unwrap();
        assert_eq!(c.common.table_names(), TableNames::with_prefix("dev"));
        assert_eq!(c.policy_refresh_secs, DEFAULT_POLICY_REFRESH_SECS);
        assert_eq!(c.cors().unwrap(), CorsPolicy::any_origin());
        assert!(!c.common.use_origin_jti());
    }
}
