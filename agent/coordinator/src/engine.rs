//! The coordinator's brain: node sessions, leases, and the floating-IP decisions.
//!
//! Safety rule: a floating IP owned by node N moves only after N's lease has ended in the
//! coordinator's reckoning: `last grant sent to N + lease + margin`. N counts the same lease
//! from when it SENT the report the grant answers, which is earlier, and withdraws at its own
//! deadline (its fence guard does it if the agent process is gone). After a start or a leader
//! change the coordinator has sent no grants, so it treats every stored owner as alive until
//! `leader_since + lease + margin` and allocates nothing new before then.
//!
//! Decisions are made under one mutex from an in-memory copy of the store, written to the
//! store with compare-and-swap on the epoch, and only then pushed to the nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hearth_csi::CsiError;
use hearth_proto::hearth::v1::{
    coordinator_message, volume_call, Assignments, Capacity, CoordinatorMessage,
    FloatingIpAssignment, Hello, Lease, Report, VolumeCall, VolumeReply, Welcome,
};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tonic::Status;

use super::assign::{assign_all, NodeView as Candidate, Orphan};
use super::pools::{allocate, Pool};
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError};

/// The lease and report timings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often nodes report (each report renews the lease).
    pub report_interval: Duration,
    /// How long a lease lasts from the report it answers.
    pub lease: Duration,
    /// Extra wait before the coordinator counts a lease as ended (withdrawal time, clock rate).
    pub margin: Duration,
    /// Leader-election lease of the store.
    pub leadership: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            report_interval: Duration::from_millis(100),
            lease: Duration::from_millis(350),
            margin: Duration::from_millis(100),
            leadership: Duration::from_secs(10),
        }
    }
}

/// The message channel to one node's session.
pub type Outbox = mpsc::Sender<Result<CoordinatorMessage, Status>>;

#[derive(Debug)]
struct Session {
    id: u64,
    tx: Outbox,
    /// The floating IPs last sent; `None` until the first Assignments of the session.
    sent: Option<Vec<FloatingIpAssignment>>,
}

/// What the coordinator knows of a node.
#[derive(Debug, Default)]
struct NodeState {
    labels: BTreeMap<String, String>,
    healthy: bool,
    capacity: Capacity,
    session: Option<Session>,
    last_grant: Option<Instant>,
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
    failovers: std::sync::atomic::AtomicU64,
    /// Volume calls sent to nodes and not yet answered.
    calls: Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<VolumeReply>>>,
    next_call: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A compare-and-swap of a floating IP's state: (expected epoch, new state, previous owner).
enum Change {
    Swap(u64, FloatingIpState, Option<String>),
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
            failovers: std::sync::atomic::AtomicU64::new(0),
            calls: Mutex::new(std::collections::HashMap::new()),
            next_call: std::sync::atomic::AtomicU64::new(1),
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
        let welcome = CoordinatorMessage {
            msg: Some(coordinator_message::Msg::Welcome(Welcome {
                coordinator_id: self.id.clone(),
                report_interval_ms: ms(self.timing.report_interval),
                lease_ms: ms(self.timing.lease),
            })),
        };
        tx.try_send(Ok(welcome))
            .map_err(|_| Status::unavailable("session closed"))?;
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
        node.labels = hello.labels.clone().into_iter().collect();
        node.capacity = hello.capacity.unwrap_or_default();
        node.version.clone_from(&hello.version);
        node.session = Some(Session { id, tx, sent: None });
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
        let was_healthy = n.healthy;
        n.healthy = report.healthy;
        n.capacity = report.capacity.unwrap_or(n.capacity);
        n.last_report = Some(Instant::now());
        if !report.health_json.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            n.snapshot = Some((report.health_json.clone(), now));
        }
        // Only a session that got its assignments is granted leases (the node ignores
        // leases before that anyway).
        if leading && s.sent.is_some() {
            let lease = CoordinatorMessage {
                msg: Some(coordinator_message::Msg::Lease(Lease {
                    seq: report.seq,
                    valid_ms: ms(self.timing.lease),
                })),
            };
            if s.tx.try_send(Ok(lease)).is_ok() {
                n.last_grant = Some(Instant::now());
            }
        }
        if was_healthy != report.healthy {
            self.kick.notify_one();
        }
    }

    /// Ends a session (if it is still the node's current one).
    pub fn bye(&self, node: &str, session: u64) {
        let mut inner = self.lock();
        if let Some(n) = inner.nodes.get_mut(node) {
            if n.session.as_ref().is_some_and(|s| s.id == session) {
                n.session = None;
                tracing::info!(node, session, "node session closed");
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
        let hold = self.timing.lease + self.timing.margin;
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

    fn owner_alive(&self, inner: &Inner, node: &str, now: Instant) -> bool {
        let hold = self.timing.lease + self.timing.margin;
        match inner.nodes.get(node).and_then(|n| n.last_grant) {
            Some(g) => now < g + hold,
            None => inner.leader_since.is_some_and(|l| now < l + hold),
        }
    }

    /// Nodes that may take a new floating IP: a session, healthy, a valid lease.
    fn candidates(&self, inner: &Inner, now: Instant) -> Vec<Candidate> {
        inner
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.session.as_ref().is_some_and(|s| s.sent.is_some())
                    && n.healthy
                    && n.last_grant.is_some_and(|g| now < g + self.timing.lease)
            })
            .map(|(name, n)| Candidate {
                name: name.clone(),
                labels: n.labels.clone(),
                healthy: true,
            })
            .collect()
    }

    /// Decides owners and addresses; returns the compare-and-swap writes to make.
    fn decide(&self, inner: &Inner, now: Instant) -> Vec<Change> {
        let Some(leader_since) = inner.leader_since else {
            return Vec::new();
        };
        let in_grace = now < leader_since + self.timing.lease + self.timing.margin;
        let nodes = self.candidates(inner, now);
        let mut owned: BTreeMap<String, usize> = BTreeMap::new();
        for s in inner.states.values() {
            if let Some(n) = &s.node {
                *owned.entry(n.clone()).or_default() += 1;
            }
        }
        let mut taken: BTreeSet<IpAddr> = inner.states.values().map(|s| s.address).collect();
        taken.extend(inner.released.iter().map(|(a, _)| *a));
        let mut parsed: BTreeMap<&str, Option<Pool>> = BTreeMap::new();
        // Floating IPs that need an owner: (declaration, pool, address, stored epoch, old owner).
        let mut orphans = Vec::new();
        for fip in inner.fips.values() {
            let Some(pool) = inner.pools.get(&fip.pool) else {
                continue;
            };
            let state = inner.states.get(&fip.name);
            if state
                .and_then(|s| s.node.as_deref())
                .is_some_and(|n| self.owner_alive(inner, n, now))
            {
                continue;
            }
            let (address, epoch) = match state {
                Some(s) => (s.address, s.epoch),
                None if in_grace => continue,
                None => {
                    let entry = parsed.entry(pool.name.as_str()).or_insert_with(|| {
                        Pool::parse(pool)
                            .map_err(|e| tracing::warn!(pool = %pool.name, "{e}"))
                            .ok()
                    });
                    let Some(p) = entry.as_ref() else { continue };
                    match allocate(p, fip.address, &taken) {
                        Ok(a) => {
                            taken.insert(a);
                            (a, 0)
                        }
                        Err(e) => {
                            tracing::warn!(name = %fip.name, "{e}");
                            continue;
                        }
                    }
                }
            };
            let old = state.and_then(|s| s.node.clone());
            if let Some(o) = &old {
                if let Some(c) = owned.get_mut(o) {
                    *c = c.saturating_sub(1);
                }
            }
            orphans.push((fip, pool, address, epoch, old, state.is_some()));
        }
        if orphans.is_empty() {
            return Vec::new();
        }
        let wanted: Vec<Orphan<'_>> = orphans
            .iter()
            .map(|(fip, pool, ..)| Orphan {
                name: &fip.name,
                pool_selector: &pool.node_selector,
                ip_selector: &fip.node_selector,
            })
            .collect();
        let owners = assign_all(&wanted, &nodes, &mut owned);
        orphans
            .into_iter()
            .zip(owners)
            .filter(|((.., old, stored), node)| !*stored || node != old)
            .map(|((fip, _, address, epoch, old, _), node)| {
                Change::Swap(
                    epoch,
                    FloatingIpState {
                        name: fip.name.clone(),
                        address,
                        node,
                        epoch: epoch + 1,
                    },
                    old,
                )
            })
            .collect()
    }

    /// One decision pass: decide, write, push. Returns when the next pass is due at the
    /// latest (the nearest lease end).
    pub async fn tick(&self) -> Option<Instant> {
        let now = Instant::now();
        let changes = {
            let inner = self.lock();
            self.decide(&inner, now)
        };
        let mut written = Vec::new();
        for Change::Swap(expected, state, old) in changes {
            match self.store.swap_floating_ip_state(expected, &state).await {
                Ok(()) => {
                    if old.is_some() {
                        self.failovers
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        self.push(&mut inner);
        self.next_due(&inner, Instant::now())
    }

    /// Sends each connected node its set if it changed.
    fn push(&self, inner: &mut Inner) {
        let mut per_node: BTreeMap<String, Vec<FloatingIpAssignment>> = BTreeMap::new();
        for s in inner.states.values() {
            let (Some(node), Some(fip)) = (&s.node, inner.fips.get(&s.name)) else {
                continue;
            };
            let Some(pool) = inner.pools.get(&fip.pool) else {
                continue;
            };
            per_node
                .entry(node.clone())
                .or_default()
                .push(FloatingIpAssignment {
                    name: s.name.clone(),
                    address: s.address.to_string(),
                    interface: pool.interface.clone(),
                    epoch: s.epoch,
                });
        }
        for (name, n) in &mut inner.nodes {
            let Some(session) = n.session.as_mut() else {
                continue;
            };
            let want = per_node.remove(name).unwrap_or_default();
            if session.sent.as_ref() == Some(&want) {
                continue;
            }
            let msg = CoordinatorMessage {
                msg: Some(coordinator_message::Msg::Assignments(Assignments {
                    floating_ips: want.clone(),
                    volumes: Vec::new(),
                })),
            };
            match session.tx.try_send(Ok(msg)) {
                Ok(()) => session.sent = Some(want),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(node = %name, "session outbox full; assignments retried");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => n.session = None,
            }
        }
    }

    fn next_due(&self, inner: &Inner, now: Instant) -> Option<Instant> {
        let hold = self.timing.lease + self.timing.margin;
        let mut due: Option<Instant> = None;
        let mut consider = |t: Instant| {
            if t > now {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        if let Some(l) = inner.leader_since {
            consider(l + hold);
        }
        for s in inner.states.values() {
            if let Some(g) = s
                .node
                .as_ref()
                .and_then(|n| inner.nodes.get(n))
                .and_then(|n| n.last_grant)
            {
                consider(g + hold);
            }
        }
        for n in inner.nodes.values() {
            if let Some(g) = n.last_grant {
                consider(g + self.timing.lease);
            }
        }
        for (_, until) in &inner.released {
            consider(*until);
        }
        due
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
                    n.last_grant = None;
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
                    && n.healthy
                    && n.last_grant.is_some_and(|g| now < g + self.timing.lease);
                (
                    name.clone(),
                    AgentView {
                        labels: n.labels.clone(),
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
        inner
            .nodes
            .iter()
            .map(|(name, n)| NodeView {
                name: name.clone(),
                connected: n.session.is_some(),
                healthy: n.healthy,
                lease_valid: self.owner_alive(&inner, name, now),
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
    }

    /// Sends a volume call to `node`'s agent and waits up to `timeout` for its answer. A
    /// non-OK answer comes back as the matching error.
    pub async fn call(
        &self,
        node: &str,
        op: volume_call::Op,
        timeout: Duration,
    ) -> Result<VolumeReply, CsiError> {
        let id = self
            .next_call
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(id, tx);
        }
        let sent = {
            let inner = self.lock();
            let msg = CoordinatorMessage {
                msg: Some(coordinator_message::Msg::VolumeCall(VolumeCall {
                    call_id: id,
                    op: Some(op),
                })),
            };
            inner
                .nodes
                .get(node)
                .and_then(|n| n.session.as_ref())
                .is_some_and(|s| s.tx.try_send(Ok(msg)).is_ok())
        };
        let forget = || {
            if let Ok(mut calls) = self.calls.lock() {
                calls.remove(&id);
            }
        };
        if !sent {
            forget();
            return Err(CsiError::Unavailable(format!(
                "node {node}'s agent has no session with the coordinator; retry when it reconnects"
            )));
        }
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            _ => {
                forget();
                return Err(CsiError::Unavailable(format!(
                    "node {node}'s agent did not answer within {timeout:?}; retry"
                )));
            }
        };
        let message = format!("node {node}: {}", reply.message);
        match tonic::Code::from_i32(reply.code) {
            tonic::Code::Ok => Ok(reply),
            tonic::Code::InvalidArgument => Err(CsiError::InvalidArgument(message)),
            tonic::Code::NotFound => Err(CsiError::NotFound(message)),
            tonic::Code::AlreadyExists => Err(CsiError::AlreadyExists(message)),
            tonic::Code::FailedPrecondition => Err(CsiError::FailedPrecondition(message)),
            tonic::Code::OutOfRange => Err(CsiError::OutOfRange(message)),
            tonic::Code::ResourceExhausted => Err(CsiError::ResourceExhausted(message)),
            tonic::Code::Aborted => Err(CsiError::Aborted(message)),
            tonic::Code::Unimplemented => Err(CsiError::Unimplemented(message)),
            tonic::Code::Unavailable => Err(CsiError::Unavailable(message)),
            _ => Err(CsiError::Internal(message)),
        }
    }

    /// Delivers a node's answer to the waiting call.
    pub fn volume_reply(&self, reply: VolumeReply) {
        let waiting = self
            .calls
            .lock()
            .ok()
            .and_then(|mut c| c.remove(&reply.call_id));
        if let Some(tx) = waiting {
            let _ = tx.send(reply);
        }
    }

    /// Floating IPs moved off a node whose lease ended, since start.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(std::sync::atomic::Ordering::Relaxed)
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

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
