//! The two function binaries under the Lambda runtime emulator of cargo-lambda
//! (`cargo lambda watch`), against DynamoDB Local: allow, step-up required, completed
//! step-up, deny, malformed event and missing header, through the raw Lambda Invoke API.
//! The authorizer trusts the test issuer's tokens through `STEPUP_JWKS_URL` (a tiny JWKS
//! server started here) and `STEPUP_ISSUER`. The functions are the binaries cargo built
//! for this test run (`CARGO_BIN_EXE_*`): the emulator starts them through
//! `tests/prebuilt-cargo.sh` in place of `cargo run`, so nothing is compiled a second time.
//!
//! It also measures the authorizer's cold start (the first invocation, which makes the
//! emulator start the process) and warm invocations, and prints them (docs/lambda.md
//! quotes the numbers). Not a timed test: nothing fails on a number.
//!
//! Needs `DYNAMODB_ENDPOINT` (`./scripts/test` starts DynamoDB Local) and cargo-lambda
//! (installed here by `scripts/cargo-lambda.sh install`, idempotent). Without either the
//! test is skipped with a note, except under `CI=true`, where it fails.

// Wall-clock timing of the benchmark; no decision reads it.
#![allow(clippy::disallowed_methods)]

use crate::common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use stepup_core::clock;
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore};
use stepup_core::store::{SettingStore, TableNames};
use stepup_core::testkit::{TEST_CLIENT_ID, TEST_POOL, TEST_REGION, TestIssuer};

/// Skips (returns `None`) with a note, or panics under `CI=true`.
fn skip(why: &str) -> Option<()> {
    if in_ci() {
        panic!("emulator test cannot run under CI=true: {why}");
    }
    eprintln!("skipping the emulator test: {why}");
    None
}

/// `scripts/cargo-lambda.sh install` (idempotent), then the directory holding the binary.
fn install_cargo_lambda() -> Result<PathBuf, String> {
    let script = workspace_root().join("scripts/cargo-lambda.sh");
    let out = std::process::Command::new(&script)
        .arg("install")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.success() {
        return Err(format!("{} install failed ({out})", script.display()));
    }
    let path = std::process::Command::new(&script)
        .arg("path")
        .output()
        .map_err(|e| e.to_string())?;
    let dir = String::from_utf8_lossy(&path.stdout).trim().to_owned();
    // `path` may print `bin:venv/bin`; the first entry holds cargo-lambda.
    let bin = PathBuf::from(dir.split(':').next().unwrap_or_default());
    if bin.join("cargo-lambda").is_file() {
        Ok(bin)
    } else {
        Err(format!("no cargo-lambda in `{}`", bin.display()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo lambda watch`, stopped on drop: TERM, which makes it end the function processes
/// too, then up to 10 s for it to exit before `kill_on_drop` sends KILL (a KILL at once
/// would leave the function processes running).
struct Emulator {
    child: tokio::process::Child,
    endpoint: String,
    log: PathBuf,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else { return };
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Emulator {
    async fn invoke(
        &self,
        client: &reqwest::Client,
        function: &str,
        event: &Value,
    ) -> (u16, Value) {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        );
        let resp = client.post(url).json(event).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_answer_under_the_cargo_lambda_emulator() {
    let Some(ddb) = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
    else {
        skip("DYNAMODB_ENDPOINT not set (run ./scripts/test)");
        return;
    };
    let bin_dir = match install_cargo_lambda() {
        Ok(dir) => dir,
        Err(e) => {
            skip(&format!("cargo-lambda cannot be installed: {e}"));
            return;
        }
    };

    // Tables with a prefix of their own, holding the sample API's rules and one completed
    // step-up.
    let now = clock::now();
    let prefix = format!("emu{}-{}", std::process::id(), now.as_secs() % 100_000);
    let names = TableNames::with_prefix(&prefix);
    let client = dynamo::local_client(&ddb);
    dynamo::create_tables(&client, &names).await.unwrap();
    let settings = DynamoSettingStore::new(client.clone(), &names.setting);
    for item in policy_items() {
        settings.put(item).await.unwrap();
    }
    DynamoSessionStore::new(client.clone(), &names.session)
        .put_raw(completed_session("jti-done", "alice", now))
        .await
        .unwrap();

    let jwks = jwks_server().await;
    let issuer = TestIssuer::new();
    let tmp = std::env::temp_dir().join(format!("stepup-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let env_file = tmp.join("function.env");
    std::fs::write(
        &env_file,
        format!(
            "STEPUP_REGION={TEST_REGION}\nSTEPUP_USER_POOL_ID={TEST_POOL}\nSTEPUP_CLIENT_IDS={TEST_CLIENT_ID}\n\
             ENV_PREFIX={prefix}\nSTEPUP_ISSUER={}\nSTEPUP_JWKS_URL=http://{jwks}/jwks.json\n\
             STEPUP_DYNAMODB_ENDPOINT={ddb}\nSTEPUP_COGNITO_ENDPOINT=http://127.0.0.1:9\n\
             AWS_ACCESS_KEY_ID=dummy\nAWS_SECRET_ACCESS_KEY=dummy\nRUST_LOG=info\n\
             AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true\n",
            issuer.issuer()
        ),
    )
    .unwrap();

    // `cargo lambda watch` starts a function with `$CARGO run --bin <function>`, which would
    // build this package again on its own, with other features than this test run's build
    // (minutes on a fresh machine). `prebuilt-cargo.sh` runs the binaries cargo built for
    // this run instead (`CARGO_BIN_EXE_*`), so the first invocation times the process start
    // and nothing is compiled.
    let authorizer = PathBuf::from(env!("CARGO_BIN_EXE_stepup-authorizer"));
    let api_bin = PathBuf::from(env!("CARGO_BIN_EXE_stepup-api"));
    let prebuilt_dir = authorizer.parent().unwrap().to_path_buf();
    assert_eq!(api_bin.parent(), Some(prebuilt_dir.as_path()));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_shim = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/prebuilt-cargo.sh");

    let port = free_port();
    let log = tmp.join("watch.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = tokio::process::Command::new(bin_dir.join("cargo-lambda"))
        .args([
            "lambda",
            "watch",
            // A file edited during the run must not restart the functions.
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .arg("--env-file")
        .arg(&env_file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env("CARGO", &cargo_shim)
        .env("STEPUP_REAL_CARGO", &cargo)
        .env("STEPUP_PREBUILT_DIR", &prebuilt_dir)
        .stdin(Stdio::null())
        // One open file for both streams: two would each write at their own offset and
        // overwrite each other's lines (the function's `init_ms` among them).
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let emu = Emulator {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        log,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(&emu.endpoint).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "emulator not up; log:\n{}",
            std::fs::read_to_string(&emu.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let f = "stepup-authorizer";
    let tok = |jti: &str| issuer.token("alice", jti, now);

    // Cold start: this first invocation makes the emulator start the function process.
    let t0 = Instant::now();
    let (status, allow) = emu
        .invoke(&http, f, &event(REST_INFO, &tok("jti-info")))
        .await;
    let cold = t0.elapsed();
    assert_eq!(
        status,
        200,
        "{allow}\nlog:\n{}",
        std::fs::read_to_string(&emu.log).unwrap_or_default()
    );
    assert_eq!(
        allow["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{allow}"
    );
    assert_eq!(allow["principalId"], "alice");
    assert_eq!(allow["context"]["step_up"], "not_required");

    // Step-up required: Deny with the challenge in the context.
    let (status, required) = emu
        .invoke(&http, f, &event(REST_SEED_TRANSFER, &tok("jti-1")))
        .await;
    assert_eq!(status, 200, "{required}");
    assert_eq!(required["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(required["context"]["step_up"], "required");
    assert_eq!(required["context"]["session_id"], "jti-1");
    assert!(
        required["context"]["wwwAuthenticate"]
            .as_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );

    // Completed step-up (session read from DynamoDB Local).
    let (_, complete) = emu
        .invoke(&http, f, &event(REST_SEED_TRANSFER, &tok("jti-done")))
        .await;
    assert_eq!(
        complete["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{complete}"
    );
    assert_eq!(complete["context"]["step_up"], "complete");

    // Deny rule: the function error "Forbidden" (not "Unauthorized"), which API Gateway
    // answers through AUTHORIZER_FAILURE / AUTHORIZER_CONFIGURATION_ERROR (403).
    let (status, deny) = emu
        .invoke(&http, f, &event(REST_ADMIN, &tok("jti-admin")))
        .await;
    assert_ne!(status, 200, "{deny}");
    assert_eq!(deny["errorMessage"], "Forbidden", "{deny}");
    assert_eq!(deny["errorType"], "Forbidden", "{deny}");
    assert!(deny.get("policyDocument").is_none(), "{deny}");

    // Missing Authorization header: the `Unauthorized` error API Gateway maps to 401.
    let (status, unauth) = emu
        .invoke(&http, f, &event(REST_NO_AUTHORIZATION, ""))
        .await;
    assert_ne!(status, 200, "{unauth}");
    assert_eq!(unauth["errorMessage"], "Unauthorized", "{unauth}");
    assert_eq!(unauth["errorType"], "Unauthorized", "{unauth}");

    // Malformed event: an error, and the function keeps serving.
    let (status, bad) = emu.invoke(&http, f, &event(MALFORMED, "")).await;
    assert_ne!(status, 200, "{bad}");
    assert_eq!(bad["errorType"], "MalformedEvent", "{bad}");

    // HTTP API v2 through the same function.
    let (_, v2) = emu
        .invoke(&http, f, &event(HTTP_V2_TRANSFER, &tok("jti-done")))
        .await;
    assert_eq!(v2["isAuthorized"], true, "{v2}");

    // Warm invocations: the policy index, JWKS and the completion cache are in memory.
    let mut warm = Vec::new();
    let mut warm_session = Vec::new();
    for i in 0..200 {
        let ev = event(REST_INFO, &tok(&format!("jti-warm-{i}")));
        let t = Instant::now();
        let (status, _) = emu.invoke(&http, f, &ev).await;
        warm.push(t.elapsed());
        assert_eq!(status, 200);
        let ev = event(REST_SEED_TRANSFER, &tok("jti-done"));
        let t = Instant::now();
        emu.invoke(&http, f, &ev).await;
        warm_session.push(t.elapsed());
    }

    // The step-up API function: the sidecar's router through lambda_http.
    let api = "stepup-api";
    let mut preflight = event(include_bytes!("fixtures/api-proxy-initiate-auth.json"), "");
    preflight["httpMethod"] = json!("OPTIONS");
    let (status, pre) = emu.invoke(&http, api, &preflight).await;
    assert_eq!(
        status,
        200,
        "{pre}\nlog:\n{}",
        std::fs::read_to_string(&emu.log).unwrap_or_default()
    );
    assert_eq!(pre["statusCode"], 200, "{pre}");
    // The seed's web app sends its ID token in `Identification`: the preflight allows it.
    assert!(pre.to_string().contains("Identification"), "{pre}");
    let (_, noauth) = emu
        .invoke(
            &http,
            api,
            &event(include_bytes!("fixtures/api-proxy-initiate-auth.json"), ""),
        )
        .await;
    assert_eq!(noauth["statusCode"], 401, "{noauth}");
    let body: Value = serde_json::from_str(noauth["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["code"], "UNAUTHENTICATED");

    let log = std::fs::read_to_string(&emu.log).unwrap_or_default();
    let init_ms = log
        .lines()
        .filter_map(|l| l.split("\"init_ms\":").nth(1))
        .filter_map(|rest| rest.split(|c: char| c != '.' && !c.is_ascii_digit()).next())
        .find_map(|n| n.parse::<f64>().ok());
    println!(
        "BENCH lambda authorizer under cargo-lambda emulator: cold start (first invoke, process start to first answer) {:.1} ms; \
         in-process init (main to ready, incl. policy scan + JWKS fetch) {}; \
         warm /info median {:.2} ms p99 {:.2} ms; warm /transfer (completed step-up) median {:.2} ms p99 {:.2} ms; n={}",
        ms(cold),
        init_ms.map_or("n/a".to_owned(), |v| format!("{v:.1} ms")),
        ms(median(warm.clone())),
        ms(percentile(warm.clone(), 0.99)),
        ms(median(warm_session.clone())),
        ms(percentile(warm_session.clone(), 0.99)),
        warm.len()
    );
    drop(emu);
    let _ = std::fs::remove_dir_all(&tmp);
}
