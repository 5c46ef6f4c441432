//! The claims of a Cognito access token that stepup reads.
//!
//! Deserialisation is the first claim check: a token missing a claim stepup relies on
//! (`sub`, `iss`, `client_id`, `token_use`, `username`, `jti`, `exp`) does not parse, and
//! the verifier reports it as malformed. Claims stepup does not read are ignored, so a
//! pool that adds custom claims keeps working.

use serde::{Deserialize, Deserializer};

use crate::clock::UnixSeconds;

/// The claims of a Cognito access token (after its signature was verified).
///
/// Cognito spells the group list `cognito:groups`; `amr` is accepted both as a list and
/// as a single string, because issuers disagree on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessClaims {
    /// The user's stable identifier (a UUID in Cognito).
    pub sub: String,
    /// The issuer: `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub iss: String,
    /// The app client the token was issued to.
    pub client_id: String,
    /// `access` for an access token, `id` for an ID token (which stepup refuses).
    pub token_use: String,
    /// The user name in the pool.
    pub username: String,
    /// The token's own identifier.
    pub jti: String,
    /// The identifier of the original authentication; refreshed access tokens share it.
    #[serde(default)]
    pub origin_jti: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: UnixSeconds,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: Option<UnixSeconds>,
    /// Not before, Unix seconds.
    #[serde(default)]
    pub nbf: Option<UnixSeconds>,
    /// When the user last authenticated, Unix seconds.
    #[serde(default)]
    pub auth_time: Option<UnixSeconds>,
    /// Space-separated OAuth scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Authentication context class reference.
    #[serde(default)]
    pub acr: Option<String>,
    /// Authentication methods references.
    #[serde(default, deserialize_with = "one_or_many")]
    pub amr: Vec<String>,
    /// The user's groups in the pool.
    #[serde(rename = "cognito:groups", default)]
    pub groups: Vec<String>,
}

impl AccessClaims {
    /// The key a step-up session is bound to: `origin_jti` when `use_origin_jti` is set
    /// and the token carries one (so a completed step-up survives a token refresh), else
    /// `jti` (the step-up is bound to this very token).
    pub fn session_key(&self, use_origin_jti: bool) -> &str {
        match (&self.origin_jti, use_origin_jti) {
            (Some(origin), true) => origin,
            _ => &self.jti,
        }
    }
}

/// `"pwd"`, `["pwd", "mfa"]` and `null` all deserialise (to one, two and no entries).
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cognito_access_claims() -> serde_json::Value {
        json!({
            "sub": "7c1e5b1a-0000-4000-8000-000000000001",
            "cognito:groups": ["admins", "ops"],
            "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
            "version": 2,
            "client_id": "client-1",
            "origin_jti": "origin-1",
            "event_id": "e-1",
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": 1_700_000_000u64,
            "exp": 1_700_003_600u64,
            "iat": 1_700_000_000u64,
            "jti": "jti-1",
            "username": "alice"
        })
    }

    #[test]
    fn a_cognito_access_token_payload_parses_with_groups_and_unknown_claims_ignored() {
        let claims: AccessClaims = serde_json::from_value(cognito_access_claims()).unwrap();
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.groups, vec!["admins", "ops"]);
        assert_eq!(claims.origin_jti.as_deref(), Some("origin-1"));
        assert_eq!(claims.exp, UnixSeconds::from_secs(1_700_003_600));
        assert_eq!(
            claims.auth_time,
            Some(UnixSeconds::from_secs(1_700_000_000))
        );
        assert_eq!(claims.nbf, None);
        assert!(claims.amr.is_empty());
    }

    #[test]
    fn each_required_claim_missing_fails_to_parse() {
        for claim in [
            "sub",
            "iss",
            "client_id",
            "token_use",
            "username",
            "jti",
            "exp",
        ] {
            let mut value = cognito_access_claims();
            value.as_object_mut().unwrap().remove(claim);
            assert!(
                serde_json::from_value::<AccessClaims>(value).is_err(),
                "{claim} missing must not parse"
            );
        }
    }

    #[test]
    fn a_claim_of_the_wrong_type_fails_to_parse() {
        let mut value = cognito_access_claims();
        value["exp"] = json!("tomorrow");
        assert!(serde_json::from_value::<AccessClaims>(value).is_err());
    }

    #[test]
    fn amr_is_accepted_as_a_single_string_a_list_or_null() {
        let mut value = cognito_access_claims();
        value["amr"] = json!("mfa");
        let claims: AccessClaims = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(claims.amr, vec!["mfa"]);

        value["amr"] = json!(["pwd", "mfa"]);
        let claims: AccessClaims = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(claims.amr, vec!["pwd", "mfa"]);

        value["amr"] = json!(null);
        let claims: AccessClaims = serde_json::from_value(value.clone()).unwrap();
        assert!(claims.amr.is_empty());

        value["amr"] = json!(5);
        assert!(serde_json::from_value::<AccessClaims>(value).is_err());
    }

    #[test]
    fn session_key_uses_origin_jti_only_when_asked_and_present() {
        let mut claims: AccessClaims = serde_json::from_value(cognito_access_claims()).unwrap();
        assert_eq!(claims.session_key(true), "origin-1");
        assert_eq!(claims.session_key(false), "jti-1");
        claims.origin_jti = None;
        assert_eq!(claims.session_key(true), "jti-1");
    }
}
