//! The engine end to end on in-memory stores: real RS256 tokens (fixture key), the seed's
//! setting items, and sessions moved through the state machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use stepup_core::Decision;
use stepup_core::decision::DenyReason;
use stepup_core::engine::{CheckRequest, Engine, EngineConfig};
use stepup_core::item::{Attr, Item};
use stepup_core::policy::PolicyCache;
use stepup_core::session::{Factor, Session, SessionLimits};
use stepup_core::store::SessionStore;
use stepup_core::store::SettingStore;
use stepup_core::store::memory::{MemorySessionStore, MemorySettingStore};
use stepup_core::testkit::{TestIssuer, item, put_completed_session, seed_item};

const NOW: u64 = 1_800_000_000;

struct World {
    issuer: TestIssuer,
    settings: Arc<MemorySettingStore>,
    sessions: Arc<MemorySessionStore>,
    engine: Engine,
}

async fn world(extra: Vec<Item>) -> World {
    let issuer = TestIssuer::new();
    let settings = Arc::new(MemorySettingStore::new());
    settings
        .put(seed_item("/info", "STEP_UP_NOT_REQUIRED"))
        .await
        .unwrap();
    settings
        .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
        .await
        .unwrap();
    for it in extra {
        settings.put(it).await.unwrap();
    }
    let cache = Arc::new(PolicyCache::new());
    cache.refresh(settings.as_ref(), NOW).await.unwrap();
    let sessions = Arc::new(MemorySessionStore::new());
    let engine = Engine::new(
        cache,
        Arc::new(issuer.verifier(NOW).await),
        sessions.clone(),
        EngineConfig::default(),
    );
    World {
        issuer,
        settings,
        sessions,
        engine,
    }
}

impl World {
    async fn check(&self, method: &str, path: &str, token: Option<&str>) -> Decision {
        let auth = token.map(|t| format!("Bearer {t}"));
        let req = CheckRequest {
            method,
            host: "api.example.com",
            path,
            authorization: auth.as_deref(),
        };
        self.engine.check(&req, NOW).await
    }

    async fn complete(&self, jti: &str, at: u64, factor: Factor) {
        put_completed_session(
            self.sessions.as_ref(),
            jti,
            "alice",
            "c",
            NOW + 3600,
            at,
            factor,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_seed_flow_info_allowed_transfer_challenged_until_the_session_completes() {
    let w = world(vec![]).await;
    let t = w.issuer.token("alice", "jti-1", NOW);
    assert_eq!(
        w.check("GET", "/info", Some(&t)).await.label(),
        "not_required"
    );
    let d = w.check("POST", "/transfer", Some(&t)).await;
    assert_eq!((d.status_code(), d.label()), (401, "required"));
    assert!(
        d.www_authenticate()
            .unwrap()
            .contains("insufficient_user_authentication")
    );

    w.complete("jti-1", NOW - 10, Factor::SoftwareToken).await;
    let d = w.check("POST", "/transfer", Some(&t)).await;
    assert_eq!(d.label(), "complete");
    assert!(
        d.upstream_headers()
            .contains(&("x-stepup-user", "alice".to_owned()))
    );

    // The same user with another token (another jti) is challenged again.
    let other = w.issuer.token("alice", "jti-2", NOW);
    assert_eq!(
        w.check("POST", "/transfer", Some(&other)).await.label(),
        "required"
    );
}

#[tokio::test]
async fn every_spelling_of_transfer_is_challenged() {
    let w = world(vec![]).await;
    let t = w.issuer.token("alice", "jti-1", NOW);
    for p in [
        "//transfer",
        "/%74ransfer",
        "/info/../transfer",
        "/transfer/",
        "/TRANSFER",
        "/transfer;x=1",
    ] {
        assert_eq!(w.check("GET", p, Some(&t)).await.label(), "required", "{p}");
    }
    assert_eq!(
        w.check("GET", "/transfer%zz", Some(&t)).await,
        Decision::Denied(DenyReason::MalformedPath)
    );
}

#[tokio::test]
async fn missing_expired_and_foreign_tokens_are_unauthenticated() {
    let w = world(vec![]).await;
    assert_eq!(
        w.check("GET", "/info", None).await,
        Decision::Unauthenticated {
            invalid_token: false
        }
    );
    let mut c = w.issuer.claims("alice", "j", NOW - 7200);
    c["exp"] = serde_json::json!(NOW - 3600);
    let expired = w.issuer.sign(&c);
    let d = w.check("GET", "/info", Some(&expired)).await;
    assert_eq!(
        d,
        Decision::Unauthenticated {
            invalid_token: true
        }
    );
    assert!(
        d.www_authenticate()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let mut c = w.issuer.claims("alice", "j", NOW);
    c["client_id"] = serde_json::json!("someone-else");
    assert_eq!(
        w.check("GET", "/info", Some(&w.issuer.sign(&c)))
            .await
            .status_code(),
        401
    );
}

#[tokio::test]
async fn max_age_is_checked_per_rule_against_completed_at() {
    let w = world(vec![item(&[
        ("id", Attr::s("payments#0")),
        ("path", Attr::s("/accounts/{id}/transfer")),
        ("match", Attr::s("TEMPLATE")),
        ("stepUpState", Attr::s("STEP_UP_REQUIRED")),
        ("maxAgeSeconds", Attr::n(300u64)),
    ])])
    .await;
    let t = w.issuer.token("alice", "jti-1", NOW);
    w.complete("jti-1", NOW - 600, Factor::Sms).await;
    // Fresh enough for /transfer (no maxAge), too old for the templated rule.
    assert_eq!(
        w.check("POST", "/transfer", Some(&t)).await.label(),
        "complete"
    );
    let d = w.check("POST", "/accounts/42/transfer", Some(&t)).await;
    assert_eq!(d.label(), "required");
    assert!(d.www_authenticate().unwrap().contains(r#"max_age="300""#));
}

#[tokio::test]
async fn an_unreachable_session_store_refuses_privileged_paths_only() {
    let w = world(vec![]).await;
    let t = w.issuer.token("alice", "jti-1", NOW);
    w.complete("jti-1", NOW, Factor::SoftwareToken).await;
    w.sessions.set_unavailable(true);
    assert_eq!(
        w.check("POST", "/transfer", Some(&t)).await,
        Decision::Denied(DenyReason::SessionUnavailable)
    );
    assert!(w.check("GET", "/info", Some(&t)).await.is_allowed());
    w.sessions.set_unavailable(false);
    assert!(w.check("POST", "/transfer", Some(&t)).await.is_allowed());
}

#[tokio::test]
async fn a_malformed_item_denies_its_path_and_an_unloaded_index_denies_everything() {
    let w = world(vec![item(&[
        ("id", Attr::s("/admin")),
        ("stepUpState", Attr::s("STEP_UP_REQUIRED_TYPO")),
    ])])
    .await;
    let t = w.issuer.token("alice", "jti-1", NOW);
    assert_eq!(
        w.check("GET", "/admin", Some(&t)).await,
        Decision::Denied(DenyReason::Policy)
    );
    assert_eq!(w.engine.policies().current().unwrap().malformed().len(), 1);
    assert!(w.settings.scan().await.unwrap().len() == 3);

    let empty = Engine::new(
        Arc::new(PolicyCache::new()),
        w.engine.verifier().clone(),
        w.sessions.clone(),
        EngineConfig::default(),
    );
    let req = CheckRequest {
        method: "GET",
        host: "h",
        path: "/info",
        authorization: Some(&format!("Bearer {t}")),
    };
    assert_eq!(
        empty.check(&req, NOW).await,
        Decision::Denied(DenyReason::PolicyUnavailable)
    );
}

#[tokio::test]
async fn origin_jti_mode_keeps_a_step_up_across_a_token_refresh() {
    let mut w = world(vec![]).await;
    w.engine = Engine::new(
        w.engine.policies().clone(),
        w.engine.verifier().clone(),
        w.sessions.clone(),
        EngineConfig {
            use_origin_jti: true,
        },
    );
    let mut c = w.issuer.claims("alice", "jti-refreshed", NOW);
    c["origin_jti"] = serde_json::json!("origin-1");
    w.complete("origin-1", NOW, Factor::SoftwareToken).await;
    assert!(
        w.check("POST", "/transfer", Some(&w.issuer.sign(&c)))
            .await
            .is_allowed()
    );
}

#[tokio::test]
async fn a_cached_completion_spares_the_store_and_a_pending_session_is_never_cached() {
    use stepup_core::completion_cache::CompletionCache;
    let mut w = world(vec![]).await;
    let cache = Arc::new(CompletionCache::new(100, 60));
    w.engine = w.engine.clone().with_completion_cache(cache.clone());
    let t = w.issuer.token("alice", "jti-1", NOW);

    // Pending: read every time, not cached.
    let s = Session::initiate(
        "jti-1",
        "alice",
        "c",
        NOW + 3600,
        NOW,
        &SessionLimits::default(),
    );
    w.sessions.put(&s, None, NOW).await.unwrap();
    assert_eq!(
        w.check("POST", "/transfer", Some(&t)).await.label(),
        "required"
    );
    assert!(cache.is_empty());

    // Completed: the next request sees it at once, and then it is cached.
    let done = s.after_success(Factor::SoftwareToken, NOW);
    w.sessions.put(&done, Some(s.version), NOW).await.unwrap();
    assert!(w.check("POST", "/transfer", Some(&t)).await.is_allowed());
    assert_eq!(cache.len(), 1);
    w.sessions.set_unavailable(true);
    assert!(w.check("POST", "/transfer", Some(&t)).await.is_allowed());

    // Another token still needs the store, which is down: fail closed.
    let other = w.issuer.token("alice", "jti-2", NOW);
    assert_eq!(
        w.check("POST", "/transfer", Some(&other)).await,
        Decision::Denied(DenyReason::SessionUnavailable)
    );
}
