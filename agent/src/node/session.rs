//! The node's session with the coordinator: one long-lived bidirectional stream.
//!
//! It sends a Hello (name, version, labels, capacity, what it holds), then a numbered Report
//! every `report_interval`. Each Lease answer names a report; the lease runs from the moment
//! that report was SENT, on this process's monotonic clock, so the node's idea of its lease
//! always ends before the coordinator's. Assignments replace the lease holder's set. When the
//! stream breaks it reconnects with backoff; the lease is simply not renewed meanwhile, and the
//! holder withdraws at the deadline.
//!
//! Answering ARP/NDP is held tighter than the lease: each answered report opens the holder's
//! gate until `sent + answer_ms` (the Welcome's answer window), and the gate shuts the moment
//! this end of the session fails. That is what lets the coordinator move a closed session's
//! addresses before the lease ends. On SIGTERM ([`Leave`]) the agent shuts the gate for good,
//! sends `Leaving`, and waits briefly for the coordinator to close the stream.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_proto::hearth::v1::{
    coordinator_client::CoordinatorClient, coordinator_message, node_message, Capacity,
    CoordinatorMessage, HeldAddress, Hello, Leaving, NodeMessage, Report,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::lease::{LeaseHolder, Leased};
use super::term::TermGuard;

/// How often a report carries the whole health snapshot.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

/// Errors of the session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The coordinator URL or TLS files are unusable.
    #[error("{0}")]
    Config(String),
    /// Connecting or the stream failed.
    #[error("{0}")]
    Transport(String),
    /// The coordinator refused or broke the protocol.
    #[error("coordinator: {0}")]
    Protocol(String),
}

/// TLS files for the channel to the coordinator.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA that signed the coordinator's certificate.
    pub ca_file: PathBuf,
    /// This node's certificate and key (mTLS: the certificate must name the node); none when
    /// the node proves itself by token.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// How to reach the coordinator and who this node is.
#[derive(Clone)]
pub struct SessionConfig {
    /// `http://127.0.0.1:9811` (loopback only) or `https://host:9811`.
    pub url: String,
    /// This node's name.
    pub node_name: String,
    /// Topology and node labels.
    pub labels: BTreeMap<String, String>,
    /// TLS files; required for `https://`.
    pub tls: Option<TlsFiles>,
    /// The projected ServiceAccount token, re-read for each session (kubelet rotates it).
    pub token_file: Option<PathBuf>,
    /// This node's own volume backend, for the coordinator's volume calls (loopfile).
    pub volumes: Option<Arc<dyn hearth_csi::backend::VolumeBackend>>,
}

/// The hand-over on SIGTERM: asked once; `run` returns once it is done.
#[derive(Debug)]
pub struct Leave {
    asked: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

impl Default for Leave {
    fn default() -> Self {
        Self {
            asked: watch::Sender::new(false),
            done: watch::Sender::new(false),
        }
    }
}

impl Leave {
    /// Asks the session to hand its floating IPs over, and waits up to `timeout` for it.
    pub async fn hand_over(&self, timeout: Duration) {
        self.asked.send_replace(true);
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(timeout, done.wait_for(|d| *d)).await;
    }

    async fn asked(&self) {
        let mut rx = self.asked.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }
}

/// What the session looks like now, for the status page.
#[derive(Debug, Clone, Default)]
pub struct SessionStatus {
    /// The coordinator URL.
    pub url: String,
    /// Whether a session is open.
    pub connected: bool,
    /// The coordinator's identity from its Welcome.
    pub coordinator_id: Option<String>,
    /// Unix seconds when the current session opened.
    pub since_unix: Option<u64>,
    /// How many sessions were opened.
    pub sessions: u64,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Milliseconds left on the lease, if one is held.
    pub lease_left_ms: Option<u64>,
}

/// What a report says about the node.
#[derive(Debug, Clone, Default)]
pub struct NodeReport {
    /// Whether this node should be given new work (its required checks pass).
    pub healthy: bool,
    /// Storage capacity.
    pub capacity: Capacity,
    /// The health snapshot as JSON, when asked for.
    pub snapshot_json: Option<String>,
}

/// Where reports come from: the node's health snapshot.
#[async_trait::async_trait]
pub trait ReportSource: Send + Sync + 'static {
    /// The node now; the snapshot JSON only when `with_snapshot`.
    async fn report(&self, with_snapshot: bool) -> NodeReport;
}

/// Builds the channel for `url`: plaintext only to a loopback host, else mTLS.
pub fn endpoint(url: &str, tls: Option<&TlsFiles>) -> Result<Endpoint, SessionError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| SessionError::Config(format!("--coordinator {url}: {e}")))?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| SessionError::Config(format!("--coordinator {url}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    match (uri.scheme_str(), tls) {
        (Some("https"), Some(t)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| SessionError::Config(format!("{}: {e}", p.display())))
            };
            let mut config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&t.ca_file)?));
            if let Some((cert, key)) = &t.identity {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            ep.tls_config(config)
                .map_err(|e| SessionError::Config(format!("TLS: {e}")))
        }
        (Some("https"), None) => Err(SessionError::Config(
            "--coordinator https:// needs --tls-ca-file (and --node-token-file, or \
             --tls-cert-file and --tls-key-file)"
                .into(),
        )),
        (Some("http"), _) if loopback => Ok(ep),
        (Some("http"), _) => Err(SessionError::Config(format!(
            "--coordinator {url}: plaintext is allowed only to a loopback address; use https:// with mTLS"
        ))),
        _ => Err(SessionError::Config(format!(
            "--coordinator {url}: the scheme must be http or https"
        ))),
    }
}

/// `Bearer TOKEN` from the token file, read now (kubelet replaces it before it expires).
fn bearer_header(
    path: &std::path::Path,
) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, SessionError> {
    let token = std::fs::read_to_string(path)
        .map_err(|e| SessionError::Config(format!("--node-token-file {}: {e}", path.display())))?;
    format!("Bearer {}", token.trim()).parse().map_err(|_| {
        SessionError::Config(format!(
            "--node-token-file {}: not a token (non-ASCII)",
            path.display()
        ))
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The error that ends a session whose coordinator sent a message of an older term.
fn stale(term: u64, terms: &TermGuard) -> SessionError {
    SessionError::Protocol(format!(
        "a message of term {term}, older than term {} already seen; the coordinator no longer leads",
        terms.seen()
    ))
}

fn held_addresses(holder: &LeaseHolder) -> Vec<HeldAddress> {
    holder
        .held()
        .addresses
        .into_iter()
        .map(|l| HeldAddress {
            name: l.name,
            address: l.address.to_string(),
            epoch: l.epoch,
            ip: hearth_proto::ip::to_bytes(l.address),
        })
        .collect()
}

/// Keeps a session open forever, reconnecting with backoff.
pub async fn run(
    config: SessionConfig,
    holder: Arc<LeaseHolder>,
    source: Arc<dyn ReportSource>,
    status: Arc<Mutex<SessionStatus>>,
    leave: Arc<Leave>,
) -> Result<(), SessionError> {
    let ep = endpoint(&config.url, config.tls.as_ref())?;
    if let Ok(mut s) = status.lock() {
        s.url = config.url.clone();
    }
    let mut backoff = Duration::from_millis(50);
    let terms = TermGuard::default();
    loop {
        let result = session(&ep, &config, &holder, &terms, &*source, &status, &leave).await;
        // This end of the session is gone: stop answering now, not at the lease deadline.
        holder.shut();
        if holder.leaving() || *leave.asked.borrow() {
            holder.leave();
            leave.done.send_replace(true);
            return Ok(());
        }
        let message = match &result {
            Ok(()) => "the coordinator closed the session".to_owned(),
            Err(e) => e.to_string(),
        };
        if let Ok(mut s) = status.lock() {
            if s.connected {
                backoff = Duration::from_millis(50);
            }
            s.connected = false;
            s.last_error = Some(message.clone());
        }
        tracing::warn!(url = %config.url, "coordinator session: {message}; retrying in {backoff:?}");
        // SIGTERM while not connected: nothing to hand over to.
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = leave.asked() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn session(
    ep: &Endpoint,
    config: &SessionConfig,
    holder: &LeaseHolder,
    terms: &TermGuard,
    source: &dyn ReportSource,
    status: &Mutex<SessionStatus>,
    leave: &Leave,
) -> Result<(), SessionError> {
    // Over a connection that shuts the answer gate before it closes: the coordinator moves
    // the addresses at once on this end's FIN.
    let channel: Channel = ep
        .connect_with_connector(super::fenced::Connector::new(Arc::clone(holder.gate())))
        .await
        .map_err(|e| SessionError::Transport(format!("connecting to {}: {e}", config.url)))?;
    let mut client = CoordinatorClient::new(channel);
    let (tx, rx) = mpsc::channel::<NodeMessage>(16);
    let hello = Hello {
        node_name: config.node_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        labels: config.labels.clone().into_iter().collect(),
        capacity: Some(source.report(false).await.capacity),
        held: held_addresses(holder),
    };
    tx.send(NodeMessage {
        msg: Some(node_message::Msg::Hello(hello)),
    })
    .await
    .map_err(|_| SessionError::Transport("session closed".into()))?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(path) = &config.token_file {
        request
            .metadata_mut()
            .insert("authorization", bearer_header(path)?);
    }
    let mut inbound = client
        .session(request)
        .await
        .map_err(|s| SessionError::Protocol(s.message().to_owned()))?
        .into_inner();
    let first = inbound
        .message()
        .await
        .map_err(|s| SessionError::Protocol(s.message().to_owned()))?;
    let Some(CoordinatorMessage {
        msg: Some(coordinator_message::Msg::Welcome(welcome)),
    }) = first
    else {
        return Err(SessionError::Protocol("expected a Welcome".into()));
    };
    if !terms.admit(welcome.term) {
        return Err(SessionError::Protocol(format!(
            "{} leads in term {}, older than term {} already seen; it no longer leads",
            welcome.coordinator_id,
            welcome.term,
            terms.seen()
        )));
    }
    let interval = Duration::from_millis(u64::from(welcome.report_interval_ms.clamp(10, 60_000)));
    // 0 (an older coordinator): answer for as long as the lease.
    let answer_ms = welcome.answer_ms;
    tracing::info!(coordinator = %welcome.coordinator_id, term = welcome.term, ?interval, lease_ms = welcome.lease_ms,
        "coordinator session open");
    if let Ok(mut s) = status.lock() {
        s.connected = true;
        s.coordinator_id = Some(welcome.coordinator_id.clone());
        s.since_unix = Some(unix_now());
        s.sessions += 1;
        s.last_error = None;
    }
    // Send times of reports not yet answered, oldest first.
    let sent: Mutex<VecDeque<(u64, Instant)>> = Mutex::new(VecDeque::new());
    // Leases of this session count only after its first Assignments: a lease must never
    // renew a set this coordinator did not (re)confirm.
    let mut assigned = false;
    let reports = async {
        let mut seq = 0u64;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_snapshot = Instant::now() - Duration::from_secs(3600);
        loop {
            tick.tick().await;
            seq += 1;
            let with_snapshot = last_snapshot.elapsed() >= SNAPSHOT_EVERY;
            if with_snapshot {
                last_snapshot = Instant::now();
            }
            let node = source.report(with_snapshot).await;
            let report = Report {
                seq,
                healthy: node.healthy,
                capacity: Some(node.capacity),
                held: held_addresses(holder),
                health_json: node.snapshot_json.unwrap_or_default(),
            };
            if let Ok(mut q) = sent.lock() {
                q.push_back((seq, Instant::now()));
                while q.len() > 1024 {
                    q.pop_front();
                }
            }
            if tx
                .send(NodeMessage {
                    msg: Some(node_message::Msg::Report(report)),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let answers = async {
        loop {
            let msg = match inbound.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(s) => return Err(SessionError::Transport(s.message().to_owned())),
            };
            match msg.msg {
                Some(coordinator_message::Msg::Lease(lease)) => {
                    if !assigned {
                        continue;
                    }
                    if !terms.admit(lease.term) {
                        return Err(stale(lease.term, terms));
                    }
                    let at = sent.lock().ok().and_then(|mut q| {
                        while q.front().is_some_and(|(s, _)| *s < lease.seq) {
                            q.pop_front();
                        }
                        q.front().filter(|(s, _)| *s == lease.seq).map(|(_, t)| *t)
                    });
                    if let Some(at) = at {
                        let deadline = at + Duration::from_millis(u64::from(lease.valid_ms));
                        let window = if answer_ms == 0 {
                            lease.valid_ms
                        } else {
                            answer_ms
                        };
                        holder.extend(deadline, at + Duration::from_millis(u64::from(window)));
                        if let Ok(mut s) = status.lock() {
                            s.lease_left_ms = Some(
                                u64::try_from(
                                    deadline
                                        .saturating_duration_since(Instant::now())
                                        .as_millis(),
                                )
                                .unwrap_or(u64::MAX),
                            );
                        }
                    }
                }
                Some(coordinator_message::Msg::Assignments(a)) => {
                    if !terms.admit(a.term) {
                        return Err(stale(a.term, terms));
                    }
                    let mut set = Vec::with_capacity(a.floating_ips.len());
                    for f in a.floating_ips {
                        match hearth_proto::ip::either(&f.ip, &f.address) {
                            Some(address) => set.push(Leased {
                                name: f.name,
                                address,
                                dev: f.interface,
                                epoch: f.epoch,
                            }),
                            None => tracing::warn!(name = %f.name, address = %f.address,
                                "ignoring an assignment with a bad address"),
                        }
                    }
                    holder.assign(set);
                    assigned = true;
                }
                Some(coordinator_message::Msg::VolumeCall(call)) => {
                    let tx = tx.clone();
                    match config.volumes.clone() {
                        Some(backend) => {
                            tokio::spawn(async move {
                                let reply = super::volumes::execute(&backend, call).await;
                                let _ = tx
                                    .send(NodeMessage {
                                        msg: Some(node_message::Msg::VolumeReply(reply)),
                                    })
                                    .await;
                            });
                        }
                        None => {
                            let reply = hearth_proto::hearth::v1::VolumeReply {
                                call_id: call.call_id,
                                code: tonic::Code::Unimplemented as i32,
                                message: "this node keeps no node-local volumes".into(),
                                ..Default::default()
                            };
                            let _ = tx
                                .send(NodeMessage {
                                    msg: Some(node_message::Msg::VolumeReply(reply)),
                                })
                                .await;
                        }
                    }
                }
                Some(coordinator_message::Msg::Welcome(_)) | None => {}
            }
        }
    };
    let leaving = tx.clone();
    let hand_over = async {
        leave.asked().await;
        // Stop answering first, for good; then tell the coordinator, which may move the
        // addresses at once, and give it a moment to close the stream.
        holder.leave();
        let _ = leaving
            .send(NodeMessage {
                msg: Some(node_message::Msg::Leaving(Leaving {})),
            })
            .await;
        tracing::info!("leaving: floating IPs handed over to the coordinator");
        // The coordinator closes the stream once it has the Leaving (`answers` then ends).
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::select! {
        () = reports => Err(SessionError::Transport("session closed".into())),
        r = answers => r,
        () = hand_over => Ok(()),
    }
}
