//! The engine: gathers the inputs of the pure [`crate::decision`] function from the
//! caches and stores, in the order that keeps every request's cost low:
//!
//! 1. the token (`Authorization: Bearer <token>` only, then a signature check against the
//!    cached JWKS; no I/O unless the `kid` is unknown) — a missing token, a malformed
//!    header or an invalid token is 401 whatever the path;
//! 2. the canonical path, method and host, and the governing rule from the in-memory
//!    policy index (no I/O);
//! 3. only for a `STEP_UP_REQUIRED` rule that the token's own claims do not satisfy: the
//!    session, from the session store.
//!
//! Every enforcement point (ext_authz gRPC and HTTP, the Lambda authorizer, the tower
//! layer) calls [`Engine::check`] and renders the [`Decision`].

use crate::canonical::canonicalize;
use crate::clock::{Stopwatch, UnixSeconds};
use crate::completion_cache::CompletionCache;
use crate::decision::{self, AuthFailure, Decision, DenyReason, Stage, TokenOutcome};
use crate::decision_log::{DecisionLog, Entry, hash_jti};
use crate::policy::{Enforcement, PolicyCache, Rule, canonical_host};
use crate::session::Session;
use crate::store::{SessionStore, StoreError};
use crate::token::AccessClaims;
use crate::token::{BearerError, TokenVerifier, extract_bearer};
use std::borrow::Cow;
use std::sync::Arc;

/// Engine settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineConfig {
    /// Key sessions by the token's `origin_jti` instead of its `jti`, so that a step-up
    /// survives a token refresh (DESIGN.md "Session table").
    pub use_origin_jti: bool,
    /// [`Enforcement::Audit`] makes every rule report-only (trying stepup on live
    /// traffic); [`Enforcement::Enforce`] leaves it to each rule.
    pub enforcement: Enforcement,
}

/// The parts of a request the decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct CheckRequest<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// `Host` / `:authority`, with or without port.
    pub host: &'a str,
    /// The request path as received (query allowed).
    pub path: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

/// The decision engine shared by every enforcement point.
#[derive(Debug, Clone)]
pub struct Engine {
    policies: Arc<PolicyCache>,
    verifier: Arc<TokenVerifier>,
    sessions: Arc<dyn SessionStore>,
    completions: Option<Arc<CompletionCache>>,
    log: Option<Arc<DecisionLog>>,
    config: EngineConfig,
}

impl Engine {
    /// An engine over these caches and stores.
    pub fn new(
        policies: Arc<PolicyCache>,
        verifier: Arc<TokenVerifier>,
        sessions: Arc<dyn SessionStore>,
        config: EngineConfig,
    ) -> Engine {
        Engine {
            policies,
            verifier,
            sessions,
            completions: None,
            log: None,
            config,
        }
    }

    /// Writes refused, audited and sampled allowed decisions to `log`.
    pub fn with_decision_log(mut self, log: Arc<DecisionLog>) -> Engine {
        self.log = Some(log);
        self
    }

    /// Caches completed step-ups (see [`CompletionCache`]), so that a stepped-up token's
    /// privileged requests do not read the session table every time.
    pub fn with_completion_cache(mut self, cache: Arc<CompletionCache>) -> Engine {
        self.completions = Some(cache);
        self
    }

    /// The policy cache (for refresh tasks and readiness).
    pub fn policies(&self) -> &Arc<PolicyCache> {
        &self.policies
    }

    /// The token verifier (for JWKS refresh and readiness).
    pub fn verifier(&self) -> &Arc<TokenVerifier> {
        &self.verifier
    }

    /// The session store.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// The engine settings.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Decides one request at `now`; counts it, and logs it when the decision log wants it.
    pub async fn check(&self, req: &CheckRequest<'_>, now: UnixSeconds) -> Decision {
        let watch = Stopwatch::start();
        let mut seen = Seen::default();
        let decision = self.check_inner(req, now, &mut seen).await;
        count_decision(&decision);
        if let Some(audited) = decision.audited() {
            metrics::counter!("stepup_audit_total", "outcome" => audited.outcome).increment(1);
        }
        if let Some([rule, policy]) = &seen.rule_labels {
            metrics::counter!("stepup_rule_decisions_total", "rule" => rule.clone(),
                "policy" => policy.clone(), "outcome" => decision.label())
            .increment(1);
        }
        if let Some(log) = self.log.as_ref().filter(|log| log.wants(&decision)) {
            let mut entry = Entry::new(&decision, now, watch.elapsed());
            entry.rule = seen.rule.as_deref();
            entry.policy = seen.policy.as_deref();
            entry.method = seen.method.as_deref().unwrap_or(req.method);
            entry.host = seen.host.as_deref().unwrap_or(req.host);
            entry.path = seen.path.as_deref();
            if let Some(claims) = &seen.claims {
                entry.sub = Some(&claims.sub);
                entry.client_id = Some(&claims.client_id);
                entry.jti_sha256 = Some(hash_jti(&claims.jti));
            }
            log.write(&entry);
        }
        decision
    }

    /// Under global audit, `decision` (taken before any rule was found) is report-only.
    fn globally(&self, decision: Decision, claims: &AccessClaims) -> Decision {
        match self.config.enforcement {
            Enforcement::Audit => decision::audit(decision, claims),
            Enforcement::Enforce => decision,
        }
    }

    async fn check_inner(
        &self,
        req: &CheckRequest<'_>,
        now: UnixSeconds,
        seen: &mut Seen,
    ) -> Decision {
        let token = match extract_bearer(req.authorization) {
            Ok(token) => token,
            Err(e) => {
                if e == BearerError::Malformed {
                    tracing::debug!(reason = e.metric_label(), "authorization header refused");
                    metrics::counter!("stepup_token_errors_total", "kind" => e.metric_label())
                        .increment(1);
                }
                return Decision::Unauthenticated { reason: e.into() };
            }
        };
        let claims = match self.verifier.verify(token, now).await {
            Ok(claims) => claims,
            Err(e) => {
                tracing::debug!(reason = e.metric_label(), "token refused");
                metrics::counter!("stepup_token_errors_total", "kind" => e.metric_label())
                    .increment(1);
                return Decision::Unauthenticated {
                    reason: AuthFailure::InvalidToken,
                };
            }
        };
        let claims = &*seen.claims.insert(claims);

        let path = match canonicalize(req.path) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(reason = e.metric_label(), "path has no canonical form");
                return self.globally(Decision::Denied(DenyReason::MalformedPath), claims);
            }
        };
        let Some(index) = self.policies.current() else {
            return self.globally(Decision::Denied(DenyReason::PolicyUnavailable), claims);
        };
        let method = if req.method.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(req.method.to_ascii_uppercase())
        } else {
            Cow::Borrowed(req.method)
        };
        let host = canonical_host(req.host);
        let rule = index.lookup(&method, &host, &path);
        let decision = self.decide(claims, rule, now).await;
        let audited = rule.is_some_and(|r| r.enforcement == Enforcement::Audit)
            || self.config.enforcement == Enforcement::Audit;
        let decision = if audited {
            decision::audit(decision, claims)
        } else {
            decision
        };
        if let Some(rule) = rule {
            seen.rule_labels = Some(rule.metric_labels().clone());
            if self.log.is_some() {
                seen.rule = Some(rule.id.clone());
                seen.policy = rule.owner.clone();
            }
        }
        if self.log.is_some() {
            seen.method = Some(method.into_owned());
            seen.host = Some(host.into_owned());
            seen.path = Some(path.into_owned());
        }
        decision
    }

    /// The decision for a verified token under `rule` (enforced), reading the session
    /// only when the rule needs one.
    async fn decide(
        &self,
        claims: &AccessClaims,
        rule: Option<&Rule>,
        now: UnixSeconds,
    ) -> Decision {
        match decision::decide(TokenOutcome::Valid(claims), rule, now) {
            Stage::Done(d) => d,
            Stage::NeedSession { claims, rule } => {
                let key = claims.session_key(self.config.use_origin_jti);
                if let Some(cache) = &self.completions {
                    if let Some(cached) = cache.get(key, now) {
                        let d = decision::with_session::<()>(claims, rule, Ok(cached), now);
                        if d.is_allowed() {
                            metrics::counter!("stepup_completion_cache_total", "result" => "hit")
                                .increment(1);
                            return d;
                        }
                    }
                    // Counted only with a cache: without one there is nothing to miss.
                    metrics::counter!("stepup_completion_cache_total", "result" => "miss")
                        .increment(1);
                }
                let session = match self.sessions.get(key, now).await {
                    // One item stepup cannot read is not an outage: it is "no completed
                    // step-up", so the caller gets the challenge (and may complete a new
                    // step-up), never a 403 for the whole store.
                    Err(StoreError::Malformed { key, source }) => {
                        tracing::warn!(session = %key, error = %source, "unreadable session item: treated as no completed step-up");
                        metrics::counter!("stepup_session_items_unreadable_total").increment(1);
                        Ok(None)
                    }
                    other => other.inspect_err(|e| {
                        tracing::warn!(error = %e, "session store unavailable: refusing privileged request");
                        metrics::counter!("stepup_store_errors_total", "table" => "session", "kind" => e.metric_label())
                            .increment(1);
                    }),
                };
                if let (Some(cache), Ok(Some(s))) = (&self.completions, &session) {
                    cache.remember(key, s, claims.exp, now);
                }
                let view = session.map(|s| Session::view(s.as_ref(), now));
                decision::with_session(claims, rule, view, now)
            }
        }
    }
}

/// What a check learned on its way, for the metrics and the decision log. The log's
/// strings are only copied when a log is configured.
#[derive(Default)]
struct Seen {
    claims: Option<Arc<AccessClaims>>,
    rule_labels: Option<[metrics::SharedString; 2]>,
    rule: Option<String>,
    policy: Option<String>,
    method: Option<String>,
    host: Option<String>,
    path: Option<String>,
}

/// `stepup_decisions_total{outcome}`. One arm per outcome with a literal label: the metrics
/// macro then builds its key at compile time instead of allocating one per request.
fn count_decision(decision: &Decision) {
    macro_rules! by_outcome {
        ($($outcome:literal),+) => {
            match decision.label() {
                $($outcome => metrics::counter!("stepup_decisions_total", "outcome" => $outcome).increment(1),)+
                other => metrics::counter!("stepup_decisions_total", "outcome" => other).increment(1),
            }
        };
    }
    by_outcome!(
        "not_required",
        "complete",
        "unauthenticated",
        "required",
        "deny",
        "error"
    );
}
