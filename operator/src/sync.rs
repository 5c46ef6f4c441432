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
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::{Plan, PlanOptions, plan_writes, read_manifests};
use stepup_core::store::SettingStore;
use stepup_core::store::dynamo::DynamoSettingStore;
use stepup_runtime::DynamoArgs;
use stepup_runtime::aws::{DynamoTimeouts, dynamodb_client};

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
    /// The setting table: region, DynamoDB endpoint, table prefix or name.
    #[command(flatten)]
    pub dynamo: DynamoArgs,
}

impl SyncArgs {
    /// The setting table to sync (`--setting-table`, else from the prefix; the same rule
    /// as `run`'s, since both read [`DynamoArgs`]).
    pub fn table(&self) -> String {
        self.dynamo.table_names().setting
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

/// `sync` with clients built from the flags.
pub async fn run(args: &SyncArgs, now: UnixSeconds, out: &mut dyn Write) -> Result<SyncReport> {
    let client = dynamodb_client(&args.dynamo.aws_endpoints(), DynamoTimeouts::Sdk).await;
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
    now: UnixSeconds,
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
