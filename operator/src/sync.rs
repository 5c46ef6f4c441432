//! `stepup-operator sync -f <dir|file>`: the manifests are the whole truth.
//!
//! Reads `StepUpPolicy` manifests, scans the setting table, plans
//! ([`stepup_core::crd::plan`]), prints the plan and, unless `--dry-run`, applies it: puts
//! first, then deletes, so that a rule moving between keys or owners is never absent in
//! between. With pruning (the default) the items of policies no longer in the manifests
//! are deleted; items without `owner` (made by hand) are never touched.
//!
//! The manifests are read and validated ([`stepup_core::crd::validate`], what `validate`
//! checks) before AWS is touched, so that a typo shows whatever the state of the
//! credentials. Malformed and conflicting policies do not stop the others: they are
//! reported, their items are left as they are, and the command exits with
//! [`crate::EXIT_POLICY_PROBLEMS`]. A document no policy can be told from (not YAML, no
//! name) stops the sync before AWS: pruning could otherwise delete that policy's items.
//!
//! A dry run whose table cannot be read plans against an empty table, and says so: it
//! shows what the manifests would write to a new table.

use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::validate::plural;
use stepup_core::crd::{Plan, PlanOptions, Report, plan_writes, read_manifests, validate};
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
#[derive(Debug)]
pub struct SyncReport {
    /// The plan (applied unless `dry_run`).
    pub plan: Plan,
    /// Whether it was only printed.
    pub dry_run: bool,
    /// What validation found, before the table was read.
    pub validation: Report,
    /// Some document is not a policy anyone can name: nothing was planned.
    pub stopped: bool,
    /// A dry run that could not read the table and planned against an empty one: why.
    pub table_unreadable: Option<Error>,
}

impl SyncReport {
    /// Some manifest or policy has a problem (exit [`crate::EXIT_POLICY_PROBLEMS`]).
    pub fn has_problems(&self) -> bool {
        self.stopped || !self.validation.is_valid() || self.plan.has_problems()
    }
}

/// `sync` with clients built from the flags.
pub async fn run(args: &SyncArgs, now: UnixSeconds, out: &mut dyn Write) -> Result<SyncReport> {
    let endpoints = args.dynamo.aws_endpoints();
    let client = dynamodb_client(&endpoints, DynamoTimeouts::Sdk).await;
    let store = DynamoSettingStore::new(client, args.table()).with_endpoint(endpoints.dynamodb);
    sync(args, &store, now, out).await
}

/// Reads and validates the manifests, plans against `store` at `now`, prints the problems
/// and the plan to `out` and applies it unless `args.dry_run`. `Ok` also when some policy
/// is malformed or conflicting (see [`SyncReport::has_problems`]) and for a dry run whose
/// table cannot be read; `Err` when the manifests cannot be read, the table cannot be read
/// (not a dry run) or a write failed.
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
    let validation = validate(&manifests);
    for invalid in validation.invalid() {
        writeln!(out, "! error: {invalid}")?;
    }
    if !manifests.unusable.is_empty() {
        writeln!(
            out,
            "# nothing planned: {} cannot be told which policy it is",
            plural(manifests.unusable.len(), "document", "documents")
        )?;
        return Ok(SyncReport {
            plan: Plan::default(),
            dry_run: args.dry_run,
            validation,
            stopped: true,
            table_unreadable: None,
        });
    }
    let (current, table_unreadable) = match store.scan().await {
        Ok(items) => (items, None),
        Err(e) if args.dry_run => (Vec::new(), Some(store_error(e))),
        Err(e) => return Err(store_error(e)),
    };
    let plan = plan_writes(&manifests.to_inputs(), &current, args.plan_options(), now);
    let mode = match (args.dry_run, &table_unreadable) {
        (false, _) => "",
        (true, None) => " (dry run)",
        (true, Some(_)) => " (dry run, against an empty table: the table could not be read)",
    };
    writeln!(
        out,
        "# {} from {} -> table {table}{mode}",
        plural(
            manifests.policies.len() + manifests.invalid.len(),
            "policy",
            "policies"
        ),
        args.path.display()
    )?;
    // Malformed policies were printed with their fields above.
    write!(out, "{}", plan.changes())?;
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
        validation,
        stopped: false,
        table_unreadable,
    })
}
