//! The engine's leadership on tokio's paused clock, over a store whose election the test
//! controls: grants stop when renewals hang, a paused leader that resumes does not act on
//! its old lead, and every message carries the term.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hearth_proto::hearth::v1::{coordinator_message::Msg, CoordinatorMessage, Hello, Report};
use tokio::sync::mpsc;
use tonic::Status;

use super::{Engine, Timing};
use crate::store::{
    FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeLocation,
};

/// How the fake store answers `lead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Election {
    Leads(u64),
    Refused,
    Hangs,
}

/// A store with only floating IP states in it (the test sets them) and an election the test
/// sets.
struct Fake {
    election: Mutex<Election>,
    states: Mutex<Vec<FloatingIpState>>,
}

#[async_trait]
impl Store for Fake {
    async fn pools(&self) -> Result<Vec<FloatingIpPool>, StoreError> {
        Ok(Vec::new())
    }
    async fn put_pool(&self, _: &FloatingIpPool) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete_pool(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn floating_ips(&self) -> Result<Vec<FloatingIp>, StoreError> {
        Ok(Vec::new())
    }
    async fn put_floating_ip(&self, _: &FloatingIp) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete_floating_ip(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn floating_ip_states(&self) -> Result<Vec<FloatingIpState>, StoreError> {
        Ok(self.states.lock().unwrap().clone())
    }
    async fn swap_floating_ip_state(&self, _: u64, _: &FloatingIpState) -> Result<(), StoreError> {
        Ok(())
    }
    async fn volumes(&self) -> Result<Vec<VolumeLocation>, StoreError> {
        Ok(Vec::new())
    }
    async fn update_volume(
        &self,
        _: &VolumeLocation,
        _: &VolumeLocation,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn create_volume(&self, _: &VolumeLocation) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete_volume(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn lead(&self, _: &str, _: Duration) -> Result<Option<u64>, StoreError> {
        let e = *self.election.lock().unwrap();
        match e {
            Election::Leads(t) => Ok(Some(t)),
            Election::Refused => Ok(None),
            Election::Hangs => std::future::pending().await,
        }
    }
}

const TIMING: Timing = Timing {
    report_interval: Duration::from_millis(100),
    lease: Duration::from_millis(350),
    margin: Duration::from_millis(100),
    answer: Duration::from_millis(130),
    leadership: Duration::from_millis(1200),
};

fn start(election: Election) -> (Arc<Engine>, Arc<Fake>) {
    let store = Arc::new(Fake {
        election: Mutex::new(election),
        states: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(Arc::clone(&store) as Arc<dyn Store>, TIMING, "c");
    tokio::spawn(Arc::clone(&engine).run());
    (engine, store)
}

type Inbox = mpsc::Receiver<Result<CoordinatorMessage, Status>>;

fn connect(engine: &Engine) -> Result<(u64, Inbox), Status> {
    let (tx, rx) = mpsc::channel(64);
    let hello = Hello {
        node_name: "node-a".into(),
        ..Hello::default()
    };
    engine.hello(&hello, tx).map(|id| (id, rx))
}

fn drain(rx: &mut Inbox) -> Vec<Msg> {
    let mut out = Vec::new();
    while let Ok(Ok(m)) = rx.try_recv() {
        out.extend(m.msg);
    }
    out
}

fn report(engine: &Engine, session: u64, seq: u64) {
    let r = Report {
        seq,
        healthy: true,
        ..Report::default()
    };
    engine.report("node-a", session, &r);
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test(start_paused = true)]
async fn welcome_leases_and_assignments_carry_the_term() {
    let (engine, _store) = start(Election::Leads(7));
    settle().await;
    assert_eq!(engine.term(), Some(7));
    let (session, mut rx) = connect(&engine).unwrap();
    settle().await;
    report(&engine, session, 1);
    let msgs = drain(&mut rx);
    assert!(
        matches!(&msgs[0], Msg::Welcome(w) if w.term == 7),
        "{msgs:?}"
    );
    assert!(
        matches!(&msgs[1], Msg::Assignments(a) if a.term == 7),
        "{msgs:?}"
    );
    assert!(
        matches!(&msgs[2], Msg::Lease(l) if l.term == 7 && l.seq == 1 && l.valid_ms == 350),
        "{msgs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_renewal_ends_the_lead_by_the_renew_deadline_and_grants_are_cut_to_it() {
    let (engine, store) = start(Election::Leads(1));
    settle().await;
    let (session, mut rx) = connect(&engine).unwrap();
    settle().await;
    *store.election.lock().unwrap() = Election::Hangs;
    // renew_deadline is 800 ms from the last successful attempt's start (at ~0 or ~200 ms).
    let mut cut = None;
    for seq in 1..=12 {
        report(&engine, session, seq);
        for m in drain(&mut rx) {
            if let Msg::Lease(l) = m {
                assert!(l.valid_ms <= 350);
                if l.valid_ms < 350 {
                    cut = Some(l.valid_ms);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cut.is_some(), "the last grants were cut to the lead's end");
    assert!(
        !engine.leading(),
        "no renewal within the deadline: not leading"
    );
    report(&engine, session, 13);
    assert!(
        drain(&mut rx).iter().all(|m| !matches!(m, Msg::Lease(_))),
        "no grants once the lead ended"
    );
    assert!(connect(&engine).is_err(), "no sessions either");
    assert!(engine.stalled().is_none(), "the loops still go round");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_steps_down_at_once_and_a_new_term_starts_fresh() {
    let (engine, store) = start(Election::Leads(1));
    settle().await;
    let (_, mut rx) = connect(&engine).unwrap();
    *store.election.lock().unwrap() = Election::Refused;
    tokio::time::sleep(TIMING.leadership / 6 + Duration::from_millis(10)).await;
    assert!(!engine.leading());
    drain(&mut rx);
    assert!(
        rx.recv().await.is_none(),
        "the session's stream ended with the lead"
    );
    *store.election.lock().unwrap() = Election::Leads(2);
    tokio::time::sleep(TIMING.leadership / 6 + Duration::from_millis(10)).await;
    assert_eq!(engine.term(), Some(2));
    let (_, mut rx) = connect(&engine).unwrap();
    assert!(matches!(&drain(&mut rx)[0], Msg::Welcome(w) if w.term == 2));
}

fn web(node: &str, epoch: u64, term: u64) -> FloatingIpState {
    FloatingIpState {
        name: "web".into(),
        address: "203.0.113.7".parse().unwrap(),
        node: Some(node.into()),
        epoch,
        term,
    }
}

#[tokio::test(start_paused = true)]
async fn stepping_down_drops_the_copy_of_the_store_and_a_new_lead_reloads_first() {
    let (engine, store) = start(Election::Leads(1));
    *store.states.lock().unwrap() = vec![web("node-a", 1, 1)];
    settle().await;
    assert_eq!(engine.floating_ips(), [web("node-a", 1, 1)]);
    *store.election.lock().unwrap() = Election::Refused;
    tokio::time::sleep(TIMING.leadership / 6 + Duration::from_millis(10)).await;
    assert!(!engine.leading());
    assert!(
        engine.floating_ips().is_empty(),
        "a standby keeps no copy of the store"
    );
    {
        let inner = engine.lock();
        assert!(inner.pools.is_empty() && inner.fips.is_empty() && inner.released.is_empty());
        assert_eq!(inner.loaded_for, None);
    }
    // Another leader moved the IP meanwhile; this one's next lead starts from the store.
    *store.states.lock().unwrap() = vec![web("node-b", 2, 2)];
    *store.election.lock().unwrap() = Election::Leads(3);
    tokio::time::sleep(TIMING.leadership / 6 + Duration::from_millis(10)).await;
    assert_eq!(engine.term(), Some(3));
    assert_eq!(engine.floating_ips(), [web("node-b", 2, 2)]);
}

#[test]
fn pools_are_parsed_when_loaded_and_again_only_when_their_record_changes() {
    use std::collections::BTreeMap;
    let def = |cidr: &str| FloatingIpPool {
        name: "lan".into(),
        cidrs: vec![cidr.into()],
        ranges: Vec::new(),
        exclude: Vec::new(),
        interface: "eth0".into(),
        node_selector: BTreeMap::new(),
    };
    let none = BTreeMap::new();
    let v1 = BTreeMap::from([("lan".to_owned(), def("10.0.0.0/30"))]);
    let p1 = super::parse_pools(&none, &BTreeMap::new(), &v1);
    assert_eq!(p1.len(), 1);
    // Unchanged: the earlier parse is kept (a stand-in parse shows it was not redone).
    let stand_in = BTreeMap::from([(
        "lan".to_owned(),
        crate::pools::Pool::parse(&def("10.9.0.0/30")).unwrap(),
    )]);
    assert_eq!(super::parse_pools(&v1, &stand_in, &v1), stand_in);
    // Changed: parsed again; a record that does not parse is left out.
    let v2 = BTreeMap::from([("lan".to_owned(), def("10.0.0.0/29"))]);
    assert_ne!(super::parse_pools(&v1, &p1, &v2), p1);
    let bad = BTreeMap::from([("lan".to_owned(), def("not a cidr"))]);
    assert!(super::parse_pools(&v1, &p1, &bad).is_empty());
    assert!(super::parse_pools(&bad, &BTreeMap::new(), &bad).is_empty());
}
