//! An engine on in-memory stores with the seed's two items (`/info` needs no step-up,
//! `/transfer` does) and tokens from the fixture key: the one fixture the engine's,
//! ext_authz's and the Lambda authorizer's tests start from.

use super::{TEST_CLIENT_ID, TestIssuer, put_completed_session, seed_item};
use crate::Engine;
use crate::clock::UnixSeconds;
use crate::engine::EngineConfig;
use crate::item::Item;
use crate::policy::PolicyCache;
use crate::session::Factor;
use crate::store::SettingStore;
use crate::store::memory::{MemorySessionStore, MemorySettingStore};
use std::sync::Arc;

/// The user every token of the world belongs to.
pub const USER: &str = "alice";

/// The engine and what it reads, at a fixed `now`.
#[derive(Debug)]
pub struct EngineWorld {
    /// Signs the tokens.
    pub issuer: TestIssuer,
    /// The setting table.
    pub settings: Arc<MemorySettingStore>,
    /// The session table.
    pub sessions: Arc<MemorySessionStore>,
    /// The engine over both, its policy cache loaded and its JWKS fetched.
    pub engine: Engine,
    /// The time the world was made at (tokens are issued at it, valid for an hour).
    pub now: UnixSeconds,
}

impl EngineWorld {
    /// The seed's two items plus `extra`, at `now`.
    #[allow(clippy::expect_used)]
    pub async fn new(extra: Vec<Item>, now: UnixSeconds) -> EngineWorld {
        let issuer = TestIssuer::new();
        let settings = Arc::new(MemorySettingStore::new());
        let items = [
            seed_item("/info", "STEP_UP_NOT_REQUIRED"),
            seed_item("/transfer", "STEP_UP_REQUIRED"),
        ];
        for item in items.into_iter().chain(extra) {
            settings
                .put(item)
                .await
                .expect("the in-memory store takes every item");
        }
        let policies = Arc::new(PolicyCache::new());
        policies
            .refresh(settings.as_ref(), now)
            .await
            .expect("the in-memory store scans");
        let sessions = Arc::new(MemorySessionStore::new());
        let engine = Engine::new(
            policies,
            Arc::new(issuer.verifier(now).await),
            sessions.clone(),
            EngineConfig::default(),
        );
        EngineWorld {
            issuer,
            settings,
            sessions,
            engine,
            now,
        }
    }

    /// Another engine over the world's policies, keys and session table, with `config`.
    pub fn engine_with(&self, config: EngineConfig) -> Engine {
        Engine::new(
            Arc::clone(self.engine.policies()),
            Arc::clone(self.engine.verifier()),
            self.sessions.clone(),
            config,
        )
    }

    /// A valid access token of [`USER`] with this `jti`.
    pub fn token(&self, jti: &str) -> String {
        self.issuer.token(USER, jti, self.now)
    }

    /// `Bearer <token>`.
    pub fn bearer(&self, jti: &str) -> String {
        format!("Bearer {}", self.token(jti))
    }

    /// A token of [`USER`] that expired an hour ago.
    pub fn expired_token(&self) -> String {
        let mut claims = self.issuer.claims(USER, "jti-old", self.now.minus(7200));
        claims["exp"] = serde_json::json!(self.now.minus(3600));
        self.issuer.sign(&claims)
    }

    /// A step-up of the token `jti` completed with `factor` at [`EngineWorld::now`].
    #[allow(clippy::expect_used)]
    pub async fn complete(&self, jti: &str, factor: Factor) {
        put_completed_session(
            self.sessions.as_ref(),
            jti,
            USER,
            TEST_CLIENT_ID,
            self.now.plus(3600),
            self.now,
            factor,
        )
        .await
        .expect("the in-memory store takes the session");
    }
}
