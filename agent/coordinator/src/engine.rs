//! The coordinator's engine: node sessions, lease grants, the leader loop, and the state the
//! floating-IP decisions ([`super::decide`]) read.
//!
//! This coordinator acts (grants, assigns, answers sessions and volume calls) only while its
//! [`LeaderClock`] says it leads: renewals run on their own task ([`Engine::run`] spawns it),
//! each attempt bounded by a timeout, and a successful one proves leadership only until
//! `attempt start + renew_deadline`. On step-down every session is closed and the in-memory
//! copy of the store is dropped; a new lead reloads before it decides or pushes anything.
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
use super::leadership::{Change, Lead, LeaderClock, Pace};
use super::pools::Pool;
pub use super::sessions::Outbox;
use super::sessions::{Pushed, Session};
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError};

/// Why a floating IP's owner lost it, for the failover log line.
fn cause(inner: &Inner, node: &str) -> &'static str {
    match inner.nodes.get(node) {
        None => "the node has had no session since this coordinator started leading",
        Some(n) if n.facts.left => "the node left (SIGTERM) and handed its addresses over",
        Some(n) if n.session.is_none() && n.facts.closed_by_node => {
            "the node's own end closed its session (the agent stopped or died)"
        }
        Some(n) if n.session.is_none() => "the node's session closed",
        Some(_) => "the node's lease ended: no report in time",
    }
}

/// How a session's stream ended, for [`Engine::bye`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The stream ended or broke; how is not known (a reset, an error, end of stream): the
    /// node may answer until its answer window after the last grant.
    Stream,
    /// The node's own kernel closed the connection with a FIN (see [`crate::closes`]): the
    /// node has stopped answering, its addresses move at once.
    NodeClosed,
}

/// The pools of `now` that parse: a record unchanged since `before` keeps its parse (and a
/// bad one is not warned about again); a new or changed one is parsed.
fn parse_pools(
    before: &BTreeMap<String, FloatingIpPool>,
    parsed: &BTreeMap<String, Pool>,
    now: &BTreeMap<String, FloatingIpPool>,
) -> BTreeMap<String, Pool> {
    let mut out = BTreeMap::new();
    for (name, def) in now {
        if before.get(name) == Some(def) {
            if let Some(p) = parsed.get(name) {
                out.insert(name.clone(), p.clone());
            }
            continue;
        }
        match Pool::parse(def) {
            Ok(p) => {
                out.insert(name.clone(), p);
            }
            Err(e) => tracing::warn!(pool = %name, "{e}"),
        }
    }
    out
}

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

#[derive(Debug)]
struct Inner {
    nodes: BTreeMap<String, NodeState>,
    pools: BTreeMap<String, FloatingIpPool>,
    /// The pools that parsed, parsed when loaded (again only when a record changes).
    parsed: BTreeMap<String, Pool>,
    fips: BTreeMap<String, FloatingIp>,
    states: BTreeMap<String, FloatingIpState>,
    /// Addresses whose floating IP was deleted: not handed out again until the instant.
    released: Vec<(IpAddr, Instant)>,
    clock: LeaderClock,
    /// The lead (its `since`) the in-memory copy was loaded for.
    loaded_for: Option<Instant>,
    next_session: u64,
}

impl Inner {
    fn new(pace: Pace) -> Self {
        Self {
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            parsed: BTreeMap::new(),
            fips: BTreeMap::new(),
            states: BTreeMap::new(),
            released: Vec::new(),
            clock: LeaderClock::new(pace),
            loaded_for: None,
            next_session: 0,
        }
    }

    /// The lead at `now`, if this coordinator leads and its copy of the store is loaded.
    fn ready(&self, now: Instant) -> Option<Lead> {
        self.clock
            .at(now)
            .filter(|l| self.loaded_for == Some(l.since))
    }

    /// Closes every session and forgets the copy of the store (stepping down, or a new lead).
    fn forget(&mut self) {
        for n in self.nodes.values_mut() {
            n.session = None;
            n.facts.last_grant = None;
        }
        self.pools.clear();
        self.parsed.clear();
        self.fips.clear();
        self.states.clear();
        self.released.clear();
        self.loaded_for = None;
    }

    /// Runs `f` on the decisions' view of this state at `now`.
    fn with_view<T>(&self, now: Instant, f: impl FnOnce(&View<'_>) -> T) -> T {
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
            parsed: &self.parsed,
            fips: &self.fips,
            states: &self.states,
            released: &self.released,
            nodes: &nodes,
            leader_since: self.ready(now).map(|l| l.since),
            term: self.clock.at(now).map_or(0, |l| l.term),
        })
    }
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
    /// When the decision loop and the renewal task last went round.
    beats: Mutex<(Instant, Instant)>,
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
            inner: Mutex::new(Inner::new(Pace::for_ttl(timing.leadership))),
            kick: Notify::new(),
            failovers: AtomicU64::new(0),
            calls: Calls::default(),
            beats: Mutex::new((Instant::now(), Instant::now())),
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

    /// Whether this coordinator leads now (by its own clock).
    pub fn leading(&self) -> bool {
        self.lock().clock.at(Instant::now()).is_some()
    }

    /// The term this coordinator leads in now, if it leads.
    pub fn term(&self) -> Option<u64> {
        self.lock().clock.at(Instant::now()).map(|l| l.term)
    }

    /// Registers a session after its Hello; sends the Welcome. Replaces an older session of
    /// the same node (its stream ends).
    pub fn hello(&self, hello: &Hello, tx: Outbox) -> Result<u64, Status> {
        let mut inner = self.lock();
        let Some(lead) = inner.clock.at(Instant::now()) else {
            return Err(Status::unavailable(
                "this coordinator is not the leader; retry",
            ));
        };
        inner.next_session += 1;
        let id = inner.next_session;
        let session = Session::open(id, tx, &self.id, &self.timing, lead.term)?;
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
        node.facts.closed_by_node = false;
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
        let now = Instant::now();
        // The lease never outlives this coordinator's proof that it leads.
        let grant = inner
            .clock
            .at(now)
            .zip(inner.clock.grant(now, self.timing.lease))
            .filter(|(_, valid)| !valid.is_zero());
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
        if let Some((lead, valid)) = grant {
            if s.assigned() && s.grant(report.seq, valid, lead.term) {
                n.facts.last_grant = Some(Instant::now());
            }
        }
        if was_healthy != report.healthy {
            self.kick.notify_one();
        }
    }

    /// Ends a session whose stream ended (if it is still the node's current one): its
    /// addresses may move once its answer window has passed, or at once when the node's own
    /// end closed the connection.
    pub fn bye(&self, node: &str, session: u64, ended: Ended) {
        let mut inner = self.lock();
        if let Some(n) = inner.nodes.get_mut(node) {
            if n.session.as_ref().is_some_and(|s| s.id == session) {
                n.session = None;
                n.facts.closed = true;
                n.facts.closed_by_node = ended == Ended::NodeClosed;
                tracing::info!(node, session, ?ended, "node session closed");
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

    /// Loads pools, floating IPs and states from the store (for the current lead).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let Some(since) = self.lock().clock.at(Instant::now()).map(|l| l.since) else {
            return Ok(());
        };
        let pools = self.bounded("list pools", self.store.pools()).await?;
        let fips = self
            .bounded("list floating IPs", self.store.floating_ips())
            .await?;
        let states = self
            .bounded("list states", self.store.floating_ip_states())
            .await?;
        let mut inner = self.lock();
        let now = Instant::now();
        if inner.clock.at(now).map(|l| l.since) != Some(since) {
            return Ok(()); // the lead ended or changed meanwhile: what was read is not its
        }
        inner.loaded_for = Some(since);
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
        let pools: BTreeMap<String, FloatingIpPool> =
            pools.into_iter().map(|p| (p.name.clone(), p)).collect();
        inner.parsed = parse_pools(&inner.pools, &inner.parsed, &pools);
        inner.pools = pools;
        inner.fips = fips.into_iter().map(|f| (f.name.clone(), f)).collect();
        inner.states = fresh;
        Ok(())
    }

    /// Takes the count of failovers from the store (a restart keeps counting).
    pub(super) async fn load_failovers(&self) {
        match self.bounded("read failovers", self.store.failovers()).await {
            Ok(Some(n)) => {
                self.failovers.fetch_max(n, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("reading the failover count: {e}"),
        }
    }

    /// One decision pass: decide, write, push. Returns when the next pass is due at the
    /// latest (the nearest lease end).
    pub async fn tick(&self) -> Option<Instant> {
        let now = Instant::now();
        let (actions, causes) = {
            let inner = self.lock();
            inner.ready(now)?;
            let actions = inner.with_view(now, |v| decide::decide(v, &self.timing, now));
            let causes: Vec<&'static str> = actions
                .iter()
                .map(|Action::Swap { previous, .. }| {
                    previous.as_deref().map_or("", |o| cause(&inner, o))
                })
                .collect();
            (actions, causes)
        };
        let mut written = Vec::new();
        let mut moved = 0u64;
        for (action, cause) in actions.into_iter().zip(causes) {
            let Action::Swap {
                expected,
                state,
                previous,
            } = action;
            let swap = self.store.swap_floating_ip_state(expected, &state);
            match self.bounded("swap", swap).await {
                Ok(()) => {
                    let to = state.node.as_deref();
                    if let Some(from) = &previous {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                        moved += 1;
                        tracing::warn!(name = %state.name, address = %state.address, from = %from,
                            to = to.unwrap_or("no node"), epoch = state.epoch, cause,
                            "floating IP failover");
                    } else if let Some(to) = to {
                        tracing::info!(name = %state.name, address = %state.address, node = to,
                            epoch = state.epoch, "floating IP assigned");
                    } else {
                        tracing::warn!(name = %state.name, address = %state.address,
                            epoch = state.epoch, "floating IP has no owner: no eligible node");
                    }
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
        let due = {
            let mut inner = self.lock();
            let now = Instant::now();
            inner.ready(now).and_then(|lead| {
                for s in written {
                    inner.states.insert(s.name.clone(), s);
                }
                Self::push(&mut inner, lead.term, now);
                inner.with_view(now, |v| decide::next_due(v, &self.timing, now))
            })
        };
        // Counted after the push: the count is for the status page, the move is not.
        if moved > 0 {
            if let Err(e) = self
                .bounded("count failovers", self.store.add_failovers(moved))
                .await
            {
                tracing::warn!("counting the failovers in the store: {e}");
            }
        }
        due
    }

    /// Sends each connected node its set if it changed.
    fn push(inner: &mut Inner, term: u64, now: Instant) {
        let mut per_node = inner.with_view(now, decide::assignments);
        for (name, n) in &mut inner.nodes {
            let Some(session) = n.session.as_mut() else {
                continue;
            };
            match session.push(per_node.remove(name).unwrap_or_default(), term) {
                Pushed::Unchanged | Pushed::Sent => {}
                Pushed::Full => {
                    tracing::warn!(node = %name, "session outbox full; assignments retried");
                }
                Pushed::Closed => n.session = None,
            }
        }
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
        let sent = {
            let inner = self.lock();
            inner.clock.at(Instant::now()).is_some()
                && inner
                    .nodes
                    .get(node)
                    .and_then(|n| n.session.as_ref())
                    .is_some_and(|s| s.call(id, op))
        };
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

    /// Floating IPs moved off a node, counted across restarts where the store keeps the count.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// This coordinator's identity.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[path = "engine_loop.rs"]
mod run;

#[path = "engine_views.rs"]
mod views;
pub use views::{AgentView, NodeView};

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
