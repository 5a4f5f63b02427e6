//! Serving gRPC on a unix socket, and the shutdown signal.
//!
//! On SIGTERM or SIGINT the server stops accepting, finishes in-flight calls and removes its
//! socket. Mounts and loop devices stay in place: kubelet owns their lifetime. Every accepted
//! connection goes through [`FixAuthority`], so gRPC clients that send the socket's path as
//! `:authority` (C-core, grpc-java) are served like grpc-go's `localhost`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::TryStreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::Router;

use crate::authority::FixAuthority;
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
    serve_with_cuts(
        move || router.clone(),
        listener,
        socket,
        std::future::pending,
    )
    .await
}

/// Serves the router `make` builds until the shutdown signal, like [`serve`]; each time `cut`
/// resolves, every connection is closed (GOAWAY; in-flight calls finish) and serving starts
/// again on a fresh socket. A coordinator that stops leading cuts its CSI connections so the
/// sidecars beside it (csi-lib-utils exits on a lost connection) restart and wait on its Probe
/// instead of sending their calls to a standby.
pub async fn serve_with_cuts<M, C, F>(
    make: M,
    listener: UnixListener,
    socket: &Path,
    mut cut: C,
) -> anyhow::Result<()>
where
    M: Fn() -> Router,
    C: FnMut() -> F,
    F: std::future::Future<Output = ()>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut listener = Some(listener);
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => bind(socket).await?,
        };
        tracing::info!(socket = %socket.display(), "serving CSI");
        let mut stop = stop_rx.clone();
        let cut_now = cut();
        let result = make()
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(current).map_ok(FixAuthority::new),
                async move {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => {}
                        () = cut_now => {}
                    }
                },
            )
            .await;
        if *stop_rx.borrow() || result.is_err() {
            let _ = std::fs::remove_file(socket);
            return result.context("serving CSI");
        }
        tracing::info!(socket = %socket.display(),
            "CSI connections closed: the sidecars beside this process reconnect and wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cut closes the connection a client holds: its next call dials again, as
    /// csi-lib-utils' dialer sees (and exits on); the fresh socket serves.
    #[tokio::test]
    async fn a_cut_closes_the_connections_and_serves_again() {
        use hearth_csi::identity::{AlwaysReady, IdentityService};
        use hearth_proto::csi::v1::identity_client::IdentityClient;
        use hearth_proto::csi::v1::identity_server::IdentityServer;
        use hearth_proto::csi::v1::ProbeRequest;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("csi.sock");
        let listener = bind(&socket).await.unwrap();
        let cuts = Arc::new(tokio::sync::Notify::new());
        let identity = IdentityServer::new(IdentityService::new(true, true, Arc::new(AlwaysReady)));
        let (server_socket, server_cuts) = (socket.clone(), Arc::clone(&cuts));
        let server = tokio::spawn(async move {
            serve_with_cuts(
                move || tonic::transport::Server::builder().add_service(identity.clone()),
                listener,
                &server_socket,
                || {
                    let cuts = Arc::clone(&server_cuts);
                    async move { cuts.notified().await }
                },
            )
            .await
        });
        let dials = Arc::new(AtomicUsize::new(0));
        let (path, counter) = (socket.clone(), Arc::clone(&dials));
        let channel = tonic::transport::Endpoint::from_static("http://[::1]:50051")
            .connect_with_connector_lazy(tower::service_fn(move |_: tonic::transport::Uri| {
                let (path, counter) = (path.clone(), Arc::clone(&counter));
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        UnixStream::connect(path).await?,
                    ))
                }
            }));
        let mut client = IdentityClient::new(channel);
        client.probe(ProbeRequest {}).await.unwrap();
        client.probe(ProbeRequest {}).await.unwrap();
        assert_eq!(
            dials.load(Ordering::SeqCst),
            1,
            "one connection while serving"
        );
        cuts.notify_one();
        let mut served = false;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if client.probe(ProbeRequest {}).await.is_ok() && dials.load(Ordering::SeqCst) >= 2 {
                served = true;
                break;
            }
        }
        assert!(
            served,
            "after the cut the client dialled again and was served"
        );
        server.abort();
    }

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
