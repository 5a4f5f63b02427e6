//! The HTTP status server: `/healthz` (the process answers) and `/readyz` (the CSI socket is
//! served and the state directory is usable). Read-only, tiny responses, GET only.
//! `/status` and `/metrics` are not served yet.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use hearth_csi::identity::Readiness;

/// Ready when the CSI socket exists and the state directory is writable.
#[derive(Debug, Clone)]
pub struct LocalReadiness {
    /// The CSI socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
}

impl Readiness for LocalReadiness {
    fn ready(&self) -> Result<(), String> {
        if !self.socket.exists() {
            return Err(format!(
                "CSI socket {} is not served",
                self.socket.display()
            ));
        }
        writable(&self.state_dir)
    }
}

fn writable(dir: &Path) -> Result<(), String> {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .map_err(|e| format!("state directory {} is not writable: {e}", dir.display()))
}

fn reply(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    resp
}

/// Serves the status endpoints on `addr` until the process stops.
pub async fn serve(addr: SocketAddr, readiness: Arc<dyn Readiness>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding status address {addr}"))?;
    tracing::info!(%addr, "serving /healthz and /readyz");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("status accept: {e}");
                continue;
            }
        };
        let readiness = Arc::clone(&readiness);
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let readiness = Arc::clone(&readiness);
                async move {
                    let resp = match (req.method(), req.uri().path()) {
                        (&Method::GET, "/healthz") => reply(StatusCode::OK, "ok\n".into()),
                        (&Method::GET, "/readyz") => match readiness.ready() {
                            Ok(()) => reply(StatusCode::OK, "ready\n".into()),
                            Err(why) => reply(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("not ready: {why}\n"),
                            ),
                        },
                        (&Method::GET, _) => reply(StatusCode::NOT_FOUND, "not found\n".into()),
                        _ => reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(std::time::Duration::from_secs(5))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!("status connection: {e}");
            }
        });
    }
}
