//! Token verification end to end: tokens signed with the test-only fixture keys
//! (`tests/fixtures/`), verified against JWKS documents built from their public halves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stepup_core::clock::UnixSeconds;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Value, json};
use stepup_core::token::{JwksError, JwksFetcher, TokenError, TokenVerifier, VerifierConfig};

const KEY_1_PEM: &[u8] = include_bytes!("fixtures/test_key_1.pem");
const KEY_1_PUB_PEM: &[u8] = include_bytes!("fixtures/test_key_1.pub.pem");
const KEY_1_JWKS: &str = include_str!("fixtures/test_key_1.jwks.json");
const KEY_2_PEM: &[u8] = include_bytes!("fixtures/test_key_2.pem");
const KEY_2_JWKS: &str = include_str!("fixtures/test_key_2.jwks.json");

const REGION: &str = "eu-west-1";
const POOL: &str = "eu-west-1_Test";
const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test";
const NOW: UnixSeconds = UnixSeconds::from_secs(1_750_000_000);
const INTERVAL: u64 = 60;

// ---------------------------------------------------------------------------------------
// Fixtures

/// A token under construction: valid at `NOW`, signed by key 1, until changed.
struct TokenBuilder {
    header: Header,
    claims: Value,
    pem: &'static [u8],
}

fn mk_token() -> TokenBuilder {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".to_owned());
    TokenBuilder {
        header,
        claims: json!({
            "sub": "7c1e5b1a-0000-4000-8000-000000000001",
            "cognito:groups": ["admins"],
            "iss": ISSUER,
            "version": 2,
            "client_id": "client-1",
            "origin_jti": "origin-1",
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": NOW.minus(300),
            "exp": NOW.plus(3600),
            "iat": NOW.minus(300),
            "jti": "jti-1",
            "username": "alice"
        }),
        pem: KEY_1_PEM,
    }
}

impl TokenBuilder {
    fn claim(mut self, name: &str, value: impl serde::Serialize) -> Self {
        self.claims[name] = serde_json::to_value(value).unwrap();
        self
    }
    fn without(mut self, name: &str) -> Self {
        self.claims.as_object_mut().unwrap().remove(name);
        self
    }
    fn kid(mut self, kid: Option<&str>) -> Self {
        self.header.kid = kid.map(str::to_owned);
        self
    }
    fn alg(mut self, alg: Algorithm) -> Self {
        self.header.alg = alg;
        self
    }
    fn signed_by_key_2(mut self) -> Self {
        self.pem = KEY_2_PEM;
        self.kid(Some("test-key-2"))
    }
    fn build(self) -> String {
        let key = EncodingKey::from_rsa_pem(self.pem).unwrap();
        jsonwebtoken::encode(&self.header, &self.claims, &key).unwrap()
    }
}

fn jwks(docs: &[&str]) -> JwkSet {
    let mut set = JwkSet::default();
    for doc in docs {
        set.keys
            .extend(serde_json::from_str::<JwkSet>(doc).unwrap().keys);
    }
    set
}

/// Serves a JWKS that the test can swap, counting fetches (so faults and rotations can
/// be forced and refetches counted).
#[derive(Debug)]
struct FakeJwks {
    set: Mutex<JwkSet>,
    fetches: AtomicUsize,
}

impl FakeJwks {
    fn serve(&self, set: JwkSet) {
        *self.set.lock().unwrap() = set;
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksFetcher for FakeJwks {
    async fn fetch(&self, _url: &str) -> Result<JwkSet, JwksError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.set.lock().unwrap().clone())
    }
}

fn config() -> VerifierConfig {
    VerifierConfig::cognito(REGION, POOL, ["client-1", "client-2"])
}

/// A verifier whose cache was loaded (one fetch) from `docs`.
async fn verifier_serving(docs: &[&str]) -> (TokenVerifier, Arc<FakeJwks>) {
    verifier_with_config(config(), docs).await
}

async fn verifier_with_config(
    config: VerifierConfig,
    docs: &[&str],
) -> (TokenVerifier, Arc<FakeJwks>) {
    let fake = Arc::new(FakeJwks {
        set: Mutex::new(jwks(docs)),
        fetches: AtomicUsize::new(0),
    });
    let verifier = TokenVerifier::new(config, fake.clone());
    verifier.jwks().refresh(NOW).await.unwrap();
    (verifier, fake)
}

/// Asserts the refusal, and that its text does not give the token away.
async fn assert_refused(verifier: &TokenVerifier, token: &str, expected: TokenError) {
    let error = verifier.verify(token, NOW).await.unwrap_err();
    assert_eq!(error, expected);
    if !token.is_empty() {
        assert!(!error.to_string().contains(token));
    }
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Claims and times

#[tokio::test]
async fn valid_token_is_accepted_with_its_claims() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let claims = verifier.verify(&mk_token().build(), NOW).await.unwrap();
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.client_id, "client-1");
    assert_eq!(claims.groups, vec!["admins"]);
    assert_eq!(claims.session_key(true), "origin-1");
}

#[tokio::test]
async fn fixture_jwks_holds_the_same_key_as_the_public_pem() {
    let token = mk_token().build();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(KEY_1_PUB_PEM).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    verifier.verify(&token, NOW).await.unwrap();
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("exp", NOW.minus(61)).build();
    assert_refused(&verifier, &token, TokenError::Expired).await;
    // exp + leeway == now is already expired.
    let token = mk_token().claim("exp", NOW.minus(60)).build();
    assert_refused(&verifier, &token, TokenError::Expired).await;
}

#[tokio::test]
async fn expired_token_within_the_leeway_is_accepted() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("exp", NOW.minus(59)).build();
    verifier.verify(&token, NOW).await.unwrap();
}

#[tokio::test]
async fn token_not_yet_valid_is_rejected_beyond_the_leeway() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("nbf", NOW.plus(61)).build();
    assert_refused(&verifier, &token, TokenError::NotYetValid).await;
    let token = mk_token().claim("nbf", NOW.plus(60)).build();
    verifier.verify(&token, NOW).await.unwrap();
}

#[tokio::test]
async fn token_from_another_issuer_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    for iss in [
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other",
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test/",
        "",
    ] {
        let token = mk_token().claim("iss", iss).build();
        assert_refused(&verifier, &token, TokenError::WrongIssuer).await;
    }
}

#[tokio::test]
async fn id_token_is_refused() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("token_use", "id").build();
    assert_refused(&verifier, &token, TokenError::NotAccessToken).await;
}

#[tokio::test]
async fn token_of_a_client_not_allowed_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("client_id", "client-3").build();
    assert_refused(&verifier, &token, TokenError::ClientNotAllowed).await;
    let token = mk_token().claim("client_id", "client-2").build();
    verifier.verify(&token, NOW).await.unwrap();
}

#[tokio::test]
async fn an_empty_client_list_refuses_every_client() {
    let config = VerifierConfig {
        allowed_client_ids: Vec::new(),
        ..config()
    };
    let (verifier, _) = verifier_with_config(config, &[KEY_1_JWKS]).await;
    assert_refused(&verifier, &mk_token().build(), TokenError::ClientNotAllowed).await;
}

#[tokio::test]
async fn token_missing_a_required_claim_is_malformed() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    for claim in [
        "sub",
        "iss",
        "client_id",
        "token_use",
        "username",
        "jti",
        "exp",
    ] {
        let token = mk_token().without(claim).build();
        assert_refused(&verifier, &token, TokenError::Malformed).await;
    }
    let token = mk_token().claim("exp", "tomorrow").build();
    assert_refused(&verifier, &token, TokenError::Malformed).await;
}

// ---------------------------------------------------------------------------------------
// Header and signature

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let (verifier, fake) = verifier_serving(&[KEY_1_JWKS]).await;
    let payload = b64url(mk_token().claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(
            json!({"alg": alg, "typ": "JWT", "kid": "test-key-1"})
                .to_string()
                .as_bytes(),
        );
        let token = format!("{header}.{payload}.");
        let error = verifier.verify(&token, NOW).await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::Malformed | TokenError::UnsupportedAlgorithm
            ),
            "{alg}: {error:?}"
        );
    }
    assert_eq!(fake.fetches(), 1);
}

#[tokio::test]
async fn hs256_token_signed_with_the_public_key_as_secret_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token();
    let mut header = token.header.clone();
    header.alg = Algorithm::HS256;
    let forged = jsonwebtoken::encode(
        &header,
        &token.claims,
        &EncodingKey::from_secret(KEY_1_PUB_PEM),
    )
    .unwrap();
    assert_refused(&verifier, &forged, TokenError::UnsupportedAlgorithm).await;
}

#[tokio::test]
async fn other_rsa_algorithms_than_rs256_are_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let token = mk_token().alg(alg).build();
        assert_refused(&verifier, &token, TokenError::UnsupportedAlgorithm).await;
    }
}

#[tokio::test]
async fn token_without_kid_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    assert_refused(
        &verifier,
        &mk_token().kid(None).build(),
        TokenError::MissingKid,
    )
    .await;
    assert_refused(
        &verifier,
        &mk_token().kid(Some("")).build(),
        TokenError::MissingKid,
    )
    .await;
}

#[tokio::test]
async fn tampered_payload_is_rejected_as_bad_signature() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let genuine = mk_token().claim("username", "mallory").build();
    let privileged = mk_token()
        .claim("cognito:groups", json!(["admins", "root"]))
        .build();
    let genuine_parts: Vec<&str> = genuine.split('.').collect();
    let privileged_parts: Vec<&str> = privileged.split('.').collect();
    // mallory's signature on a payload she did not get signed.
    let tampered = format!(
        "{}.{}.{}",
        genuine_parts[0], privileged_parts[1], genuine_parts[2]
    );
    assert_refused(&verifier, &tampered, TokenError::BadSignature).await;
}

#[tokio::test]
async fn token_signed_by_another_key_under_a_known_kid_is_rejected() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let mut token = mk_token().signed_by_key_2();
    token.header.kid = Some("test-key-1".to_owned());
    assert_refused(&verifier, &token.build(), TokenError::BadSignature).await;
}

#[tokio::test]
async fn garbage_is_rejected_without_panicking() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let valid = mk_token().build();
    let truncated = &valid[..valid.len() - 10];
    let cases = [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "eyJhbGciOiJSUzI1NiJ9",
        "eyJhbGciOiJSUzI1NiJ9..",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ.e30.",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ.!!!.sig",
        "dGhpcyBpcyBub3QgYSBqd3QgYXQgYWxs",
        "Bearer eyJ.eyJ.sig",
        "\u{0}\u{1}.\u{2}.\u{3}",
        truncated,
    ];
    for case in cases {
        assert!(
            verifier.verify(case, NOW).await.is_err(),
            "{case:?} accepted"
        );
    }
    let huge = format!("{}.{}.{}", "a".repeat(40_000), "b".repeat(40_000), "c");
    assert_eq!(
        verifier.verify(&huge, NOW).await,
        Err(TokenError::Malformed)
    );
}

// ---------------------------------------------------------------------------------------
// Keys: unknown kid, rate limit, rotation

#[tokio::test]
async fn unknown_kid_causes_one_refetch_then_is_rate_limited_until_the_interval_passes() {
    let (verifier, fake) = verifier_serving(&[KEY_1_JWKS]).await;
    assert_eq!(fake.fetches(), 1);

    let unknown = mk_token().kid(Some("made-up-1")).build();
    assert_refused(&verifier, &unknown, TokenError::UnknownKey).await;
    assert_eq!(fake.fetches(), 2, "exactly one refetch");

    let other_unknown = mk_token().kid(Some("made-up-2")).build();
    for now in [NOW, NOW.plus(1), NOW.plus(INTERVAL - 1)] {
        assert_eq!(
            verifier.verify(&other_unknown, now).await,
            Err(TokenError::UnknownKey)
        );
    }
    assert_eq!(fake.fetches(), 2, "no fetch within the interval");

    assert_eq!(
        verifier.verify(&other_unknown, NOW.plus(INTERVAL)).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(fake.fetches(), 3, "one more fetch once the interval passed");

    // Known keys keep verifying throughout, without fetching.
    verifier
        .verify(&mk_token().build(), NOW.plus(INTERVAL))
        .await
        .unwrap();
    assert_eq!(fake.fetches(), 3);
}

#[tokio::test]
async fn token_signed_by_a_rotated_in_key_verifies_after_the_refetch() {
    let (verifier, fake) = verifier_serving(&[KEY_1_JWKS]).await;
    // The pool rotates: its JWKS now holds both keys; the cache does not know it yet.
    fake.serve(jwks(&[KEY_1_JWKS, KEY_2_JWKS]));
    assert_eq!(verifier.jwks().key_count(), 1);

    let claims = verifier
        .verify(&mk_token().signed_by_key_2().build(), NOW)
        .await
        .unwrap();
    assert_eq!(claims.username, "alice");
    assert_eq!(fake.fetches(), 2);
    assert_eq!(verifier.jwks().key_count(), 2);
    // The old key still verifies.
    verifier.verify(&mk_token().build(), NOW).await.unwrap();
    assert_eq!(fake.fetches(), 2);
}

#[tokio::test]
async fn a_cache_never_loaded_fetches_on_first_use() {
    let fake = Arc::new(FakeJwks {
        set: Mutex::new(jwks(&[KEY_1_JWKS])),
        fetches: AtomicUsize::new(0),
    });
    let verifier = TokenVerifier::new(config(), fake.clone());
    assert!(!verifier.jwks().is_loaded());
    verifier.verify(&mk_token().build(), NOW).await.unwrap();
    assert!(verifier.jwks().is_loaded());
    assert_eq!(fake.fetches(), 1);
}

// ---------------------------------------------------------------------------------------
// The real HTTP fetcher

#[cfg(feature = "http-jwks")]
mod http_fetcher {
    use super::*;
    use std::net::SocketAddr;
    use std::time::Duration;
    use stepup_core::token::HttpJwksFetcher;

    async fn serve(router: axum::Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    fn jwks_server_routes() -> axum::Router {
        use axum::http::StatusCode;
        use axum::routing::get;
        axum::Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|| async { ([("content-type", "application/json")], KEY_1_JWKS) }),
            )
            .route(
                "/broken",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
            )
            .route("/html", get(|| async { "<html>not a jwks</html>" }))
            .route("/no-keys", get(|| async { r#"{"keys": []}"# }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    KEY_1_JWKS
                }),
            )
    }

    fn http_config(addr: SocketAddr, path: &str) -> VerifierConfig {
        VerifierConfig {
            jwks_url: format!("http://{addr}{path}"),
            ..config()
        }
    }

    #[tokio::test]
    async fn http_fetcher_loads_the_jwks_served_over_http() {
        let addr = serve(jwks_server_routes()).await;
        let fetcher = Arc::new(HttpJwksFetcher::new().unwrap());
        let verifier = TokenVerifier::new(http_config(addr, "/.well-known/jwks.json"), fetcher);
        assert_eq!(verifier.jwks().refresh(NOW).await, Ok(1));
        verifier.verify(&mk_token().build(), NOW).await.unwrap();
    }

    #[tokio::test]
    async fn http_fetcher_reports_a_500_bad_json_and_an_empty_set_and_keeps_old_keys() {
        let addr = serve(jwks_server_routes()).await;
        let fetcher: Arc<dyn JwksFetcher> = Arc::new(HttpJwksFetcher::new().unwrap());

        let error = fetcher
            .fetch(&format!("http://{addr}/broken"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, JwksError::Fetch(ref text) if text.contains("500")),
            "{error:?}"
        );
        let error = fetcher
            .fetch(&format!("http://{addr}/html"))
            .await
            .unwrap_err();
        assert!(matches!(error, JwksError::BadDocument(_)), "{error:?}");

        let verifier = TokenVerifier::new(http_config(addr, "/no-keys"), fetcher.clone());
        assert_eq!(
            verifier.jwks().refresh(NOW).await,
            Err(JwksError::NoUsableKeys)
        );

        // A cache loaded once keeps its keys when the endpoint starts failing.
        let verifier = TokenVerifier::new(http_config(addr, "/.well-known/jwks.json"), fetcher);
        verifier.jwks().refresh(NOW).await.unwrap();
        let broken = TokenVerifier::new(
            http_config(addr, "/broken"),
            Arc::new(HttpJwksFetcher::new().unwrap()),
        );
        assert!(matches!(
            broken.jwks().refresh(NOW).await,
            Err(JwksError::Fetch(_))
        ));
        assert!(!broken.jwks().is_loaded());
        assert!(verifier.jwks().is_loaded());
    }

    #[tokio::test]
    async fn http_fetcher_gives_up_after_its_timeout() {
        let addr = serve(jwks_server_routes()).await;
        let fetcher = HttpJwksFetcher::with_timeout(Duration::from_millis(200)).unwrap();
        let error = fetcher
            .fetch(&format!("http://{addr}/slow"))
            .await
            .unwrap_err();
        assert!(matches!(error, JwksError::Fetch(_)), "{error:?}");
    }

    #[tokio::test]
    async fn unknown_kid_refetch_that_fails_is_reported_as_jwks_unavailable() {
        // Nothing listens on the URL: the initial load and the refetch both fail.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let verifier = TokenVerifier::new(
            http_config(addr, "/jwks.json"),
            Arc::new(HttpJwksFetcher::new().unwrap()),
        );
        assert!(verifier.jwks().refresh(NOW).await.is_err());
        let error = verifier.verify(&mk_token().build(), NOW).await.unwrap_err();
        assert!(
            matches!(error, TokenError::Jwks(JwksError::Fetch(_))),
            "{error:?}"
        );
        assert_eq!(error.metric_label(), "jwks_fetch");
        // Rate limited now: plain unknown key, no second connection attempt.
        assert_eq!(
            verifier.verify(&mk_token().build(), NOW.plus(1)).await,
            Err(TokenError::UnknownKey)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Properties

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn loaded_verifier(rt: &tokio::runtime::Runtime) -> TokenVerifier {
    rt.block_on(async { verifier_serving(&[KEY_1_JWKS]).await.0 })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic_and_are_never_accepted(token in ".{0,300}") {
        let rt = runtime();
        let verifier = loaded_verifier(&rt);
        prop_assert!(rt.block_on(verifier.verify(&token, NOW)).is_err());
    }

    #[test]
    fn arbitrary_jwt_shaped_strings_never_panic_and_are_never_accepted(
        header in "[A-Za-z0-9_=-]{0,80}",
        payload in "[A-Za-z0-9_=-]{0,200}",
        signature in "[A-Za-z0-9_=-]{0,400}",
    ) {
        let rt = runtime();
        let verifier = loaded_verifier(&rt);
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(rt.block_on(verifier.verify(&token, NOW)).is_err());
        // The same with a genuine header, so parsing reaches the key and the signature.
        let genuine = mk_token().build();
        let genuine_header = genuine.split('.').next().unwrap();
        let token = format!("{genuine_header}.{payload}.{signature}");
        prop_assert!(rt.block_on(verifier.verify(&token, NOW)).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_signed_token_is_accepted_exactly_when_exp_and_nbf_hold_with_leeway(
        exp in prop_oneof![Just(0u64), Just(u64::MAX), NOW.as_secs() - 200..NOW.as_secs() + 200],
        nbf in proptest::option::of(prop_oneof![Just(0u64), Just(u64::MAX), NOW.as_secs() - 200..NOW.as_secs() + 200]),
        leeway in prop_oneof![Just(0u64), Just(60u64), Just(u64::MAX)],
    ) {
        let rt = runtime();
        let config = VerifierConfig { leeway_secs: leeway, ..config() };
        let verifier = rt.block_on(async { verifier_with_config(config, &[KEY_1_JWKS]).await.0 });
        let mut token = mk_token().claim("exp", exp);
        if let Some(nbf) = nbf {
            token = token.claim("nbf", nbf);
        }
        let result = rt.block_on(verifier.verify(&token.build(), NOW));
        let expected = if UnixSeconds::from_secs(exp).plus(leeway) <= NOW {
            Err(TokenError::Expired)
        } else if nbf.is_some_and(|nbf| UnixSeconds::from_secs(nbf) > NOW.plus(leeway)) {
            Err(TokenError::NotYetValid)
        } else {
            Ok(())
        };
        prop_assert_eq!(result.map(|_| ()), expected);
    }
}

/// A host clock before 1970 must refuse every token (fail closed): it reads as the far
/// future, where every token has expired, never as 0, where none would have.
#[tokio::test]
async fn a_clock_before_1970_refuses_every_token() {
    let now = UnixSeconds::from_secs(1_800_000_000);
    let issuer = stepup_core::testkit::TestIssuer::new();
    let verifier = issuer.verifier(now).await;
    let token = issuer.token("alice", "jti-clock", now);
    assert!(verifier.verify(&token, now).await.is_ok());
    let broken = stepup_core::clock::unix_seconds(
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(60),
    );
    assert_eq!(
        verifier.verify(&token, broken).await,
        Err(TokenError::Expired)
    );
}

// ---------------------------------------------------------------------------------------
// The verified-token cache (on by default)

#[tokio::test]
async fn a_repeated_token_skips_the_signature_check_but_not_the_claim_checks() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().build();
    let first = verifier.verify(&token, NOW).await.unwrap();
    for _ in 0..10 {
        assert_eq!(verifier.verify(&token, NOW).await.unwrap(), first);
    }
    assert_eq!(verifier.signature_checks(), 1);
    let stats = verifier.cache().unwrap().stats();
    assert_eq!((stats.hits, stats.misses), (10, 1));
}

#[tokio::test]
async fn a_cached_token_is_refused_once_expired_or_before_its_nbf() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().claim("nbf", NOW.minus(10)).build();
    verifier.verify(&token, NOW).await.unwrap();
    let leeway = VerifierConfig::DEFAULT_LEEWAY_SECS;
    let after_exp = NOW.plus(3600 + leeway);
    assert_eq!(
        verifier.verify(&token, after_exp).await,
        Err(TokenError::Expired)
    );
    let before_nbf = NOW.minus(11 + leeway);
    assert_eq!(
        verifier.verify(&token, before_nbf).await,
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        verifier.signature_checks(),
        1,
        "both answered from the cache"
    );
    assert!(verifier.verify(&token, NOW).await.is_ok());
}

#[tokio::test]
async fn a_key_rotated_out_of_the_jwks_stops_its_cached_tokens_after_one_refresh() {
    let (verifier, fake) = verifier_serving(&[KEY_1_JWKS, KEY_2_JWKS]).await;
    let old = mk_token().build();
    let new = mk_token().signed_by_key_2().build();
    verifier.verify(&old, NOW).await.unwrap();
    verifier.verify(&new, NOW).await.unwrap();
    // A refresh that loads the same keys keeps the cache.
    verifier.jwks().refresh(NOW).await.unwrap();
    verifier.verify(&old, NOW).await.unwrap();
    assert_eq!(verifier.signature_checks(), 2);
    // Key 1 is rotated out: at the next refresh its cached tokens stop.
    fake.serve(jwks(&[KEY_2_JWKS]));
    verifier.jwks().refresh(NOW).await.unwrap();
    assert_eq!(
        verifier.verify(&old, NOW).await,
        Err(TokenError::UnknownKey)
    );
    assert!(verifier.cache().unwrap().len() <= 1);
    // Tokens of the key that stayed verify again (once) and are cached again.
    verifier.verify(&new, NOW).await.unwrap();
    verifier.verify(&new, NOW).await.unwrap();
    assert_eq!(verifier.signature_checks(), 3);
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_stops_its_cached_tokens() {
    let (verifier, fake) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().build();
    verifier.verify(&token, NOW).await.unwrap();
    // Key 2's material published under key 1's kid.
    fake.serve(jwks(&[&KEY_2_JWKS.replace("test-key-2", "test-key-1")]));
    verifier.jwks().refresh(NOW).await.unwrap();
    assert_eq!(
        verifier.verify(&token, NOW).await,
        Err(TokenError::BadSignature)
    );
}

#[tokio::test]
async fn a_tampered_copy_of_a_cached_token_is_verified_and_refused() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let token = mk_token().build();
    verifier.verify(&token, NOW).await.unwrap();
    let (head, signature) = token.rsplit_once('.').unwrap();
    // One byte changed in the signature, then one in the payload.
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let bad_signature = format!("{head}.{flipped}{}", &signature[1..]);
    assert_refused(&verifier, &bad_signature, TokenError::BadSignature).await;
    let mut bad_payload = token.clone().into_bytes();
    let at = head.find('.').unwrap() + 5;
    bad_payload[at] = if bad_payload[at] == b'x' { b'y' } else { b'x' };
    let bad_payload = String::from_utf8(bad_payload).unwrap();
    assert!(verifier.verify(&bad_payload, NOW).await.is_err());
    assert_eq!(verifier.signature_checks(), 3, "both copies were verified");
    assert!(verifier.verify(&token, NOW).await.is_ok());
}

#[tokio::test]
async fn a_refused_token_is_never_cached() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let other_client = mk_token().claim("client_id", "client-9").build();
    for _ in 0..3 {
        assert_refused(&verifier, &other_client, TokenError::ClientNotAllowed).await;
    }
    assert_eq!(verifier.signature_checks(), 3);
    assert!(verifier.cache().unwrap().is_empty());
}

#[tokio::test]
async fn the_cache_stays_within_its_size_under_a_flood_of_distinct_valid_tokens() {
    let config = VerifierConfig {
        token_cache_size: 32,
        ..config()
    };
    let (verifier, _) = verifier_with_config(config, &[KEY_1_JWKS]).await;
    let cache = verifier.cache().unwrap();
    for i in 0..400 {
        let token = mk_token().claim("jti", format!("jti-{i}")).build();
        verifier.verify(&token, NOW).await.unwrap();
        assert!(
            cache.len() <= 32,
            "{} entries after {i} tokens",
            cache.len()
        );
    }
    assert_eq!(verifier.signature_checks(), 400);
}

#[tokio::test]
async fn size_zero_turns_the_cache_off() {
    let config = VerifierConfig {
        token_cache_size: 0,
        ..config()
    };
    let (verifier, _) = verifier_with_config(config, &[KEY_1_JWKS]).await;
    let token = mk_token().build();
    verifier.verify(&token, NOW).await.unwrap();
    verifier.verify(&token, NOW).await.unwrap();
    assert!(verifier.cache().is_none());
    assert_eq!(verifier.signature_checks(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_requests_at_once_with_one_token_all_pass_and_a_tampered_one_never_does() {
    let (verifier, _) = verifier_serving(&[KEY_1_JWKS]).await;
    let verifier = Arc::new(verifier);
    let token = mk_token().build();
    let tampered = format!("{}A", &token[..token.len() - 1]);
    let tampered = if tampered == token {
        format!("{}B", &token[..token.len() - 1])
    } else {
        tampered
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (verifier, token) = (
            verifier.clone(),
            if i % 2 == 0 {
                token.clone()
            } else {
                tampered.clone()
            },
        );
        tasks.spawn(async move { (i % 2 == 0, verifier.verify(&token, NOW).await.is_ok()) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (genuine, accepted) = joined.unwrap();
        assert_eq!(genuine, accepted);
    }
}
