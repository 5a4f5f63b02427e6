//! The one contract every [`Store`] passes. Each implementation's tests call these functions
//! with a fresh store; nothing here knows which store it is talking to.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeLocation};

const TTL: Duration = Duration::from_secs(15);

fn pool(name: &str, cidr: &str) -> FloatingIpPool {
    FloatingIpPool {
        name: name.into(),
        cidrs: vec![cidr.into()],
        ranges: vec!["203.0.113.10-203.0.113.20".into()],
        exclude: vec!["203.0.113.1".into()],
        interface: "eth0".into(),
        node_selector: BTreeMap::from([("hearth.io/edge".into(), "true".into())]),
    }
}

fn fip(name: &str) -> FloatingIp {
    FloatingIp {
        name: name.into(),
        pool: "public".into(),
        address: None,
        node_selector: BTreeMap::new(),
        target: None,
    }
}

fn state(name: &str, address: &str, node: Option<&str>, epoch: u64) -> FloatingIpState {
    FloatingIpState {
        name: name.into(),
        address: address.parse().unwrap(),
        node: node.map(Into::into),
        epoch,
        term: 0,
    }
}

fn volume(id: &str, nodes: &[&str], size_bytes: u64) -> VolumeLocation {
    VolumeLocation {
        id: id.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        size_bytes,
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

async fn states(store: &dyn Store) -> Vec<(String, String, Option<String>, u64)> {
    let states = store.floating_ip_states().await.unwrap();
    sorted(
        states
            .into_iter()
            .map(|s| (s.name, s.address.to_string(), s.node, s.epoch))
            .collect(),
    )
}

fn row(
    name: &str,
    address: &str,
    node: Option<&str>,
    epoch: u64,
) -> (String, String, Option<String>, u64) {
    (name.into(), address.into(), node.map(Into::into), epoch)
}

/// Runs the whole contract against an empty store.
pub(crate) async fn check_store(store: &dyn Store) {
    assert!(store.pools().await.unwrap().is_empty());
    assert!(store.floating_ips().await.unwrap().is_empty());
    assert!(store.floating_ip_states().await.unwrap().is_empty());
    assert!(store.volumes().await.unwrap().is_empty());
    pools(store).await;
    floating_ips_and_cas(store).await;
    one_address_two_writers(store).await;
    volumes(store).await;
    let term = store.lead("coordinator-a", TTL).await.unwrap();
    assert!(term.is_some(), "first lead");
    assert_eq!(
        store.lead("coordinator-a", TTL).await.unwrap(),
        term,
        "a renewal keeps the term"
    );
    terms(store).await;
}

/// A state written in a newer term cannot be overwritten from an older one.
async fn terms(store: &dyn Store) {
    store
        .put_pool(&pool("public", "203.0.113.0/28"))
        .await
        .unwrap();
    store.put_floating_ip(&fip("t")).await.unwrap();
    let mut s = state("t", "203.0.113.9", Some("node-a"), 1);
    s.term = 7;
    store.swap_floating_ip_state(0, &s).await.unwrap();
    let mut old = state("t", "203.0.113.9", Some("node-b"), 2);
    old.term = 6;
    let err = store.swap_floating_ip_state(1, &old).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    old.term = 7;
    store.swap_floating_ip_state(1, &old).await.unwrap();
    let got = store.floating_ip_states().await.unwrap();
    assert_eq!(got.iter().find(|s| s.name == "t").map(|s| s.term), Some(7));
    store.delete_floating_ip("t").await.unwrap();
}

async fn pools(store: &dyn Store) {
    let (public, private) = (
        pool("public", "203.0.113.0/28"),
        pool("private", "2001:db8::/120"),
    );
    store.put_pool(&public).await.unwrap();
    store.put_pool(&private).await.unwrap();
    let mut changed = public.clone();
    changed.interface = "br-ext".into();
    changed.node_selector.clear();
    store.put_pool(&changed).await.unwrap();
    let names = |v: Vec<FloatingIpPool>| sorted(v.into_iter().map(|p| p.name).collect::<Vec<_>>());
    let got = store.pools().await.unwrap();
    assert_eq!(names(got.clone()), ["private", "public"]);
    assert_eq!(got.iter().find(|p| p.name == "public"), Some(&changed));
    assert_eq!(got.iter().find(|p| p.name == "private"), Some(&private));
    store.delete_pool("private").await.unwrap();
    store.delete_pool("private").await.unwrap();
    assert_eq!(names(store.pools().await.unwrap()), ["public"]);
    let err = store
        .put_pool(&pool("Not_A_Name", "192.0.2.0/24"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

async fn floating_ips_and_cas(store: &dyn Store) {
    let mut web = fip("web");
    web.address = Some("203.0.113.7".parse().unwrap());
    store.put_floating_ip(&web).await.unwrap();
    store.put_floating_ip(&fip("db")).await.unwrap();
    assert_eq!(
        sorted(
            store
                .floating_ips()
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
        ),
        ["db", "web"]
    );

    // CAS: first write from 0, then each epoch only from the one before.
    store
        .swap_floating_ip_state(0, &state("web", "203.0.113.7", None, 1))
        .await
        .unwrap();
    store
        .swap_floating_ip_state(1, &state("web", "203.0.113.7", Some("node-a"), 2))
        .await
        .unwrap();
    for (expected, epoch) in [(0, 3), (1, 3), (3, 4)] {
        let err = store
            .swap_floating_ip_state(
                expected,
                &state("web", "203.0.113.7", Some("node-b"), epoch),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "expected {expected}: {err}"
        );
    }
    let err = store
        .swap_floating_ip_state(2, &state("web", "203.0.113.7", Some("node-b"), 2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "epoch must grow: {err}"
    );
    assert_eq!(
        states(store).await,
        [row("web", "203.0.113.7", Some("node-a"), 2)]
    );

    // Redeclaring keeps the state.
    web.node_selector.insert("zone".into(), "a".into());
    store.put_floating_ip(&web).await.unwrap();
    assert_eq!(
        store
            .floating_ips()
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.name == "web"),
        Some(web.clone())
    );
    assert_eq!(
        states(store).await,
        [row("web", "203.0.113.7", Some("node-a"), 2)]
    );

    // One address, one floating IP.
    let err = store
        .swap_floating_ip_state(0, &state("db", "203.0.113.7", Some("node-b"), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "duplicate address: {err}"
    );
    store
        .swap_floating_ip_state(0, &state("db", "2001:db8::7", Some("node-b"), 1))
        .await
        .unwrap();
    store
        .swap_floating_ip_state(2, &state("web", "203.0.113.7", None, 3))
        .await
        .unwrap();

    // Undeclared floating IPs have no state to swap.
    let err = store
        .swap_floating_ip_state(0, &state("ghost", "203.0.113.9", None, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(
        states(store).await,
        [
            row("db", "2001:db8::7", Some("node-b"), 1),
            row("web", "203.0.113.7", None, 3)
        ]
    );

    // Deleting a floating IP deletes its state and frees its address.
    store.delete_floating_ip("web").await.unwrap();
    store.delete_floating_ip("web").await.unwrap();
    assert_eq!(
        states(store).await,
        [row("db", "2001:db8::7", Some("node-b"), 1)]
    );
    let err = store
        .swap_floating_ip_state(3, &state("web", "203.0.113.7", None, 4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.put_floating_ip(&fip("api")).await.unwrap();
    store
        .swap_floating_ip_state(0, &state("api", "203.0.113.7", Some("node-c"), 1))
        .await
        .unwrap();
    store.put_floating_ip(&web).await.unwrap();
    assert!(
        !states(store).await.iter().any(|s| s.0 == "web"),
        "a redeclared floating IP starts without state"
    );
    store.delete_floating_ip("api").await.unwrap();
    store.delete_floating_ip("db").await.unwrap();
    store.delete_floating_ip("web").await.unwrap();
    assert!(store.floating_ips().await.unwrap().is_empty());
    assert!(store.floating_ip_states().await.unwrap().is_empty());
}

/// Two writers give one address to two new floating IPs at the same time (two coordinators
/// that both believe they lead): exactly one wins, and the address stays with it.
async fn one_address_two_writers(store: &dyn Store) {
    store
        .put_pool(&pool("public", "203.0.113.0/28"))
        .await
        .unwrap();
    store.put_floating_ip(&fip("x")).await.unwrap();
    store.put_floating_ip(&fip("y")).await.unwrap();
    let (x, y) = (
        state("x", "203.0.113.5", Some("node-a"), 1),
        state("y", "203.0.113.5", Some("node-b"), 1),
    );
    let (rx, ry) = tokio::join!(
        store.swap_floating_ip_state(0, &x),
        store.swap_floating_ip_state(0, &y)
    );
    let (winner, loser) = match (rx, ry) {
        (Ok(()), Err(StoreError::Conflict(_))) => ("x", "y"),
        (Err(StoreError::Conflict(_)), Ok(())) => ("y", "x"),
        other => panic!("exactly one writer must win: {other:?}"),
    };
    let held: Vec<_> = states(store)
        .await
        .into_iter()
        .filter(|s| s.1 == "203.0.113.5")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, winner);
    // The address stays with its floating IP: moving it to another address is refused.
    let err = store
        .swap_floating_ip_state(1, &state(winner, "203.0.113.6", Some("node-a"), 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // The loser retries later, and loses again while the winner holds the address.
    let err = store
        .swap_floating_ip_state(0, &state(loser, "203.0.113.5", Some("node-b"), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Deleting the winner frees the address for the loser.
    store.delete_floating_ip(winner).await.unwrap();
    store
        .swap_floating_ip_state(0, &state(loser, "203.0.113.5", Some("node-b"), 1))
        .await
        .unwrap();
    assert_eq!(
        states(store).await,
        [row(loser, "203.0.113.5", Some("node-b"), 1)]
    );
    store.delete_floating_ip(loser).await.unwrap();
    assert!(store.floating_ip_states().await.unwrap().is_empty());
}

async fn volumes(store: &dyn Store) {
    // Kubernetes-safe and unsafe IDs (the Kubernetes store hashes the latter into a name).
    let a = volume("pvc-0a1b", &["node-a"], 1 << 30);
    let b = volume("Vol_B/with:odd chars", &["node-a", "node-b"], 10 << 30);
    store.create_volume(&a).await.unwrap();
    store.create_volume(&b).await.unwrap();
    let mut a2 = a.clone();
    a2.nodes.push("node-c".into());
    a2.size_bytes = 2 << 30;
    store.update_volume(&a, &a2).await.unwrap();
    // An update is a compare-and-swap: a second writer that read `a` too is refused.
    let mut a3 = a.clone();
    a3.size_bytes = 3 << 30;
    let err = store.update_volume(&a, &a3).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // An update never creates, and never changes the ID.
    let ghost = volume("pvc-ghost", &["node-a"], 1);
    let err = store.update_volume(&ghost, &ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store.update_volume(&a2, &ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut got = store.volumes().await.unwrap();
    got.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(got, [b.clone(), a2]);
    store.delete_volume("pvc-0a1b").await.unwrap();
    store.delete_volume("pvc-0a1b").await.unwrap();
    assert_eq!(store.volumes().await.unwrap(), std::slice::from_ref(&b));
    store.delete_volume(&b.id).await.unwrap();
    assert!(store.volumes().await.unwrap().is_empty());
    let err = store.create_volume(&volume("", &[], 0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    // Created once: a second placement of the same volume loses and changes nothing, even
    // when both writers place it at the same time.
    let (c, elsewhere) = (
        volume("pvc-once", &["node-a"], 1 << 20),
        volume("pvc-once", &["node-b"], 1 << 20),
    );
    let (r1, r2) = tokio::join!(store.create_volume(&c), store.create_volume(&elsewhere));
    let won = match (r1, r2) {
        (Ok(()), Err(StoreError::Conflict(_))) => c,
        (Err(StoreError::Conflict(_)), Ok(())) => elsewhere,
        other => panic!("exactly one placement must win: {other:?}"),
    };
    assert_eq!(store.volumes().await.unwrap(), std::slice::from_ref(&won));
    store.delete_volume("pvc-once").await.unwrap();
}

/// Two contenders for one leadership: `first` leads, `second` is refused until `lapse` ends
/// `first`'s claim (a lease that expires, a process that exits); then `second` leads and
/// `first` is refused.
pub(crate) async fn check_exclusive_lead(
    first: &dyn Store,
    second: &dyn Store,
    lapse: impl FnOnce(),
) {
    let a = first.lead("coordinator-a", TTL).await.unwrap();
    assert!(a.is_some(), "a takes the lead");
    assert_eq!(
        second.lead("coordinator-b", TTL).await.unwrap(),
        None,
        "b is refused while a leads"
    );
    assert_eq!(
        first.lead("coordinator-a", TTL).await.unwrap(),
        a,
        "a renews"
    );
    assert_eq!(
        second.lead("coordinator-b", TTL).await.unwrap(),
        None,
        "b is still refused"
    );
    lapse();
    let b = second.lead("coordinator-b", TTL).await.unwrap();
    assert!(
        b > a,
        "b takes over after a lapsed, in a newer term: {b:?} {a:?}"
    );
    assert_eq!(
        first.lead("coordinator-a", TTL).await.unwrap(),
        None,
        "a is refused now"
    );
    assert_eq!(
        second.lead("coordinator-b", TTL).await.unwrap(),
        b,
        "b renews"
    );
}

/// Writes a small known set of records (for reopen tests).
pub(crate) async fn fill(store: &dyn Store) {
    store
        .put_pool(&pool("public", "203.0.113.0/28"))
        .await
        .unwrap();
    store.put_floating_ip(&fip("web")).await.unwrap();
    store
        .swap_floating_ip_state(0, &state("web", "203.0.113.7", Some("node-a"), 1))
        .await
        .unwrap();
    store
        .create_volume(&volume("pvc-1", &["node-a"], 4096))
        .await
        .unwrap();
}

/// Checks what [`fill`] wrote.
pub(crate) async fn check_filled(store: &dyn Store) {
    assert_eq!(
        store.pools().await.unwrap(),
        [pool("public", "203.0.113.0/28")]
    );
    assert_eq!(store.floating_ips().await.unwrap(), [fip("web")]);
    assert_eq!(
        states(store).await,
        [row("web", "203.0.113.7", Some("node-a"), 1)]
    );
    assert_eq!(
        store.volumes().await.unwrap(),
        [volume("pvc-1", &["node-a"], 4096)]
    );
}
