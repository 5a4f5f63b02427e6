//! The agent API over gRPC: one `Session` stream per node. The node name in the Hello must
//! be the node the client proves: with [`NodeAuth::Token`], the node the API server says its
//! projected ServiceAccount token is bound to (see [`crate::node_auth`]); under mTLS, one of
//! the client certificate's names (DNS subjectAltNames or the subject CN). Plaintext is
//! served only on a loopback address (`hearth dev`, tests). Refusals are counted by reason.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use hearth_proto::hearth::v1::coordinator_server::{Coordinator, CoordinatorServer};
use hearth_proto::hearth::v1::{node_message, CoordinatorMessage, NodeMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use super::closes::{Closes, Ending, Watched};
use super::engine::{Ended, Engine};
use super::node_auth::{self, Refusal, Refusals, TokenAuth};

/// How many messages may wait for a slow node before assignments are retried.
const OUTBOX: usize = 256;

/// The coordinator's TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA that signs node certificates (mTLS; unused with token authentication).
    pub ca_file: Option<PathBuf>,
    /// The coordinator's certificate.
    pub cert_file: PathBuf,
    /// The coordinator's key.
    pub key_file: PathBuf,
}

/// Errors of starting the agent API.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Flags or files are unusable.
    #[error("{0}")]
    Config(String),
    /// Serving failed.
    #[error("agent API: {0}")]
    Serve(String),
}

/// How nodes prove who they are.
#[derive(Debug, Clone, Default)]
pub enum NodeAuth {
    /// By client certificate under mTLS; by nothing on plaintext loopback.
    #[default]
    Certificates,
    /// By a projected ServiceAccount token (`authorization: Bearer`), reviewed by the API
    /// server; the channel is TLS with the coordinator's certificate only.
    Token(Arc<TokenAuth>),
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AgentApi {
    engine: Arc<Engine>,
    auth: NodeAuth,
    refusals: Arc<Refusals>,
    /// How each node connection ended ([`serve`] registers them).
    closes: Arc<Closes>,
}

impl AgentApi {
    /// The service over `engine`, nodes proven by certificate (or loopback).
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::with_auth(engine, NodeAuth::Certificates, Arc::default())
    }

    /// The service over `engine`, nodes proven by `auth`, refusals counted in `refusals`.
    pub fn with_auth(engine: Arc<Engine>, auth: NodeAuth, refusals: Arc<Refusals>) -> Self {
        Self {
            engine,
            auth,
            refusals,
            closes: Arc::default(),
        }
    }
}

fn refused(r: &Refusal) -> Status {
    match r {
        Refusal::NodeMismatch { .. } | Refusal::Certificate(_) => {
            Status::permission_denied(r.to_string())
        }
        Refusal::Review(_) => Status::unavailable(r.to_string()),
        _ => Status::unauthenticated(r.to_string()),
    }
}

/// Whether a DER certificate names `node` (a DNS SAN, or the CN when it has no DNS SAN).
pub fn cert_names_node(der: &[u8], node: &str) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                dns.push((*d).to_owned());
            }
        }
    }
    if dns.is_empty() {
        return cert
            .subject()
            .iter_common_name()
            .any(|cn| cn.as_str().is_ok_and(|c| c == node));
    }
    dns.iter().any(|d| d == node)
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for AgentApi {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let certs = request.peer_certs();
        let peer = request.remote_addr();
        let watch = peer.and_then(|p| self.closes.get(p));
        // With token authentication the token is reviewed before anything else is read.
        let proven = match &self.auth {
            NodeAuth::Token(auth) => {
                let header = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                let result = match node_auth::bearer(header) {
                    Ok(token) => auth.node_of(token).await,
                    Err(r) => Err(r),
                };
                match result {
                    Ok(node) => Some(node),
                    Err(r) => {
                        self.refusals.record(&r, peer);
                        return Err(refused(&r));
                    }
                }
            }
            NodeAuth::Certificates => None,
        };
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(NodeMessage {
                msg: Some(node_message::Msg::Hello(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("a session starts with a Hello")),
        };
        if !valid_node_name(&hello.node_name) {
            return Err(Status::invalid_argument(format!(
                "node name {:?} is not a valid Kubernetes node name",
                hello.node_name
            )));
        }
        let check = match (&proven, certs) {
            (Some(node), _) => node_auth::matches(node, &hello.node_name),
            (None, Some(certs)) => {
                if certs
                    .first()
                    .is_some_and(|c| cert_names_node(c.as_ref(), &hello.node_name))
                {
                    Ok(())
                } else {
                    Err(Refusal::Certificate(hello.node_name.clone()))
                }
            }
            (None, None) => Ok(()),
        };
        if let Err(r) = check {
            self.refusals.record(&r, peer);
            return Err(refused(&r));
        }
        let (tx, rx) = mpsc::channel(OUTBOX);
        let session = self.engine.hello(&hello, tx)?;
        let engine = Arc::clone(&self.engine);
        let node = hello.node_name.clone();
        tokio::spawn(async move {
            let mut ended = Ended::Stream;
            loop {
                match inbound.message().await {
                    Ok(Some(NodeMessage {
                        msg: Some(node_message::Msg::Report(r)),
                    })) => engine.report(&node, session, &r),
                    Ok(Some(NodeMessage {
                        msg: Some(node_message::Msg::VolumeReply(r)),
                    })) => engine.volume_reply(r),
                    Ok(Some(NodeMessage {
                        msg: Some(node_message::Msg::Leaving(_)),
                    })) => {
                        engine.leaving(&node, session);
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        // The node's own kernel closed the connection (its process closed
                        // or died, having shut its answer gate): nothing of it answers.
                        if watch.as_ref().map(|w| w.ending()) == Some(Ending::NodeClosed) {
                            ended = Ended::NodeClosed;
                        }
                        tracing::debug!(%node, ?ended, "session stream: {e}");
                        break;
                    }
                }
            }
            engine.bye(&node, session, ended);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Binds the agent API's listener. Plaintext (`tls == false`) only on a loopback address.
pub async fn bind(listen: SocketAddr, tls: bool) -> Result<tokio::net::TcpListener, ServerError> {
    if !tls && !listen.ip().is_loopback() {
        return Err(ServerError::Config(format!(
            "--listen {listen}: plaintext is allowed only on a loopback address; \
             give --tls-cert-file, --tls-key-file and --tls-ca-file"
        )));
    }
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServerError::Serve(format!("binding {listen}: {e}")))
}

/// Serves the agent API on `listener` until the process ends.
pub async fn serve(
    api: AgentApi,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
) -> Result<(), ServerError> {
    let mut builder = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)));
    if let Some(t) = &tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| ServerError::Config(format!("{}: {e}", p.display())))
        };
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&t.cert_file)?, read(&t.key_file)?));
        match (&api.auth, &t.ca_file) {
            (NodeAuth::Certificates, Some(ca)) => {
                config = config.client_ca_root(Certificate::from_pem(read(ca)?));
            }
            (NodeAuth::Certificates, None) => {
                return Err(ServerError::Config(
                    "--node-auth mtls needs --tls-ca-file (the CA of node certificates)".into(),
                ))
            }
            // Nodes prove themselves by token; they need only the CA of this certificate.
            (NodeAuth::Token(_), _) => {}
        }
        builder = builder
            .tls_config(config)
            .map_err(|e| ServerError::Config(format!("TLS: {e}")))?;
    }
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Serve(e.to_string()))?;
    let token = matches!(api.auth, NodeAuth::Token(_));
    tracing::info!(listen = %addr, tls = tls.is_some(), token, "agent API listening");
    let closes = Arc::clone(&api.closes);
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        move |conn| conn.map(|c| Watched::new(c, &closes)),
    );
    builder
        .add_service(CoordinatorServer::new(api))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| ServerError::Serve(e.to_string()))
}
