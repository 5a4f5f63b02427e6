//! [`KubeStore`] against the fake apiserver: the shared contract, leases with a fake clock,
//! and the resourceVersion compare-and-swap when another writer lands in between.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{volume_object_name, KubeStore};
use crate::store::fake_apiserver::FakeApiserver;
use crate::store::{contract_tests, FloatingIp, FloatingIpState, Store, StoreError, VolumeRecord};

const FIPS: &str = "/apis/hearth.io/v1alpha1/floatingips";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/hearth/leases";

/// A clock the test moves by hand.
fn fake_clock() -> (super::Clock, Arc<Mutex<SystemTime>>) {
    let now = Arc::new(Mutex::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let read = Arc::clone(&now);
    (Arc::new(move || *read.lock().unwrap()), now)
}

fn fip(name: &str) -> FloatingIp {
    FloatingIp {
        name: name.into(),
        pool: "public".into(),
        address: None,
        node_selector: Default::default(),
    }
}

fn state(name: &str, epoch: u64, node: &str) -> FloatingIpState {
    FloatingIpState {
        name: name.into(),
        address: "203.0.113.7".parse().unwrap(),
        node: Some(node.into()),
        epoch,
    }
}

#[tokio::test]
async fn contract() {
    let (client, fake) = FakeApiserver::start();
    let store = KubeStore::new(client, "hearth", "hearth-coordinator");
    contract_tests::check_store(&store).await;
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == &format!("PUT {FIPS}/web/status")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r == &format!("POST {LEASES}")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_second_holder_waits_for_the_lease_to_expire() {
    let (client, _fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a =
        KubeStore::new(client.clone(), "hearth", "hearth-coordinator").with_clock(clock.clone());
    let b = KubeStore::new(client, "hearth", "hearth-coordinator").with_clock(clock);
    contract_tests::check_exclusive_lead(&a, &b, || {
        // TTL is 15 s: 14 s after a's renewal the lease still holds; at 15 s it has expired.
        *now.lock().unwrap() += Duration::from_secs(15);
    })
    .await;
}

#[tokio::test]
async fn lease_is_held_until_exactly_its_duration() {
    let (client, _fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock.clone());
    let b = KubeStore::new(client, "hearth", "l").with_clock(clock);
    let ttl = Duration::from_secs(10);
    assert!(a.lead("a", ttl).await.unwrap());
    *now.lock().unwrap() += Duration::from_secs(9);
    assert!(!b.lead("b", ttl).await.unwrap(), "9 s into a 10 s lease");
    assert!(a.lead("a", ttl).await.unwrap(), "renewed at 9 s");
    *now.lock().unwrap() += Duration::from_secs(9);
    assert!(
        !b.lead("b", ttl).await.unwrap(),
        "the renewal counts from 9 s"
    );
    *now.lock().unwrap() += Duration::from_secs(1);
    assert!(b.lead("b", ttl).await.unwrap(), "expired at 19 s");
}

#[tokio::test]
async fn lease_write_that_loses_the_race_does_not_lead() {
    let (client, fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock.clone());
    let b = KubeStore::new(client, "hearth", "l").with_clock(clock);
    assert!(a.lead("a", Duration::from_secs(5)).await.unwrap());
    *now.lock().unwrap() += Duration::from_secs(60);
    // b reads the expired lease; before its write lands, c takes it over.
    let renewed = k8s_openapi::jiff::Timestamp::try_from(*now.lock().unwrap())
        .unwrap()
        .to_string();
    fake.before_next_write(LEASES, "l", move |lease| {
        lease["spec"]["holderIdentity"] = json!("c");
        lease["spec"]["renewTime"] = json!(renewed);
    });
    assert!(!b.lead("b", Duration::from_secs(5)).await.unwrap());
    assert!(
        !a.lead("a", Duration::from_secs(5)).await.unwrap(),
        "c holds a fresh lease"
    );
}

#[tokio::test]
async fn swap_conflicts_when_the_object_changed_after_it_was_read() {
    let (client, fake) = FakeApiserver::start();
    let store = KubeStore::new(client, "hearth", "l");
    store.put_floating_ip(&fip("web")).await.unwrap();
    store
        .swap_floating_ip_state(0, &state("web", 1, "node-a"))
        .await
        .unwrap();
    // Another coordinator moves the IP between this one's read and its write.
    fake.before_next_write(FIPS, "web", |obj| {
        obj["status"]["epoch"] = json!(2);
        obj["status"]["node"] = json!("node-b");
    });
    let err = store
        .swap_floating_ip_state(1, &state("web", 2, "node-c"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let states = store.floating_ip_states().await.unwrap();
    assert_eq!(
        states,
        [state("web", 2, "node-b")],
        "the other writer's state stands"
    );
}

#[tokio::test]
async fn redeclaring_keeps_the_status_even_if_sent() {
    let (client, _fake) = FakeApiserver::start();
    let store = KubeStore::new(client, "hearth", "l");
    store.put_floating_ip(&fip("web")).await.unwrap();
    store
        .swap_floating_ip_state(0, &state("web", 1, "node-a"))
        .await
        .unwrap();
    let mut changed = fip("web");
    changed.pool = "other".into();
    store.put_floating_ip(&changed).await.unwrap();
    assert_eq!(store.floating_ips().await.unwrap(), [changed]);
    assert_eq!(
        store.floating_ip_states().await.unwrap(),
        [state("web", 1, "node-a")]
    );
}

#[tokio::test]
async fn volume_name_collisions_are_refused_not_overwritten() {
    let (client, _fake) = FakeApiserver::start();
    let store = KubeStore::new(client, "hearth", "l");
    let odd = VolumeRecord {
        id: "Odd/ID".into(),
        nodes: vec!["n1".into()],
        size_bytes: 1,
    };
    store.put_volume(&odd).await.unwrap();
    // A well-formed ID that happens to equal the hashed name of another volume.
    let squatter = VolumeRecord {
        id: volume_object_name("Odd/ID"),
        nodes: vec![],
        size_bytes: 2,
    };
    let err = store.put_volume(&squatter).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    store.delete_volume(&squatter.id).await.unwrap();
    assert_eq!(store.volumes().await.unwrap(), [odd]);
}
