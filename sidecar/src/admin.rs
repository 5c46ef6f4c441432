//! The admin listener: `/healthz` (the process answers), `/readyz` (a policy index and
//! the JWKS are loaded, so decisions can be made) and `/metrics` (Prometheus text). The
//! router is [`stepup_runtime::admin`]'s; the sidecar says what "ready" means.

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use stepup_core::Engine;
use stepup_runtime::admin::{Readiness, ReadinessCheck};

/// The engine's readiness: a policy index and at least one signing key.
#[derive(Debug)]
struct EngineReady(Engine);

impl ReadinessCheck for EngineReady {
    fn readiness(&self) -> Readiness {
        let policy = self.0.policies().is_loaded();
        let jwks = self.0.verifier().jwks().is_loaded();
        let loaded = |yes: bool| if yes { "loaded" } else { "not loaded" };
        Readiness {
            ready: policy && jwks,
            detail: format!("policy: {}\njwks: {}\n", loaded(policy), loaded(jwks)),
        }
    }

    fn before_scrape(&self) {
        record_ages(&self.0, stepup_core::clock::now());
    }
}

/// `stepup_policy_index_age_seconds` and `stepup_jwks_age_seconds`: seconds since the last
/// good setting-table read and JWKS load (absent until the first one), for alerts on a
/// stale policy or key set.
pub fn record_ages(engine: &Engine, now: stepup_core::clock::UnixSeconds) {
    let policies = engine.policies();
    if policies.is_loaded() {
        metrics::gauge!("stepup_policy_index_age_seconds")
            .set(now.seconds_since(policies.last_success()) as f64);
    }
    if let Some(at) = engine.verifier().jwks().loaded_at() {
        metrics::gauge!("stepup_jwks_age_seconds").set(now.seconds_since(at) as f64);
    }
}

/// The admin router; without a `metrics` handle `/metrics` answers 404.
pub fn router(engine: Engine, metrics: Option<PrometheusHandle>) -> Router {
    stepup_runtime::admin::router(EngineReady(engine), metrics)
}

/// Whether the engine can decide: a policy index and at least one signing key.
pub fn is_ready(engine: &Engine) -> bool {
    engine.policies().is_loaded() && engine.verifier().jwks().is_loaded()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use std::sync::Arc;
    use stepup_core::engine::EngineConfig;
    use stepup_core::policy::PolicyCache;

    #[tokio::test]
    async fn ready_only_once_policy_and_jwks_are_loaded() {
        let w = testutil::world().await;
        assert!(is_ready(&w.engine));
        assert_eq!(
            EngineReady(w.engine.clone()).readiness(),
            Readiness {
                ready: true,
                detail: "policy: loaded\njwks: loaded\n".to_owned()
            }
        );
        // No policy index yet.
        let unloaded = Engine::new(
            Arc::new(PolicyCache::new()),
            w.engine.verifier().clone(),
            w.engine.sessions().clone(),
            EngineConfig::default(),
        );
        assert!(!is_ready(&unloaded));
        assert_eq!(
            EngineReady(unloaded).readiness(),
            Readiness {
                ready: false,
                detail: "policy: not loaded\njwks: loaded\n".to_owned()
            }
        );
    }
}
