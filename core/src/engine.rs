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
use crate::outcome_metrics::ByOutcome;
use crate::policy::{Enforcement, PolicyCache, Rule, canonical_host};
use crate::session::Session;
use crate::store::{SessionStore, StoreError};
use crate::token::AccessClaims;
use crate::token::{BearerError, TokenVerifier, extract_bearer};
use metrics::Counter;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

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
    counters: Arc<OnceLock<EngineCounters>>,
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
            counters: Arc::new(OnceLock::new()),
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
        // Canonical once: the rule lookup and the decision log use the same spelling.
        let method = if req.method.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(req.method.to_ascii_uppercase())
        } else {
            Cow::Borrowed(req.method)
        };
        let host = canonical_host(req.host);
        let mut ctx = Context::new(&method, &host);
        let token = match extract_bearer(req.authorization) {
            Ok(token) => token,
            Err(e) => {
                if e == BearerError::Malformed {
                    tracing::debug!(reason = e.metric_label(), "authorization header refused");
                    metrics::counter!("stepup_token_errors_total", "kind" => e.metric_label())
                        .increment(1);
                }
                let d = Decision::Unauthenticated { reason: e.into() };
                return self.finish(d, &ctx, now, watch);
            }
        };
        let claims = match self.verifier.verify(token, now).await {
            Ok(claims) => claims,
            Err(e) => {
                tracing::debug!(reason = e.metric_label(), "token refused");
                metrics::counter!("stepup_token_errors_total", "kind" => e.metric_label())
                    .increment(1);
                let d = Decision::Unauthenticated {
                    reason: AuthFailure::InvalidToken,
                };
                return self.finish(d, &ctx, now, watch);
            }
        };
        ctx.claims = Some(&claims);

        let path = match canonicalize(req.path) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(reason = e.metric_label(), "path has no canonical form");
                let d = self.enforced(None, Decision::Denied(DenyReason::MalformedPath), &claims);
                return self.finish(d, &ctx, now, watch);
            }
        };
        ctx.path = Some(&path);
        let Some(index) = self.policies.current() else {
            let d = self.enforced(
                None,
                Decision::Denied(DenyReason::PolicyUnavailable),
                &claims,
            );
            return self.finish(d, &ctx, now, watch);
        };
        let rule = index.lookup(&method, &host, &path);
        let decision = self.decide(&claims, rule, now).await;
        let decision = self.enforced(rule, decision, &claims);
        ctx.rule = rule;
        self.finish(decision, &ctx, now, watch)
    }

    /// Counts the decision (outcome, rule, audit) and writes it to the decision log when
    /// the log wants it.
    fn finish(
        &self,
        decision: Decision,
        ctx: &Context<'_>,
        now: UnixSeconds,
        watch: Stopwatch,
    ) -> Decision {
        let counters = self.counters();
        counters.decisions.of(&decision).increment(1);
        if let Some(c) = decision
            .audited()
            .and_then(|a| counters.audits.by_label(a.outcome))
        {
            c.increment(1);
        }
        if let Some(rule) = ctx.rule {
            rule.counters().of(&decision).increment(1);
        }
        if let Some(log) = self.log.as_ref().filter(|log| log.wants(&decision)) {
            let mut entry = Entry::new(&decision, now, watch.elapsed());
            entry.rule = ctx.rule.map(|r| r.id.as_str());
            entry.policy = ctx.rule.and_then(|r| r.owner.as_deref());
            entry.method = ctx.method;
            entry.host = ctx.host;
            entry.path = ctx.path;
            if let Some(claims) = ctx.claims {
                entry.sub = Some(&claims.sub);
                entry.client_id = Some(&claims.client_id);
                entry.jti_sha256 = Some(hash_jti(&claims.jti));
            }
            log.write(&entry);
        }
        decision
    }

    fn counters(&self) -> &EngineCounters {
        self.counters.get_or_init(EngineCounters::new)
    }

    /// `decision` as enforced under `rule` (`None`: taken before any rule was found): made
    /// report-only when the rule or the global setting says audit.
    fn enforced(&self, rule: Option<&Rule>, decision: Decision, claims: &AccessClaims) -> Decision {
        let rule_says = rule.map_or(Enforcement::Enforce, |r| r.enforcement);
        match rule_says.max(self.config.enforcement) {
            Enforcement::Audit => decision::audit(decision, claims),
            Enforcement::Enforce => decision,
        }
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
                            self.counters().completion_hits.increment(1);
                            return d;
                        }
                    }
                    // Counted only with a cache: without one there is nothing to miss.
                    self.counters().completion_misses.increment(1);
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

/// What a check learned on its way, for the decision log (borrowed: nothing is copied
/// unless a line is written).
struct Context<'a> {
    method: &'a str,
    host: &'a str,
    path: Option<&'a str>,
    claims: Option<&'a AccessClaims>,
    rule: Option<&'a Rule>,
}

impl<'a> Context<'a> {
    /// `method` upper case, `host` canonical.
    fn new(method: &'a str, host: &'a str) -> Context<'a> {
        Context {
            method,
            host,
            path: None,
            claims: None,
            rule: None,
        }
    }
}

/// The engine's counters, registered at its first decision (see [`ByOutcome`]).
#[derive(Debug)]
struct EngineCounters {
    /// `stepup_decisions_total{outcome}`.
    decisions: ByOutcome<Counter>,
    /// `stepup_audit_total{outcome}`, by the outcome an audited request would have had.
    audits: ByOutcome<Counter>,
    /// `stepup_completion_cache_total{result="hit"}`.
    completion_hits: Counter,
    /// `stepup_completion_cache_total{result="miss"}`.
    completion_misses: Counter,
}

impl EngineCounters {
    fn new() -> EngineCounters {
        EngineCounters {
            decisions: ByOutcome::counters("stepup_decisions_total", &[]),
            audits: ByOutcome::counters("stepup_audit_total", &[]),
            completion_hits: metrics::counter!("stepup_completion_cache_total", "result" => "hit"),
            completion_misses: metrics::counter!("stepup_completion_cache_total", "result" => "miss"),
        }
    }
}
