//! Floating IPs in throwaway namespaces: two "node" namespaces and a client on one bridge.
//! The client sends a datagram every millisecond; after each move, its traffic must reach the
//! new node within 50 ms (IPv4 with gratuitous ARP, IPv6 with unsolicited NA). Also:
//! `hearth net run` announces a floating IP from its file and withdraws it when removed.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::time::{Duration, Instant};

use hearth_tests::netns::{Lan, MoveLab};
use hearth_tests::{root_or_skip, tool_or_skip};

fn moves_reach_the_new_node_within_50ms(v6: bool) {
    let lab = MoveLab::new(v6);
    lab.announce(1);
    assert!(
        lab.first_arrival(1, Instant::now(), Duration::from_secs(5))
            .is_some(),
        "client traffic never reached node A"
    );
    for i in 0..6 {
        let to = if i % 2 == 0 { 2 } else { 1 };
        let took = lab
            .move_to(to)
            .unwrap_or_else(|| panic!("move {i} to node {to}: no client packet within 5 s"));
        eprintln!("move {i} to node {to}: first client packet after {took:?}");
        assert!(
            took <= Duration::from_millis(50),
            "move {i}: {took:?} > 50 ms"
        );
    }
}

#[test]
fn ipv4_floating_ip_moves_within_50ms() {
    if root_or_skip("ipv4_floating_ip_moves") && tool_or_skip("ipv4_floating_ip_moves", "ip") {
        moves_reach_the_new_node_within_50ms(false);
    }
}

#[test]
fn ipv6_floating_ip_moves_within_50ms() {
    if root_or_skip("ipv6_floating_ip_moves") && tool_or_skip("ipv6_floating_ip_moves", "ip") {
        moves_reach_the_new_node_within_50ms(true);
    }
}

#[test]
fn hearth_net_run_announces_and_withdraws_a_floating_ip() {
    if !root_or_skip("hearth_net_run_announces") || !tool_or_skip("hearth_net_run_announces", "ip")
    {
        return;
    }
    let lan = Lan::new("fiprun", &[Some("192.0.2.100/24"), Some("192.0.2.1/24")]);
    let (client, node) = (&lan.hosts[0], &lan.hosts[1]);
    // The client believes the floating IP is somewhere else.
    client.ip(&[
        "neigh",
        "replace",
        "192.0.2.77",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "eth0",
        "nud",
        "stale",
    ]);
    let mac = node.ip(&["link", "show", "eth0"]);
    let mac = mac
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.yaml");
    std::fs::write(
        &path,
        "floatingIPs:\n  - {address: 192.0.2.77, dev: eth0}\n",
    )
    .unwrap();
    let mut child = node.spawn_hearth(
        &["net", "run", "--file", &path.display().to_string()],
        &dir.path().join("log"),
    );
    let start = Instant::now();
    let mut learned = false;
    while start.elapsed() < Duration::from_secs(5) && !learned {
        learned = client.ip(&["neigh", "show", "192.0.2.77"]).contains(&mac);
        std::thread::sleep(Duration::from_millis(5));
    }
    let addr = node.ip(&["addr", "show", "dev", "eth0"]);
    std::fs::write(&path, "floatingIPs: []\n").unwrap();
    let mut gone = false;
    let start2 = Instant::now();
    while start2.elapsed() < Duration::from_secs(3) && !gone {
        gone = !node
            .ip(&["addr", "show", "dev", "eth0"])
            .contains("192.0.2.77");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        learned,
        "the client never learned {mac} for 192.0.2.77:\n{}",
        client.ip(&["neigh"])
    );
    assert!(addr.contains("inet 192.0.2.77/32"), "{addr}");
    assert!(
        gone,
        "the floating IP was not withdrawn after the file dropped it"
    );
}
