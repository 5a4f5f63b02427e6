//! [`KubeStore`] against the fake apiserver: the shared contract, leases with a fake clock,
//! and the resourceVersion compare-and-swap when another writer lands in between.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{volume_object_name, KubeStore};
use crate::store::fake_apiserver::FakeApiserver;
use crate::store::{
    contract_tests, FloatingIp, FloatingIpState, Store, StoreError, VolumeLocation,
};

const FIPS: &str = "/apis/hearth.io/v1alpha1/floatingips";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/hearth/leases";

/// A monotonic clock the test moves by hand.
fn fake_clock() -> (super::Clock, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let read = Arc::clone(&now);
    (Arc::new(move || *read.lock().unwrap()), now)
}

fn fip(name: &str) -> FloatingIp {
    FloatingIp {
        name: name.into(),
        pool: "public".into(),
        address: None,
        node_selector: Default::default(),
        target: None,
    }
}

fn state(name: &str, epoch: u64, node: &str) -> FloatingIpState {
    FloatingIpState {
        name: name.into(),
        address: "203.0.113.7".parse().unwrap(),
        node: Some(node.into()),
        epoch,
        term: 0,
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
async fn expiry_counts_from_the_last_change_this_contender_saw() {
    let (client, _fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock.clone());
    let b = KubeStore::new(client, "hearth", "l").with_clock(clock);
    let ttl = Duration::from_secs(10);
    assert_eq!(a.lead("a", ttl).await.unwrap(), Some(0));
    *now.lock().unwrap() += Duration::from_secs(9);
    // b sees the Lease for the first time 9 s after a's renewal: it counts from now.
    assert_eq!(b.lead("b", ttl).await.unwrap(), None);
    *now.lock().unwrap() += Duration::from_secs(9);
    assert_eq!(b.lead("b", ttl).await.unwrap(), None, "9 s since b saw it");
    assert_eq!(a.lead("a", ttl).await.unwrap(), Some(0), "a renews");
    assert_eq!(b.lead("b", ttl).await.unwrap(), None, "b sees the renewal");
    *now.lock().unwrap() += Duration::from_secs(9);
    assert_eq!(
        b.lead("b", ttl).await.unwrap(),
        None,
        "b saw a new resourceVersion 9 s ago"
    );
    *now.lock().unwrap() += Duration::from_secs(1);
    assert_eq!(
        b.lead("b", ttl).await.unwrap(),
        Some(1),
        "10 s unchanged: b takes over"
    );
    assert_eq!(a.lead("a", ttl).await.unwrap(), None);
}

#[tokio::test]
async fn a_renew_time_far_in_the_past_does_not_let_a_contender_in() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, PostParams};
    let (client, _fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock.clone());
    let b = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock);
    let ttl = Duration::from_secs(10);
    assert_eq!(a.lead("a", ttl).await.unwrap(), Some(0));
    // a's wall clock is years behind b's: the renewTime it writes looks long expired to b.
    let api: Api<Lease> = Api::namespaced(client, "hearth");
    let mut lease = api.get("l").await.unwrap();
    let renewed = "2001-01-01T00:00:00Z"
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap();
    lease.spec.as_mut().unwrap().renew_time = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed),
    );
    api.replace("l", &PostParams::default(), &lease)
        .await
        .unwrap();
    assert_eq!(b.lead("b", ttl).await.unwrap(), None);
    *now.lock().unwrap() += Duration::from_secs(9);
    assert_eq!(
        b.lead("b", ttl).await.unwrap(),
        None,
        "judged by observed time"
    );
}

#[tokio::test]
async fn lease_write_that_loses_the_race_does_not_lead() {
    let (client, fake) = FakeApiserver::start();
    let (clock, now) = fake_clock();
    let a = KubeStore::new(client.clone(), "hearth", "l").with_clock(clock.clone());
    let b = KubeStore::new(client, "hearth", "l").with_clock(clock);
    assert!(a.lead("a", Duration::from_secs(5)).await.unwrap().is_some());
    assert_eq!(b.lead("b", Duration::from_secs(5)).await.unwrap(), None);
    *now.lock().unwrap() += Duration::from_secs(60);
    // b takes the stale lease over; before its write lands, c takes it.
    fake.before_next_write(LEASES, "l", move |lease| {
        lease["spec"]["holderIdentity"] = json!("c");
    });
    assert_eq!(b.lead("b", Duration::from_secs(5)).await.unwrap(), None);
    assert_eq!(
        a.lead("a", Duration::from_secs(5)).await.unwrap(),
        None,
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
    let odd = VolumeLocation {
        id: "Odd/ID".into(),
        nodes: vec!["n1".into()],
        size_bytes: 1,
    };
    store.create_volume(&odd).await.unwrap();
    // A well-formed ID that happens to equal the hashed name of another volume.
    let squatter = VolumeLocation {
        id: volume_object_name("Odd/ID"),
        nodes: vec![],
        size_bytes: 2,
    };
    let err = store.create_volume(&squatter).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = store.update_volume(&squatter, &squatter).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.delete_volume(&squatter.id).await.unwrap();
    assert_eq!(store.volumes().await.unwrap(), [odd]);
}

#[tokio::test]
async fn a_declaration_changed_after_it_was_read_is_refused_not_overwritten() {
    let (client, fake) = FakeApiserver::start();
    let store = KubeStore::new(client, "hearth", "l");
    store.put_floating_ip(&fip("web")).await.unwrap();
    // Another writer changes the declaration between this one's read and its write.
    fake.before_next_write(FIPS, "web", |obj| {
        obj["spec"]["pool"] = json!("theirs");
    });
    let mut mine = fip("web");
    mine.pool = "mine".into();
    let err = store.put_floating_ip(&mine).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let stored = store.floating_ips().await.unwrap();
    assert_eq!(stored[0].pool, "theirs", "the other writer's change stands");
}

/// A claim object written as a coordinator would have, for `fip` of uid `uid`.
async fn plant_claim(client: kube::Client, address: &str, fip: &str, uid: &str) {
    use super::crd::{FloatingIPClaim, FloatingIpClaimSpec};
    use kube::api::{Api, PostParams};
    let address = address.parse().unwrap();
    let claim = FloatingIPClaim::new(
        &super::claim_object_name(address),
        FloatingIpClaimSpec {
            address,
            floating_ip: fip.into(),
            floating_ip_uid: uid.into(),
        },
    );
    let api: Api<FloatingIPClaim> = Api::all(client);
    api.create(&PostParams::default(), &claim).await.unwrap();
}

#[tokio::test]
async fn a_claim_of_a_gone_floating_ip_is_taken_over_a_live_ones_is_not() {
    let (client, fake) = FakeApiserver::start();
    let store = KubeStore::new(client.clone(), "hearth", "l");
    store.put_floating_ip(&fip("web")).await.unwrap();
    store.put_floating_ip(&fip("db")).await.unwrap();
    // Left by a coordinator that crashed between deleting "old" and releasing its claim.
    plant_claim(client.clone(), "203.0.113.7", "old", "uid-of-old").await;
    store
        .swap_floating_ip_state(0, &state("web", 1, "node-a"))
        .await
        .unwrap();
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == "DELETE /apis/hearth.io/v1alpha1/floatingipclaims/ipv4-203-0-113-7"),
        "{requests:?}"
    );
    // "db" is declared and has no state yet: another writer may be about to give it the
    // address it claimed, so its claim holds.
    let db_uid = fake_uid(&client, "db").await;
    plant_claim(client.clone(), "203.0.113.8", "db", &db_uid).await;
    let mut other = state("web", 1, "node-a");
    other.name = "api".into();
    other.address = "203.0.113.8".parse().unwrap();
    store.put_floating_ip(&fip("api")).await.unwrap();
    let err = store.swap_floating_ip_state(0, &other).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Once "db" holds another address, the claim it left is stale.
    let mut db = state("db", 1, "node-b");
    db.address = "203.0.113.9".parse().unwrap();
    store.swap_floating_ip_state(0, &db).await.unwrap();
    store.swap_floating_ip_state(0, &other).await.unwrap();
}

async fn fake_uid(client: &kube::Client, name: &str) -> String {
    use kube::api::Api;
    let api: Api<super::FloatingIP> = Api::all(client.clone());
    api.get(name).await.unwrap().metadata.uid.unwrap()
}
