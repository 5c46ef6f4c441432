//! `stepup-operator sync -f <dir|file>`: the manifests are the whole truth.
//!
//! Reads `StepUpPolicy` manifests, scans the setting table, plans
//! ([`stepup_core::crd::plan`]), prints the plan and, unless `--dry-run`, applies it: puts
//! first, then deletes, so that a rule moving between keys or owners is never absent in
//! between. With pruning (the default) the items of policies no longer in the manifests
//! are deleted; items without `owner` (made by hand) are never touched.
//!
//! Malformed and conflicting policies do not stop the others: they are reported, their
//! items are left as they are, and the command exits with
//! [`crate::EXIT_POLICY_PROBLEMS`].

use crate::{Error, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use stepup_core::crd::{Plan, PlanOptions, plan_writes, read_manifests};
use stepup_core::store::dynamo::DynamoSettingStore;
use stepup_core::store::{SettingStore, TableNames};

/// Arguments of `sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// A manifest file, or a directory whose *.yaml / *.yml files are read.
    #[arg(short = 'f', long = "filename", env = "STEPUP_POLICIES")]
    pub path: PathBuf,
    /// Print the plan, write nothing.
    #[arg(long, env = "STEPUP_DRY_RUN")]
    pub dry_run: bool,
    /// Keep the items of policies that are not in the manifests.
    #[arg(long, env = "STEPUP_NO_PRUNE")]
    pub no_prune: bool,
    /// Table prefix as in the seed: the setting table is `step-up-auth-setting-<prefix>`.
    #[arg(long, env = "ENV_PREFIX", default_value = "")]
    pub table_prefix: String,
    /// The setting table's name (wins over --table-prefix).
    #[arg(long, env = "STEPUP_SETTING_TABLE")]
    pub setting_table: Option<String>,
    /// DynamoDB endpoint override (DynamoDB Local: http://127.0.0.1:8000).
    #[arg(long, env = "STEPUP_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    /// AWS region (default: the AWS SDK's region chain).
    #[arg(long, env = "STEPUP_REGION")]
    pub region: Option<String>,
}

impl SyncArgs {
    /// The setting table to sync.
    pub fn table(&self) -> String {
        self.setting_table
            .clone()
            .unwrap_or_else(|| TableNames::with_prefix(&self.table_prefix).setting)
    }

    /// Plan options from the flags.
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            prune: !self.no_prune,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The plan (applied unless `dry_run`).
    pub plan: Plan,
    /// Whether it was only printed.
    pub dry_run: bool,
}

/// Builds the DynamoDB client from `aws-config`: the SDK's region and credential chains,
/// with the flags' region and endpoint override. For an endpoint on a loopback address
/// (DynamoDB Local) with no credentials in the environment, dummy credentials and
/// `us-east-1` are used, since DynamoDB Local checks no signature.
pub async fn dynamodb_client(
    endpoint: Option<&str>,
    region: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    let local = endpoint.is_some_and(is_loopback);
    let env_set = |names: &[&str]| {
        names
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    match region {
        Some(r) => loader = loader.region(Region::new(r.to_owned())),
        // Without this the SDK would ask the instance metadata service, slowly and in vain.
        None if local && !env_set(&["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"]) => {
            loader = loader.region(Region::new("us-east-1"));
        }
        None => {}
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    if local
        && !env_set(&[
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ])
    {
        loader =
            loader.credentials_provider(Credentials::new("dummy", "dummy", None, None, "loopback"));
    }
    let config = loader.load().await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// Is the URL's host `localhost` or a loopback address?
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `sync` with clients built from the flags.
pub async fn run(args: &SyncArgs, now: u64, out: &mut dyn Write) -> Result<SyncReport> {
    let client = dynamodb_client(args.dynamodb_endpoint.as_deref(), args.region.as_deref()).await;
    let store = DynamoSettingStore::new(client, args.table());
    sync(args, &store, now, out).await
}

/// Reads the manifests, plans against `store` at `now`, prints the plan to `out` and
/// applies it unless `args.dry_run`. `Ok` also when some policy is malformed or
/// conflicting (see [`Plan::has_problems`]); `Err` when nothing could be planned or a
/// write failed.
pub async fn sync(
    args: &SyncArgs,
    store: &dyn SettingStore,
    now: u64,
    out: &mut dyn Write,
) -> Result<SyncReport> {
    let table = args.table();
    let store_error = |source| Error::Store {
        table: table.clone(),
        source,
    };
    let manifests = read_manifests(&args.path)?;
    for skipped in &manifests.skipped {
        writeln!(out, "# {skipped}")?;
    }
    let current = store.scan().await.map_err(store_error)?;
    let plan = plan_writes(&manifests.to_inputs(), &current, args.plan_options(), now);
    let mode = if args.dry_run { " (dry run)" } else { "" };
    writeln!(
        out,
        "# {} polic(ies) from {} -> table {table}{mode}",
        manifests.policies.len() + manifests.invalid.len(),
        args.path.display()
    )?;
    write!(out, "{plan}")?;
    if !args.dry_run {
        for put in &plan.puts {
            store.put(put.item.clone()).await.map_err(store_error)?;
        }
        for delete in &plan.deletes {
            store.delete(&delete.key).await.map_err(store_error)?;
        }
        tracing::info!(
            table,
            puts = plan.puts.len(),
            deletes = plan.deletes.len(),
            conflicts = plan.conflicts.len(),
            malformed = plan.errors.len(),
            "sync applied"
        );
    }
    Ok(SyncReport {
        plan,
        dry_run: args.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_recognised() {
        for yes in [
            "http://127.0.0.1:8000",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "127.0.0.2",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
