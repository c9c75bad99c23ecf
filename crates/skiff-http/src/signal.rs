//! The shutdown signal every embedding of the server waits for (`skiff serve`, the containerd
//! shim's guest runner): SIGINT or SIGTERM.

/// Resolves on SIGINT or SIGTERM: pass it to [`crate::Server::run`] to stop accepting and drain.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM ({e}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
