//! Reading clap args from environment variables, one rule for every binary: **an empty
//! variable is unset**. clap itself takes `STEPUP_SETTING_TABLE=` as the value `""`; a
//! Helm chart or SAM template that renders an optional value as an empty string must not
//! thereby name a table `""`, turn a flag into a parse error, or override a default.
//!
//! - [`parse`]: what `T::parse()` does (command line, then each flag's variable), with
//!   that rule; the sidecar and the operator start with it.
//! - [`from_lookup`] / [`from_env`]: the args from variables alone, each read through a
//!   lookup function under the name its `env = ...` attribute gives: the Lambda functions
//!   (which have no command line) read the very same clap structs, and tests read an
//!   environment without touching the process's.

use crate::args::parse_flag;
use crate::{Error, Result};
use clap::error::{ContextKind, ContextValue};
use clap::{Args, Command, FromArgMatches, Parser};
use std::ffi::OsString;

/// Parses the command line and the environment into `T`, as `T::parse()` does but with
/// empty variables unset; exits with clap's message and status on an error.
pub fn parse<T: Parser>() -> T {
    let cmd = ignore_empty_env(T::command(), &|name| std::env::var_os(name));
    let mut matches = cmd.get_matches();
    T::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut T::command()).exit())
}

/// `T` from the process environment alone (see [`from_lookup`]).
pub fn from_env<T: Args + FromArgMatches>() -> Result<T> {
    from_lookup(|name| std::env::var(name).ok())
}

/// `T` from environment variables alone, each arg's variable read through `get`; flags
/// not set take their defaults. Errors name the variable.
pub fn from_lookup<T: Args + FromArgMatches>(get: impl Fn(&str) -> Option<String>) -> Result<T> {
    let cmd = T::augment_args(
        Command::new("environment")
            .no_binary_name(true)
            .disable_help_flag(true)
            .disable_version_flag(true),
    );
    let mut argv: Vec<String> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env().and_then(|e| e.to_str()), arg.get_long())
        else {
            continue;
        };
        names.push((long.to_owned(), env.to_owned()));
        let Some(value) = get(env).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        if arg.get_action().takes_values() {
            argv.push(format!("--{long}={value}"));
        } else if parse_flag(&value).map_err(|reason| Error::Env {
            name: env.to_owned(),
            reason: format!("`{value}`: {reason}"),
        })? {
            argv.push(format!("--{long}"));
        }
    }
    let cmd = cmd.mut_args(|a| a.env(None::<&'static str>));
    let parsed = cmd
        .try_get_matches_from(argv)
        .and_then(|mut m| T::from_arg_matches_mut(&mut m));
    parsed.map_err(|e| env_error(&e, &names))
}

/// The command with the `env` of every arg (and subcommand arg) whose variable is empty
/// taken away, so that the arg is unset rather than `""`.
fn ignore_empty_env(cmd: Command, var: &dyn Fn(&str) -> Option<OsString>) -> Command {
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut cmd = cmd.mut_args(|a| {
        let empty = a
            .get_env()
            .and_then(|name| name.to_str())
            .and_then(var)
            .is_some_and(|v| v.to_string_lossy().trim().is_empty());
        if empty {
            a.env(None::<&'static str>)
        } else {
            a
        }
    });
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, |sub| ignore_empty_env(sub, var));
    }
    cmd
}

fn env_error(e: &clap::Error, names: &[(String, String)]) -> Error {
    let args: Vec<String> = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let named: Vec<&str> = args
        .iter()
        .filter_map(|arg| {
            names.iter().find_map(|(long, env)| {
                let flag = format!("--{long}");
                let matches = arg == &flag
                    || arg.starts_with(&format!("{flag} "))
                    || arg.starts_with(&format!("{flag}="));
                matches.then_some(env.as_str())
            })
        })
        .collect();
    let name = if named.is_empty() {
        "the environment".to_owned()
    } else {
        named.join(", ")
    };
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => Some(v.clone()),
        _ => None,
    };
    let cause =
        std::error::Error::source(e).map_or_else(|| e.kind().to_string(), |s| s.to_string());
    let reason = match value {
        Some(v) => format!("`{v}`: {cause}"),
        None => cause,
    };
    Error::Env { name, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::DynamoArgs;
    use clap::CommandFactory;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dynamo: DynamoArgs,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Sync(DynamoArgs),
    }

    fn env_of(cmd: &Command, id: &str) -> Option<String> {
        cmd.get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    }

    #[test]
    fn an_empty_variable_is_not_read_on_the_command_line_path_either() {
        let var = |name: &str| match name {
            "STEPUP_SETTING_TABLE" => Some(OsString::from("")),
            "STEPUP_SESSION_TABLE" => Some(OsString::from("sessions")),
            _ => None,
        };
        let cmd = ignore_empty_env(Cli::command(), &var);
        assert_eq!(env_of(&cmd, "setting_table"), None);
        assert_eq!(
            env_of(&cmd, "session_table").as_deref(),
            Some("STEPUP_SESSION_TABLE")
        );
        // Subcommands too (the operator's `run` and `sync`).
        let sync = cmd.find_subcommand("sync").unwrap();
        assert_eq!(env_of(sync, "setting_table"), None);
        assert_eq!(env_of(sync, "region").as_deref(), Some("STEPUP_REGION"));
    }

    #[test]
    fn variables_are_read_under_their_attribute_names_and_errors_name_them() {
        let d: DynamoArgs = from_lookup(|name| match name {
            "STEPUP_SETTING_TABLE" => Some("rules".into()),
            "ENV_PREFIX" => Some("dev".into()),
            "STEPUP_REGION" => Some(String::new()),
            _ => None,
        })
        .unwrap();
        assert_eq!(d.table_names().setting, "rules");
        assert_eq!(d.table_names().session, "step-up-auth-session-dev");
        assert_eq!(d.region, None, "empty is unset");

        #[derive(Debug, Parser)]
        struct Numbers {
            #[arg(long, env = "STEPUP_SECS", default_value_t = 30,
                  value_parser = clap::value_parser!(u64).range(1..))]
            secs: u64,
        }
        let n: Numbers = from_lookup(|_| None).unwrap();
        assert_eq!(n.secs, 30);
        let e = from_lookup::<Numbers>(|_| Some("0".into())).unwrap_err();
        assert!(
            e.to_string().starts_with("STEPUP_SECS is invalid: `0`"),
            "{e}"
        );
    }
}
