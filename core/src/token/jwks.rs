//! The JWKS key cache: the user pool's RS256 signing keys by `kid`.
//!
//! Reading a key is the hot path of every request, so the key map sits behind an
//! [`ArcSwap`]: a lookup takes no lock, and a refresh builds a new map and swaps it in.
//!
//! Keys arrive in two ways:
//!
//! - [`JwksCache::refresh`] fetches unconditionally (initial load, periodic background
//!   refresh);
//! - [`JwksCache::key`] refetches when a token names a `kid` the cache does not hold (the
//!   pool rotated its keys). Such a refetch is *rate limited*: at most one per
//!   `min_refetch_interval_secs`, measured from the last attempt whether it succeeded or
//!   not, so a flood of tokens with made-up `kid`s cannot turn stepup into a traffic
//!   amplifier against the JWKS endpoint. It is also *single-flight*: concurrent misses
//!   wait for one fetch (a tokio mutex) and re-check the map once it is done.
//!
//! A failed fetch, or a document without one usable key, keeps the keys already loaded:
//! a JWKS endpoint hiccup must not log every user out.
//!
//! Fetching is behind the [`JwksFetcher`] trait so that the cache knows no HTTP client;
//! [`HttpJwksFetcher`] (feature `http-jwks`) is the reqwest implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};

use crate::clock::UnixSeconds;
use crate::token::verify::TokenError;

/// Why a JWKS could not be (re)loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document could not be fetched (connection, timeout, non-2xx status).
    #[error("fetching the JWKS failed: {0}")]
    Fetch(String),
    /// The document is not a JWKS (not JSON, or no `keys` array).
    #[error("the JWKS document is invalid: {0}")]
    BadDocument(String),
    /// The document holds no RSA key usable for RS256 signatures.
    #[error("the JWKS holds no usable RS256 signing key")]
    NoUsableKeys,
}

impl JwksError {
    /// A short snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            JwksError::Fetch(_) => "fetch",
            JwksError::BadDocument(_) => "bad_document",
            JwksError::NoUsableKeys => "no_usable_keys",
        }
    }
}

/// Fetches a JWKS document. The cache calls it on refresh and on an unknown `kid`.
#[async_trait]
pub trait JwksFetcher: Send + Sync + fmt::Debug {
    /// Fetch and parse the JWKS at `url`.
    async fn fetch(&self, url: &str) -> Result<JwkSet, JwksError>;
}

/// Parses a JWKS document, skipping (with a warning) entries that are not valid JWKs
/// instead of refusing the whole document for one odd key.
pub fn parse_jwks(body: &[u8]) -> Result<JwkSet, JwksError> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet =
        serde_json::from_slice(body).map_err(|e| JwksError::BadDocument(e.to_string()))?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (index, value) in raw.keys.into_iter().enumerate() {
        match serde_json::from_value::<Jwk>(value) {
            Ok(jwk) => keys.push(jwk),
            Err(error) => tracing::warn!(index, %error, "skipping an invalid JWK"),
        }
    }
    Ok(JwkSet { keys })
}

#[cfg(feature = "http-jwks")]
pub use http::HttpJwksFetcher;

#[cfg(feature = "http-jwks")]
mod http {
    use std::time::Duration;

    use async_trait::async_trait;
    use jsonwebtoken::jwk::JwkSet;

    use super::{JwksError, JwksFetcher, parse_jwks};

    /// A JWKS larger than this is refused; a real one is a few kilobytes.
    const MAX_BODY_BYTES: usize = 1024 * 1024;

    /// Fetches a JWKS over HTTP(S) with one reqwest client, built once.
    #[derive(Debug, Clone)]
    pub struct HttpJwksFetcher {
        client: reqwest::Client,
    }

    impl HttpJwksFetcher {
        /// The whole-request timeout [`HttpJwksFetcher::new`] uses.
        pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

        /// A fetcher with [`Self::DEFAULT_TIMEOUT`].
        pub fn new() -> Result<Self, JwksError> {
            Self::with_timeout(Self::DEFAULT_TIMEOUT)
        }

        /// A fetcher whose every request (connect to last body byte) ends after `timeout`.
        pub fn with_timeout(timeout: Duration) -> Result<Self, JwksError> {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
                .map_err(|e| JwksError::Fetch(format!("building the HTTP client: {e}")))?;
            Ok(Self { client })
        }

        /// A fetcher using a client the caller configured (proxy, TLS roots, ...).
        pub fn from_client(client: reqwest::Client) -> Self {
            Self { client }
        }
    }

    #[async_trait]
    impl JwksFetcher for HttpJwksFetcher {
        async fn fetch(&self, url: &str) -> Result<JwkSet, JwksError> {
            let mut response = self
                .client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| JwksError::Fetch(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(JwksError::Fetch(format!("{url} answered HTTP {status}")));
            }
            if response
                .content_length()
                .is_some_and(|len| len > MAX_BODY_BYTES as u64)
            {
                return Err(JwksError::BadDocument("document too large".to_owned()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| JwksError::Fetch(e.to_string()))?
            {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(JwksError::BadDocument("document too large".to_owned()));
                }
                body.extend_from_slice(&chunk);
            }
            parse_jwks(&body)
        }
    }
}

type KeyMap = HashMap<String, Arc<DecodingKey>>;

/// The pool's RS256 verification keys by `kid`, refreshed from a JWKS URL.
pub struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    url: String,
    min_refetch_interval_secs: u64,
    keys: ArcSwap<KeyMap>,
    /// Held for the duration of every fetch (single flight); holds the time of the last
    /// refetch attempt caused by an unknown `kid` (the rate limit's reference point).
    fetch_lock: tokio::sync::Mutex<Option<UnixSeconds>>,
    /// When keys were last loaded successfully (0: never).
    loaded_at: AtomicU64,
    /// Bumped after every load that changed the key material (a `kid` added, removed or
    /// bound to another key); a refresh that loads the same keys leaves it alone. The
    /// verified-token cache tags its entries with it.
    generation: AtomicU64,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("min_refetch_interval_secs", &self.min_refetch_interval_secs)
            .field("kids", &kids)
            .field("fetcher", &self.fetcher)
            .finish()
    }
}

impl JwksCache {
    /// An empty cache for the JWKS at `url`. Call [`Self::refresh`] to load it; until
    /// then every `kid` is unknown (and fetched, rate limited, on first use).
    pub fn new(fetcher: Arc<dyn JwksFetcher>, url: String, min_refetch_interval_secs: u64) -> Self {
        Self {
            fetcher,
            url,
            min_refetch_interval_secs,
            keys: ArcSwap::from_pointee(KeyMap::new()),
            fetch_lock: tokio::sync::Mutex::new(None),
            loaded_at: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Changes whenever the loaded key material changes (see the field). Read it *before*
    /// [`Self::key`]: a result verified with a key of generation `g` is only as good as `g`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the JWKS now and replaces the keys; returns how many usable keys it holds.
    ///
    /// On a fetch error, or a document without a usable key, the old keys stay.
    pub async fn refresh(&self, now: UnixSeconds) -> Result<usize, JwksError> {
        let _flight = self.fetch_lock.lock().await;
        self.fetch_and_swap(now).await
    }

    /// The key for `kid`.
    ///
    /// A `kid` the cache does not hold causes one refetch, unless one was attempted
    /// less than `min_refetch_interval_secs` ago. Errors: [`TokenError::UnknownKey`]
    /// when the `kid` is still unknown (or the refetch is rate limited),
    /// [`TokenError::Jwks`] when the refetch failed.
    pub async fn key(&self, kid: &str, now: UnixSeconds) -> Result<Arc<DecodingKey>, TokenError> {
        if let Some(key) = self.keys.load().get(kid) {
            return Ok(Arc::clone(key));
        }
        let mut last_attempt = self.fetch_lock.lock().await;
        // Whoever held the lock may just have fetched this very kid.
        if let Some(key) = self.keys.load().get(kid) {
            return Ok(Arc::clone(key));
        }
        if let Some(last) = *last_attempt {
            // saturating: a clock that went backwards counts as "just attempted".
            if now.seconds_since(last) < self.min_refetch_interval_secs || now < last {
                metrics::counter!("stepup_jwks_refetch_total", "result" => "rate_limited")
                    .increment(1);
                return Err(TokenError::UnknownKey);
            }
        }
        *last_attempt = Some(now);
        tracing::info!(url = %self.url, "unknown kid, refetching the JWKS");
        self.fetch_and_swap(now).await.map_err(TokenError::Jwks)?;
        metrics::counter!("stepup_jwks_refetch_total", "result" => "fetched").increment(1);
        self.keys
            .load()
            .get(kid)
            .map(Arc::clone)
            .ok_or(TokenError::UnknownKey)
    }

    /// Whether at least one key is loaded.
    pub fn is_loaded(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// How many keys are loaded.
    pub fn key_count(&self) -> usize {
        self.keys.load().len()
    }

    /// When keys were last loaded successfully, if ever.
    pub fn loaded_at(&self) -> Option<UnixSeconds> {
        match self.loaded_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(UnixSeconds::from_secs(at)),
        }
    }

    /// Fetch, keep the usable keys, swap them in. The caller holds `fetch_lock`.
    async fn fetch_and_swap(&self, now: UnixSeconds) -> Result<usize, JwksError> {
        let result = match self.fetcher.fetch(&self.url).await {
            Ok(set) => {
                let keys = usable_keys(&set);
                if keys.is_empty() {
                    Err(JwksError::NoUsableKeys)
                } else {
                    let count = keys.len();
                    if !same_keys(&self.keys.load(), &keys) {
                        // The map first, then the generation (Release): whoever reads the
                        // new generation (Acquire) also sees the new keys.
                        self.keys.store(Arc::new(keys));
                        self.generation.fetch_add(1, Ordering::Release);
                    }
                    self.loaded_at
                        .store(now.as_secs().max(1), Ordering::Relaxed);
                    metrics::gauge!("stepup_jwks_keys").set(count as f64);
                    Ok(count)
                }
            }
            Err(error) => Err(error),
        };
        let label = match &result {
            Ok(_) => "ok",
            Err(error) => error.metric_label(),
        };
        metrics::counter!("stepup_jwks_fetch_total", "result" => label).increment(1);
        if let Err(error) = &result {
            tracing::warn!(url = %self.url, %error, "JWKS not (re)loaded; keeping the old keys");
        }
        result
    }
}

/// The RSA keys of `set` usable to verify RS256 signatures, by `kid`.
///
/// A key is skipped when it has no `kid`, a `use` other than `sig`, an `alg` other than
/// `RS256`, `key_ops` without `verify`, is not RSA, or its modulus/exponent do not decode
/// or are too short. On a duplicate `kid` the first key wins (with a warning).
fn usable_keys(set: &JwkSet) -> KeyMap {
    let mut keys = KeyMap::with_capacity(set.keys.len());
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.as_deref().filter(|kid| !kid.is_empty()) else {
            tracing::warn!("skipping a JWK without kid");
            continue;
        };
        let for_signatures =
            matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            ) && matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256))
                && jwk
                    .common
                    .key_operations
                    .as_ref()
                    .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
        let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
            tracing::debug!(kid, "skipping a non-RSA JWK");
            continue;
        };
        if !for_signatures {
            tracing::debug!(kid, "skipping a JWK not meant for RS256 signatures");
            continue;
        }
        let key = match DecodingKey::from_rsa_components(&rsa.n, &rsa.e) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(kid, %error, "skipping a malformed RSA JWK");
                continue;
            }
        };
        if !strong_enough(&key) {
            tracing::warn!(
                kid,
                "skipping an RSA JWK shorter than 2048 bits or without exponent"
            );
            continue;
        }
        if keys.contains_key(kid) {
            tracing::warn!(kid, "duplicate kid in the JWKS; keeping the first key");
            continue;
        }
        keys.insert(kid.to_owned(), Arc::new(key));
    }
    keys
}

/// Whether two key maps hold the same `kid`s bound to the same modulus and exponent.
fn same_keys(old: &KeyMap, new: &KeyMap) -> bool {
    old.len() == new.len()
        && new
            .iter()
            .all(|(kid, key)| old.get(kid).is_some_and(|old_key| same_key(old_key, key)))
}

fn same_key(a: &DecodingKey, b: &DecodingKey) -> bool {
    use jsonwebtoken::DecodingKeyKind::{RsaModulusExponent, SecretOrDer};
    match (a.kind(), b.kind()) {
        (RsaModulusExponent { n: n1, e: e1 }, RsaModulusExponent { n: n2, e: e2 }) => {
            n1 == n2 && e1 == e2
        }
        (SecretOrDer(a), SecretOrDer(b)) => a == b,
        _ => false,
    }
}

/// RS256 verification refuses moduli under 2048 bits anyway; refusing them at load time
/// turns a silent "bad signature" on every token into one warning.
fn strong_enough(key: &DecodingKey) -> bool {
    match key.kind() {
        jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, e } => {
            let significant = n.iter().skip_while(|b| **b == 0).count();
            significant >= 256 && e.iter().any(|b| *b != 0)
        }
        jsonwebtoken::DecodingKeyKind::SecretOrDer(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    const KEY_1: &str = include_str!("../../tests/fixtures/test_key_1.jwks.json");
    const KEY_2: &str = include_str!("../../tests/fixtures/test_key_2.jwks.json");

    fn set_of(docs: &[&str]) -> JwkSet {
        let mut keys = Vec::new();
        for doc in docs {
            keys.extend(parse_jwks(doc.as_bytes()).unwrap().keys);
        }
        JwkSet { keys }
    }

    /// Answers with a scripted document (or error), counting calls; optionally slow.
    #[derive(Debug)]
    struct FakeFetcher {
        answer: Mutex<Result<JwkSet, JwksError>>,
        calls: AtomicUsize,
        delay: Duration,
    }

    impl FakeFetcher {
        fn new(answer: Result<JwkSet, JwksError>) -> Arc<Self> {
            Self::slow(answer, Duration::ZERO)
        }
        fn slow(answer: Result<JwkSet, JwksError>, delay: Duration) -> Arc<Self> {
            Arc::new(Self {
                answer: Mutex::new(answer),
                calls: AtomicUsize::new(0),
                delay,
            })
        }
        fn answer(&self, answer: Result<JwkSet, JwksError>) {
            *self.answer.lock().unwrap() = answer;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl JwksFetcher for FakeFetcher {
        async fn fetch(&self, _url: &str) -> Result<JwkSet, JwksError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.answer.lock().unwrap().clone()
        }
    }

    fn at(secs: u64) -> UnixSeconds {
        UnixSeconds::from_secs(secs)
    }

    fn cache(fetcher: &Arc<FakeFetcher>, interval: u64) -> JwksCache {
        JwksCache::new(
            fetcher.clone(),
            "https://jwks.test/jwks.json".to_owned(),
            interval,
        )
    }

    fn jwk_json(kty_and_params: serde_json::Value) -> Jwk {
        serde_json::from_value(kty_and_params).unwrap()
    }

    #[tokio::test]
    async fn refresh_loads_the_keys_and_key_serves_them_without_fetching_again() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1, KEY_2])));
        let cache = cache(&fetcher, 60);
        assert!(!cache.is_loaded());
        assert_eq!(cache.refresh(at(1000)).await, Ok(2));
        assert!(cache.is_loaded());
        assert_eq!(cache.key_count(), 2);
        assert_eq!(cache.loaded_at(), Some(at(1000)));
        cache.key("test-key-1", at(1000)).await.unwrap();
        cache.key("test-key-2", at(1000)).await.unwrap();
        assert_eq!(fetcher.calls(), 1);
    }

    #[tokio::test]
    async fn the_generation_moves_only_when_the_key_material_changes() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        assert_eq!(cache.generation(), 0);
        cache.refresh(at(1000)).await.unwrap();
        assert_eq!(cache.generation(), 1);
        cache.refresh(at(1100)).await.unwrap();
        assert_eq!(cache.generation(), 1, "the same keys again");
        fetcher.answer(Ok(set_of(&[KEY_1, KEY_2])));
        cache.refresh(at(1200)).await.unwrap();
        assert_eq!(cache.generation(), 2, "a key added");
        fetcher.answer(Err(JwksError::Fetch("down".to_owned())));
        let _ = cache.refresh(at(1300)).await;
        assert_eq!(cache.generation(), 2, "a failed fetch changes nothing");
        fetcher.answer(Ok(set_of(&[KEY_2])));
        cache.refresh(at(1400)).await.unwrap();
        assert_eq!(cache.generation(), 3, "a key removed");
        fetcher.answer(Ok(set_of(&[&KEY_1.replace("test-key-1", "test-key-2")])));
        cache.refresh(at(1500)).await.unwrap();
        assert_eq!(cache.generation(), 4, "another key under the same kid");
    }

    #[tokio::test]
    async fn a_failed_refresh_or_an_empty_document_keeps_the_old_keys() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        cache.refresh(at(1000)).await.unwrap();

        fetcher.answer(Err(JwksError::Fetch("connection refused".to_owned())));
        assert_eq!(
            cache.refresh(at(1100)).await,
            Err(JwksError::Fetch("connection refused".to_owned()))
        );
        fetcher.answer(Ok(JwkSet { keys: Vec::new() }));
        assert_eq!(cache.refresh(at(1200)).await, Err(JwksError::NoUsableKeys));

        assert_eq!(cache.key_count(), 1);
        assert_eq!(cache.loaded_at(), Some(at(1000)));
        cache.key("test-key-1", at(1200)).await.unwrap();
    }

    #[tokio::test]
    async fn a_refresh_replaces_the_key_set_so_removed_keys_are_gone() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        cache.refresh(at(1000)).await.unwrap();
        fetcher.answer(Ok(set_of(&[KEY_2])));
        cache.refresh(at(2000)).await.unwrap();
        // key-1 is gone; asking for it refetches once (the same document) and fails.
        assert_eq!(
            cache.key("test-key-1", at(2000)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        cache.key("test-key-2", at(2000)).await.unwrap();
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval_measured_from_the_attempt() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        cache.refresh(at(1000)).await.unwrap();
        assert_eq!(fetcher.calls(), 1);

        // First miss: one refetch.
        assert_eq!(
            cache.key("nope", at(1000)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(fetcher.calls(), 2);
        // Within the interval: no fetch, whatever the kid.
        assert_eq!(
            cache.key("nope", at(1030)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(
            cache.key("other", at(1059)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(fetcher.calls(), 2);
        // A failed attempt also counts as an attempt.
        fetcher.answer(Err(JwksError::Fetch("timeout".to_owned())));
        assert_eq!(
            cache.key("nope", at(1060)).await.unwrap_err(),
            TokenError::Jwks(JwksError::Fetch("timeout".to_owned()))
        );
        assert_eq!(fetcher.calls(), 3);
        assert_eq!(
            cache.key("nope", at(1119)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(fetcher.calls(), 3);
        // The interval passed: the rotated key arrives.
        fetcher.answer(Ok(set_of(&[KEY_1, KEY_2])));
        cache.key("test-key-2", at(1120)).await.unwrap();
        assert_eq!(fetcher.calls(), 4);
        // Known keys never fetch, rate limit or not.
        cache.key("test-key-1", at(1121)).await.unwrap();
        assert_eq!(fetcher.calls(), 4);
    }

    #[tokio::test]
    async fn a_clock_that_went_backwards_does_not_open_the_rate_limit() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        assert_eq!(
            cache.key("nope", at(5000)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(
            cache.key("nope", at(10)).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(fetcher.calls(), 1);
    }

    #[tokio::test]
    async fn a_periodic_refresh_does_not_count_against_the_refetch_rate_limit() {
        let fetcher = FakeFetcher::new(Ok(set_of(&[KEY_1])));
        let cache = cache(&fetcher, 60);
        cache.refresh(at(1000)).await.unwrap();
        fetcher.answer(Ok(set_of(&[KEY_1, KEY_2])));
        cache.key("test-key-2", at(1000)).await.unwrap();
        assert_eq!(fetcher.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_for_a_new_kid_cause_one_fetch_and_all_get_the_key() {
        let fetcher = FakeFetcher::slow(Ok(set_of(&[KEY_1, KEY_2])), Duration::from_millis(200));
        let cache = Arc::new(cache(&fetcher, 60));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let cache = Arc::clone(&cache);
            tasks.spawn(async move { cache.key("test-key-2", at(1000)).await.map(|_| ()) });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap(), Ok(()));
        }
        assert_eq!(fetcher.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_for_a_made_up_kid_cause_one_fetch_and_all_fail() {
        let fetcher = FakeFetcher::slow(Ok(set_of(&[KEY_1])), Duration::from_millis(200));
        let cache = Arc::new(cache(&fetcher, 60));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let cache = Arc::clone(&cache);
            tasks.spawn(async move { cache.key("made-up", at(1000)).await.map(|_| ()) });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap(), Err(TokenError::UnknownKey));
        }
        assert_eq!(fetcher.calls(), 1);
    }

    #[test]
    fn only_rsa_keys_for_rs256_signatures_with_a_kid_are_kept() {
        let good = parse_jwks(KEY_1.as_bytes()).unwrap().keys.remove(0);
        let mut value = serde_json::to_value(&good).unwrap();
        let with = |field: &str, v: serde_json::Value| {
            let mut value = value.clone();
            value[field] = v;
            value["kid"] = serde_json::json!(format!("{field}-{}", value[field]));
            jwk_json(value)
        };
        let mut keys = vec![
            good.clone(),
            with("use", "enc".into()),
            with("alg", "RS512".into()),
            with("alg", "HS256".into()),
            with("key_ops", serde_json::json!(["encrypt"])),
            with("n", "AQAB".into()), // far too short
            with("n", "!!!not base64!!!".into()),
            jwk_json(serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})),
            jwk_json(serde_json::json!({
                "kty": "EC", "kid": "ec", "crv": "P-256", "use": "sig",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
            })),
        ];
        value.as_object_mut().unwrap().remove("kid");
        keys.push(jwk_json(value.clone()));
        // Same kid again with other material: the first one stays.
        keys.push(good.clone());
        // No `use`, no `alg`: still usable.
        let mut bare = serde_json::to_value(&good).unwrap();
        bare.as_object_mut().unwrap().remove("use");
        bare.as_object_mut().unwrap().remove("alg");
        bare["kid"] = "bare".into();
        keys.push(jwk_json(bare));

        let usable = usable_keys(&JwkSet { keys });
        let mut kids: Vec<&str> = usable.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, vec!["bare", "test-key-1"]);
    }

    #[test]
    fn parse_jwks_skips_invalid_entries_but_refuses_a_document_without_keys() {
        let doc = format!(
            r#"{{"keys": [{{"kty": "RSA", "kid": 5}}, "junk", {}]}}"#,
            serde_json::to_string(&parse_jwks(KEY_1.as_bytes()).unwrap().keys[0]).unwrap()
        );
        assert_eq!(parse_jwks(doc.as_bytes()).unwrap().keys.len(), 1);
        for bad in ["", "null", "{}", r#"{"keys": 5}"#, "<html>"] {
            assert!(
                matches!(parse_jwks(bad.as_bytes()), Err(JwksError::BadDocument(_))),
                "{bad:?} must be a bad document"
            );
        }
    }

    #[test]
    fn jwks_error_labels_are_snake_case() {
        assert_eq!(JwksError::Fetch(String::new()).metric_label(), "fetch");
        assert_eq!(
            JwksError::BadDocument(String::new()).metric_label(),
            "bad_document"
        );
        assert_eq!(JwksError::NoUsableKeys.metric_label(), "no_usable_keys");
    }
}
