//! Envoy's gRPC ext_authz mode: `envoy.service.auth.v3.Authorization/Check`.
//!
//! Every decision is an `Ok(CheckResponse)`: an allow carries an `OkHttpResponse` that
//! sets all of [`stepup_core::decision::UPSTREAM_HEADERS`] for the upstream with `OVERWRITE_IF_EXISTS_OR_ADD`,
//! which replaces every value a client sent under those names (a client cannot smuggle
//! them),
//! a refusal carries a `DeniedHttpResponse` with the decision's status, `WWW-Authenticate`
//! and JSON body. `Err(Status)` is only for a check request without HTTP attributes, which
//! Envoy never sends.

use crate::telemetry::CheckTimer;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpStatus, OkHttpResponse,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use stepup_core::engine::{self, Engine};
use stepup_core::{Decision, clock};
use tonic::{Code, Request, Response, Status};

/// The gRPC ext_authz service over an [`Engine`].
#[derive(Debug, Clone)]
pub struct ExtAuthzService {
    engine: Engine,
}

impl ExtAuthzService {
    /// A service deciding with `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The tonic server to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self)
    }
}

/// A header of the checked request: the `headers` map (lower-case names), or the
/// `header_map` Envoy sends instead when `encode_raw_headers` is on.
fn header<'a>(http: &'a HttpRequest, name: &str) -> Option<&'a str> {
    if let Some(v) = http.headers.get(name) {
        return Some(v.as_str());
    }
    http.header_map.as_ref().and_then(|m| {
        m.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| {
                if h.raw_value.is_empty() {
                    Some(h.value.as_str())
                } else {
                    std::str::from_utf8(&h.raw_value).ok()
                }
            })
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[allow(deprecated)] // `append` is deprecated in favour of `append_action`, set here
fn header_option(key: &str, value: String, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: action.into(),
        keep_empty_value: false,
    }
}

/// The `CheckResponse` for a decision.
pub fn check_response(decision: &Decision) -> CheckResponse {
    if decision.is_allowed() {
        let mut ok = OkHttpResponseBuilder::new();
        for (name, value) in decision.upstream_headers() {
            ok.add_header(
                name,
                value,
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                true,
            );
        }
        // No `headers_to_remove` for these names: Envoy applies removals *after* the
        // headers above (verified with Envoy 1.40), so it would drop our own values. The
        // overwrite already replaces every value a client sent under these names.
        let ok: OkHttpResponse = ok.build();
        let mut response = CheckResponse::with_status(Status::new(Code::Ok, ""));
        response.set_http_response(ok);
        return response;
    }
    let mut headers = Vec::with_capacity(2);
    if let Some(www) = decision.www_authenticate() {
        headers.push(header_option(
            "www-authenticate",
            www,
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        ));
    }
    let body = decision.body().map(|b| b.to_string()).unwrap_or_default();
    headers.push(header_option(
        "content-type",
        "application/json".to_owned(),
        HeaderAppendAction::OverwriteIfExistsOrAdd,
    ));
    let code = if decision.status_code() == 401 {
        Code::Unauthenticated
    } else {
        Code::PermissionDenied
    };
    let mut response = CheckResponse::with_status(Status::new(code, decision.label()));
    response.set_http_response(DeniedHttpResponse {
        status: Some(HttpStatus {
            code: i32::from(decision.status_code()),
        }),
        headers,
        body,
    });
    response
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let timer = CheckTimer::start("grpc");
        let request = request.into_inner();
        let http = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .ok_or_else(|| {
                metrics::counter!(crate::telemetry::MALFORMED_CHECKS, "mode" => "grpc")
                    .increment(1);
                Status::invalid_argument("check request without attributes.request.http")
            })?;
        let path = non_empty(&http.path)
            .or_else(|| header(http, ":path"))
            .ok_or_else(|| Status::invalid_argument("check request without a path"))?;
        let method = non_empty(&http.method)
            .or_else(|| header(http, ":method"))
            .unwrap_or("");
        let host = non_empty(&http.host)
            .or_else(|| header(http, ":authority"))
            .or_else(|| header(http, "host"))
            .unwrap_or("");
        let check = engine::CheckRequest {
            method,
            host,
            path,
            authorization: header(http, "authorization"),
        };
        let decision = self.engine.check(&check, clock::now()).await;
        let response = check_response(&decision);
        timer.finish(&decision);
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{self, World};
    use envoy_types::ext_authz::v3::pb::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::Request as AttrRequest;
    use std::collections::HashMap;
    use stepup_core::decision::UPSTREAM_HEADERS;

    fn check_request(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
        let headers: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttrRequest {
                    http: Some(HttpRequest {
                        method: "POST".into(),
                        host: "api.example.com".into(),
                        path: path.into(),
                        headers,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    async fn check(w: &World, path: &str, headers: &[(&str, &str)]) -> CheckResponse {
        ExtAuthzService::new(w.engine.clone())
            .check(Request::new(check_request(path, headers)))
            .await
            .unwrap()
            .into_inner()
    }

    fn ok(r: &CheckResponse) -> &OkHttpResponse {
        assert_eq!(r.status.as_ref().unwrap().code, Code::Ok as i32);
        match r.http_response.as_ref().unwrap() {
            HttpResponse::OkResponse(ok) => ok,
            other => panic!("expected an OK response, got {other:?}"),
        }
    }

    fn denied(r: &CheckResponse) -> &DeniedHttpResponse {
        assert_ne!(r.status.as_ref().unwrap().code, Code::Ok as i32);
        match r.http_response.as_ref().unwrap() {
            HttpResponse::DeniedResponse(d) => d,
            other => panic!("expected a denied response, got {other:?}"),
        }
    }

    fn headers(list: &[HeaderValueOption]) -> HashMap<String, String> {
        list.iter()
            .map(|h| {
                let h = h.header.as_ref().unwrap();
                (h.key.clone(), h.value.clone())
            })
            .collect()
    }

    #[tokio::test]
    async fn an_unprivileged_path_is_allowed_with_the_upstream_headers() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let r = check(&w, "/info?x=1", &[("authorization", &auth)]).await;
        let ok = ok(&r);
        let h = headers(&ok.headers);
        assert_eq!(h["x-stepup-status"], "not_required");
        assert_eq!(h["x-stepup-user"], "alice");
        assert_eq!(h["x-stepup-client-id"], testutil::CLIENT_ID);
        for opt in &ok.headers {
            assert_eq!(
                opt.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            );
        }
    }

    #[tokio::test]
    async fn a_smuggled_stepup_header_is_overwritten() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let r = check(
            &w,
            "/info",
            &[("authorization", &auth), ("x-stepup-user", "mallory")],
        )
        .await;
        let ok = ok(&r);
        // Every name is overwritten (all client values replaced), none removed: Envoy
        // removes after setting, which would drop the values set here.
        assert!(ok.headers_to_remove.is_empty());
        let set = headers(&ok.headers);
        for name in UPSTREAM_HEADERS {
            assert!(set.contains_key(name), "{name}");
        }
        for opt in &ok.headers {
            assert_eq!(
                opt.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            );
        }
        assert_eq!(set["x-stepup-user"], "alice");
    }

    #[tokio::test]
    async fn a_missing_token_is_401_with_a_bearer_challenge() {
        let w = testutil::world().await;
        let r = check(&w, "/info", &[]).await;
        assert_eq!(
            r.status.as_ref().unwrap().code,
            Code::Unauthenticated as i32
        );
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 401);
        let h = headers(&d.headers);
        assert_eq!(h["www-authenticate"], r#"Bearer realm="stepup""#);
        assert_eq!(h["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["code"], "UNAUTHENTICATED");
    }

    #[tokio::test]
    async fn a_token_without_the_bearer_scheme_is_401_invalid_request() {
        let w = testutil::world().await;
        for value in &stepup_core::testkit::malformed_authorizations(&w.token("jti-1")) {
            let r = check(&w, "/info", &[("authorization", value)]).await;
            assert_eq!(
                r.status.as_ref().unwrap().code,
                Code::Unauthenticated as i32,
                "{value}"
            );
            let d = denied(&r);
            assert_eq!(d.status.as_ref().unwrap().code, 401);
            assert_eq!(
                headers(&d.headers)["www-authenticate"],
                r#"Bearer realm="stepup", error="invalid_request", error_description="The Authorization header must be the Bearer scheme followed by an access token""#
            );
            let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
            assert_eq!(body["error"], "invalid_request");
        }
        let lower = format!("bearer {}", w.token("jti-1"));
        let r = check(&w, "/info", &[("authorization", &lower)]).await;
        assert_eq!(headers(&ok(&r).headers)["x-stepup-status"], "not_required");
    }

    #[tokio::test]
    async fn a_privileged_path_is_challenged_until_the_session_completes() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let r = check(&w, "/transfer", &[("authorization", &auth)]).await;
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 401);
        let www = &headers(&d.headers)["www-authenticate"];
        assert!(
            www.contains(r#"error="insufficient_user_authentication""#),
            "{www}"
        );
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["initiateAuth"], "/initiate-auth");

        w.complete("jti-1").await;
        let r = check(&w, "/transfer", &[("authorization", &auth)]).await;
        assert_eq!(headers(&ok(&r).headers)["x-stepup-status"], "complete");
        // Another token of the same user has no session.
        let other = w.bearer("jti-2");
        let r = check(&w, "/transfer", &[("authorization", &other)]).await;
        assert_eq!(denied(&r).status.as_ref().unwrap().code, 401);
    }

    #[tokio::test]
    async fn an_unreadable_session_store_is_403_not_an_error() {
        let w = testutil::world().await;
        w.sessions.set_unavailable(true);
        let auth = w.bearer("jti-1");
        let r = check(&w, "/transfer", &[("authorization", &auth)]).await;
        assert_eq!(
            r.status.as_ref().unwrap().code,
            Code::PermissionDenied as i32
        );
        assert_eq!(denied(&r).status.as_ref().unwrap().code, 403);
        let r = check(&w, "/info", &[("authorization", &auth)]).await;
        ok(&r);
    }

    #[tokio::test]
    async fn raw_header_maps_are_read_too() {
        let w = testutil::world().await;
        let auth = w.bearer("jti-1");
        let mut req = check_request("/info", &[]);
        if let Some(http) = req
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
        {
            http.header_map = Some(envoy_types::pb::envoy::config::core::v3::HeaderMap {
                headers: vec![HeaderValue {
                    key: "authorization".into(),
                    value: String::new(),
                    raw_value: auth.into_bytes(),
                }],
            });
        }
        let r = ExtAuthzService::new(w.engine.clone())
            .check(Request::new(req))
            .await
            .unwrap()
            .into_inner();
        ok(&r);
    }

    #[tokio::test]
    async fn a_check_request_without_http_attributes_is_an_error() {
        let w = testutil::world().await;
        let svc = ExtAuthzService::new(w.engine.clone());
        let err = svc
            .check(Request::new(CheckRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let mut req = check_request("", &[]);
        if let Some(a) = req.attributes.as_mut() {
            a.request = None;
        }
        let err = svc.check(Request::new(req)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = svc
            .check(Request::new(check_request("", &[])))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
