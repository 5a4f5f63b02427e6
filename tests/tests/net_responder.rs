//! The floating-IP responder in throwaway namespaces, IPv4 and IPv6: a client and a node on one
//! bridge, the floating IP on the node's `lo`. The kernel answers ARP for it by default (the
//! baseline that makes the rest mean something) and never answers NDP for it; with Hearth's
//! responder it is answered only while the responder's gate is open, and once the responder is
//! gone (the process died) nothing answers, although the address stays and traffic to it is
//! still accepted.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_net::announce::{Gate, Responder};
use hearth_net::model::Mac;
use hearth_net::sysctl::ProcSys;
use hearth_tests::netns::arp::{mac_of, ArpProbe, Reply};
use hearth_tests::netns::ndp::NdpProbe;
use hearth_tests::netns::Lan;
use hearth_tests::{root_or_skip, tool_or_skip};

const FIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

fn fip6() -> Ipv6Addr {
    "2001:db8::77".parse().expect("v6")
}

fn client6() -> Ipv6Addr {
    "2001:db8::100".parse().expect("v6")
}

/// What the responder thread is told to do.
enum Cmd {
    Shut,
    Open,
    Die,
}

/// Probes ARP and NDP for `ms` milliseconds; returns (ARP replies, NAs).
fn probe(lan: &Lan, ms: u64) -> (Vec<Reply>, Vec<Reply>) {
    let arp = ArpProbe::start(&lan.hosts[0], "eth0", CLIENT4, FIP4);
    let ndp = NdpProbe::start(&lan.hosts[0], "eth0", client6(), fip6());
    std::thread::sleep(Duration::from_millis(ms));
    (arp.stop(), ndp.stop())
}

#[test]
fn only_a_live_responder_with_an_open_gate_answers() {
    if !root_or_skip("only_a_live_responder_answers") || !tool_or_skip("responder", "ip") {
        return;
    }
    let lan = Lan::new("rsp", &[Some("192.0.2.100/24"), Some("192.0.2.1/24")]);
    for h in &lan.hosts {
        let a = if h.name() == lan.hosts[0].name() {
            "2001:db8::100/64"
        } else {
            "2001:db8::1/64"
        };
        h.ip(&["-6", "addr", "add", a, "dev", "eth0", "nodad"]);
    }
    let node = &lan.hosts[1];
    let node_mac = mac_of(node, "eth0");
    node.ip(&["addr", "add", "192.0.2.77/32", "dev", "lo"]);
    node.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8::77/128",
        "dev",
        "lo",
        "nodad",
    ]);

    // Baseline: the kernel answers ARP for an address on lo (arp_ignore=0), never NDP.
    let (arp, ndp) = probe(&lan, 300);
    assert!(
        arp.iter().any(|r| r.mac == node_mac),
        "the kernel answers ARP by default"
    );
    assert!(
        ndp.is_empty(),
        "the kernel answered NDP for an address on lo: {}",
        ndp.len()
    );

    let (tx, rx) = mpsc::channel::<Cmd>();
    let (ready_tx, ready) = mpsc::channel::<()>();
    let responder = node.thread(move || {
        let gate = Arc::new(Gate::default());
        let r =
            Responder::start(Arc::clone(&gate), Arc::new(ProcSys::default())).expect("responder");
        let name = std::ffi::CString::new("eth0").expect("no NUL");
        // SAFETY: name is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        for ip in [IpAddr::V4(FIP4), IpAddr::V6(fip6())] {
            r.suppress_kernel(ip, "eth0").expect("suppress");
            r.hold(ip, ifindex, Mac(node_mac));
        }
        let open = || gate.open_until(tokio::time::Instant::now() + Duration::from_secs(600));
        open();
        ready_tx.send(()).expect("ready");
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Cmd::Shut => gate.shut(),
                Cmd::Open => open(),
                Cmd::Die => break,
            }
            ready_tx.send(()).expect("ready");
        }
        let counts = r.counts();
        drop(r);
        counts
    });
    let step = |c: Cmd| {
        tx.send(c).expect("command");
        ready
            .recv_timeout(Duration::from_secs(5))
            .expect("responder answers");
    };
    ready
        .recv_timeout(Duration::from_secs(5))
        .expect("responder started");

    let (arp, ndp) = probe(&lan, 300);
    assert!(arp.len() > 50, "the responder answers ARP: {}", arp.len());
    assert!(ndp.len() > 50, "the responder answers NDP: {}", ndp.len());
    assert!(arp.iter().chain(&ndp).all(|r| r.mac == node_mac));

    step(Cmd::Shut);
    let (arp, ndp) = probe(&lan, 300);
    assert!(
        arp.is_empty() && ndp.is_empty(),
        "gate shut: {} ARP, {} NA",
        arp.len(),
        ndp.len()
    );

    step(Cmd::Open);
    let (arp, ndp) = probe(&lan, 200);
    assert!(!arp.is_empty() && !ndp.is_empty(), "gate reopened");

    // The process dies: its sockets close. The address stays on lo, the kernel stays silent.
    let t0 = Instant::now();
    tx.send(Cmd::Die).expect("command");
    let counts = responder.join().expect("responder thread");
    eprintln!("responder stopped after {:?}: {counts:?}", t0.elapsed());
    let (arp, ndp) = probe(&lan, 500);
    assert!(
        arp.is_empty() && ndp.is_empty(),
        "after death: {} ARP, {} NA",
        arp.len(),
        ndp.len()
    );
    assert!(node
        .ip(&["addr", "show", "dev", "lo"])
        .contains("192.0.2.77/32"));

    // Traffic to the address is still accepted (a client that knows the MAC).
    lan.hosts[0].ip(&[
        "neigh",
        "replace",
        "192.0.2.77",
        "lladdr",
        &node_mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        "dev",
        "eth0",
    ]);
    let receiver = node.thread(|| {
        let s = std::net::UdpSocket::bind("192.0.2.77:9999").expect("bind on the floating IP");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        s.recv(&mut buf).is_ok()
    });
    std::thread::sleep(Duration::from_millis(100));
    lan.hosts[0]
        .thread(|| {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            for _ in 0..20 {
                let _ = s.send_to(b"hello", "192.0.2.77:9999");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .join()
        .expect("sender");
    assert!(
        receiver.join().expect("receiver"),
        "traffic to the floating IP was accepted"
    );
}
