//! The API Gateway authorizer: renders an engine [`Decision`] as a REST API (v1) REQUEST
//! authorizer response or an HTTP API (v2) simple response.
//!
//! | decision | REST API (v1) | HTTP API (v2, simple responses) |
//! |---|---|---|
//! | allow | `Allow` policy, context `step_up=not_required\|complete` | `isAuthorized: true` + context |
//! | no / invalid token | error `Unauthorized` → gateway response `UNAUTHORIZED` (401) | `isAuthorized: false` (403) |
//! | `Authorization` not `Bearer <token>` | `Deny` policy, context `step_up=unauthenticated`, `wwwAuthenticate` (`error="invalid_request"`), `body` → `ACCESS_DENIED` configured as 401 | `isAuthorized: false` (403), `wwwAuthenticate` in the context |
//! | step-up required | `Deny` policy, context `step_up=required`, `wwwAuthenticate`, `body` → `ACCESS_DENIED` configured as 401 | `isAuthorized: false` (403) |
//! | deny / store error ([`Decision::Denied`]) | error `Forbidden` → `AUTHORIZER_FAILURE` / `AUTHORIZER_CONFIGURATION_ERROR` configured as 403 | `isAuthorized: false` (403) |
//!
//! Why the REST gateway responses are set up this way, and what HTTP APIs cannot do, is
//! written down in `docs/lambda.md`. A malformed `Authorization` header takes the `Deny`
//! policy path rather than the `Unauthorized` error because `UNAUTHORIZED` has a static
//! `WWW-Authenticate`, and only `ACCESS_DENIED` can carry the `error="invalid_request"`
//! every enforcement point answers (RFC 6750 §3.1). Context values are flat strings: API Gateway refuses
//! nested objects in an authorizer context.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use http::HeaderMap;
use lambda_runtime::Diagnostic;
use serde_json::{Map, Value, json};
use stepup_core::clock::UnixSeconds;
use stepup_core::decision::AuthFailure;
use stepup_core::engine::CheckRequest;
use stepup_core::token::{AccessClaims, extract_bearer};
use stepup_core::{Decision, DenyReason, Engine};

/// The exact error message that makes a REST API answer 401 (`UNAUTHORIZED`).
pub const UNAUTHORIZED: &str = "Unauthorized";

/// The error message of a REST API refusal that no step-up can lift. Any message other
/// than [`UNAUTHORIZED`] makes API Gateway answer with its authorizer-error gateway
/// responses, which the template sets to 403.
pub const FORBIDDEN: &str = "Forbidden";

/// `WWW-Authenticate` in the HTTP API (v2) context of a refusal that no step-up can lift
/// (a `STEP_UP_DENY` rule, a malformed path, or a store failure). RFC 6750's
/// `insufficient_scope` tells a client that re-authenticating will not help.
pub const DENY_WWW_AUTHENTICATE: &str = r#"Bearer realm="stepup", error="insufficient_scope", error_description="Access to this resource is denied""#;

/// How an invocation fails. Never a panic: API Gateway turns any of these into a refusal.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// No or an invalid token: API Gateway answers 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// A REST API (v1) refusal that no step-up can lift ([`Decision::Denied`]): a deny
    /// rule, a malformed path, or the policy index or session store unavailable (fail
    /// closed). The message is exactly `Forbidden`, never `Unauthorized`, so API Gateway
    /// answers through `AUTHORIZER_FAILURE` / `AUTHORIZER_CONFIGURATION_ERROR` (403).
    #[error("Forbidden")]
    Forbidden(DenyReason),
    /// The event is neither a REST REQUEST authorizer event nor an HTTP API v2 one (only a
    /// misconfiguration can send one; a REST API answers it like `Forbidden`, 403).
    #[error("malformed authorizer event: {0}")]
    Malformed(String),
}

impl AuthorizerError {
    /// A metrics / log label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AuthorizerError::Unauthorized => "unauthorized",
            AuthorizerError::Forbidden(r) if r.is_error() => "error",
            AuthorizerError::Forbidden(_) => "deny",
            AuthorizerError::Malformed(_) => "malformed_event",
        }
    }
}

impl From<AuthorizerError> for Diagnostic {
    fn from(e: AuthorizerError) -> Diagnostic {
        match e {
            // API Gateway matches the message exactly.
            AuthorizerError::Unauthorized => Diagnostic {
                error_type: UNAUTHORIZED.to_owned(),
                error_message: UNAUTHORIZED.to_owned(),
            },
            // Anything but "Unauthorized"; the reason is logged, not returned: API
            // Gateway shows no authorizer error to the client.
            AuthorizerError::Forbidden(_) => Diagnostic {
                error_type: FORBIDDEN.to_owned(),
                error_message: FORBIDDEN.to_owned(),
            },
            AuthorizerError::Malformed(detail) => Diagnostic {
                error_type: "MalformedEvent".to_owned(),
                error_message: format!("malformed authorizer event: {detail}"),
            },
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session key of a token the engine has just verified (the verified claims are not
/// part of a [`Decision`]). Reading the payload unverified is sound only because the
/// engine verified this very token string in this invocation; it is never used otherwise.
fn session_id(authorization: Option<&str>, use_origin_jti: bool) -> Option<String> {
    let token = extract_bearer(authorization).ok()?;
    let claims: AccessClaims = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    Some(claims.session_key(use_origin_jti).to_owned())
}

/// The authorizer context of a decision with a verified token (flat strings only).
fn context(
    decision: &Decision,
    session: Option<String>,
    username: Option<&str>,
) -> Map<String, Value> {
    let mut ctx = Map::new();
    ctx.insert("step_up".into(), json!(decision.label()));
    ctx.insert("session_id".into(), json!(session.unwrap_or_default()));
    if let Some(user) = username {
        ctx.insert("username".into(), json!(user));
    }
    if let Decision::Allow { client_id, .. } = decision {
        ctx.insert("client_id".into(), json!(client_id));
    }
    if let Some(audited) = decision.audited() {
        // What an audited (report-only) rule would have answered.
        ctx.insert("audit".into(), json!(audited.outcome));
    }
    if !decision.is_allowed() {
        let www = decision
            .www_authenticate()
            .unwrap_or_else(|| DENY_WWW_AUTHENTICATE.to_owned());
        ctx.insert("wwwAuthenticate".into(), json!(www));
        let body = decision.body().unwrap_or(Value::Null);
        ctx.insert(
            "code".into(),
            body.get("code").cloned().unwrap_or(Value::Null),
        );
        ctx.insert("body".into(), json!(body.to_string()));
    }
    ctx
}

/// The username a decision names (the principal). Allow carries it; for refusals of a
/// verified token it is read like [`session_id`].
fn username(decision: &Decision, authorization: Option<&str>) -> Option<String> {
    if let Decision::Allow { user, .. } = decision {
        return Some(user.clone());
    }
    if matches!(decision, Decision::Unauthenticated { .. }) {
        return None;
    }
    let token = extract_bearer(authorization).ok()?;
    let claims: AccessClaims = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    Some(claims.username)
}

/// The engine's decision, timed into an EMF line ([`crate::emf`]).
async fn check(engine: &Engine, req: &CheckRequest<'_>, now: UnixSeconds) -> Decision {
    let watch = stepup_core::clock::Stopwatch::start();
    let decision = engine.check(req, now).await;
    crate::emf::emit(&decision, watch.elapsed());
    decision
}

/// Decides a REST API (v1) REQUEST authorizer event.
pub async fn handle_rest(
    engine: &Engine,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    now: UnixSeconds,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let method_arn = event
        .method_arn
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| AuthorizerError::Malformed("no methodArn".into()))?;
    let authorization = header(&event.headers, "authorization");
    let method = event.http_method.as_ref().map(|m| m.as_str()).unwrap_or("");
    let req = CheckRequest {
        method,
        host: header(&event.headers, "host").unwrap_or(""),
        path: event.path.as_deref().unwrap_or(""),
        authorization,
    };
    let decision = check(engine, &req, now).await;
    match decision {
        // `ACCESS_DENIED` (a Deny policy) carries the context's `WWW-Authenticate`;
        // `UNAUTHORIZED` cannot say `error="invalid_request"`.
        Decision::Unauthenticated {
            reason: AuthFailure::MalformedHeader,
        } => {}
        Decision::Unauthenticated { .. } => return Err(AuthorizerError::Unauthorized),
        Decision::Denied(reason) => {
            // The one place the reason is recorded: the client gets a static 403. Never
            // the token; a CloudWatch metric filter can count these lines.
            tracing::info!(
                outcome = decision.label(),
                reason = reason.code(),
                method,
                path = req.path,
                "authorizer refused with 403 (Forbidden error)"
            );
            return Err(AuthorizerError::Forbidden(reason));
        }
        Decision::Allow { .. } | Decision::StepUpRequired(_) => {}
    }
    let user = username(&decision, authorization);
    let session = session_id(authorization, engine.config().use_origin_jti);
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    // Deny only for a step-up challenge or a malformed header (ACCESS_DENIED, 401).
    statement.effect = if decision.is_allowed() {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    // Exactly this method: the decision depends on method and path, so a wildcard would
    // let API Gateway's authorizer cache reuse it for other paths.
    statement.resource = vec![method_arn.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(user.clone().unwrap_or_else(|| "anonymous".to_owned()));
    response.policy_document = policy;
    response.context = Value::Object(context(&decision, session, user.as_deref()));
    Ok(response)
}

/// Decides an HTTP API (v2) authorizer event, answering with a simple response.
pub async fn handle_http(
    engine: &Engine,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
    now: UnixSeconds,
) -> Result<ApiGatewayV2CustomAuthorizerSimpleResponse, AuthorizerError> {
    let authorization = header(&event.headers, "authorization");
    let http = &event.request_context.http;
    let path = event
        .raw_path
        .as_deref()
        .or(http.path.as_deref())
        .unwrap_or("");
    let host = header(&event.headers, "host")
        .or(event.request_context.domain_name.as_deref())
        .unwrap_or("");
    let req = CheckRequest {
        method: http.method.as_str(),
        host,
        path,
        authorization,
    };
    let decision = check(engine, &req, now).await;
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.is_authorized = decision.is_allowed();
    response.context = match decision {
        Decision::Unauthenticated { .. } => json!({
            "step_up": decision.label(),
            "wwwAuthenticate": decision.www_authenticate().unwrap_or_default(),
        }),
        _ => {
            let user = username(&decision, authorization);
            let session = session_id(authorization, engine.config().use_origin_jti);
            Value::Object(context(&decision, session, user.as_deref()))
        }
    };
    Ok(response)
}

/// Dispatches a raw event: HTTP API v2 events carry `"version": "2.0"`, REST REQUEST
/// authorizer events `"type": "REQUEST"` and a `methodArn`.
pub async fn handle_event(
    engine: &Engine,
    event: Value,
    now: UnixSeconds,
) -> Result<Value, AuthorizerError> {
    let malformed = |e: serde_json::Error| AuthorizerError::Malformed(e.to_string());
    if !event.is_object() {
        return Err(AuthorizerError::Malformed("not a JSON object".into()));
    }
    let out = if event.get("version").and_then(Value::as_str) == Some("2.0") {
        let req: ApiGatewayV2CustomAuthorizerV2Request =
            serde_json::from_value(event).map_err(malformed)?;
        serde_json::to_value(handle_http(engine, &req, now).await?)
    } else if event.get("type").and_then(Value::as_str) == Some("REQUEST")
        || event.get("methodArn").is_some()
    {
        let req: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(event).map_err(malformed)?;
        serde_json::to_value(handle_rest(engine, &req, now).await?)
    } else {
        return Err(AuthorizerError::Malformed(
            "neither a REST REQUEST authorizer event nor an HTTP API 2.0 one".into(),
        ));
    };
    out.map_err(|e| AuthorizerError::Malformed(format!("serializing the response: {e}")))
}
