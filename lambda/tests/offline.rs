//! The authorizer's init, through its real binary, as it would run without AWS: no
//! credentials, no `~/.aws`, a DynamoDB endpoint nothing listens on. The Lambda runtime
//! API is not there outside Lambda either (`AWS_LAMBDA_RUNTIME_API` on the same dead
//! port), so the process ends after its init phase; what it printed up to then is the
//! init's: one line for the setting table that could not be read, naming it and saying
//! what to try, and no SDK noise. The JWKS is served locally, so that the AWS failure is
//! the one on show.

use crate::common;

use std::time::Duration;
use stepup_core::testkit::offline::{UNREACHABLE, assert_actionable, command};

#[tokio::test(flavor = "multi_thread")]
async fn init_without_aws_says_in_one_line_which_table_failed_and_what_to_try() {
    let jwks = common::jwks_server().await;
    let mut cmd = command(env!("CARGO_BIN_EXE_stepup-authorizer"));
    cmd.envs([
        ("AWS_REGION", "eu-west-1"),
        ("STEPUP_USER_POOL_ID", "eu-west-1_Pool"),
        ("STEPUP_CLIENT_IDS", "client"),
        ("STEPUP_DYNAMODB_ENDPOINT", UNREACHABLE),
        ("STEPUP_JWKS_URL", &format!("http://{jwks}/jwks.json")),
        ("AWS_LAMBDA_FUNCTION_NAME", "stepup-authorizer"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        // Warnings and errors only: the init's info lines are not failures.
        ("RUST_LOG", "warn"),
    ]);
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::from(cmd).output(),
    )
    .await
    .expect("the authorizer did not end without its runtime API")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("first policy load failed"), "{all}");
    assert_actionable(&all, &["step-up-auth-setting"]);
    assert!(all.contains(UNREACHABLE), "{all}");
}
