//! Signals: the one shutdown signal of the long-running binaries. Kubernetes sends
//! SIGTERM, a terminal Ctrl-C (SIGINT); either starts the drain. A signal that cannot be
//! listened for is logged and never fires (it must not stop the process at once, as
//! completing here would).

/// Completes on SIGTERM or SIGINT (Ctrl-C), logging which.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_completes_the_shutdown_signal() {
        let mut signal = Box::pin(shutdown_signal());
        // The first poll installs the handlers; from then on SIGTERM no longer ends the
        // process but completes the future.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut signal)
                .await
                .is_err(),
            "no signal yet"
        );
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), signal)
            .await
            .expect("SIGTERM completes the signal");
    }
}
