//! Starting the node's coordinator session: the lease holder with its own announcer and
//! fence guard, and the session task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cli::TlsArgs;
use crate::error::UsageError;
use crate::node::fence::FenceGuard;
use crate::node::lease::{self, LeaseHolder};
use crate::node::session::{self, Leave, ReportSource, SessionConfig, SessionStatus, TlsFiles};
use hearth_net::announce::{Announcer, PacketSocket, Responder, Schedule};
use hearth_net::netlink::RtNetlink;
use hearth_net::sysctl::ProcSys;
use hearth_proto::hearth::v1::Capacity;

/// The running session's handles, for the status page.
#[derive(Debug, Clone)]
pub struct SessionHandles {
    /// What the node holds.
    pub holder: Arc<LeaseHolder>,
    /// The session's state.
    pub status: Arc<Mutex<SessionStatus>>,
    /// The SIGTERM hand-over.
    pub leave: Arc<Leave>,
    /// What answers ARP/NDP for the held addresses.
    pub responder: Arc<Responder>,
}

impl SessionHandles {
    /// Hands the floating IPs over (SIGTERM): stops answering, tells the coordinator, waits up
    /// to `timeout` for it to close the session.
    pub async fn hand_over(&self, timeout: std::time::Duration) {
        self.leave.hand_over(timeout).await;
    }
}

impl crate::health::SessionSource for SessionHandles {
    fn coordinator(&self) -> crate::health::snapshot::Coordinator {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let held = self.holder.held();
        let now = tokio::time::Instant::now();
        let lease_left = held.deadline.map(|d| d.saturating_duration_since(now));
        crate::health::snapshot::Coordinator {
            url: s.url,
            session: if s.connected {
                "connected"
            } else {
                "connecting"
            }
            .into(),
            coordinator_id: s.coordinator_id,
            connected_since_unix: s.since_unix,
            sessions: s.sessions,
            last_error: s.last_error,
            lease_valid: lease_left.is_some_and(|l| !l.is_zero()),
            lease_left_ms: lease_left.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            floating_ips: held
                .addresses
                .iter()
                .map(|l| crate::health::snapshot::FloatingIpHealth {
                    address: l.address.to_string(),
                    dev: l.dev.clone(),
                    epoch: Some(l.epoch),
                    #[allow(clippy::cast_precision_loss)] // Unix seconds fit an f64 exactly
                    last_announced_unix: held.announced_unix.get(&l.name).map(|t| *t as f64),
                })
                .collect(),
            responder: Some({
                let c = self.responder.counts();
                crate::health::snapshot::ResponderCounters {
                    requests: c.requests,
                    answered: c.answered,
                    refused: c.refused,
                }
            }),
        }
    }
}

/// Parses `k=v` labels.
pub fn parse_labels(items: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    let mut labels = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--node-labels: {item:?} is not key=value")))?;
        if k.trim().is_empty() {
            return Err(UsageError(format!(
                "--node-labels: {item:?} has an empty key"
            )));
        }
        labels.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(labels)
}

/// Starts the session to `url` in the background. Checks the URL and TLS flags first.
pub fn start(
    url: &str,
    node_name: &str,
    labels: BTreeMap<String, String>,
    tls: &TlsArgs,
    token_file: Option<&std::path::Path>,
    source: Arc<dyn ReportSource>,
    volumes: Option<Arc<dyn hearth_csi::backend::VolumeBackend>>,
) -> anyhow::Result<SessionHandles> {
    let tls = if token_file.is_some() {
        // The token proves the node; the CA checks the coordinator. A client certificate
        // may still be given (a coordinator in mtls mode), but is not needed.
        match tls.parts()? {
            (Some(ca_file), identity) => Some(TlsFiles { ca_file, identity }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(UsageError("--tls-cert-file needs --tls-ca-file".into()).into())
            }
        }
    } else {
        tls.files()?.map(|(ca_file, cert_file, key_file)| TlsFiles {
            ca_file,
            identity: Some((cert_file, key_file)),
        })
    };
    session::endpoint(url, tls.as_ref()).map_err(|e| UsageError(e.to_string()))?;
    let config = SessionConfig {
        url: url.to_owned(),
        node_name: node_name.to_owned(),
        labels,
        tls,
        token_file: token_file.map(std::path::Path::to_path_buf),
        volumes,
    };
    let holder = Arc::new(LeaseHolder::default());
    let responder = Arc::new(Responder::start(
        Arc::clone(holder.gate()),
        Arc::new(ProcSys::default()),
    )?);
    let announcer = Announcer::leased(
        Arc::new(RtNetlink::open()?),
        Arc::new(PacketSocket::open()?),
        Schedule::default(),
    )
    .answering(Arc::clone(&responder));
    let guard = match FenceGuard::spawn() {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::error!(
                "starting the fence guard: {e}; floating IPs are fenced by the agent alone"
            );
            None
        }
    };
    tokio::spawn(lease::run(Arc::clone(&holder), announcer, guard));
    let status = Arc::new(Mutex::new(SessionStatus::default()));
    let leave = Arc::new(Leave::default());
    let (h, s, l) = (Arc::clone(&holder), Arc::clone(&status), Arc::clone(&leave));
    tokio::spawn(async move {
        if let Err(e) = session::run(config, h, source, s, l).await {
            tracing::error!("coordinator session stopped: {e}");
        }
    });
    Ok(SessionHandles {
        holder,
        status,
        leave,
        responder,
    })
}

/// Reports from the node's health snapshot, refreshed in the background every second so a
/// slow collector never delays a report (and with it the lease).
#[derive(Debug, Default)]
pub struct HealthReports {
    latest: Mutex<(bool, Capacity, Option<String>)>,
}

impl HealthReports {
    /// Starts refreshing from `health`.
    pub fn attach(self: &Arc<Self>, health: Arc<crate::health::Health>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snap = health.snapshot().await;
                let healthy = crate::health::checks::not_ready(&snap).is_empty();
                let mut capacity = Capacity::default();
                for p in snap.storage.data.iter().flat_map(|s| &s.pools) {
                    capacity.total_bytes += p.total_bytes.unwrap_or(0);
                    capacity.free_bytes += p.free_bytes.unwrap_or(0);
                }
                let json = serde_json::to_string(&*snap).ok();
                if let Ok(mut l) = me.latest.lock() {
                    *l = (healthy, capacity, json);
                }
            }
        });
    }
}

#[async_trait::async_trait]
impl ReportSource for HealthReports {
    async fn report(&self, with_snapshot: bool) -> session::NodeReport {
        let (healthy, capacity, json) = self.latest.lock().map(|l| l.clone()).unwrap_or_default();
        session::NodeReport {
            healthy,
            capacity,
            snapshot_json: json.filter(|_| with_snapshot),
        }
    }
}
