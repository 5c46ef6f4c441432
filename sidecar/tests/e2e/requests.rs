//! Requests through the fixture's Envoy and what the scenarios check about the answers:
//! raw targets sent byte for byte, the step-up API calls (the default verification sends
//! the password next to the code), `/transfer` challenged or reaching the upstream, and
//! the upstream that echoes what it received.

use super::Fixture;
use axum::Router;
use axum::extract::Request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use stepup_core::testkit::moto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// The body of a refused answer (`401`), as the seed words it.
pub fn challenge_failed() -> Value {
    json!({"name": "Status", "details": "Challenge Failed - Code Mismatch or Expired Code"})
}

/// The body of an accepted answer (`200`), as the seed words it.
pub fn challenge_successful() -> Value {
    json!({"name": "Status", "details": "Challenge Successful"})
}

/// A six-digit code that is not `right`.
pub fn wrong_code(right: &str, n: u8) -> String {
    let code = format!("{n}{n}{n}{n}{n}{n}");
    if code == right {
        "987654".to_owned()
    } else {
        code
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// An upstream answering every request with JSON: its method, raw target and every
/// header (name → all values).
pub async fn start_upstream() -> (SocketAddr, JoinHandle<()>) {
    async fn echo(req: Request) -> axum::Json<Value> {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in req.headers() {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(value.to_str().unwrap_or("<binary>").to_owned());
        }
        axum::Json(json!({
            "method": req.method().as_str(),
            "target": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
            "headers": headers,
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(echo))
            .await
            .unwrap();
    });
    (addr, task)
}

/// The upstream's echo of one request (asserting that it got there).
pub async fn echo(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200, "the request did not reach the upstream");
    r.json().await.unwrap()
}

/// The values of `header` the upstream received.
pub fn seen(echo: &Value, header: &str) -> Vec<String> {
    echo["headers"][header]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// An answer: status, the headers a scenario looks at, and the JSON body (`null` if none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Reply {
    pub async fn read(r: reqwest::Response) -> Reply {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (retry_after, www_authenticate, content_type) = (
            header("retry-after"),
            header("www-authenticate"),
            header("content-type"),
        );
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Reply {
            status,
            retry_after,
            www_authenticate,
            content_type,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// `Retry-After` as seconds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap()
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` exactly as written (no client-side normalisation of dot
/// segments or percent-encoding), with `Connection: close`.
pub async fn raw_request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: api.example.com\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The RFC 9470 step-up challenge: 401, `WWW-Authenticate: Bearer
/// error="insufficient_user_authentication"`, a JSON body saying `STEP_UP_REQUIRED`.
/// `what` names the request in a failure.
pub fn assert_step_up_challenge(
    what: &str,
    status: u16,
    www: Option<&str>,
    ctype: Option<&str>,
    body: &str,
) {
    assert_eq!(status, 401, "{what}: {body}");
    let www = www.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        www.starts_with("Bearer ") && www.contains(r#"error="insufficient_user_authentication""#),
        "{what}: {www}"
    );
    assert_eq!(ctype, Some("application/json"), "{what}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "STEP_UP_REQUIRED", "{what}: {body}");
    assert_eq!(body["error"], "insufficient_user_authentication", "{what}");
}

impl Fixture {
    /// `POST` to the step-up API through Envoy with the bearer token and this JSON body
    /// (none for `None`).
    pub async fn api(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut req = client()
            .post(self.envoy.url(path))
            .header("authorization", bearer(token));
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// `POST /initiate-auth` without a body, as the seed's web app sends it.
    pub async fn initiate(&self, token: &str) -> Reply {
        self.api("/initiate-auth", token, None).await
    }

    /// `POST /respond-to-challenge` the default way: a TOTP code and the user's password.
    pub async fn respond(&self, token: &str, code: &str) -> Reply {
        self.respond_with(token, code, Some(moto::PASSWORD)).await
    }

    /// `POST /respond-to-challenge` with a TOTP code and this password, or none.
    pub async fn respond_with(&self, token: &str, code: &str, password: Option<&str>) -> Reply {
        let mut body =
            json!({"step-up-type": "SOFTWARE_TOKEN_STEP_UP", "challenge-response": code});
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        self.api("/respond-to-challenge", token, Some(body)).await
    }

    /// A whole step-up for `token`, asserted to succeed: initiate, then the code of now
    /// with the password.
    pub async fn step_up(&self, token: &str) {
        let m = self.mode.name();
        let r = self.initiate(token).await;
        assert_eq!(r.status, 200, "{m}: initiate: {r:?}");
        let r = self.respond(token, &moto::totp_now().await).await;
        assert_eq!(
            (r.status, &r.body),
            (200, &challenge_successful()),
            "{m}: respond"
        );
    }

    /// `POST /transfer` through Envoy with a bearer token.
    pub async fn transfer(&self, token: &str) -> reqwest::Response {
        client()
            .post(self.envoy.url("/transfer"))
            .header("authorization", bearer(token))
            .send()
            .await
            .unwrap()
    }

    /// `POST /transfer` through Envoy, asserting the RFC 9470 step-up challenge.
    pub async fn assert_transfer_challenged(&self, token: &str) {
        let r = Reply::read(self.transfer(token).await).await;
        assert_step_up_challenge(
            &format!("{} POST /transfer", self.mode.name()),
            r.status,
            r.www_authenticate.as_deref(),
            r.content_type.as_deref(),
            &r.body.to_string(),
        );
    }

    /// `POST /transfer` through Envoy (claiming other step-up headers, which must be
    /// overwritten), expecting the upstream's echo.
    pub async fn transfer_allowed(&self, token: &str) -> Value {
        let r = client()
            .post(self.envoy.url("/transfer"))
            .header("authorization", bearer(token))
            .header("x-stepup-user", "mallory")
            .header("x-stepup-status", "not_required")
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(
            status,
            200,
            "{}: /transfer refused: {body}",
            self.mode.name()
        );
        serde_json::from_str(&body).unwrap()
    }
}
