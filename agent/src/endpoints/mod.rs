//! The node's HTTP endpoints on `--status-addr` (the coordinator's are in [`coordinator`]):
//! `/status` (JSON, docs/status.md; text with `?format=text` or `Accept: text/plain`),
//! `/metrics` (OpenMetrics or the classic Prometheus text, by `Accept`), `/healthz` (the process answers) and `/readyz` (every required
//! health check passes). Read-only and GET only.
//! Slow or huge clients cannot hold the agent: headers must arrive within a timeout, a
//! connection lives at most [`CONN_LIMIT_TIME`], request heads are capped, and at most
//! [`MAX_CONNS`] connections are served at once, at most [`MAX_CONNS_PER_SOURCE`] of them from
//! one source (more are closed on accept; [`slots`]).
//! `--probe-addr` serves `/healthz` and `/readyz` alone on a listener of its own, with slots of
//! its own ([`ProbeOnly`]): kubelet's probes go there, and nothing sent to `--status-addr`
//! can starve them. With `--status-auth kubernetes`, `/status` and `/metrics` answer beyond
//! loopback only to those allowed ([`access`]).
//! Owns the HTTP surface only; everything it serves comes from [`Health`].

pub mod access;
pub mod coordinator;
pub mod slots;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use hearth_csi::identity::Readiness;

use crate::health::csi_ops::CsiRecorder;
use crate::health::exposition::{self, Format};
use crate::health::{checks, metrics, text, Health};
use access::{Guarded, StatusAuth};
use slots::{Limits, Slots};

/// The client's address, put into every request's extensions by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Connections served at once.
pub const MAX_CONNS: usize = 64;
/// Connections served at once from one source (an IPv4 address, an IPv6 /64).
pub const MAX_CONNS_PER_SOURCE: usize = 16;
/// Connections served at once on the probe listener, and from one source there.
pub const PROBE_LIMITS: Limits = Limits {
    total: 32,
    per_source: 8,
};
/// The time a client of the probe listener has to send its request head (kubelet sends it at
/// once; idle connections are dropped sooner than on the status listener).
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a connection may live (covers slow readers of a response).
pub const CONN_LIMIT_TIME: Duration = Duration::from_secs(30);
/// The time a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The largest response body served.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Ready when the CSI socket exists and the state directory is writable (the CSI Probe).
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

/// What the HTTP server reads.
pub struct StatusSources {
    /// The snapshot.
    pub health: Arc<Health>,
    /// CSI counters with histograms (for `/metrics`).
    pub csi: Arc<CsiRecorder>,
}

fn reply(code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let (code, body) = if body.len() > MAX_BODY {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("response larger than {MAX_BODY} bytes\n"),
        )
    } else {
        (code, body)
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

fn wants_text<B>(req: &Request<B>) -> bool {
    let query = req.uri().query().unwrap_or("");
    query.split('&').any(|kv| kv == "format=text")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
}

/// What a status server answers: the node's endpoints ([`StatusSources`]) or the
/// coordinator's. Requests reach it without their (ignored) bodies.
#[async_trait::async_trait]
pub trait Routes: Send + Sync + 'static {
    /// Answers one GET (or refuses another method).
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>>;
}

#[async_trait::async_trait]
impl Routes for StatusSources {
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>> {
        route(self, req).await
    }
}

/// A plain-text reply (for other status servers).
pub fn text_reply(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    reply(code, TEXT, body)
}

/// A reply of the given content type, size-capped like every other.
pub fn typed_reply(code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    reply(code, content_type, body)
}

/// A `/metrics` answer: `openmetrics` (as prometheus-client writes it) when the client's
/// `Accept` asks for OpenMetrics, the classic Prometheus text otherwise.
pub fn metrics_reply<B>(req: &Request<B>, openmetrics: String) -> Response<Full<Bytes>> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = exposition::negotiate(accept);
    let body = match format {
        Format::OpenMetrics => openmetrics,
        Format::Classic => exposition::classic(&openmetrics),
    };
    let mut resp = reply(StatusCode::OK, format.content_type(), body);
    resp.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("accept"));
    resp
}

/// Whether the request asks for text (`?format=text` or `Accept: text/plain`).
pub fn asks_for_text<B>(req: &Request<B>) -> bool {
    wants_text(req)
}

/// Answers one request.
pub async fn route<B>(src: &StatusSources, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => {
            let snap = src.health.snapshot().await;
            let failing = checks::not_ready(&snap);
            if failing.is_empty() {
                return reply(StatusCode::OK, TEXT, "ready\n".into());
            }
            let mut body = String::from("not ready:\n");
            for c in failing {
                body.push_str(&format!("✗ {}: {}\n", c.name, c.reason));
                if let Some(h) = &c.hint {
                    body.push_str(&format!("  → {h}\n"));
                }
            }
            reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, body)
        }
        "/status" if wants_text(req) => reply(
            StatusCode::OK,
            TEXT,
            text::render(&*src.health.snapshot().await, true),
        ),
        "/status" => match serde_json::to_string_pretty(&*src.health.snapshot().await) {
            Ok(json) => reply(StatusCode::OK, "application/json", json + "\n"),
            Err(e) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                format!("encoding: {e}\n"),
            ),
        },
        "/metrics" => metrics_reply(
            req,
            metrics::render(src.health.snapshot().await, src.csi.counters()),
        ),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Serves only the probes (`/healthz`, `/readyz`) of the routes it wraps; 404 otherwise.
pub struct ProbeOnly<R: ?Sized>(pub Arc<R>);

#[async_trait::async_trait]
impl<R: Routes + ?Sized> Routes for ProbeOnly<R> {
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>> {
        if access::OPEN_PATHS.contains(&req.uri().path()) {
            self.0.route(req).await
        } else {
            reply(
                StatusCode::NOT_FOUND,
                TEXT,
                "not found (the probe address serves /healthz and /readyz)\n".into(),
            )
        }
    }
}

/// Where and how the status endpoints are served.
#[derive(Debug, Clone, Default)]
pub struct ServePlan {
    /// `--status-addr`: every endpoint.
    pub status: Option<SocketAddr>,
    /// `--probe-addr`: the probes alone, on slots of their own.
    pub probe: Option<SocketAddr>,
    /// `--status-auth kubernetes`: who may read `/status` and `/metrics` beyond loopback.
    pub auth: Option<Arc<StatusAuth>>,
    /// `--status-tls-*`: the status listener serves HTTPS (plain HTTP from loopback only).
    pub tls: Option<tls::StatusTls>,
}

/// How one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Connections at once, in all and per source.
    pub limits: Limits,
    /// The time a client has to send its request head.
    pub header_timeout: Duration,
}

/// The status listener's tuning.
pub const STATUS_TUNING: Tuning = Tuning {
    limits: Limits {
        total: MAX_CONNS,
        per_source: MAX_CONNS_PER_SOURCE,
    },
    header_timeout: HEADER_TIMEOUT,
};

/// The probe listener's tuning.
pub const PROBE_TUNING: Tuning = Tuning {
    limits: PROBE_LIMITS,
    header_timeout: PROBE_HEADER_TIMEOUT,
};

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} address {addr}"))
}

/// Binds the plan's addresses (fails fast on a bad one) and serves them in the background.
pub async fn spawn<R: Routes>(plan: &ServePlan, src: R) -> anyhow::Result<()> {
    let src = Arc::new(src);
    if let Some(addr) = plan.status {
        let listener = bind(addr, "status").await?;
        match &plan.auth {
            Some(auth) => {
                tracing::info!(%addr, "serving /status, /metrics, /healthz and /readyz \
                    (/status and /metrics beyond loopback: TokenReview and SubjectAccessReview)");
                let guarded = Guarded {
                    inner: Arc::clone(&src),
                    auth: Arc::clone(auth),
                };
                tokio::spawn(serve_with(
                    listener,
                    Arc::new(guarded),
                    STATUS_TUNING,
                    plan.tls.clone(),
                ));
            }
            None => {
                if !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "/status and /metrics are open to anyone who reaches \
                        this address (--status-auth none)");
                }
                tracing::info!(%addr, "serving /status, /metrics, /healthz and /readyz");
                tokio::spawn(serve_with(
                    listener,
                    Arc::clone(&src),
                    STATUS_TUNING,
                    plan.tls.clone(),
                ));
            }
        }
    }
    if let Some(addr) = plan.probe {
        let listener = bind(addr, "probe").await?;
        tracing::info!(%addr, "serving /healthz and /readyz for the probes");
        tokio::spawn(serve(listener, Arc::new(ProbeOnly(src)), PROBE_TUNING));
    }
    Ok(())
}

/// Serves the routes on `listener` in plain HTTP until the process stops.
pub async fn serve<R: Routes + ?Sized>(listener: TcpListener, src: Arc<R>, tuning: Tuning) {
    serve_with(listener, src, tuning, None).await;
}

/// Serves the routes on `listener` until the process stops; with `tls`, HTTPS (and plain HTTP
/// from loopback only, [`tls::classify`]).
pub async fn serve_with<R: Routes + ?Sized>(
    listener: TcpListener,
    src: Arc<R>,
    tuning: Tuning,
    tls: Option<tls::StatusTls>,
) {
    let slots = Slots::new(tuning.limits);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("status accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(e) => {
                tracing::debug!(%peer, "status: {e}; closing a new connection");
                continue;
            }
        };
        let src = Arc::clone(&src);
        let tls = tls.clone();
        tokio::spawn(async move {
            // The whole connection, TLS handshake included, within CONN_LIMIT_TIME; the
            // handshake and request head within the header timeout.
            let conn = async {
                let Some(tls) = tls else {
                    return connection(stream, peer, src, tuning).await;
                };
                let first = tokio::time::timeout(tuning.header_timeout, tls::first_byte(&stream));
                match first
                    .await
                    .ok()
                    .flatten()
                    .map(|b| tls::classify(b, peer.ip()))
                {
                    Some(tls::Kind::Tls) => {
                        let accept = tls.acceptor().accept(stream);
                        match tokio::time::timeout(tuning.header_timeout, accept).await {
                            Ok(Ok(s)) => connection(s, peer, src, tuning).await,
                            Ok(Err(e)) => tracing::debug!(%peer, "status TLS handshake: {e}"),
                            Err(_) => tracing::debug!(%peer, "status TLS handshake timed out"),
                        }
                    }
                    Some(tls::Kind::PlainLoopback) => connection(stream, peer, src, tuning).await,
                    Some(tls::Kind::PlainRemote) => {
                        use tokio::io::AsyncWriteExt;
                        let mut stream = stream;
                        let _ = stream.write_all(tls::USE_HTTPS).await;
                        let _ = stream.shutdown().await;
                    }
                    None => {}
                }
            };
            if tokio::time::timeout(CONN_LIMIT_TIME, conn).await.is_err() {
                tracing::debug!("status connection closed after {CONN_LIMIT_TIME:?}");
            }
            drop(slot);
        });
    }
}

/// Serves HTTP/1 on one connection (plain or TLS).
async fn connection<R, IO>(io: IO, peer: SocketAddr, src: Arc<R>, tuning: Tuning)
where
    R: Routes + ?Sized,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
        let src = Arc::clone(&src);
        async move {
            let (parts, _body) = req.into_parts();
            let mut req = Request::from_parts(parts, ());
            req.extensions_mut().insert(Peer(peer));
            Ok::<_, std::convert::Infallible>(src.route(&req).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(tuning.header_timeout)
        .max_buf_size(MAX_HEAD)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!("status connection: {e}");
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod serve_tests;
