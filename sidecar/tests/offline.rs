//! `stepup-sidecar` started as a new user would, without AWS: no credentials, no
//! `~/.aws`, a DynamoDB endpoint and a JWKS URL nothing listens on. It starts anyway (not
//! ready, as designed) and says in one line per failed load what it tried to read and what
//! to try, without the SDK's probing noise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stepup_core::testkit::offline::{UNREACHABLE, assert_actionable, command};

#[test]
fn start_up_without_aws_says_in_one_line_which_table_failed_and_what_to_try() {
    let mut child = command(env!("CARGO_BIN_EXE_stepup-sidecar"))
        .args([
            "--region",
            "eu-west-1",
            "--user-pool-id",
            "eu-west-1_Pool",
            "--allowed-client-ids",
            "client",
            "--dynamodb-endpoint",
            UNREACHABLE,
            "--jwks-url",
            &format!("{UNREACHABLE}/jwks"),
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        // Warnings and errors only: the start-up's info lines are not failures.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both first loads fail at once (connection refused); then the sidecar serves, not
    // ready, and retries in the background: the test reads up to the first loads' lines.
    let lines = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let done = |s: &str| s.contains("first policy load") && s.contains("first JWKS load");
    // At most 20 s (the loads are bounded by 10 s).
    for _ in 0..400 {
        if done(&lines.lock().unwrap()) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sidecar exited ({status}) instead of serving not ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = lines.lock().unwrap().clone();
    assert!(stderr.contains("first policy load failed"), "{stderr}");
    assert_actionable(&stderr, &["step-up-auth-setting"]);
    assert!(stderr.contains(UNREACHABLE), "{stderr}");
}
