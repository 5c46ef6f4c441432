//! Running a real binary as a new user would, without AWS: no `AWS_*` variable, no
//! `~/.aws` (`HOME` is an empty directory), an endpoint nothing listens on; and the one
//! check every such test makes of what the user reads on stderr.

use std::path::PathBuf;
use std::process::Command;

/// An endpoint nothing listens on (the discard port).
pub const UNREACHABLE: &str = "http://127.0.0.1:9";

/// `bin` with an empty environment but for `HOME`, an empty directory of its own (so no
/// `~/.aws`), and `PATH`.
pub fn command(bin: &str) -> Command {
    let home = empty_home();
    let mut cmd = Command::new(bin);
    cmd.env_clear().env("HOME", &home);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn empty_home() -> PathBuf {
    let dir = std::env::temp_dir().join(super::components::unique_prefix("home"));
    // An existing directory is as good: it is ours, and nothing writes to it.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Asserts that `stderr` is at most three lines, names one of `names` (the table, the
/// endpoint), says what to try, and holds none of the SDK's noise (its error types, the
/// instance metadata service).
#[allow(clippy::panic)]
pub fn assert_actionable(stderr: &str, names: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 3 {
        panic!("more than 3 lines on stderr:\n{stderr}");
    }
    if !names.iter().any(|n| stderr.contains(n)) {
        panic!("stderr names none of {names:?}:\n{stderr}");
    }
    if !stderr.contains("try: ") {
        panic!("stderr says nothing to try:\n{stderr}");
    }
    if ["DispatchFailure", "ConnectorError", "IMDS"]
        .iter()
        .any(|n| stderr.contains(n))
    {
        panic!("the SDK's noise on stderr:\n{stderr}");
    }
}
