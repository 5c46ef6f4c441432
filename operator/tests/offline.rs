//! The operator binary as a new user runs it: no AWS credentials, no `~/.aws`, an
//! unreachable DynamoDB endpoint. Every failure is one line that names the table or the
//! endpoint and says what to try; exit codes tell usage errors (2) from failures (1) and
//! policy problems (3); `validate` and a dry run need no AWS at all.

use crate::common::{examples, repo};
use std::process::Output;
use stepup_core::testkit::offline::{UNREACHABLE, assert_actionable, command};

const TABLE: &str = "step-up-auth-setting";

/// `sync -f <path> <extra..> --dynamodb-endpoint <unreachable>`.
fn sync_unreachable(path: &std::path::Path, extra: &[&str]) -> (Output, String, String) {
    let mut args = vec!["sync", "-f", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--dynamodb-endpoint", UNREACHABLE]);
    operator(&args)
}

fn operator(args: &[&str]) -> (Output, String, String) {
    let out = command(env!("CARGO_BIN_EXE_stepup-operator"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn sync_against_an_unreachable_endpoint_fails_in_one_line_naming_table_and_endpoint() {
    let (out, stdout, stderr) = sync_unreachable(&examples(), &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_actionable(&stderr, &[TABLE]);
    assert!(stderr.contains(UNREACHABLE), "{stderr}");
    assert!(stderr.contains("--dynamodb-endpoint"), "{stderr}");
}

#[test]
fn sync_without_credentials_says_none_were_found_and_what_to_set() {
    let path = examples();
    // No endpoint override: AWS itself. The instance metadata service is switched off, so
    // that the credential chain asks nothing beyond this machine.
    let out = command(env!("CARGO_BIN_EXE_stepup-operator"))
        .args([
            "sync",
            "-f",
            path.to_str().unwrap(),
            "--region",
            "eu-west-1",
        ])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_actionable(&stderr, &[TABLE]);
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
    assert!(stderr.contains("AWS_PROFILE"), "{stderr}");
}

#[test]
fn a_dry_run_without_a_reachable_table_plans_against_an_empty_one_and_says_so() {
    let (out, stdout, stderr) = sync_unreachable(&examples(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("# 3 policies from "),
        "singular/plural wording: {stdout}"
    );
    assert!(stdout.contains("against an empty table"), "{stdout}");
    assert!(
        stdout.contains("+ create EXACT:/transfer (default/transfer)"),
        "{stdout}"
    );
    assert_actionable(&stderr, &[TABLE]);
    assert!(
        stderr.contains("planned against an empty table"),
        "{stderr}"
    );
}

#[test]
fn one_policy_is_one_policy() {
    let file = examples().join("transfer.yaml");
    let (out, stdout, stderr) = sync_unreachable(&file, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("# 1 policy from "), "{stdout}");
}

#[test]
fn sync_reports_a_bad_manifest_before_it_touches_aws() {
    let bad = repo("operator/tests/fixtures/invalid/max-age-zero.yaml");
    let (out, stdout, stderr) = sync_unreachable(&bad, &[]);
    // The typo is on stdout even though the table cannot be reached (exit 1).
    assert!(stdout.contains("! error: "), "{stdout}");
    assert!(
        stdout.contains("shop/broken: spec.rules[0].maxAge: maxAge must be between"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_actionable(&stderr, &[TABLE]);
    // A document nobody can name stops the sync before AWS: exit 3, nothing on stderr.
    let not_yaml = repo("operator/tests/fixtures/invalid/not-yaml.yaml");
    let (out, stdout, stderr) = sync_unreachable(&not_yaml, &[]);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("# nothing planned"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn validate_needs_no_aws_and_usage_errors_exit_2() {
    let path = examples();
    let (out, stdout, stderr) = operator(&["validate", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let (out, _, stderr) = operator(&[
        "sync",
        "-f",
        path.to_str().unwrap(),
        "--dynamodb-endpoint",
        "localhost",
    ]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (out, _, _) = operator(&["validate", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _, stderr) = operator(&["validate", "-f", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
