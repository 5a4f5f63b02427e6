//! `hearth dev` runs both roles: with `--config` its embedded coordinator (SQLite in the state
//! directory) leases the floating IPs to this machine's own session, which adds and announces
//! them; `/status` and `hearth status` show the session, the lease and the epochs; a SIGKILL
//! of the agent leaves no address behind (its fence guard removes them). In a throwaway
//! namespace with a client on a bridge.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::time::Duration;

use hearth_tests::netns::arp::ArpProbe;
use hearth_tests::netns::failover::FailoverLab;
use hearth_tests::netns::Lan;
use hearth_tests::{root_or_skip, tool_or_skip};

const CONFIG: &str = "floatingIPPools:\n  - {name: lan, cidrs: [10.8.0.16/28], interface: eth0}\n\
                      floatingIPs:\n  - {name: web, pool: lan}\n  - {name: db, pool: lan, address: 10.8.0.20}\n";

/// The leased floating IPs: /32s on `lo`, where the agent puts them (it answers ARP itself).
fn leased(ns: &hearth_tests::netns::NetNs) -> Vec<String> {
    ns.ip(&["-4", "-o", "addr", "show", "dev", "lo"])
        .lines()
        .filter_map(|l| {
            let a = l.split(" inet ").nth(1)?.split(' ').next()?;
            a.ends_with("/32").then(|| a.to_owned())
        })
        .collect()
}

#[test]
fn hearth_dev_holds_its_configured_floating_ips() {
    let test = "hearth_dev_holds_its_configured_floating_ips";
    if !root_or_skip(test) || !tool_or_skip(test, "ip") {
        return;
    }
    let lan = Lan::new("devfip", &[Some("10.8.0.2/24"), Some("10.8.0.100/24")]);
    let (host, client) = (&lan.hosts[0], &lan.hosts[1]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coordinator.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let state = dir.path().join("state");
    let mut dev = host.spawn_hearth(
        &[
            "dev",
            "--state-dir",
            &state.display().to_string(),
            "--node-name",
            "dev-node",
            "--status-addr",
            "127.0.0.1:9870",
            "--config",
            &config.display().to_string(),
        ],
        &dir.path().join("dev.log"),
    );
    let log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
    let held = FailoverLab::wait_for(Duration::from_secs(20), || {
        let l = leased(host);
        (l.len() == 2).then_some(l)
    });
    let Some(mut held) = held else {
        let _ = dev.kill();
        let _ = dev.wait();
        panic!("two floating IPs not held; log:\n{}", log());
    };
    held.sort();
    assert_eq!(held, vec!["10.8.0.17/32", "10.8.0.20/32"]);

    // The client's ARP for the requested address is answered by this machine.
    let probe = ArpProbe::start(
        client,
        "eth0",
        "10.8.0.100".parse().unwrap(),
        "10.8.0.20".parse().unwrap(),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(!probe.stop().is_empty(), "no ARP answer for 10.8.0.20");

    // The snapshot is shared for a second: poll until it shows the session with both IPs.
    let status = FailoverLab::wait_for(Duration::from_secs(5), || {
        let out = host.hearth(&["status", "--addr", "127.0.0.1:9870", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let c = &v["coordinator"]["data"];
        (c["session"] == "connected" && c["floating_ips"].as_array()?.len() == 2).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "no connected session with two floating IPs in /status; log:\n{}",
            log()
        )
    });
    let c = &status["coordinator"]["data"];
    assert_eq!(c["session"], "connected", "{c}");
    assert_eq!(c["lease_valid"], true, "{c}");
    let epochs: Vec<u64> = c["floating_ips"]
        .as_array()
        .expect("floating_ips")
        .iter()
        .map(|f| f["epoch"].as_u64().expect("epoch"))
        .collect();
    assert_eq!(epochs, vec![1, 1], "{c}");
    let table = host.hearth(&["status", "--addr", "127.0.0.1:9870"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("COORDINATOR") && table.contains("10.8.0.20"),
        "{table}"
    );

    // SIGKILL: the fence guard sees its pipe close and removes both addresses.
    let _ = dev.kill();
    let _ = dev.wait();
    let gone = FailoverLab::wait_for(Duration::from_secs(2), || {
        leased(host).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "addresses left after SIGKILL: {:?}",
        leased(host)
    );
}
