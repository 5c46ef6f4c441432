//! The authorizer handlers called directly with API Gateway event fixtures (REST v1
//! REQUEST authorizer, the seed's test event, HTTP API v2), on an engine over in-memory
//! stores and the test issuer's keys.

use crate::common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use stepup_core::engine::EngineConfig;
use stepup_core::policy::{Enforcement, PolicyCache};
use stepup_core::store::memory::MemorySessionStore;
use stepup_core::testkit::world::EngineWorld;
use stepup_core::{DenyReason, Engine, clock};
use stepup_lambda::{AuthorizerError, handle_event};

/// The shared engine fixture with the authorizer's test policy, at the real clock.
struct Fixture {
    world: EngineWorld,
}

impl std::ops::Deref for Fixture {
    type Target = EngineWorld;
    fn deref(&self) -> &EngineWorld {
        &self.world
    }
}

async fn fixture() -> Fixture {
    Fixture {
        world: EngineWorld::new(policy_items(), clock::now()).await,
    }
}

impl Fixture {
    async fn call(&self, fixture: &[u8], token: &str) -> Result<Value, AuthorizerError> {
        handle_event(&self.engine, event(fixture, token), self.now).await
    }
}

/// `/info` with the `Authorization` header exactly as `{{TOKEN}}` is replaced.
const REST_RAW_AUTHORIZATION: &[u8] =
    include_bytes!("fixtures/rest-request-raw-authorization.json");
const HTTP_V2_RAW_AUTHORIZATION: &[u8] = include_bytes!("fixtures/http-v2-raw-authorization.json");

const INVALID_REQUEST: &str = r#"Bearer realm="stepup", error="invalid_request", error_description="The Authorization header must be the Bearer scheme followed by an access token""#;

fn statement(resp: &Value) -> &Value {
    &resp["policyDocument"]["Statement"][0]
}

#[tokio::test]
async fn rest_open_path_is_allowed_with_the_seed_context_and_the_username_as_principal() {
    let f = fixture().await;
    let resp = f.call(REST_INFO, &f.token("jti-info")).await.unwrap();
    assert_eq!(resp["principalId"], "alice");
    assert_eq!(resp["policyDocument"]["Version"], "2012-10-17");
    assert_eq!(statement(&resp)["Effect"], "Allow");
    assert_eq!(statement(&resp)["Action"], json!(["execute-api:Invoke"]));
    assert_eq!(
        statement(&resp)["Resource"],
        json!(["arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/info"])
    );
    assert_eq!(resp["context"]["step_up"], "not_required");
    assert_eq!(resp["context"]["session_id"], "jti-info");
    assert_eq!(resp["context"]["username"], "alice");
}

#[tokio::test]
async fn seed_event_on_a_privileged_path_is_denied_with_the_rfc9470_challenge_in_the_context() {
    let f = fixture().await;
    let resp = f.call(REST_SEED_TRANSFER, &f.token("jti-1")).await.unwrap();
    assert_eq!(resp["principalId"], "alice");
    assert_eq!(statement(&resp)["Effect"], "Deny");
    let ctx = &resp["context"];
    assert_eq!(ctx["step_up"], "required");
    assert_eq!(ctx["session_id"], "jti-1");
    assert_eq!(ctx["code"], "STEP_UP_REQUIRED");
    let www = ctx["wwwAuthenticate"].as_str().unwrap();
    assert!(
        www.contains(r#"error="insufficient_user_authentication""#),
        "{www}"
    );
    let body: Value = serde_json::from_str(ctx["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["initiateAuth"], "/initiate-auth");
    // Every context value is flat: API Gateway refuses objects and arrays there.
    for (k, v) in ctx.as_object().unwrap() {
        assert!(
            v.is_string() || v.is_number() || v.is_boolean(),
            "{k} = {v}"
        );
    }
}

#[tokio::test]
async fn a_completed_step_up_for_the_token_allows_the_privileged_path() {
    let f = fixture().await;
    f.sessions
        .put_raw(completed_session("jti-done", "alice", f.now));
    let resp = f
        .call(REST_SEED_TRANSFER, &f.token("jti-done"))
        .await
        .unwrap();
    assert_eq!(statement(&resp)["Effect"], "Allow");
    assert_eq!(resp["context"]["step_up"], "complete");
    // Another token of the same user is not stepped up.
    let resp = f
        .call(REST_SEED_TRANSFER, &f.token("jti-other"))
        .await
        .unwrap();
    assert_eq!(resp["context"]["step_up"], "required");
}

/// The error a REST API maps to `AUTHORIZER_FAILURE` / `AUTHORIZER_CONFIGURATION_ERROR`
/// (403): exactly "Forbidden", never "Unauthorized" (which would be a 401).
fn assert_forbidden(result: Result<Value, AuthorizerError>, reason: DenyReason) {
    let e = result.unwrap_err();
    assert!(
        matches!(e, AuthorizerError::Forbidden(r) if r == reason),
        "{e:?}, want Forbidden({reason:?})"
    );
    assert_eq!(e.to_string(), "Forbidden");
    let d: lambda_runtime::Diagnostic = e.into();
    assert_eq!(d.error_message, "Forbidden");
    assert_ne!(d.error_message, "Unauthorized");
}

#[tokio::test]
async fn a_deny_rule_is_the_forbidden_error_not_a_deny_policy() {
    let f = fixture().await;
    let e = f.call(REST_ADMIN, &f.token("jti-admin")).await.unwrap_err();
    assert_eq!(e.metric_label(), "deny");
    assert_forbidden(Err(e), DenyReason::Policy);
}

#[tokio::test]
async fn a_malformed_path_and_an_unloaded_policy_index_are_forbidden() {
    let f = fixture().await;
    let mut ev = event(REST_INFO, &f.token("jti-bad-path"));
    ev["path"] = json!("/info/%ZZ");
    assert_forbidden(
        handle_event(&f.engine, ev, f.now).await,
        DenyReason::MalformedPath,
    );

    // No policy index yet (the first scan failed): whether a path is privileged is
    // unknown, so even an open path is refused (fail closed).
    let engine = Engine::new(
        Arc::new(PolicyCache::new()),
        Arc::new(f.issuer.verifier(f.now).await),
        Arc::new(MemorySessionStore::new()),
        EngineConfig::default(),
    );
    let e = handle_event(&engine, event(REST_INFO, &f.token("jti-np")), f.now)
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "error");
    assert_forbidden(Err(e), DenyReason::PolicyUnavailable);
}

#[tokio::test]
async fn missing_or_invalid_tokens_are_the_unauthorized_error() {
    let f = fixture().await;
    let e = f.call(REST_NO_AUTHORIZATION, "unused").await.unwrap_err();
    assert!(matches!(e, AuthorizerError::Unauthorized));
    let d: lambda_runtime::Diagnostic = e.into();
    assert_eq!(d.error_message, "Unauthorized");
    let e = f.call(REST_INFO, "not.a.jwt").await.unwrap_err();
    assert!(matches!(e, AuthorizerError::Unauthorized));
    // A token from an unknown issuer.
    let mut claims = f.issuer.claims("mallory", "jti-x", f.now);
    claims["iss"] = json!("https://evil.example");
    let e = f
        .call(REST_INFO, &f.issuer.sign(&claims))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthorizerError::Unauthorized));
}

#[tokio::test]
async fn a_malformed_event_is_an_error_not_a_panic() {
    let f = fixture().await;
    let e = f.call(MALFORMED, "").await.unwrap_err();
    assert!(matches!(e, AuthorizerError::Malformed(_)), "{e:?}");
    for v in [
        json!(null),
        json!([1]),
        json!({"type": "REQUEST"}),
        json!({"version": "2.0", "headers": 5}),
    ] {
        let e = handle_event(&f.engine, v, f.now).await.unwrap_err();
        assert!(matches!(e, AuthorizerError::Malformed(_)), "{e:?}");
    }
}

#[tokio::test]
async fn http_api_v2_simple_responses() {
    let f = fixture().await;
    let resp = f.call(HTTP_V2_INFO, &f.token("jti-v2")).await.unwrap();
    assert_eq!(resp["isAuthorized"], true);
    assert_eq!(resp["context"]["step_up"], "not_required");
    assert_eq!(resp["context"]["username"], "alice");
    let resp = f.call(HTTP_V2_TRANSFER, &f.token("jti-v2")).await.unwrap();
    assert_eq!(resp["isAuthorized"], false);
    assert_eq!(resp["context"]["step_up"], "required");
    f.sessions
        .put_raw(completed_session("jti-v2", "alice", f.now));
    let resp = f.call(HTTP_V2_TRANSFER, &f.token("jti-v2")).await.unwrap();
    assert_eq!(resp["isAuthorized"], true);
    assert_eq!(resp["context"]["step_up"], "complete");
    let resp = f.call(HTTP_V2_TRANSFER, "garbage").await.unwrap();
    assert_eq!(resp["isAuthorized"], false);
    assert_eq!(resp["context"]["step_up"], "unauthenticated");
}

#[tokio::test]
async fn an_unreachable_session_table_fails_closed_with_the_forbidden_error() {
    let f = fixture().await;
    f.sessions.set_unavailable(true);
    assert_forbidden(
        f.call(REST_SEED_TRANSFER, &f.token("jti-down")).await,
        DenyReason::SessionUnavailable,
    );
    // HTTP API v2: unchanged, `isAuthorized: false` (403) with `step_up=error`.
    let resp = f
        .call(HTTP_V2_TRANSFER, &f.token("jti-down"))
        .await
        .unwrap();
    assert_eq!(resp["isAuthorized"], false);
    assert_eq!(resp["context"]["step_up"], "error");
    // Open paths need no session and stay open.
    let resp = f.call(REST_INFO, &f.token("jti-down")).await.unwrap();
    assert_eq!(statement(&resp)["Effect"], "Allow");
}

#[tokio::test]
async fn rest_a_header_that_is_not_bearer_token_is_a_deny_policy_carrying_invalid_request() {
    let f = fixture().await;
    for value in &stepup_core::testkit::malformed_authorizations(&f.token("jti-bare")) {
        // A Deny policy answers through ACCESS_DENIED (401), whose WWW-Authenticate comes
        // from the context; the Unauthorized error's UNAUTHORIZED response is static.
        let resp = f.call(REST_RAW_AUTHORIZATION, value).await.unwrap();
        assert_eq!(statement(&resp)["Effect"], "Deny", "{value}");
        assert_eq!(resp["principalId"], "anonymous");
        let ctx = &resp["context"];
        assert_eq!(ctx["step_up"], "unauthenticated");
        assert_eq!(ctx["wwwAuthenticate"], INVALID_REQUEST);
        assert_eq!(ctx["code"], "UNAUTHENTICATED");
        assert_eq!(ctx["session_id"], "");
        assert_eq!(ctx.get("username"), None);
        let body: Value = serde_json::from_str(ctx["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn rest_the_bearer_scheme_in_lower_case_is_accepted() {
    let f = fixture().await;
    let value = format!("bearer {}", f.token("jti-lower"));
    let resp = f.call(REST_RAW_AUTHORIZATION, &value).await.unwrap();
    assert_eq!(statement(&resp)["Effect"], "Allow");
    assert_eq!(resp["context"]["username"], "alice");
}

#[tokio::test]
async fn http_api_v2_a_bare_token_is_refused_with_invalid_request_in_the_context() {
    let f = fixture().await;
    let resp = f
        .call(HTTP_V2_RAW_AUTHORIZATION, &f.token("jti-v2-bare"))
        .await
        .unwrap();
    assert_eq!(resp["isAuthorized"], false);
    assert_eq!(resp["context"]["step_up"], "unauthenticated");
    assert_eq!(resp["context"]["wwwAuthenticate"], INVALID_REQUEST);
    let value = format!("BEARER {}", f.token("jti-v2-upper"));
    let resp = f.call(HTTP_V2_RAW_AUTHORIZATION, &value).await.unwrap();
    assert_eq!(resp["isAuthorized"], true);
}

#[tokio::test]
async fn under_audit_a_refused_request_is_allowed_with_what_it_would_have_got_but_a_bad_token_is_not()
 {
    let f = fixture().await;
    let audit = f.engine_with(EngineConfig {
        enforcement: Enforcement::Audit,
        ..EngineConfig::default()
    });
    let now = f.now;
    let call =
        |fixture: &'static [u8], token: String| handle_event(&audit, event(fixture, &token), now);
    let rest = call(REST_SEED_TRANSFER, f.token("jti-1")).await.unwrap();
    assert_eq!(statement(&rest)["Effect"], "Allow", "{rest}");
    assert_eq!(rest["context"]["step_up"], "audit");
    assert_eq!(rest["context"]["audit"], "required");
    let http = call(HTTP_V2_TRANSFER, f.token("jti-2")).await.unwrap();
    assert_eq!(http["isAuthorized"], true, "{http}");
    assert_eq!(http["context"]["audit"], "required");
    // Audit is about rules: a token that does not verify is refused as ever.
    assert!(matches!(
        call(REST_SEED_TRANSFER, "not.a.jwt".into()).await,
        Err(AuthorizerError::Unauthorized)
    ));
    // Enforced, nothing says audit.
    let enforced = f.call(HTTP_V2_INFO, &f.token("jti-3")).await.unwrap();
    assert!(enforced["context"].get("audit").is_none(), "{enforced}");
}
