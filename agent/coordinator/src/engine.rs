//! The coordinator's engine: node sessions, lease grants, the leader loop, and the state the
//! floating-IP decisions ([`super::decide`]) read.
//!
//! Decisions are made under one mutex from an in-memory copy of the store, written to the
//! store with compare-and-swap on the epoch, and only then pushed to the nodes. The messages
//! themselves are [`super::sessions`]; volume calls are matched to replies in
//! [`super::calls`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hearth_csi::CsiError;
use hearth_proto::hearth::v1::{volume_call, Capacity, Hello, Report, VolumeReply};
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::Status;

use super::calls::{outcome, Calls};
pub use super::decide::Timing;
use super::decide::{self, Action, NodeFacts, View};
pub use super::sessions::Outbox;
use super::sessions::{Pushed, Session};
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError};

/// What the coordinator knows of a node.
#[derive(Debug, Default)]
struct NodeState {
    facts: NodeFacts,
    capacity: Capacity,
    session: Option<Session>,
    last_report: Option<Instant>,
    /// The last health snapshot (JSON) and when it came (Unix seconds).
    snapshot: Option<(String, u64)>,
    version: String,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: BTreeMap<String, NodeState>,
    pools: BTreeMap<String, FloatingIpPool>,
    fips: BTreeMap<String, FloatingIp>,
    states: BTreeMap<String, FloatingIpState>,
    /// Addresses whose floating IP was deleted: not handed out again until the instant.
    released: Vec<(IpAddr, Instant)>,
    leader_since: Option<Instant>,
    next_session: u64,
}

impl Inner {
    /// Runs `f` on the decisions' view of this state.
    fn with_view<T>(&self, f: impl FnOnce(&View<'_>) -> T) -> T {
        let nodes: BTreeMap<String, NodeFacts> = self
            .nodes
            .iter()
            .map(|(name, n)| {
                let mut facts = n.facts.clone();
                facts.assigned = n.session.as_ref().is_some_and(Session::assigned);
                (name.clone(), facts)
            })
            .collect();
        f(&View {
            pools: &self.pools,
            fips: &self.fips,
            states: &self.states,
            released: &self.released,
            nodes: &nodes,
            leader_since: self.leader_since,
        })
    }
}

/// A node as shown on the coordinator's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Whether a session is open.
    pub connected: bool,
    /// Whether it reported healthy.
    pub healthy: bool,
    /// Whether its lease is valid in the coordinator's reckoning.
    pub lease_valid: bool,
    /// Floating IPs it owns.
    pub floating_ips: usize,
    /// Agent version.
    pub version: String,
    /// Storage capacity it reported, bytes.
    pub total_bytes: u64,
    /// Free storage it reported, bytes.
    pub free_bytes: u64,
    /// When its health snapshot last arrived (seconds since the Unix epoch).
    pub snapshot_unix: Option<u64>,
}

/// A node's agent as placement sees it.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// The labels it reported.
    pub labels: BTreeMap<String, String>,
    /// Session open, reported healthy and lease valid.
    pub healthy: bool,
    /// Storage capacity it reported, bytes.
    pub total_bytes: u64,
    /// Free storage it reported, bytes.
    pub free_bytes: u64,
}

/// The coordinator's state and decisions.
pub struct Engine {
    store: Arc<dyn Store>,
    timing: Timing,
    id: String,
    inner: Mutex<Inner>,
    kick: Notify,
    /// Floating IPs moved off an owner whose lease ended.
    failovers: AtomicU64,
    /// Volume calls sent to nodes and not yet answered.
    calls: Calls,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// An engine over `store`; `id` names this coordinator (leader election, Welcome).
    pub fn new(store: Arc<dyn Store>, timing: Timing, id: &str) -> Arc<Self> {
        Arc::new(Self {
            store,
            timing,
            id: id.to_owned(),
            inner: Mutex::new(Inner::default()),
            kick: Notify::new(),
            failovers: AtomicU64::new(0),
            calls: Calls::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The timings.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Whether this coordinator leads.
    pub fn leading(&self) -> bool {
        self.lock().leader_since.is_some()
    }

    /// Registers a session after its Hello; sends the Welcome. Replaces an older session of
    /// the same node (its stream ends).
    pub fn hello(&self, hello: &Hello, tx: Outbox) -> Result<u64, Status> {
        let mut inner = self.lock();
        if inner.leader_since.is_none() {
            return Err(Status::unavailable(
                "this coordinator is not the leader; retry",
            ));
        }
        inner.next_session += 1;
        let id = inner.next_session;
        let session = Session::open(id, tx, &self.id, &self.timing)?;
        for h in &hello.held {
            match inner.states.get(&h.name) {
                Some(s)
                    if s.node.as_deref() == Some(hello.node_name.as_str())
                        && s.epoch == h.epoch => {}
                _ => tracing::info!(node = %hello.node_name, name = %h.name, epoch = h.epoch,
                    "node holds a floating IP it no longer owns; it will be told"),
            }
        }
        let node = inner.nodes.entry(hello.node_name.clone()).or_default();
        node.facts.labels = hello.labels.clone().into_iter().collect();
        node.capacity = hello.capacity.unwrap_or_default();
        node.version.clone_from(&hello.version);
        node.session = Some(session);
        node.facts.closed = false;
        node.facts.left = false;
        drop(inner);
        tracing::info!(node = %hello.node_name, session = id, "node session open");
        self.kick.notify_one();
        Ok(id)
    }

    /// Handles a report: records it and grants the lease (if this session is current and this
    /// coordinator leads).
    pub fn report(&self, node: &str, session: u64, report: &Report) {
        let mut inner = self.lock();
        let leading = inner.leader_since.is_some();
        let Some(n) = inner.nodes.get_mut(node) else {
            return;
        };
        let Some(s) = n.session.as_ref().filter(|s| s.id == session) else {
            return;
        };
        let was_healthy = n.facts.healthy;
        n.facts.healthy = report.healthy;
        n.capacity = report.capacity.unwrap_or(n.capacity);
        n.last_report = Some(Instant::now());
        if !report.health_json.is_empty() {
            n.snapshot = Some((report.health_json.clone(), unix_now()));
        }
        // Only a session that got its assignments is granted leases (the node ignores
        // leases before that anyway).
        if leading && s.assigned() && s.grant(report.seq, self.timing.lease) {
            n.facts.last_grant = Some(Instant::now());
        }
        if was_healthy != report.healthy {
            self.kick.notify_one();
        }
    }

    /// Ends a session whose stream ended (if it is still the node's current one): its
    /// addresses may move once its answer window has passed.
    pub fn bye(&self, node: &str, session: u64) {
        let mut inner = self.lock();
        if let Some(n) = inner.nodes.get_mut(node) {
            if n.session.as_ref().is_some_and(|s| s.id == session) {
                n.session = None;
                n.facts.closed = true;
                tracing::info!(node, session, "node session closed");
            }
        }
        drop(inner);
        self.kick.notify_one();
    }

    /// The node is leaving (SIGTERM) and has stopped answering: its addresses move now, and
    /// its session is closed.
    pub fn leaving(&self, node: &str, session: u64) {
        let mut inner = self.lock();
        if let Some(n) = inner.nodes.get_mut(node) {
            if n.session.as_ref().is_some_and(|s| s.id == session) {
                n.session = None;
                n.facts.left = true;
                tracing::info!(node, session, "node leaving: handing its floating IPs over");
            }
        }
        drop(inner);
        self.kick.notify_one();
    }

    /// Loads pools, floating IPs and states from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let pools = self.store.pools().await?;
        let fips = self.store.floating_ips().await?;
        let states = self.store.floating_ip_states().await?;
        let mut inner = self.lock();
        let now = Instant::now();
        let hold = self.timing.hold();
        let fresh: BTreeMap<String, FloatingIpState> =
            states.into_iter().map(|s| (s.name.clone(), s)).collect();
        let gone: Vec<IpAddr> = inner
            .states
            .values()
            .filter(|s| !fresh.contains_key(&s.name))
            .map(|s| s.address)
            .collect();
        inner
            .released
            .extend(gone.into_iter().map(|a| (a, now + hold)));
        inner.released.retain(|(_, until)| *until > now);
        inner.pools = pools.into_iter().map(|p| (p.name.clone(), p)).collect();
        inner.fips = fips.into_iter().map(|f| (f.name.clone(), f)).collect();
        inner.states = fresh;
        Ok(())
    }

    /// One decision pass: decide, write, push. Returns when the next pass is due at the
    /// latest (the nearest lease end).
    pub async fn tick(&self) -> Option<Instant> {
        let now = Instant::now();
        let actions = self
            .lock()
            .with_view(|v| decide::decide(v, &self.timing, now));
        let mut written = Vec::new();
        for action in actions {
            let Action::Swap {
                expected,
                state,
                previous,
            } = action;
            match self.store.swap_floating_ip_state(expected, &state).await {
                Ok(()) => {
                    if previous.is_some() {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::info!(name = %state.name, address = %state.address,
                        node = state.node.as_deref().unwrap_or("-"), epoch = state.epoch,
                        "floating IP assigned");
                    written.push(state);
                }
                Err(StoreError::Conflict(m)) => {
                    tracing::warn!(name = %state.name, "store conflict ({m}); reloading");
                    if let Err(e) = self.reload().await {
                        tracing::warn!("reload: {e}");
                    }
                    self.kick.notify_one();
                    break;
                }
                Err(e) => {
                    tracing::warn!(name = %state.name, "store: {e}");
                    break;
                }
            }
        }
        let mut inner = self.lock();
        for s in written {
            inner.states.insert(s.name.clone(), s);
        }
        Self::push(&mut inner);
        inner.with_view(|v| decide::next_due(v, &self.timing, Instant::now()))
    }

    /// Sends each connected node its set if it changed.
    fn push(inner: &mut Inner) {
        let mut per_node = inner.with_view(decide::assignments);
        for (name, n) in &mut inner.nodes {
            let Some(session) = n.session.as_mut() else {
                continue;
            };
            match session.push(per_node.remove(name).unwrap_or_default()) {
                Pushed::Unchanged | Pushed::Sent => {}
                Pushed::Full => {
                    tracing::warn!(node = %name, "session outbox full; assignments retried");
                }
                Pushed::Closed => n.session = None,
            }
        }
    }

    /// Becomes leader (or stays), or steps down. Returns whether it leads.
    async fn lead(&self) -> bool {
        let ok = match self.store.lead(&self.id, self.timing.leadership).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!("leader election: {e}");
                false
            }
        };
        let mut inner = self.lock();
        match (ok, inner.leader_since.is_some()) {
            (true, false) => {
                inner.leader_since = Some(Instant::now());
                tracing::info!(id = %self.id, "leading");
            }
            (false, true) => {
                inner.leader_since = None;
                for n in inner.nodes.values_mut() {
                    n.session = None;
                    n.facts.last_grant = None;
                }
                tracing::warn!(id = %self.id, "lost the leadership; sessions closed");
            }
            _ => {}
        }
        ok
    }

    /// Runs forever: leader election, reloads from the store, decision passes on changes,
    /// at lease ends, and every second.
    pub async fn run(self: Arc<Self>) {
        let mut last_lead = Instant::now() - self.timing.leadership;
        let mut last_reload = Instant::now() - Duration::from_secs(3600);
        let mut leading = false;
        loop {
            if last_lead.elapsed() >= self.timing.leadership / 3 {
                last_lead = Instant::now();
                let now_leading = self.lead().await;
                if now_leading && !leading {
                    last_reload = Instant::now() - Duration::from_secs(3600);
                }
                leading = now_leading;
            }
            let mut due = None;
            if leading {
                if last_reload.elapsed() >= Duration::from_secs(2) {
                    last_reload = Instant::now();
                    if let Err(e) = self.reload().await {
                        tracing::warn!("reading the store: {e}");
                    }
                }
                due = self.tick().await;
            }
            let cap = Instant::now() + Duration::from_secs(1);
            let until = due.map_or(cap, |d| d.min(cap));
            tokio::select! {
                () = self.kick.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// What placement needs of each node whose agent has opened a session: its labels, and
    /// whether it is healthy now (session open, reported healthy, lease valid).
    pub fn agents(&self) -> BTreeMap<String, AgentView> {
        let inner = self.lock();
        let now = Instant::now();
        inner
            .nodes
            .iter()
            .map(|(name, n)| {
                let healthy = n.session.is_some()
                    && n.facts.healthy
                    && n.facts
                        .last_grant
                        .is_some_and(|g| now < g + self.timing.lease);
                (
                    name.clone(),
                    AgentView {
                        labels: n.facts.labels.clone(),
                        healthy,
                        total_bytes: n.capacity.total_bytes,
                        free_bytes: n.capacity.free_bytes,
                    },
                )
            })
            .collect()
    }

    /// The nodes, for the status page.
    pub fn nodes(&self) -> Vec<NodeView> {
        let inner = self.lock();
        let now = Instant::now();
        inner.with_view(|v| {
            inner
                .nodes
                .iter()
                .map(|(name, n)| NodeView {
                    name: name.clone(),
                    connected: n.session.is_some(),
                    healthy: n.facts.healthy,
                    lease_valid: decide::owner_alive(v, &self.timing, name, now),
                    floating_ips: inner
                        .states
                        .values()
                        .filter(|s| s.node.as_deref() == Some(name.as_str()))
                        .count(),
                    version: n.version.clone(),
                    total_bytes: n.capacity.total_bytes,
                    free_bytes: n.capacity.free_bytes,
                    snapshot_unix: n.snapshot.as_ref().map(|(_, at)| *at),
                })
                .collect()
        })
    }

    /// Sends a volume call to `node`'s agent and waits up to `timeout` for its answer. A
    /// non-OK answer comes back as the matching error.
    pub async fn call(
        &self,
        node: &str,
        op: volume_call::Op,
        timeout: Duration,
    ) -> Result<VolumeReply, CsiError> {
        let (id, rx) = self.calls.open();
        let sent = self
            .lock()
            .nodes
            .get(node)
            .and_then(|n| n.session.as_ref())
            .is_some_and(|s| s.call(id, op));
        if !sent {
            self.calls.forget(id);
            return Err(CsiError::Unavailable(format!(
                "node {node}'s agent has no session with the coordinator; retry when it reconnects"
            )));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => outcome(node, reply),
            _ => {
                self.calls.forget(id);
                Err(CsiError::Unavailable(format!(
                    "node {node}'s agent did not answer within {timeout:?}; retry"
                )))
            }
        }
    }

    /// Delivers a node's answer to the waiting call.
    pub fn volume_reply(&self, reply: VolumeReply) {
        self.calls.deliver(reply);
    }

    /// Floating IPs moved off a node whose lease ended, since start.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// This coordinator's identity.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A node's last health snapshot (JSON), as its agent reported it.
    pub fn snapshot(&self, node: &str) -> Option<String> {
        self.lock()
            .nodes
            .get(node)
            .and_then(|n| n.snapshot.as_ref().map(|(s, _)| s.clone()))
    }

    /// The floating IPs' states, for the status page.
    pub fn floating_ips(&self) -> Vec<FloatingIpState> {
        self.lock().states.values().cloned().collect()
    }
}
