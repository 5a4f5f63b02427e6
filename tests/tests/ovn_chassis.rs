//! The OVN node configuration against the real Debian daemons (ovsdb-server, ovs-vswitchd with
//! the userspace datapath, ovn-northd, ovn-controller), started by [`hearth_tests::ovs`] in a
//! temp dir, with ovs-vswitchd and ovn-controller in a throwaway namespace.
//!
//! (a) `hearth net apply` configures a fresh database: ovs-vsctl and ovn-sbctl read back
//! exactly what was asked, and the join interface gets its address and routes over netlink.
//! (c) After an ovsdb-server restart, a rerun converges with no duplicate rows.
//! (d) Foreign external_ids and bridges stay untouched, also when Hearth removes its own.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::Path;

use hearth_tests::ovs::{tools_or_skip, OvsLab, NB_SCHEMA, SB_SCHEMA, VSWITCH_SCHEMA};

struct Node {
    lab: OvsLab,
    ns: usize,
    local: String,
    sb: String,
}

fn start(tag: &str) -> Node {
    let mut lab = OvsLab::new();
    let ns = lab.netns(tag);
    lab.ns(ns).ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    // The encap IP must be an address of this node.
    lab.ns(ns).ip(&["addr", "add", "10.0.0.11/32", "dev", "lo"]);
    let local = lab.ovsdb("node", VSWITCH_SCHEMA, None);
    let sb = lab.ovsdb("sb", SB_SCHEMA, None);
    let nb = lab.ovsdb("nb", NB_SCHEMA, None);
    lab.northd(&nb, &sb);
    lab.vswitchd("vswitchd", &local, ns);
    Node { lab, ns, local, sb }
}

fn file(n: &Node, mappings: bool) -> String {
    let local = n.local.clone();
    let sb = n.sb.clone();
    let maps = if mappings {
        "bridgeMappings: {physnet1: br-ext}\n  uplinks: {br-ext: eth1}\n  "
    } else {
        ""
    };
    format!(
        "ovn:\n  ovsdb: {local}\n  systemId: node-a\n  hostname: host-a\n  remote: {sb}\n  encapType: geneve\n  encapIP: 10.0.0.11\n  \
         {maps}datapathType: netdev\n  monitorAll: true\n  podCIDRs: [10.244.0.0/16]\n  serviceCIDRs: [10.96.0.0/12]\n  \
         join: {{name: ovn0, mac: \"0a:00:00:64:00:02\", address: 100.64.0.2/16, gateway: 100.64.0.1, mtu: 1400}}\n"
    )
}

fn apply(n: &Node, text: &str) -> String {
    let path = n.lab.dir().join("net.yaml");
    std::fs::write(&path, text).unwrap();
    let out = n.lab.ns(n.ns).hearth(&[
        "net",
        "apply",
        "--file",
        path.to_str().unwrap(),
        "--ovsdb",
        &n.local,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hearth net apply: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn vsctl(n: &Node, args: &[&str]) -> String {
    n.lab.ctl("ovs-vsctl", &n.local, args)
}

fn count(n: &Node, table: &str) -> usize {
    vsctl(n, &["--bare", "--columns=_uuid", "list", table])
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

fn ready() -> bool {
    hearth_tests::root_or_skip("ovn_chassis")
        && tools_or_skip("ovn_chassis")
        && Path::new(VSWITCH_SCHEMA).exists()
}

#[test]
fn fresh_database_reads_back_and_foreign_state_is_kept() {
    if !ready() {
        return;
    }
    let mut n = start("ovn-a");
    // (d) foreign state, written before Hearth runs.
    vsctl(&n, &["init"]);
    vsctl(
        &n,
        &[
            "add-br",
            "br-foreign",
            "--",
            "set",
            "Bridge",
            "br-foreign",
            "datapath_type=netdev",
        ],
    );
    vsctl(
        &n,
        &[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:foreign-key=keep",
            "external_ids:ovn-cms-options=x",
        ],
    );
    let foreign_uuid = vsctl(&n, &["get", "Bridge", "br-foreign", "_uuid"]);
    let (local, ns) = (n.local.clone(), n.ns);
    n.lab.controller("controller", &local, ns);

    let t0 = std::time::Instant::now();
    let plan = apply(&n, &file(&n, true));
    let applied = t0.elapsed();
    n.lab.wait_until("chassis registered and ovn0 up", 20, || {
        n.lab.ctl(
            "ovn-sbctl",
            &n.sb,
            &["--bare", "--columns=name", "list", "Chassis"],
        ) == "node-a"
            && n.lab
                .ns(n.ns)
                .ip(&["-o", "link", "show", "ovn0"])
                .contains(",UP")
    });
    println!(
        "BENCH hearth net apply to chassis registered and ovn0 up: apply={applied:?} ready={:?}",
        t0.elapsed()
    );
    // ovn-controller may have made br-int first (as `system`): Hearth adopts it by name.
    assert!(
        plan.contains("~ ovs bridge br-int: datapath_type system -> netdev"),
        "{plan}"
    );

    // (a) exactly what was asked.
    let get = |k: &str| {
        vsctl(
            &n,
            &["get", "Open_vSwitch", ".", &format!("external_ids:{k}")],
        )
        .trim_matches('"')
        .to_owned()
    };
    for (k, v) in [
        ("system-id", "node-a"),
        ("hostname", "host-a"),
        ("ovn-remote", n.sb.as_str()),
        ("ovn-encap-type", "geneve"),
        ("ovn-encap-ip", "10.0.0.11"),
        ("ovn-encap-csum", "true"),
        ("ovn-bridge-mappings", "physnet1:br-ext"),
        ("ovn-remote-probe-interval", "10000"),
        ("ovn-openflow-probe-interval", "180"),
        ("ovn-monitor-all", "true"),
    ] {
        assert_eq!(get(k), v, "external_ids:{k}");
    }
    assert_eq!(vsctl(&n, &["list-br"]), "br-ext\nbr-foreign\nbr-int");
    assert_eq!(
        vsctl(&n, &["get", "Bridge", "br-int", "datapath_type"]),
        "netdev"
    );
    assert_eq!(vsctl(&n, &["list-ports", "br-ext"]), "eth1");
    assert!(vsctl(&n, &["list-ports", "br-int"])
        .lines()
        .any(|p| p == "ovn0"));
    assert_eq!(
        vsctl(
            &n,
            &["get", "Interface", "ovn0", "type", "mac", "mtu_request"]
        ),
        "internal\n\"0a:00:00:64:00:02\"\n1400"
    );
    let sb = n.sb.clone();
    n.lab.wait_until("chassis node-a in the SB DB", 20, || {
        n.lab.ctl(
            "ovn-sbctl",
            &sb,
            &["--bare", "--columns=name", "list", "Chassis"],
        ) == "node-a"
    });
    assert_eq!(
        n.lab.ctl(
            "ovn-sbctl",
            &sb,
            &["--bare", "--columns=ip", "list", "Encap"]
        ),
        "10.0.0.11"
    );
    assert_eq!(
        n.lab.ctl(
            "ovn-sbctl",
            &sb,
            &["--bare", "--columns=type", "list", "Encap"]
        ),
        "geneve"
    );
    // The join interface over netlink: MAC, MTU, address, routes via the gateway, rp_filter.
    let link = n.lab.ns(n.ns).ip(&["-o", "link", "show", "ovn0"]);
    assert!(
        link.contains("mtu 1400") && link.contains("0a:00:00:64:00:02"),
        "{link}"
    );
    let addr = n.lab.ns(n.ns).ip(&["-o", "addr", "show", "dev", "ovn0"]);
    assert!(addr.contains("100.64.0.2/16"), "{addr}");
    let routes = n.lab.ns(n.ns).ip(&["route", "show", "dev", "ovn0"]);
    assert!(
        routes.contains("10.244.0.0/16 via 100.64.0.1")
            && routes.contains("10.96.0.0/12 via 100.64.0.1"),
        "{routes}"
    );

    // (d) the foreign key, the foreign-owned OVN key and the foreign bridge are untouched...
    assert_eq!(get("foreign-key"), "keep");
    assert_eq!(get("ovn-cms-options"), "x");
    assert_eq!(
        vsctl(&n, &["get", "Bridge", "br-foreign", "_uuid"]),
        foreign_uuid
    );
    // ...also when Hearth removes its own provider bridge.
    let plan = apply(&n, &file(&n, false));
    assert!(plan.contains("- ovs bridge br-ext"), "{plan}");
    assert_eq!(vsctl(&n, &["list-br"]), "br-foreign\nbr-int");
    assert_eq!(
        vsctl(&n, &["get", "Bridge", "br-foreign", "_uuid"]),
        foreign_uuid
    );
    assert_eq!(get("foreign-key"), "keep");
    let ids = vsctl(&n, &["get", "Open_vSwitch", ".", "external_ids"]);
    assert!(!ids.contains("ovn-bridge-mappings"), "{ids}");
}

#[test]
fn restarts_converge_without_duplicates() {
    if !ready() {
        return;
    }
    let mut n = start("ovn-c");
    let text = file(&n, true);
    apply(&n, &text);
    let rows = |n: &Node| (count(n, "Bridge"), count(n, "Port"), count(n, "Interface"));
    let before = rows(&n);
    assert_eq!(
        before,
        (2, 4, 4),
        "br-int, br-ext, their local ports, ovn0 and eth1"
    );

    // (c) restart ovsdb-server (the database file persists), then run the agent again.
    n.lab.stop("node");
    n.local = n.lab.ovsdb("node", VSWITCH_SCHEMA, None);
    let plan = apply(&n, &text);
    assert!(
        !plan.contains("ovs "),
        "nothing to change after a restart: {plan}"
    );
    assert_eq!(rows(&n), before);
    // A drifted key and a deleted join port are repaired in place, once.
    vsctl(
        &n,
        &[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-encap-ip=10.9.9.9",
        ],
    );
    vsctl(&n, &["del-port", "br-int", "ovn0"]);
    let plan = apply(&n, &text);
    assert!(
        plan.contains("ovn-encap-ip=10.0.0.11 (was 10.9.9.9)")
            && plan.contains("+ ovs port ovn0 on br-int")
            && plan.contains("plan: 1 to add, 1 to change, 0 to remove"),
        "{plan}"
    );
    // A changed MTU: the plan line says what changes, and the change is counted.
    vsctl(&n, &["set", "Interface", "ovn0", "mtu_request=1500"]);
    let plan = apply(&n, &text);
    assert!(
        plan.contains("~ ovs interface ovn0: mtu 1500 -> 1400")
            && plan.contains("plan: 0 to add, 1 to change, 0 to remove")
            && plan.contains("applied: 1 writes"),
        "{plan}"
    );
    apply(&n, &text);
    assert_eq!(rows(&n), before);
    assert_eq!(
        vsctl(
            &n,
            &["--bare", "--columns=name", "find", "Port", "name=ovn0"]
        ),
        "ovn0"
    );
}

/// The long-running agent (`hearth net run`, what `hearth node --network` runs) keeps the
/// chassis converged: it configures a fresh database, and after an ovsdb-server restart and a
/// deleted join port it puts the port back, with its address and routes.
#[test]
fn running_agent_converges_and_repairs() {
    if !ready() {
        return;
    }
    let mut n = start("ovn-r");
    // As ovs-ctl does at boot. (An ovn-controller started on a database without the root row
    // did not notice the row Hearth created later within 20 s here.)
    vsctl(&n, &["init"]);
    let (local, ns) = (n.local.clone(), n.ns);
    n.lab.controller("controller", &local, ns);
    let path = n.lab.dir().join("net.yaml");
    std::fs::write(&path, file(&n, true)).unwrap();
    let log = n.lab.dir().join("agent.log");
    let t0 = std::time::Instant::now();
    let mut agent = n.lab.ns(ns).spawn_hearth(
        &[
            "net",
            "run",
            "--file",
            path.to_str().unwrap(),
            "--resync-interval",
            "1s",
        ],
        &log,
    );
    let joined = |n: &Node| {
        n.lab
            .ns(n.ns)
            .ip_output(&["-o", "addr", "show", "dev", "ovn0"])
            .stdout
            .windows(13)
            .any(|w| w == b"100.64.0.2/16")
            && String::from_utf8_lossy(
                &n.lab
                    .ns(n.ns)
                    .ip_output(&["route", "show", "dev", "ovn0"])
                    .stdout,
            )
            .contains("10.244.0.0/16 via 100.64.0.1")
    };
    let registered = |n: &Node| {
        n.lab.ctl(
            "ovn-sbctl",
            &n.sb,
            &["--bare", "--columns=name", "list", "Chassis"],
        ) == "node-a"
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        n.lab
            .wait_until("the agent configures the chassis and ovn0", 20, || {
                registered(&n) && joined(&n)
            });
        println!(
            "BENCH hearth net run start to chassis registered and ovn0 addressed: {:?}",
            t0.elapsed()
        );
        n.lab.stop("node");
        n.local = n.lab.ovsdb("node", VSWITCH_SCHEMA, None);
        vsctl(&n, &["del-port", "br-int", "ovn0"]);
        n.lab.wait_until("ovn0 is back", 20, || {
            vsctl(
                &n,
                &["--bare", "--columns=name", "find", "Port", "name=ovn0"],
            ) == "ovn0"
                && joined(&n)
        });
        assert_eq!(
            (
                count(&n, "Bridge"),
                count(&n, "Port"),
                count(&n, "Interface")
            ),
            (2, 4, 4)
        );
    }));
    let _ = agent.kill(); // the PID this test started
    let _ = agent.wait();
    if let Err(e) = result {
        eprintln!(
            "agent log:\n{}\nchassis: {:?}\naddr: {}\nroutes: {}\ncontroller: {}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            n.lab.ctl_output(
                "ovn-sbctl",
                &n.sb,
                &["--bare", "--columns=name", "list", "Chassis"]
            ),
            String::from_utf8_lossy(
                &n.lab
                    .ns(n.ns)
                    .ip_output(&["-o", "addr", "show", "dev", "ovn0"])
                    .stdout
            ),
            String::from_utf8_lossy(
                &n.lab
                    .ns(n.ns)
                    .ip_output(&["route", "show", "dev", "ovn0"])
                    .stdout
            ),
            n.lab.log("controller"),
        );
        std::panic::resume_unwind(e);
    }
}

/// Removing the `ovn:` section removes what Hearth made for it (its bridges, ovn0 and the
/// external_ids it set) and nothing else; a wrong encapIP is refused before anything changes.
#[test]
fn removing_the_section_removes_what_hearth_made() {
    if !ready() {
        return;
    }
    let n = start("ovn-rm");
    vsctl(&n, &["init"]);
    vsctl(
        &n,
        &[
            "add-br",
            "br-foreign",
            "--",
            "set",
            "Bridge",
            "br-foreign",
            "datapath_type=netdev",
        ],
    );
    vsctl(
        &n,
        &["set", "Open_vSwitch", ".", "external_ids:foreign-key=keep"],
    );
    // An encap IP that is not this node's names the field, the value and the line.
    let path = n.lab.dir().join("net.yaml");
    std::fs::write(&path, file(&n, true).replace("10.0.0.11", "10.0.0.99")).unwrap();
    let out = n.lab.ns(n.ns).hearth(&[
        "net",
        "apply",
        "--dry-run",
        "--file",
        path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ovn.encapIP: 10.0.0.99: not an address of this node")
            && err.contains("(line 7)"),
        "{err}"
    );

    apply(&n, &file(&n, true));
    assert_eq!(vsctl(&n, &["list-br"]), "br-ext\nbr-foreign\nbr-int");
    let plan = apply(&n, "");
    for line in [
        "- ovs bridge br-ext",
        "- ovs bridge br-int",
        "-ovn-encap-ip (was 10.0.0.11)",
    ] {
        assert!(plan.contains(line), "{line} in\n{plan}");
    }
    assert_eq!(vsctl(&n, &["list-br"]), "br-foreign");
    let ids = vsctl(&n, &["get", "Open_vSwitch", ".", "external_ids"]);
    for gone in [
        "system-id",
        "ovn-remote",
        "ovn-encap-ip",
        "hearth-keys",
        "ovn-bridge-mappings",
    ] {
        assert!(!ids.contains(gone), "{gone} in {ids}");
    }
    assert!(ids.contains("foreign-key=keep"), "{ids}");
    assert_eq!(n.lab.ns(n.ns).ip(&["route", "show", "proto", "72"]), "");
    let again = apply(&n, "");
    assert!(!again.contains("ovs "), "{again}");
}

/// `hearth net run` repairs OVSDB drift when the monitor's update arrives (the resync is a
/// minute away), and removes what it made when the section goes from the file.
#[test]
fn running_agent_repairs_ovsdb_drift_at_once_and_cleans_up_a_removed_section() {
    if !ready() {
        return;
    }
    let mut n = start("ovn-w");
    vsctl(&n, &["init"]);
    let path = n.lab.dir().join("net.yaml");
    std::fs::write(&path, file(&n, true)).unwrap();
    let log = n.lab.dir().join("agent.log");
    let mut agent = n.lab.ns(n.ns).spawn_hearth(
        &[
            "net",
            "run",
            "--file",
            path.to_str().unwrap(),
            "--resync-interval",
            "60s",
        ],
        &log,
    );
    let encap = |n: &Node| {
        let ids = vsctl(n, &["get", "Open_vSwitch", ".", "external_ids"]);
        ids.split(", ")
            .find_map(|kv| kv.trim_matches(['{', '}']).strip_prefix("ovn-encap-ip="))
            .unwrap_or_default()
            .to_owned()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        n.lab
            .wait_until("the agent configures the chassis", 20, || {
                encap(&n).trim_matches('"') == "10.0.0.11"
            });
        std::thread::sleep(std::time::Duration::from_millis(500));
        vsctl(
            &n,
            &[
                "set",
                "Open_vSwitch",
                ".",
                "external_ids:ovn-encap-ip=10.9.9.9",
            ],
        );
        let t0 = std::time::Instant::now();
        n.lab.wait_until("the drifted encap IP is repaired", 5, || {
            encap(&n).trim_matches('"') == "10.0.0.11"
        });
        println!(
            "BENCH ovn-encap-ip drift repaired by the monitor in {:?}",
            t0.elapsed()
        );
        std::fs::write(&path, "").unwrap();
        n.lab
            .wait_until("the removed section's bridges are gone", 10, || {
                vsctl(&n, &["list-br"]).is_empty()
            });
        let ids = vsctl(&n, &["get", "Open_vSwitch", ".", "external_ids"]);
        assert!(!ids.contains("ovn-encap-ip"), "{ids}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("Hearth's OVS configuration removed"),
            "{text}"
        );
    }));
    let _ = agent.kill(); // the PID this test started
    let _ = agent.wait();
    n.local.clear();
    if let Err(e) = result {
        eprintln!(
            "agent log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::panic::resume_unwind(e);
    }
}
