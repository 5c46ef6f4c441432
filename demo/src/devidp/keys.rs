//! The development identity provider's signing key: a fresh RSA-2048 key generated with
//! aws-lc-rs when the provider starts (never a key shipped in the repository), its JWKS,
//! and RS256 signing of Cognito-shaped access tokens with `jsonwebtoken`.

use super::DevIdpError;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// An RS256 signing key and its public JWKS.
pub struct SigningKey {
    kid: String,
    key: EncodingKey,
    jwks: JwkSet,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new RSA-2048 key (about 0.1 s) with a random `kid`.
    pub fn generate() -> Result<SigningKey, DevIdpError> {
        let internal = |what: &str| DevIdpError::Internal(format!("signing key: {what}"));
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| internal("generate"))?;
        let pkcs8 = pair.as_der().map_err(|_| internal("PKCS#8 encoding"))?;
        let pem = pem_private_key(pkcs8.as_ref());
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| internal("load PEM"))?;
        let public = pair.public_key();
        let kid = format!("devidp-{}", super::random_hex(8)?);
        let jwks: JwkSet = serde_json::from_value(json!({
            "keys": [{
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            }]
        }))
        .map_err(|_| internal("JWKS"))?;
        Ok(SigningKey { kid, key, jwks })
    }

    /// The key id (`kid`) of the tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs `claims` as an RS256 JWT with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, DevIdpError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| DevIdpError::Internal(format!("signing a token: {e}")))
    }
}

/// PKCS#8 DER as a `PRIVATE KEY` PEM (64-character lines).
fn pem_private_key(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn tokens_signed_by_a_fresh_key_verify_with_its_jwks() {
        let key = SigningKey::generate().unwrap();
        let token = key
            .sign(&json!({"sub": "x", "exp": 4_000_000_000u64}))
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        let jwk = key.jwks().find(key.kid()).unwrap();
        let decoding = DecodingKey::from_jwk(jwk).unwrap();
        let data =
            jsonwebtoken::decode::<Value>(&token, &decoding, &Validation::new(Algorithm::RS256))
                .unwrap();
        assert_eq!(data.claims["sub"], "x");
    }

    #[test]
    fn every_start_gets_a_different_key() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.kid(), b.kid());
        assert_ne!(
            serde_json::to_string(a.jwks()).unwrap(),
            serde_json::to_string(b.jwks()).unwrap()
        );
    }
}
