//! Serving gRPC on a unix socket, and the shutdown signal.
//!
//! On SIGTERM or SIGINT the server stops accepting, finishes in-flight calls and removes its
//! socket. Mounts and loop devices stay in place: kubelet owns their lifetime.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::Router;

use crate::error::UsageError;

/// Parses a CSI endpoint: `unix:///path`, `unix:/path` or a plain absolute path.
pub fn parse_endpoint(endpoint: &str) -> Result<PathBuf, UsageError> {
    let path = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .unwrap_or(endpoint);
    if !path.starts_with('/') {
        return Err(UsageError(format!(
            "CSI endpoint {endpoint:?} must be unix:///absolute/path"
        )));
    }
    Ok(PathBuf::from(path))
}

/// Binds the socket. A stale socket file left by a crash is replaced; a live one (another
/// process answers on it) is an error, so two agents never share a socket.
pub async fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            anyhow::bail!("{} is served by another process", socket.display());
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("removing stale socket {}", socket.display()))?;
    }
    UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping; mounts stay in place"),
        _ = int.recv() => tracing::info!("SIGINT: stopping; mounts stay in place"),
    }
}

/// Serves `router` on `listener` until the shutdown signal, then removes the socket.
pub async fn serve(router: Router, listener: UnixListener, socket: &Path) -> anyhow::Result<()> {
    tracing::info!(socket = %socket.display(), "serving CSI");
    let result = router
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown_signal())
        .await;
    let _ = std::fs::remove_file(socket);
    result.context("serving CSI")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("unix:///run/csi.sock").unwrap(),
            PathBuf::from("/run/csi.sock")
        );
        assert_eq!(
            parse_endpoint("unix:/run/csi.sock").unwrap(),
            PathBuf::from("/run/csi.sock")
        );
        assert_eq!(
            parse_endpoint("/run/csi.sock").unwrap(),
            PathBuf::from("/run/csi.sock")
        );
        assert!(parse_endpoint("tcp://1.2.3.4:5").is_err());
        assert!(parse_endpoint("unix://relative").is_err());
    }
}
