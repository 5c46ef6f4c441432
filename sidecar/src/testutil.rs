//! An engine on in-memory stores with the seed's two items and test tokens.

use std::sync::Arc;
use stepup_core::Engine;
use stepup_core::clock;
use stepup_core::engine::EngineConfig;
use stepup_core::policy::PolicyCache;
use stepup_core::session::Factor;
use stepup_core::store::SettingStore;
use stepup_core::store::memory::{MemorySessionStore, MemorySettingStore};
use stepup_core::testkit::{TEST_CLIENT_ID, TestIssuer, put_completed_session, seed_item};

pub const CLIENT_ID: &str = TEST_CLIENT_ID;

pub struct World {
    pub issuer: TestIssuer,
    pub sessions: Arc<MemorySessionStore>,
    pub engine: Engine,
}

pub async fn world() -> World {
    let now = clock::now();
    let issuer = TestIssuer::new();
    let settings = MemorySettingStore::new();
    settings
        .put(seed_item("/info", "STEP_UP_NOT_REQUIRED"))
        .await
        .unwrap();
    settings
        .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
        .await
        .unwrap();
    let policies = Arc::new(PolicyCache::new());
    policies.refresh(&settings, now).await.unwrap();
    let sessions = Arc::new(MemorySessionStore::new());
    let engine = Engine::new(
        policies,
        Arc::new(issuer.verifier(now).await),
        sessions.clone(),
        EngineConfig::default(),
    );
    World {
        issuer,
        sessions,
        engine,
    }
}

impl World {
    pub fn bearer(&self, jti: &str) -> String {
        format!("Bearer {}", self.issuer.token("alice", jti, clock::now()))
    }

    pub fn expired_token(&self) -> String {
        let now = clock::now();
        let mut claims = self.issuer.claims("alice", "jti-old", now.minus(7200));
        claims["exp"] = serde_json::json!(now.minus(3600));
        self.issuer.sign(&claims)
    }

    pub async fn complete(&self, jti: &str) {
        let now = clock::now();
        put_completed_session(
            self.sessions.as_ref(),
            jti,
            "alice",
            CLIENT_ID,
            now.plus(3600),
            now,
            Factor::Sms,
        )
        .await
        .unwrap();
    }
}
