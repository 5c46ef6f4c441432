//! The settings the binaries share, as clap args each binary flattens
//! (`#[command(flatten)]`), every flag also an environment variable, and each value
//! normalised once, here:
//!
//! | value | normalisation |
//! |---|---|
//! | every optional value | trimmed; empty is unset ([`set`]) — from a flag or a variable |
//! | region | `--region` / `STEPUP_REGION`, else `AWS_REGION` (which Lambda sets) |
//! | issuer | without trailing `/`; it moves the default JWKS URL with it |
//! | client ids | comma-separated, trimmed, empties dropped; `STEPUP_ALLOWED_CLIENT_IDS`, else `STEPUP_CLIENT_IDS` |
//! | table names | `--setting-table` / `--session-table`, else from the prefix (`STEPUP_TABLE_PREFIX`, else `ENV_PREFIX`) |
//! | `use_origin_jti` | the usual yes/no spellings; empty is unset (false) |
//!
//! Where the sidecar's and the Lambda's variable names differed, both are read; the first
//! named is canonical (the flag's own), the other is the seed's or the SAM template's.
//!
//! - [`DynamoArgs`]: where the tables are (region, endpoint, names): every binary.
//! - [`IdentityArgs`]: whose tokens are accepted (pool, issuer, JWKS, client ids,
//!   Cognito endpoint, session keying): the enforcement points.
//! - [`CommonArgs`]: both, for the sidecar and the Lambda functions; the operator
//!   flattens [`DynamoArgs`] alone, so its `--help` lists no token setting it ignores.
//! - `ApiArgs` (feature `api`): the step-up API's verification and CORS.

use crate::aws::AwsEndpoints;
use crate::{Error, Result};
use clap::{ArgAction, Args};
use stepup_core::decision_log::{DecisionLog, LogTarget};
use stepup_core::engine::EngineConfig;
use stepup_core::policy::Enforcement;
use stepup_core::store::TableNames;
use stepup_core::token::VerifierConfig;

/// The one "empty is unset" rule: the trimmed value, or `None` when absent or blank.
pub fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A yes/no value: `true|yes|on|1|y|t` or `false|no|off|0|n|f` (any case); empty is
/// unset, which is `false`.
pub fn parse_flag(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Ok(true),
        "false" | "no" | "off" | "0" | "n" | "f" | "" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// Where the DynamoDB tables are: region, endpoint and table names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct DynamoArgs {
    /// AWS region of the tables and the user pool (else `AWS_REGION`; the sidecar and
    /// the Lambda need one, the operator falls back to the AWS SDK's chain).
    #[arg(long, env = "STEPUP_REGION")]
    pub region: Option<String>,

    /// The region Lambda and the AWS SDK set, used when `--region` is not given.
    #[arg(long, env = "AWS_REGION", hide = true)]
    pub aws_region: Option<String>,

    /// DynamoDB endpoint override (DynamoDB Local, a VPC endpoint, ...).
    #[arg(long, env = "STEPUP_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

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
}

impl DynamoArgs {
    /// The region: `--region`, else `AWS_REGION`, else `None` (the SDK's chain).
    pub fn region(&self) -> Option<&str> {
        set(&self.region).or(set(&self.aws_region))
    }

    /// The table names: explicit names, else the prefix rule (`--table-prefix`, else
    /// `ENV_PREFIX`, else none).
    pub fn table_names(&self) -> TableNames {
        let prefix = set(&self.table_prefix)
            .or(set(&self.env_prefix))
            .unwrap_or("");
        let mut names = TableNames::with_prefix(prefix);
        if let Some(t) = set(&self.setting_table) {
            names.setting = t.to_owned();
        }
        if let Some(t) = set(&self.session_table) {
            names.session = t.to_owned();
        }
        names
    }

    /// The region and DynamoDB endpoint for the AWS clients (no Cognito endpoint).
    pub fn aws_endpoints(&self) -> AwsEndpoints {
        AwsEndpoints {
            region: self.region().map(str::to_owned),
            dynamodb: set(&self.dynamodb_endpoint).map(str::to_owned),
            cognito: None,
        }
    }

    /// Checks the endpoint, when given, is an http(s) URL.
    pub fn validate(&self) -> Result<()> {
        url("dynamodb-endpoint", set(&self.dynamodb_endpoint))
    }
}

/// Whose tokens are accepted, and how step-up sessions are keyed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct IdentityArgs {
    /// Cognito user pool id (e.g. `eu-west-1_AbCdEf123`).
    #[arg(long, env = "STEPUP_USER_POOL_ID")]
    pub user_pool_id: Option<String>,

    /// App client ids whose access tokens are accepted (comma-separated). Required: an
    /// empty list would refuse every token.
    #[arg(long, env = "STEPUP_ALLOWED_CLIENT_IDS", value_delimiter = ',')]
    pub allowed_client_ids: Vec<String>,

    /// The Lambda template's name for `--allowed-client-ids`, used when that is empty.
    #[arg(long, env = "STEPUP_CLIENT_IDS", value_delimiter = ',', hide = true)]
    pub client_ids: Vec<String>,

    /// JWKS URL (default: `<issuer>/.well-known/jwks.json`).
    #[arg(long, env = "STEPUP_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Token issuer (default: `https://cognito-idp.<region>.amazonaws.com/<pool>`); a
    /// trailing `/` is ignored.
    #[arg(long, env = "STEPUP_ISSUER")]
    pub issuer: Option<String>,

    /// Cognito endpoint override (a test stand-in).
    #[arg(long, env = "STEPUP_COGNITO_ENDPOINT")]
    pub cognito_endpoint: Option<String>,

    /// Key sessions by the token's `origin_jti`, so a step-up survives a token refresh.
    #[arg(long, env = "STEPUP_USE_ORIGIN_JTI", action = ArgAction::Set,
          value_parser = parse_flag, default_value = "false",
          num_args = 0..=1, default_missing_value = "true")]
    pub use_origin_jti: bool,

    /// How many verified tokens to remember, so that a repeated token skips the RSA
    /// check (default 5000, about 3.5 MiB; 0 turns the cache off). Claims and expiry are
    /// still checked on every request, and a JWKS change empties the cache.
    #[arg(long, env = "STEPUP_TOKEN_CACHE_SIZE")]
    pub token_cache_size: Option<usize>,
}

impl IdentityArgs {
    /// The allowed client ids, trimmed, without empty entries: `--allowed-client-ids`,
    /// else `STEPUP_CLIENT_IDS`.
    pub fn client_ids(&self) -> Vec<String> {
        let clean = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let ids = clean(&self.allowed_client_ids);
        if ids.is_empty() {
            clean(&self.client_ids)
        } else {
            ids
        }
    }

    /// The issuer override, without trailing `/`.
    pub fn issuer(&self) -> Option<&str> {
        set(&self.issuer)
            .map(|i| i.trim_end_matches('/'))
            .filter(|i| !i.is_empty())
    }

    /// The Cognito endpoint override.
    pub fn cognito_endpoint(&self) -> Option<&str> {
        set(&self.cognito_endpoint)
    }
}

/// The settings of the enforcement points (sidecar, Lambda): where the tables are and
/// whose tokens are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct CommonArgs {
    /// Region, DynamoDB endpoint, table names.
    #[command(flatten)]
    pub dynamo: DynamoArgs,
    /// User pool, issuer, JWKS, client ids, Cognito endpoint, `use_origin_jti`.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Global audit mode and the decision log.
    #[command(flatten)]
    pub enforcement: EnforcementArgs,
}

/// How decisions are enforced and logged, at an enforcement point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct EnforcementArgs {
    /// `audit` makes every rule report-only: requests a rule would challenge or deny are
    /// allowed, marked `x-stepup-status: audit`, logged and counted (for trying stepup on
    /// live traffic). `enforce` (default) leaves it to each rule's own `enforcement`.
    #[arg(long, env = "STEPUP_ENFORCEMENT", value_parser = parse_enforcement)]
    pub enforcement: Option<Enforcement>,

    /// Where the decision log (one JSON line per refused or audited decision) goes:
    /// `stdout` (default; the process's own logs go to stderr), `file:<path>` or `off`.
    #[arg(long, env = "STEPUP_DECISION_LOG")]
    pub decision_log: Option<LogTarget>,

    /// The share of allowed decisions also logged, 0 (default) to 1.
    #[arg(long, env = "STEPUP_DECISION_LOG_SAMPLE_ALLOWS", value_parser = parse_share)]
    pub decision_log_sample_allows: Option<Share>,
}

/// A share from 0 to 1, kept in millionths (so that settings compare exactly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share(u32);

impl Share {
    /// As a fraction.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1e6
    }
}

fn parse_share(value: &str) -> std::result::Result<Share, String> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(Share((v * 1e6).round() as u32)),
        _ => Err(format!("`{value}` is not a number from 0 to 1")),
    }
}

fn parse_enforcement(value: &str) -> std::result::Result<Enforcement, String> {
    Enforcement::parse(value.trim()).ok_or_else(|| format!("`{value}` is not enforce or audit"))
}

impl CommonArgs {
    /// Checks what clap cannot: the region, the pool and a client id are set, and every
    /// URL is http(s). Call once at start, before [`CommonArgs::verifier_config`].
    pub fn validate(&self) -> Result<()> {
        if self.dynamo.region().is_none() {
            return Err(Error::Missing {
                flag: "region",
                env: "STEPUP_REGION or AWS_REGION",
            });
        }
        if set(&self.identity.user_pool_id).is_none() {
            return Err(Error::Missing {
                flag: "user-pool-id",
                env: "STEPUP_USER_POOL_ID",
            });
        }
        if self.identity.client_ids().is_empty() {
            return Err(Error::NoClientIds);
        }
        url("jwks-url", set(&self.identity.jwks_url))?;
        url("issuer", self.identity.issuer())?;
        url("cognito-endpoint", self.identity.cognito_endpoint())?;
        self.dynamo.validate()
    }

    /// The token verifier settings: the Cognito defaults for the region and pool, with the
    /// issuer and JWKS URL overrides applied (an overridden issuer moves the default JWKS
    /// URL with it).
    pub fn verifier_config(&self) -> VerifierConfig {
        let mut v = VerifierConfig::cognito(
            self.dynamo.region().unwrap_or_default(),
            set(&self.identity.user_pool_id).unwrap_or_default(),
            self.identity.client_ids(),
        );
        if let Some(issuer) = self.identity.issuer() {
            v.issuer = issuer.to_owned();
            v.jwks_url = format!("{issuer}/.well-known/jwks.json");
        }
        if let Some(jwks) = set(&self.identity.jwks_url) {
            v.jwks_url = jwks.to_owned();
        }
        if let Some(size) = self.identity.token_cache_size {
            v.token_cache_size = size;
        }
        v
    }

    /// The table names ([`DynamoArgs::table_names`]).
    pub fn table_names(&self) -> TableNames {
        self.dynamo.table_names()
    }

    /// The region and endpoint overrides for the AWS clients.
    pub fn aws_endpoints(&self) -> AwsEndpoints {
        AwsEndpoints {
            cognito: self.identity.cognito_endpoint().map(str::to_owned),
            ..self.dynamo.aws_endpoints()
        }
    }

    /// Whether sessions are keyed by `origin_jti`.
    pub fn use_origin_jti(&self) -> bool {
        self.identity.use_origin_jti
    }

    /// The engine settings: `use_origin_jti` and the global enforcement.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            use_origin_jti: self.use_origin_jti(),
            enforcement: self.enforcement.enforcement.unwrap_or_default(),
        }
    }

    /// Opens the decision log (`None`: `--decision-log off`); an error names the file.
    pub fn decision_log(&self) -> std::io::Result<Option<DecisionLog>> {
        let target = self
            .enforcement
            .decision_log
            .clone()
            .unwrap_or(LogTarget::Stdout);
        let sample = self
            .enforcement
            .decision_log_sample_allows
            .unwrap_or_default()
            .as_f64();
        DecisionLog::open(&target, sample).map_err(|e| {
            std::io::Error::new(e.kind(), format!("opening the decision log {target}: {e}"))
        })
    }
}

fn url(flag: &'static str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() < 9 => {
            Err(Error::BadUrl {
                flag,
                value: v.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(feature = "api")]
pub use api::ApiArgs;

#[cfg(feature = "api")]
mod api {
    use clap::Args;
    use stepup_core::api::{CorsError, CorsPolicy, Verification};

    /// The step-up API's settings (sidecar, Lambda `stepup-api`).
    #[derive(Debug, Clone, PartialEq, Eq, Args)]
    pub struct ApiArgs {
        /// How the step-up API checks a code. `cognito-mfa` (default): the user signs in
        /// again with the password and Cognito checks the code against the factor already
        /// enrolled. `seed-compatible`: WEAK, the seed's VerifySoftwareToken enrolment call,
        /// which anyone holding the user's access token can pass by enrolling their own
        /// authenticator; only for the seed's unchanged web app.
        #[arg(long, env = "STEPUP_VERIFICATION", default_value = "cognito-mfa",
              value_parser = parse_verification)]
        pub verification: Verification,

        /// Origins allowed to call the step-up API from a browser, comma-separated (the
        /// seed's `*` by default; name the web app's origin in production). A listed origin
        /// is echoed in `Access-Control-Allow-Origin`, with `Vary: Origin`.
        #[arg(long, env = "STEPUP_CORS_ALLOW_ORIGIN", default_value = "*")]
        pub cors_allow_origin: String,

        /// `Access-Control-Allow-Headers` of the step-up API's preflight (default: the
        /// seed's API Gateway list, `Identification` included).
        #[arg(long, env = "STEPUP_CORS_ALLOW_HEADERS", default_value = CorsPolicy::DEFAULT_ALLOW_HEADERS)]
        pub cors_allow_headers: String,
    }

    impl Default for ApiArgs {
        fn default() -> Self {
            ApiArgs {
                verification: Verification::default(),
                cors_allow_origin: "*".to_owned(),
                cors_allow_headers: CorsPolicy::DEFAULT_ALLOW_HEADERS.to_owned(),
            }
        }
    }

    impl ApiArgs {
        /// The CORS policy; blank origins are the default `*`, blank headers the seed's list.
        pub fn cors(&self) -> Result<CorsPolicy, CorsError> {
            let origins = Some(self.cors_allow_origin.clone());
            CorsPolicy::parse(
                super::set(&origins).unwrap_or("*"),
                &self.cors_allow_headers,
            )
        }

        /// Logs the weak mode's warning; call once at start.
        pub fn warn_if_weak(&self) {
            if self.verification == Verification::SeedCompatible {
                tracing::warn!("{}", Verification::SEED_COMPATIBLE_WARNING);
            }
        }
    }

    fn parse_verification(s: &str) -> Result<Verification, String> {
        Verification::parse(s)
            .ok_or_else(|| "expected `cognito-mfa` or `seed-compatible`".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::from_lookup;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<CommonArgs> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup::<CommonArgs>(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("STEPUP_REGION", "eu-west-1"),
        ("STEPUP_USER_POOL_ID", "eu-west-1_Pool"),
        ("STEPUP_ALLOWED_CLIENT_IDS", "a, b,,"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> CommonArgs {
        let vars: Vec<_> = BASE.iter().chain(extra).copied().collect();
        let c = env(&vars).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn an_issuer_with_and_without_a_trailing_slash_gives_the_same_verifier_config() {
        let with_slash = with(&[("STEPUP_ISSUER", "http://127.0.0.1:5000/pool/")]);
        let without = with(&[("STEPUP_ISSUER", "http://127.0.0.1:5000/pool")]);
        assert_eq!(with_slash.verifier_config(), without.verifier_config());
        let v = without.verifier_config();
        assert_eq!(v.issuer, "http://127.0.0.1:5000/pool");
        assert_eq!(
            v.jwks_url,
            "http://127.0.0.1:5000/pool/.well-known/jwks.json"
        );
    }

    #[test]
    fn empty_variables_are_unset() {
        let plain = with(&[]);
        let empty = with(&[
            ("STEPUP_SETTING_TABLE", ""),
            ("STEPUP_SESSION_TABLE", "  "),
            ("STEPUP_TABLE_PREFIX", ""),
            ("STEPUP_ISSUER", ""),
            ("STEPUP_JWKS_URL", ""),
            ("STEPUP_DYNAMODB_ENDPOINT", ""),
            ("STEPUP_COGNITO_ENDPOINT", ""),
            ("STEPUP_USE_ORIGIN_JTI", ""),
        ]);
        assert_eq!(empty.table_names(), TableNames::with_prefix(""));
        assert_eq!(empty.table_names(), plain.table_names());
        assert_eq!(empty.verifier_config(), plain.verifier_config());
        assert_eq!(empty.aws_endpoints(), plain.aws_endpoints());
        assert!(!empty.use_origin_jti());
        // An empty explicit flag is unset too.
        let flag = DynamoArgs {
            setting_table: Some(String::new()),
            table_prefix: Some("dev".into()),
            ..DynamoArgs::default()
        };
        assert_eq!(flag.table_names().setting, "step-up-auth-setting-dev");
    }

    #[test]
    fn tables_come_from_the_prefix_unless_named() {
        let c = with(&[("ENV_PREFIX", "dev")]);
        assert_eq!(c.table_names(), TableNames::with_prefix("dev"));
        let c = with(&[("ENV_PREFIX", "seed"), ("STEPUP_TABLE_PREFIX", "dev")]);
        assert_eq!(c.table_names(), TableNames::with_prefix("dev"));
        let c = with(&[("ENV_PREFIX", "dev"), ("STEPUP_SESSION_TABLE", "sessions")]);
        assert_eq!(c.table_names().setting, "step-up-auth-setting-dev");
        assert_eq!(c.table_names().session, "sessions");
    }

    #[test]
    fn the_sidecar_and_lambda_spellings_read_alike() {
        let sidecar = with(&[("STEPUP_TABLE_PREFIX", "dev")]);
        let lambda = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("STEPUP_USER_POOL_ID", "eu-west-1_Pool"),
            ("STEPUP_CLIENT_IDS", " a, b ,"),
            ("ENV_PREFIX", "dev"),
        ])
        .unwrap();
        lambda.validate().unwrap();
        assert_eq!(lambda.verifier_config(), sidecar.verifier_config());
        assert_eq!(lambda.table_names(), sidecar.table_names());
        assert_eq!(lambda.aws_endpoints(), sidecar.aws_endpoints());
        assert_eq!(lambda.identity.client_ids(), ["a", "b"]);
        // The canonical name wins where both are given.
        let both = with(&[("AWS_REGION", "us-east-1"), ("STEPUP_CLIENT_IDS", "c")]);
        assert_eq!(both.dynamo.region(), Some("eu-west-1"));
        assert_eq!(both.identity.client_ids(), ["a", "b"]);
    }

    #[test]
    fn the_pool_gives_the_default_issuer_and_jwks_url() {
        let v = with(&[]).verifier_config();
        assert_eq!(
            v.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
        assert_eq!(v.jwks_url, format!("{}/.well-known/jwks.json", v.issuer));
        assert_eq!(v.allowed_client_ids, ["a", "b"]);
        let v = with(&[("STEPUP_JWKS_URL", "https://keys.example/jwks")]).verifier_config();
        assert_eq!(v.jwks_url, "https://keys.example/jwks");
    }

    #[test]
    fn enforcement_and_the_decision_log_are_settings() {
        let c = with(&[]);
        assert_eq!(c.engine_config().enforcement, Enforcement::Enforce);
        assert_eq!(c.enforcement.decision_log, None, "stdout when unset");
        let c = with(&[
            ("STEPUP_ENFORCEMENT", "Audit"),
            ("STEPUP_DECISION_LOG", "off"),
            ("STEPUP_DECISION_LOG_SAMPLE_ALLOWS", "0.25"),
        ]);
        assert_eq!(c.engine_config().enforcement, Enforcement::Audit);
        assert!(c.decision_log().unwrap().is_none());
        assert_eq!(
            c.enforcement.decision_log_sample_allows.unwrap().as_f64(),
            0.25
        );
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-0.1").is_err());
        assert!(parse_enforcement("report").is_err());
    }

    #[test]
    fn the_token_cache_is_on_by_default_and_zero_turns_it_off() {
        let v = with(&[]).verifier_config();
        assert_eq!(v.token_cache_size, VerifierConfig::DEFAULT_TOKEN_CACHE_SIZE);
        let v = with(&[("STEPUP_TOKEN_CACHE_SIZE", "0")]).verifier_config();
        assert_eq!(v.token_cache_size, 0);
        let v = with(&[("STEPUP_TOKEN_CACHE_SIZE", "25")]).verifier_config();
        assert_eq!(v.token_cache_size, 25);
    }

    #[test]
    fn use_origin_jti_takes_the_usual_spellings() {
        for (value, expected) in [("true", true), ("1", true), ("yes", true), ("0", false)] {
            assert_eq!(
                with(&[("STEPUP_USE_ORIGIN_JTI", value)]).use_origin_jti(),
                expected,
                "{value}"
            );
        }
        let vars: Vec<_> = BASE
            .iter()
            .chain(&[("STEPUP_USE_ORIGIN_JTI", "maybe")])
            .copied()
            .collect();
        let e = env(&vars).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("STEPUP_USE_ORIGIN_JTI is invalid"),
            "{e}"
        );
    }

    #[test]
    fn missing_or_unusable_values_name_flag_and_variable() {
        let e = env(&[("STEPUP_REGION", "r")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--user-pool-id (STEPUP_USER_POOL_ID) is required"
        );
        let e = env(&[]).unwrap().validate().unwrap_err();
        assert_eq!(
            e,
            Error::Missing {
                flag: "region",
                env: "STEPUP_REGION or AWS_REGION"
            }
        );
        let e = env(&[
            ("STEPUP_REGION", "r"),
            ("STEPUP_USER_POOL_ID", "p"),
            ("STEPUP_CLIENT_IDS", " , "),
        ])
        .unwrap()
        .validate()
        .unwrap_err();
        assert_eq!(e, Error::NoClientIds);
        let vars: Vec<_> = BASE
            .iter()
            .chain(&[("STEPUP_JWKS_URL", "ftp://x")])
            .copied()
            .collect();
        let e = env(&vars).unwrap().validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "--jwks-url must be an http:// or https:// URL, got `ftp://x`"
        );
    }
}
