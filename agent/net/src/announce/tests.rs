use std::sync::Mutex;

use super::*;
use crate::model::{Link, LinkKind};
use crate::netlink::fake::FakeNetlink;
use crate::netlink::{Observed, Seen, SeenLink};

#[derive(Default)]
struct Recorder(Mutex<Vec<(tokio::time::Instant, u32, Vec<u8>)>>);

impl Frames for Recorder {
    fn send(&self, ifindex: u32, frame: &[u8]) -> Result<(), AnnounceError> {
        self.0
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), ifindex, frame.to_vec()));
        Ok(())
    }
}

const MAC: Mac = Mac([0x0a, 0, 0, 0, 0, 7]);

fn netlink() -> Arc<FakeNetlink> {
    let link = Link {
        name: "br-ext".into(),
        kind: LinkKind::Bridge,
        mtu: Some(1500),
        up: true,
        master: None,
        mac: Some(MAC),
        implied: false,
    };
    Arc::new(FakeNetlink::with(Observed {
        links: vec![SeenLink {
            index: 3,
            link,
            owned: false,
            peer_elsewhere: false,
        }],
        ..Observed::default()
    }))
}

#[tokio::test(start_paused = true)]
async fn announce_adds_the_address_and_repeats_then_withdraw_stops() {
    let nl = netlink();
    let rec = Arc::new(Recorder::default());
    let a = Announcer::new(Arc::clone(&nl), Arc::clone(&rec), Schedule::default());
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let t0 = tokio::time::Instant::now();
    a.announce(ip, "br-ext").await.unwrap();
    {
        let s = nl.state.lock().unwrap();
        assert_eq!(s.addresses.len(), 1);
        assert_eq!(s.addresses[0].owner, Owner::Floating);
        assert_eq!(s.addresses[0].item.prefix.to_string(), "203.0.113.7/32");
    }
    assert_eq!(
        rec.0.lock().unwrap().len(),
        2,
        "request and reply go out at once"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sends: Vec<Duration> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _, _)| *t - t0)
        .collect();
    assert_eq!(
        sends.len(),
        6,
        "three rounds within the first second: {sends:?}"
    );
    assert!(sends.iter().all(|d| *d < Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(rec.0.lock().unwrap().len(), 8, "a refresh after 30 s");
    assert_eq!(a.active().len(), 1);

    a.withdraw(ip).await.unwrap();
    assert!(nl.state.lock().unwrap().addresses.is_empty());
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        rec.0.lock().unwrap().len(),
        8,
        "no more announcements after withdraw"
    );
    assert!(a.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn ipv6_is_a_nodad_host_address_with_one_na() {
    let nl = netlink();
    let rec = Arc::new(Recorder::default());
    let a = Announcer::new(Arc::clone(&nl), Arc::clone(&rec), Schedule::default());
    a.announce("2001:db8::7".parse().unwrap(), "br-ext")
        .await
        .unwrap();
    let s = nl.state.lock().unwrap();
    assert_eq!(s.addresses[0].item.prefix.len, 128);
    assert!(s.addresses[0].item.nodad);
    let frames = rec.0.lock().unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(&frames[0].2[12..14], &[0x86, 0xdd]);
}

#[tokio::test(start_paused = true)]
async fn a_foreign_address_is_never_taken_over() {
    let nl = netlink();
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    nl.state.lock().unwrap().addresses.push(Seen {
        item: host(ip, "br-ext"),
        owner: Owner::Foreign,
    });
    let a = Announcer::new(
        Arc::clone(&nl),
        Arc::new(Recorder::default()),
        Schedule::default(),
    );
    assert!(matches!(
        a.announce(ip, "br-ext").await,
        Err(AnnounceError::Foreign { .. })
    ));
    a.withdraw(ip).await.unwrap();
    assert_eq!(
        nl.state.lock().unwrap().addresses.len(),
        1,
        "withdraw leaves a foreign address alone"
    );
}

#[tokio::test(start_paused = true)]
async fn sync_adopts_a_previous_runs_addresses_without_writing_and_drops_stale_ones() {
    let nl = netlink();
    let keep: IpAddr = "203.0.113.7".parse().unwrap();
    let stale: IpAddr = "203.0.113.8".parse().unwrap();
    for ip in [keep, stale] {
        nl.state.lock().unwrap().addresses.push(Seen {
            item: host(ip, "br-ext"),
            owner: Owner::Floating,
        });
    }
    let rec = Arc::new(Recorder::default());
    let a = Announcer::new(Arc::clone(&nl), Arc::clone(&rec), Schedule::default());
    let errors = a
        .sync(&[FloatingIp {
            address: keep,
            dev: "br-ext".into(),
        }])
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    let ops = nl.sent();
    assert_eq!(ops.len(), 1, "only the stale address is deleted: {ops:?}");
    assert!(matches!(&ops[0], Op::DeleteAddress { address, .. } if address.prefix.addr == stale));
    assert_eq!(
        rec.0.lock().unwrap().len(),
        2,
        "the kept one is announced again"
    );
}
