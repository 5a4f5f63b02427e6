//! The HTTP(S) server: an accept loop (plain TCP, or TLS that requires a client certificate
//! signed by the given CA, as Cozystack's `linstor+ssl` does), one HTTP/1.1 connection task
//! per client, and fault injection in front of the router (a `drop` fault closes the
//! connection, which the router itself cannot do).
//!
//! Owns: sockets and connection tasks. On stop it aborts every connection task.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::app::App;
use super::consts::{obj, FAIL_IN_USE, FAIL_UNKNOWN_ERROR};
use super::faults::FaultKind;
use super::reply::{rcs, Rc};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS {what} {path}: {reason}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// PEM files for HTTPS with client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
    /// The CA that client certificates must chain to.
    pub client_ca: PathBuf,
}

/// Builds the TLS acceptor: server certificate, and client certificates required.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let err = |what, path: &Path, reason: String| ServeError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, ServeError> {
        CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| err("certificate file", path, e.to_string()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&files.client_ca)? {
        roots
            .add(c)
            .map_err(|e| err("client CA", &files.client_ca, e.to_string()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| err("client CA", &files.client_ca, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| err("key", &files.key, e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("configuration", &files.cert, e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key)
        .map_err(|e| err("certificate", &files.cert, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A `drop` fault: the connection closes without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct Dropped;

/// Serves until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    let router = super::app::router(app.clone());
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let (router, app, tls) = (router.clone(), app.clone(), tls.clone());
                conns.spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                connection(stream, router, app).await;
                            }
                        }
                        None => connection(tcp, router, app).await,
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn connection<S>(stream: S, router: Router, app: Arc<App>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (router, app) = (router.clone(), app.clone());
        async move { handle(req, router, app).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    req: Request<Incoming>,
    router: Router,
    app: Arc<App>,
) -> Result<Response<Body>, Dropped> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/sim/") {
        return Ok(route(router, req).await);
    }
    app.requests.fetch_add(1, Ordering::Relaxed);
    let Some(fault) = app.take_fault(req.method().as_str(), &path) else {
        return Ok(route(router, req).await);
    };
    if fault.kind == FaultKind::Timeout {
        tokio::time::sleep(fault.hold()).await;
        return Ok(route(router, req).await);
    }
    if fault.apply {
        let _ = route(router, req).await;
    }
    Ok(match fault.kind {
        FaultKind::Drop => return Err(Dropped),
        FaultKind::Http503 => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::empty())
            .unwrap_or_default(),
        FaultKind::InUse => rcs(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[Rc::err(
                0,
                obj::RSC,
                FAIL_IN_USE,
                format!("Injected fault: resource in use ({path})"),
            )],
        ),
        FaultKind::Http500 | FaultKind::Timeout => rcs(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[Rc::err(
                0,
                0,
                FAIL_UNKNOWN_ERROR,
                format!("Injected fault: controller error ({path})"),
            )],
        ),
    })
}

async fn route(router: Router, req: Request<Incoming>) -> Response<Body> {
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(e) => {
            let never: Infallible = e;
            match never {}
        }
    }
}
