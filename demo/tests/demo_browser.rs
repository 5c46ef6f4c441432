//! The demo page in real headless Chromium, driven as a person would use it: sign in; try a
//! step-up before any second factor is enrolled (403 `MFA_NOT_ENROLLED`); set up a
//! software token from the secret the page shows, prefer it, call `/info` (200), call
//! `/transfer` (401 with the RFC 9470 challenge), answer with a wrong password (refused)
//! and then the right password and code (accepted: the default verification, Cognito's own
//! MFA challenge played by the development identity provider), call `/transfer` again
//! (200); then claims mode: `/payments/1234/approve` (401 naming `acr_values` and
//! `max_age`), a step-up sign-in at the identity provider with password and code, the
//! retry with the new token (200). The browser part is
//! `tests/browser/demo_flow.js` (npm `playwright-core` driving Debian's `chromium`, both
//! installed by `scripts/browser.sh`); it keeps a screenshot of every step in
//! `test-artifacts/demo/NN-step.png`.
//!
//! Without Chromium the test fails when `CI=true` and is skipped (with a message)
//! otherwise.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use stepup_demo::{Demo, DemoArgs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `scripts/browser.sh env`: installs Chromium and playwright-core when missing, prints
/// `KEY=VALUE` lines. `Err` says why the browser is not available.
fn browser_env() -> Result<Vec<(String, String)>, String> {
    let out = Command::new(root().join("scripts/browser.sh"))
        .arg("env")
        .output()
        .map_err(|e| format!("running scripts/browser.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/browser.sh env failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let vars: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect();
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let chromium = get("CHROMIUM_PATH").ok_or("no CHROMIUM_PATH")?;
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} does not exist"));
    }
    let node_path = get("PLAYWRIGHT_NODE_PATH").ok_or("no PLAYWRIGHT_NODE_PATH")?;
    if !Path::new(&node_path).join("playwright-core").is_dir() {
        return Err(format!("playwright-core is not in {node_path}"));
    }
    Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node is not available: {e}"))?;
    Ok(vars)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_works_in_headless_chromium_with_a_screenshot_per_step() {
    let vars = match browser_env() {
        Ok(v) => v,
        Err(why) => {
            stepup_core::testkit::components::skip_or_fail(
                "headless Chromium",
                &format!("{why}; scripts/browser.sh install"),
            );
            return;
        }
    };
    let artifacts = root().join("test-artifacts/demo");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    let demo = Demo::start(DemoArgs::on(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::LOCALHOST,
        0,
    ))))
    .await
    .unwrap();

    let mut cmd = Command::new("node");
    cmd.arg(root().join("demo/tests/browser/demo_flow.js"))
        .env("DEMO_URL", &demo.url)
        .env("DEMO_USER", &demo.username)
        .env("DEMO_PASSWORD", &demo.password)
        .env("ARTIFACT_DIR", &artifacts);
    for (k, v) in &vars {
        match k.as_str() {
            "CHROMIUM_PATH" => {
                cmd.env("CHROMIUM_PATH", v);
            }
            "PLAYWRIGHT_NODE_PATH" => {
                cmd.env("NODE_PATH", v);
            }
            _ => {}
        }
    }
    // The demo serves from this runtime's workers while node runs on a blocking thread.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser flow failed: {stdout}");

    let mut shots: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    shots.sort();
    assert_eq!(
        shots,
        [
            "01-page-loaded.png",
            "02-signed-in.png",
            "03-mfa-not-enrolled.png",
            "04-qr-code.png",
            "05-token-verified.png",
            "06-preferred-mfa.png",
            "07-info-allowed.png",
            "08-transfer-challenge.png",
            "09-wrong-password-refused.png",
            "10-right-code-accepted.png",
            "11-transfer-allowed.png",
            "12-approve-claims-challenge.png",
            "13-approve-allowed.png",
        ]
    );
    demo.stop().await.unwrap();
}
