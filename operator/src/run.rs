//! `stepup-operator run [--leader-elect]`: wires the controller, the leader election, the
//! drift sweep and the admin listener. Every setting is a flag and an environment variable
//! (the Helm chart sets the variables).
//!
//! With `--leader-elect` the replica first waits for the Lease; a standby replica writes
//! nothing (it does not even run the controller) and reports ready. A leader that loses
//! the lease exits with an error, so that it restarts as a standby rather than keep
//! writing beside the new leader.

use crate::controller::{self, Context, ControllerConfig};
use crate::leader::{self, Leadership, LeaseSettings};
use crate::{Error, Result};
use clap::Args;
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::StepUpPolicy;
use stepup_core::store::dynamo::DynamoSettingStore;
use stepup_runtime::admin::{self, ReadyFlag};
use stepup_runtime::aws::{DynamoTimeouts, dynamodb_client};
use stepup_runtime::{DynamoArgs, LogFormat, shutdown_signal};
use tokio::sync::mpsc;

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Take part in leader election on a coordination.k8s.io Lease; only the holder writes.
    #[arg(long, env = "STEPUP_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The setting table: region, DynamoDB endpoint, table prefix or name.
    #[command(flatten)]
    pub dynamo: DynamoArgs,
    /// Watch the policies of this namespace only (default: all namespaces).
    #[arg(long, env = "STEPUP_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// The Lease's name.
    #[arg(long, env = "STEPUP_LEASE_NAME", default_value = "stepup-operator")]
    pub lease_name: String,
    /// The Lease's namespace (default: the client's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease and in Events (default: $HOSTNAME).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "STEPUP_ADMIN_LISTEN", default_value = "0.0.0.0:9004")]
    pub admin_listen: SocketAddr,
    /// Log format.
    #[arg(long, env = "STEPUP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Seconds between two reconciles of an unchanged policy, and between two sweeps for
    /// items whose policy is gone.
    #[arg(long, env = "STEPUP_DRIFT_INTERVAL_SECS", default_value_t = 300)]
    pub drift_interval_secs: u64,
}

impl RunArgs {
    /// The setting table (`--setting-table`, else from the prefix).
    pub fn table(&self) -> String {
        self.dynamo.table_names().setting
    }

    /// The watched namespace (`None`: all; an empty value counts as unset).
    pub fn watch_namespace(&self) -> Option<String> {
        self.watch_namespace
            .clone()
            .filter(|n| !n.trim().is_empty())
    }

    fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "stepup-operator".into())
    }
}

/// Runs the operator until SIGTERM (Ok) or until it loses the lease (Err).
pub async fn run(args: RunArgs) -> Result<()> {
    let runtime = |what: &str, e: &dyn std::fmt::Display| Error::Runtime(format!("{what}: {e}"));
    let metrics =
        stepup_runtime::metrics::install_metrics(&[]).map_err(|e| runtime("metrics", &e))?;
    let ready = ReadyFlag::default();
    let listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .map_err(|e| runtime(&format!("binding {}", args.admin_listen), &e))?;
    let admin_app = admin::router(ready.clone(), Some(metrics));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, admin_app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    tracing::info!(listen = %args.admin_listen, "admin listener up");

    let client = Client::try_default().await?;
    let endpoints = args.dynamo.aws_endpoints();
    let dynamo = dynamodb_client(&endpoints, DynamoTimeouts::Sdk).await;
    let table = args.table();
    let store =
        Arc::new(DynamoSettingStore::new(dynamo, table.clone()).with_endpoint(endpoints.dynamodb));
    let clock: Arc<dyn Fn() -> UnixSeconds + Send + Sync> = Arc::new(stepup_core::clock::now);
    let identity = args.identity();

    let election = if args.leader_elect {
        let leadership = Leadership::standby();
        let namespace = args
            .lease_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let settings =
            LeaseSettings::new(args.lease_name.clone(), namespace.clone(), identity.clone());
        let lease_api = Api::namespaced(client.clone(), &namespace);
        tokio::spawn(leader::run_elector(
            lease_api.clone(),
            settings.clone(),
            leadership.clone(),
            clock.clone(),
        ));
        // A standby is ready: it serves its purpose by waiting.
        ready.set(true);
        tracing::info!(
            lease = settings.name,
            namespace,
            identity,
            "waiting for the lease"
        );
        tokio::select! {
            _ = leadership.acquired() => {}
            _ = shutdown_signal() => return Ok(()),
        }
        Some((leadership, lease_api, settings))
    } else {
        None
    };
    let leadership = election
        .as_ref()
        .map_or_else(Leadership::always, |(l, _, _)| l.clone());

    let watch_namespace = args.watch_namespace();
    let api: Api<StepUpPolicy> = match &watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let drift_interval = Duration::from_secs(args.drift_interval_secs.max(10));
    let controller = Controller::new(api, watcher::Config::default());
    let policies = controller.store();
    let (reconcile_all_tx, reconcile_all_rx) = mpsc::unbounded_channel();
    let controller_config = ControllerConfig {
        drift_interval,
        watch_namespace: watch_namespace.clone(),
        instance: Some(identity),
        table: table.clone(),
    };
    let ctx = Arc::new(
        Context::new(client, store, policies.clone(), clock, controller_config)
            .with_leadership(leadership.clone())
            .with_reconcile_all(reconcile_all_tx),
    );
    tracing::info!(table, namespace = ?watch_namespace, "starting the StepUpPolicy controller");

    // Start-up and periodic sweep for items whose policy is gone, once the cache is full.
    let sweep_ctx = ctx.clone();
    let sweep_ready = ready.clone();
    tokio::spawn(async move {
        if policies.wait_until_ready().await.is_err() {
            return;
        }
        sweep_ready.set(true);
        loop {
            match controller::sweep(&sweep_ctx).await {
                Ok(keys) if !keys.is_empty() => {
                    tracing::info!(
                        deleted = keys.len(),
                        "sweep removed items of deleted policies"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed; next try at the next interval"),
            }
            tokio::time::sleep(drift_interval).await;
        }
    });

    let trigger = futures::stream::unfold(reconcile_all_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    let controller_run = controller
        .reconcile_all_on(trigger)
        .graceful_shutdown_on(shutdown_signal())
        .run(controller::reconcile, controller::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(policy = %object, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile failed"),
            }
        });
    let outcome = tokio::select! {
        _ = controller_run => Ok(()),
        _ = leadership.lost() => Err(Error::Runtime("lost the leader lease; exiting so that only the new leader writes".into())),
    };
    if let Some((_, lease_api, settings)) = election.as_ref().filter(|_| outcome.is_ok())
        && let Err(e) = leader::release(lease_api, settings).await
    {
        tracing::warn!(error = %e, "releasing the lease failed; it expires on its own");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn the_charts_arguments_parse_and_name_the_table() {
        let cli = Cli::try_parse_from([
            "x",
            "--leader-elect",
            "--table-prefix",
            "dev",
            "--watch-namespace",
            "",
            "--admin-listen",
            "127.0.0.1:9004",
        ])
        .unwrap();
        assert!(cli.run.leader_elect);
        assert_eq!(cli.run.table(), "step-up-auth-setting-dev");
        assert_eq!(cli.run.watch_namespace(), None);
        assert_eq!(cli.run.drift_interval_secs, 300);
    }

    #[test]
    fn run_and_sync_name_the_same_table_and_an_empty_name_is_unset() {
        let table = |argv: &[&str]| match crate::Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Run(args) => args.table(),
            crate::Command::Sync(args) => args.table(),
            crate::Command::Crd | crate::Command::Validate(_) => unreachable!(),
        };
        let run = table(&["x", "run", "--table-prefix", "dev", "--setting-table", ""]);
        let sync = table(&[
            "x",
            "sync",
            "-f",
            "p",
            "--table-prefix",
            "dev",
            "--setting-table",
            "",
        ]);
        assert_eq!(run, "step-up-auth-setting-dev");
        assert_eq!(sync, run);
        // From the environment, as the chart sets it.
        let env = |name: &str| match name {
            "ENV_PREFIX" => Some("dev".to_owned()),
            "STEPUP_SETTING_TABLE" => Some(String::new()),
            "STEPUP_POLICIES" => Some("p".to_owned()),
            _ => None,
        };
        let run: RunArgs = stepup_runtime::env::from_lookup(env).unwrap();
        let sync: crate::sync::SyncArgs = stepup_runtime::env::from_lookup(env).unwrap();
        assert_eq!(run.table(), "step-up-auth-setting-dev");
        assert_eq!(sync.table(), run.table());
    }
}
