//! Serving: the four listeners (the two checks on TCP or a Unix socket, see [`listen`]),
//! the servers on them, and draining on shutdown; [`serve`] for `main`, [`spawn`] /
//! [`spawn_with_api`] / [`spawn_on`] for tests and embedding.

use crate::listen::{ListenAddr, Listener};
use crate::*;
use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use stepup_core::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC ext_authz.
    pub grpc: Listener,
    /// HTTP ext_authz.
    pub http: Listener,
    /// Health, readiness, metrics.
    pub admin: TcpListener,
    /// The step-up API listener and its router, when served.
    pub api: Option<(TcpListener, Router)>,
}

/// Where the listeners ended up (useful with port 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundAddrs {
    /// gRPC ext_authz.
    pub grpc: ListenAddr,
    /// HTTP ext_authz.
    pub http: ListenAddr,
    /// Health, readiness, metrics.
    pub admin: SocketAddr,
    /// The step-up API, if served.
    pub api: Option<SocketAddr>,
}

pub(crate) async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

impl Listeners {
    /// Binds the three ext_authz-side listeners (the API listener is added separately).
    pub async fn bind(
        grpc: &ListenAddr,
        http: &ListenAddr,
        admin: SocketAddr,
    ) -> anyhow::Result<Listeners> {
        Ok(Listeners {
            grpc: grpc.bind("gRPC").await?,
            http: http.bind("HTTP check").await?,
            admin: bind("admin", admin).await?,
            api: None,
        })
    }

    /// The local addresses.
    pub fn addrs(&self) -> std::io::Result<BoundAddrs> {
        Ok(BoundAddrs {
            grpc: self.grpc.local_addr()?,
            http: self.http.local_addr()?,
            admin: self.admin.local_addr()?,
            api: match &self.api {
                Some((l, _)) => Some(l.local_addr()?),
                None => None,
            },
        })
    }
}

/// What [`serve`] needs besides the engine and listeners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The HTTP check's `path_prefix`.
    pub path_prefix: String,
    /// The Prometheus handle `/metrics` renders.
    pub metrics: Option<PrometheusHandle>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            path_prefix: "/authz".to_owned(),
            metrics: None,
        }
    }
}

async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone: shut down as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves `router` on `listener` until `rx` says stop.
async fn serve_http<L>(
    name: &'static str,
    listener: L,
    router: Router,
    rx: watch::Receiver<bool>,
) -> anyhow::Result<&'static str>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(until_shutdown(rx))
        .await
        .with_context(|| format!("{name} listener"))?;
    Ok(name)
}

/// A TCP listener whose connections send small writes at once (no Nagle delay).
fn nodelay(tcp: TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    tcp.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    })
}

/// Serves every listener with `engine` until `shutdown` completes (or a listener fails),
/// then stops accepting and lets in-flight requests finish for up to [`DRAIN_TIMEOUT`].
pub async fn serve(
    engine: Engine,
    listeners: Listeners,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers: JoinSet<anyhow::Result<&'static str>> = JoinSet::new();

    let grpc_service = grpc::ExtAuthzService::new(engine.clone()).into_server();
    let rx = stop_rx.clone();
    servers.spawn(async move {
        let server = tonic::transport::Server::builder();
        match listeners.grpc {
            Listener::Tcp(tcp) => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(tcp).with_nodelay(Some(true));
                server
                    .serve_with_incoming_shutdown(grpc_service, incoming, until_shutdown(rx))
                    .await
            }
            Listener::Unix(unix, _file) => {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(unix);
                server
                    .serve_with_incoming_shutdown(grpc_service, incoming, until_shutdown(rx))
                    .await
            }
        }
        .context("gRPC listener")?;
        Ok("gRPC")
    });

    let http_check = http_check::router(engine.clone(), options.path_prefix.clone());
    let rx = stop_rx.clone();
    servers.spawn(async move {
        let name = "HTTP check";
        match listeners.http {
            Listener::Tcp(tcp) => serve_http(name, nodelay(tcp), http_check, rx).await,
            Listener::Unix(unix, _file) => serve_http(name, unix, http_check, rx).await,
        }
    });
    let tcp_routers = [(
        "admin",
        listeners.admin,
        admin::router(engine.clone(), options.metrics.clone()),
    )];
    for (name, listener, router) in tcp_routers.into_iter().chain(
        listeners
            .api
            .map(|(listener, router)| ("step-up API", listener, router)),
    ) {
        servers.spawn(serve_http(name, nodelay(listener), router, stop_rx.clone()));
    }

    let mut errors: Vec<anyhow::Error> = Vec::new();
    let mut record = |joined: Result<anyhow::Result<&'static str>, tokio::task::JoinError>,
                      stopping: bool| match joined {
        Ok(Ok(name)) if stopping => tracing::debug!(listener = name, "listener drained"),
        Ok(Ok(name)) => errors.push(anyhow::anyhow!("the {name} listener stopped unexpectedly")),
        Ok(Err(e)) => errors.push(e),
        Err(e) => errors.push(anyhow::anyhow!("a listener task failed: {e}")),
    };

    let early = tokio::select! {
        () = shutdown => None,
        joined = servers.join_next() => joined,
    };
    if let Some(joined) = early {
        record(joined, false);
    }
    tracing::info!("shutting down: draining in-flight requests");
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = servers.join_next().await {
            record(joined, true);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            timeout_secs = DRAIN_TIMEOUT.as_secs(),
            "drain timed out; closing the remaining connections"
        );
        servers.abort_all();
    }
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sidecar servers running in the background (see [`spawn`]); stopped on drop.
#[derive(Debug)]
pub struct RunningSidecar {
    /// Where the listeners are.
    pub addrs: BoundAddrs,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningSidecar {
    /// Stops the servers and waits until they drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.context("sidecar task")?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSidecar {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds every listener on `127.0.0.1:0` and serves `engine` in a background task: the
/// sidecar in-process, with whatever engine (stores, verifier) the caller built. No
/// step-up API; see [`spawn_with_api`].
pub async fn spawn(engine: Engine, options: ServeOptions) -> anyhow::Result<RunningSidecar> {
    spawn_inner(engine, None, options).await
}

/// [`spawn`], also serving the step-up API `router` (e.g. [`stepup_core::api::router`] of
/// an [`ApiState`] with an identity provider of the caller's choice) on its own listener.
pub async fn spawn_with_api(
    engine: Engine,
    api: Router,
    options: ServeOptions,
) -> anyhow::Result<RunningSidecar> {
    spawn_inner(engine, Some(api), options).await
}

async fn spawn_inner(
    engine: Engine,
    api: Option<Router>,
    options: ServeOptions,
) -> anyhow::Result<RunningSidecar> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut listeners = Listeners::bind(&ListenAddr::Tcp(any), &ListenAddr::Tcp(any), any).await?;
    if let Some(router) = api {
        listeners.api = Some((bind("step-up API", any).await?, router));
    }
    spawn_on(engine, listeners, options)
}

/// Serves `engine` on listeners the caller bound (a Unix socket for a check, say) in a
/// background task.
pub fn spawn_on(
    engine: Engine,
    listeners: Listeners,
    options: ServeOptions,
) -> anyhow::Result<RunningSidecar> {
    let addrs = listeners.addrs()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(engine, listeners, options, async move {
        let _ = stopped.await;
    }));
    Ok(RunningSidecar {
        addrs,
        stop: Some(stop),
        task: Some(task),
    })
}
