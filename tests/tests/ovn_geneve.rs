//! (b) Two "node" namespaces joined by a Linux bridge in a third ("fabric"); each runs its own
//! ovsdb-server, ovs-vswitchd (userspace datapath) and ovn-controller, and one ovn-northd
//! serves NB and SB. `hearth net apply` configures both chassis with a join port bound to a
//! logical switch port; the join addresses ping each other over Geneve.
//!
//! The kernel geneve link type is missing here; the userspace datapath tunnels itself, which
//! needs the underlay address on an OVS bridge (`br-phy`, set up by the test as a foreign
//! bridge Hearth must leave alone).
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::process::Command;

use hearth_tests::ovs::{tools_or_skip, OvsLab, NB_SCHEMA, SB_SCHEMA, VSWITCH_SCHEMA};

fn node_file(local: &str, sb: &str, name: &str, encap: &str, join: &str, mac: &str) -> String {
    format!(
        "ovn:\n  ovsdb: {local}\n  systemId: {name}\n  remote: {sb}\n  encapIP: {encap}\n  datapathType: netdev\n  \
         join: {{mac: \"{mac}\", address: {join}/16, gateway: 100.64.0.1, ifaceId: {name}}}\n"
    )
}

#[test]
fn two_chassis_ping_over_geneve() {
    if !(hearth_tests::root_or_skip("ovn_geneve")
        && tools_or_skip("ovn_geneve")
        && hearth_tests::tool_or_skip("ovn_geneve", "ping"))
    {
        return;
    }
    let mut lab = OvsLab::new();
    let fabric = lab.netns("ovn-fab");
    lab.ns(fabric).ip(&["link", "add", "br0", "type", "bridge"]);
    lab.ns(fabric).ip(&["link", "set", "br0", "up"]);
    let sb = lab.ovsdb("sb", SB_SCHEMA, None);
    let nb = lab.ovsdb("nb", NB_SCHEMA, None);
    lab.northd(&nb, &sb);
    lab.ctl("ovn-nbctl", &nb, &["ls-add", "join"]);
    // The join gateway: a logical router port 100.64.0.1 on the join switch.
    for args in [
        &["lr-add", "ovn-cluster"][..],
        &[
            "lrp-add",
            "ovn-cluster",
            "rtr-join",
            "0a:00:00:64:00:01",
            "100.64.0.1/16",
        ],
        &[
            "lsp-add",
            "join",
            "join-rtr",
            "--",
            "lsp-set-type",
            "join-rtr",
            "router",
            "--",
            "lsp-set-addresses",
            "join-rtr",
            "router",
            "--",
            "lsp-set-options",
            "join-rtr",
            "router-port=rtr-join",
        ],
    ] {
        lab.ctl("ovn-nbctl", &nb, args);
    }
    let nodes = [
        ("node-a", "10.0.0.11", "100.64.0.2", "0a:00:00:64:00:02"),
        ("node-b", "10.0.0.12", "100.64.0.3", "0a:00:00:64:00:03"),
    ];
    let mut spaces = Vec::new();
    for (i, (name, encap, join, mac)) in nodes.iter().enumerate() {
        let ns = lab.netns(&format!("ovn-n{i}"));
        let ns_name = lab.ns(ns).name().to_owned();
        let fab_end = format!("fab{i}");
        lab.ns(fabric).ip(&[
            "link", "add", &fab_end, "type", "veth", "peer", "name", "eth0", "netns", &ns_name,
        ]);
        lab.ns(fabric)
            .ip(&["link", "set", &fab_end, "master", "br0", "up"]);
        let local = lab.ovsdb(&format!("{name}-db"), VSWITCH_SCHEMA, None);
        lab.vswitchd(&format!("{name}-vswitchd"), &local, ns);
        // The underlay: eth0 on br-phy, the encap IP on br-phy (userspace tunnelling).
        lab.ctl("ovs-vsctl", &local, &["init"]);
        lab.ctl(
            "ovs-vsctl",
            &local,
            &[
                "add-br",
                "br-phy",
                "--",
                "set",
                "Bridge",
                "br-phy",
                "datapath_type=netdev",
                "--",
                "add-port",
                "br-phy",
                "eth0",
            ],
        );
        lab.wait_until("br-phy tap", 10, || {
            lab.ns(ns)
                .ip_output(&["link", "show", "br-phy"])
                .status
                .success()
        });
        lab.ns(ns).ip(&["link", "set", "eth0", "up"]);
        lab.ns(ns).ip(&["link", "set", "br-phy", "up"]);
        lab.ns(ns)
            .ip(&["addr", "add", &format!("{encap}/24"), "dev", "br-phy"]);
        lab.controller(&format!("{name}-controller"), &local, ns);
        lab.ctl(
            "ovn-nbctl",
            &nb,
            &[
                "lsp-add",
                "join",
                name,
                "--",
                "lsp-set-addresses",
                name,
                &format!("{mac} {join}"),
            ],
        );
        let path = lab.dir().join(format!("{name}.yaml"));
        std::fs::write(&path, node_file(&local, &sb, name, encap, join, mac)).unwrap();
        let out = lab
            .ns(ns)
            .hearth(&["net", "apply", "--file", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        spaces.push(ns);
    }
    lab.wait_until("both chassis and port bindings", 30, || {
        ["node-a", "node-b"]
            .iter()
            .all(|n| lab.ctl("ovn-nbctl", &nb, &["get", "Logical_Switch_Port", n, "up"]) == "true")
    });
    let chassis = lab.ctl(
        "ovn-sbctl",
        &sb,
        &["--bare", "--columns=name", "list", "Chassis"],
    );
    assert_eq!(
        chassis.lines().filter(|l| l.starts_with("node-")).count(),
        2,
        "{chassis}"
    );
    // Every chassis has installed the flows of the current NB configuration.
    lab.ctl("ovn-nbctl", &nb, &["--wait=hv", "--timeout=20", "sync"]);
    let a = lab.ns(spaces[0]).name().to_owned();
    let tunnels = lab.ctl(
        "ovs-vsctl",
        &format!("unix:{}", lab.dir().join("node-a-db.sock").display()),
        &["--bare", "--columns=name,type", "list", "Interface"],
    );
    assert!(tunnels.contains("geneve"), "{tunnels}");
    assert!(
        ping(&a, "100.64.0.3"),
        "ping 100.64.0.3 over geneve failed; interfaces: {tunnels}\n{}",
        lab.log("node-a-vswitchd")
    );
    // Health of node-a: the gateway answers (the ping fills the neighbour entry).
    assert!(ping(&a, "100.64.0.1"), "ping the join gateway");
    let spec_text = std::fs::read_to_string(lab.dir().join("node-a.yaml")).unwrap();
    let file = hearth_net::spec::parse(&spec_text).unwrap();
    let spec = hearth_net::ovn::OvnSpec::from_yaml(file.ovn.as_ref().unwrap()).unwrap();
    let view = IpView(a.clone());
    let health = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let sbc = hearth_net::ovsdb::Client::connect(&sb).await.unwrap();
            let local = hearth_net::ovsdb::Client::connect(&spec.ovsdb)
                .await
                .unwrap();
            hearth_net::ovn::health::check(&spec, &sbc, &local, &view, &view)
                .await
                .unwrap()
        });
    println!("health: {}", serde_json::to_string(&health).unwrap());
    assert!(health.problems.is_empty(), "{health:?}");
    assert!(health.chassis_registered && health.controller_connected && health.caught_up);
    assert!(health.encap_ip_matches && health.join_up && health.gateway_reachable);
    assert_eq!(health.cilium_mismatches, vec![]);
    // The same checks reach `/status` of a running node agent in that namespace.
    let status = node_status(&a, &lab.dir().join("node-a.yaml"), lab.dir());
    assert_eq!(status["ovn"]["state"], "ok", "{}", status["ovn"]);
    assert_eq!(status["ovn"]["data"]["chassisRegistered"], true);
    // The check reports a broken prerequisite. (An MTU change is not one to test with:
    // ovs-vswitchd puts mtu_request back on its own.)
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &a,
            "sysctl",
            "-qw",
            "net.ipv4.conf.ovn0.rp_filter=1",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let m = hearth_net::ovn::cilium::check(&spec, &view);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        (m[0].what.as_str(), m[0].want.as_str(), m[0].found.as_str()),
        ("net.ipv4.conf.ovn0.rp_filter", "0", "1")
    );
}

/// Runs `hearth node --network FILE --status-addr` inside `ns` and returns its `/status` JSON.
fn node_status(ns: &str, file: &std::path::Path, dir: &std::path::Path) -> serde_json::Value {
    let addr = "127.0.0.1:19810";
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(hearth_tests::hearth_bin())
            .args(args)
            .output()
            .unwrap()
    };
    Command::new("ip")
        .args(["-n", ns, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    let sock = format!("unix://{}", dir.join("node-a-csi.sock").display());
    let (state, kubelet) = (dir.join("node-a-state"), dir.join("node-a-kubelet"));
    let mut agent = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(hearth_tests::hearth_bin())
        .args(["node", "--node-name", "node-a", "--csi-endpoint", &sock])
        .arg("--state-dir")
        .arg(&state)
        .arg("--kubelet-dir")
        .arg(&kubelet)
        .arg("--network")
        .arg(file)
        .args(["--status-addr", addr])
        .stderr(std::fs::File::create(dir.join("node-a-agent.log")).unwrap())
        .spawn()
        .unwrap();
    let mut last = String::new();
    let mut found = serde_json::Value::Null;
    for _ in 0..100 {
        let out = run(&["status", "--addr", addr, "--output", "json"]);
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&last) {
            if v["ovn"]["state"] == "ok" {
                found = v;
                break;
            }
            found = v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        !found.is_null(),
        "no /status answer: {last}\n{}",
        std::fs::read_to_string(dir.join("node-a-agent.log")).unwrap_or_default()
    );
    found
}

/// The join view of a namespace, through `ip -n`.
struct IpView(String);

impl hearth_net::ovn::health::JoinView for IpView {
    fn link_up(&self, dev: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-o", "link", "show", dev])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.contains(",UP") || s.contains("<UP")
    }
    fn neighbour_complete(&self, dev: &str, ip: std::net::IpAddr) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.0, "neigh", "show", &ip.to_string(), "dev", dev])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        ["REACHABLE", "STALE", "DELAY", "PROBE"]
            .iter()
            .any(|st| s.contains(st))
    }
}

impl hearth_net::ovn::cilium::HostView for IpView {
    fn sysctl(&self, name: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "sysctl", "-n", name])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
    fn mtu(&self, dev: &str) -> Option<u32> {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-o", "link", "show", dev])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)?
            .parse()
            .ok()
    }
}

/// Pings `ip` from namespace `ns`, up to 20 one-second tries.
fn ping(ns: &str, ip: &str) -> bool {
    (0..20).any(|_| {
        Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
