//! The verified-token cache: a token the verifier accepted a moment ago is not
//! RSA-verified again.
//!
//! - **Key**: the SHA-256 of the exact token bytes. A copy with one byte changed has
//!   another key, so it is verified (and refused) like any new token; finding two tokens
//!   with one key is finding a SHA-256 collision. The token itself is not kept.
//! - **Value**: the verified claims and the JWKS generation they were verified under
//!   ([`crate::token::JwksCache::generation`]). An entry of an older generation is a miss,
//!   and the first lookup that sees a new generation empties the cache, so a key rotated
//!   out of the JWKS stops its tokens at the refresh that removes it.
//! - **Only successes** are inserted, and only by the verifier after every check passed.
//!   The time checks (`exp`, `nbf`) and the claim checks are run again on every hit,
//!   against the request's `now`; an entry is never trusted past its token's `exp`.
//! - **Bounded** by entries (quick_cache, CLOCK-Pro eviction); a flood of distinct
//!   valid tokens evicts older ones and grows nothing.
//!
//! quick_cache is the crate the completion cache already uses: lock-striped, no
//! background thread, eviction within `insert`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use crate::token::claims::AccessClaims;

/// The SHA-256 of a token's bytes.
pub type TokenDigest = [u8; 32];

/// The digest a token is cached under.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone)]
struct Entry {
    claims: Arc<AccessClaims>,
    generation: u64,
}

/// Hits and misses since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went on to a full verification.
    pub misses: u64,
}

/// Verified claims by token digest (see the module docs).
#[derive(Debug)]
pub struct TokenCache {
    entries: quick_cache::sync::Cache<TokenDigest, Entry>,
    capacity: usize,
    /// The JWKS generation the entries belong to.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    counters: OnceLock<[metrics::Counter; 2]>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (at least one).
    pub fn new(capacity: usize) -> TokenCache {
        let capacity = capacity.max(1);
        TokenCache {
            entries: quick_cache::sync::Cache::new(capacity),
            capacity,
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            counters: OnceLock::new(),
        }
    }

    /// The claims cached under `digest` if they were verified under JWKS `generation`.
    /// A new generation empties the cache first. Counts the hit or the miss.
    pub fn get(&self, digest: &TokenDigest, generation: u64) -> Option<Arc<AccessClaims>> {
        // Generations only grow; a caller that read an older one (it raced a refresh)
        // neither moves the cache back nor empties it, and misses below: only claims
        // verified under the current key set are served, whatever the caller read.
        let current = self.generation.load(Ordering::Acquire);
        if generation > current
            && self.generation.fetch_max(generation, Ordering::AcqRel) < generation
        {
            self.entries.clear();
        }
        let found = self
            .entries
            .get(digest)
            .filter(|entry| entry.generation == generation && generation >= current)
            .map(|entry| entry.claims);
        // Handles registered once (see crate::outcome_metrics): an atomic add per lookup.
        let [hit, miss] = self.counters.get_or_init(|| {
            [
                metrics::counter!("stepup_token_cache_total", "result" => "hit"),
                metrics::counter!("stepup_token_cache_total", "result" => "miss"),
            ]
        });
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            hit.increment(1);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            miss.increment(1);
        }
        found
    }

    /// Remembers claims that passed every check, verified under JWKS `generation` (read
    /// before the key was fetched).
    pub fn insert(&self, digest: TokenDigest, claims: Arc<AccessClaims>, generation: u64) {
        self.entries.insert(digest, Entry { claims, generation });
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most tokens it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hits and misses since start.
    pub fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixSeconds;

    fn claims(jti: &str) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            sub: "user".to_owned(),
            iss: "issuer".to_owned(),
            client_id: "client".to_owned(),
            token_use: "access".to_owned(),
            username: "user".to_owned(),
            jti: jti.to_owned(),
            origin_jti: None,
            exp: UnixSeconds::from_secs(2_000),
            iat: None,
            nbf: None,
            auth_time: None,
            scope: None,
            acr: None,
            amr: Vec::new(),
            groups: Vec::new(),
        })
    }

    #[test]
    fn a_digest_covers_every_byte() {
        assert_eq!(digest("a.b.c"), digest("a.b.c"));
        assert_ne!(digest("a.b.c"), digest("a.b.d"));
        assert_ne!(digest("a.b.c"), digest("a.b.c "));
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let cache = TokenCache::new(8);
        assert!(cache.get(&digest("t1"), 1).is_none());
        cache.insert(digest("t1"), claims("j1"), 1);
        assert_eq!(cache.get(&digest("t1"), 1).unwrap().jti, "j1");
        assert!(cache.get(&digest("t2"), 1).is_none());
        assert_eq!(cache.stats(), TokenCacheStats { hits: 1, misses: 2 });
    }

    #[test]
    fn a_new_jwks_generation_empties_the_cache_and_old_entries_never_hit() {
        let cache = TokenCache::new(8);
        cache.insert(digest("t1"), claims("j1"), 1);
        assert!(cache.get(&digest("t1"), 2).is_none());
        assert!(cache.is_empty());
        // An insert that raced the change (verified under generation 1) never hits.
        cache.insert(digest("t1"), claims("j1"), 1);
        assert!(cache.get(&digest("t1"), 2).is_none());
        // A request that read generation 1 before the refresh is not served the claims
        // verified under the old keys, and does not empty the cache or move it back.
        cache.insert(digest("t2"), claims("j2"), 2);
        assert!(cache.get(&digest("t1"), 1).is_none());
        assert_eq!(cache.get(&digest("t2"), 2).unwrap().jti, "j2");
        assert!(cache.get(&digest("t1"), 2).is_none());
    }

    #[test]
    fn the_size_bound_holds() {
        let cache = TokenCache::new(100);
        for i in 0..10_000 {
            cache.insert(digest(&format!("token-{i}")), claims("j"), 0);
            assert!(cache.len() <= cache.capacity(), "{} at {i}", cache.len());
        }
        assert!(
            cache.len() > 50,
            "the cache keeps recent entries: {}",
            cache.len()
        );
    }
}
