//! `hearth net apply` end to end, in throwaway network namespaces only: reconcile from empty,
//! re-apply with no netlink writes (watched with `ip monitor`), foreign objects left
//! untouched, invalid files rejected with exit 2, and `--dry-run`.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_tests::netns::NetNs;
use hearth_tests::{root_or_skip, tool_or_skip};

const FULL: &str = r#"
links:
  - {name: br-ext, kind: bridge, mtu: 1500, up: true}
  - {name: veth-a, kind: veth, peer: veth-b, master: br-ext, up: true}
  - {name: vx0, kind: vxlan, vni: 42, local: 192.0.2.10, port: 4789, dev: br-ext}
  - {name: mv0, kind: macvlan, parent: br-ext, mode: private}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
  - {address: "2001:db8::10/64", dev: br-ext, nodad: true}
routes:
  - {dst: 10.244.0.0/16, via: 192.0.2.1, dev: br-ext, table: 254, metric: 100}
  - {dst: 10.246.0.0/16, multipath: [{via: 192.0.2.1, weight: 2}, {via: 192.0.2.2}]}
  - {dst: 10.99.0.0/16, type: blackhole, table: 100}
  - {dst: "2001:db8:1::/64", via: "2001:db8::1", dev: br-ext}
  - {dst: 198.51.100.0/24, via: 10.0.0.1, dev: br-ext, onlink: true}
neighbours:
  - {address: 192.0.2.50, dev: br-ext, mac: "02:00:00:00:00:50"}
  - {address: 192.0.2.51, dev: br-ext, proxy: true}
rules:
  - {priority: 100, from: 10.9.0.0/16, table: 100}
  - {priority: 102, to: "2001:db8:5::/64", action: blackhole}
sysctls:
  net.ipv4.ip_forward: "1"
interfaceSysctls:
  br-ext: {ipv4.rp_filter: "2"}
"#;

fn ready(test: &str) -> bool {
    root_or_skip(test) && tool_or_skip(test, "ip")
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p: PathBuf = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn apply(ns: &NetNs, path: &str) -> (i32, String, String) {
    let out = ns.hearth(&["net", "apply", "--file", path]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sysctl(ns: &NetNs, path: &str) -> String {
    let out = ns
        .command("cat")
        .arg(format!("/proc/sys/{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn reconcile_from_empty_creates_every_kind_of_object() {
    if !ready("reconcile_from_empty") {
        return;
    }
    let (ns, dir) = (NetNs::new("apply"), tempfile::tempdir().unwrap());
    let (code, out, err) = apply(&ns, &file(&dir, "full.yaml", FULL));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("+ link br-ext (bridge, mtu 1500, up)"),
        "{out}"
    );

    let links = ns.ip(&["-d", "link", "show"]);
    assert_eq!(links.matches("alias hearth:managed").count(), 4, "{links}");
    // The undeclared peer is made with its pair, up, and left alone (not marked).
    let peer = ns.ip(&["-d", "link", "show", "veth-b"]);
    assert!(
        !peer.contains("hearth:managed") && peer.contains(",UP"),
        "{peer}"
    );
    assert!(ns.ip(&["link", "show", "veth-a"]).contains("master br-ext"));
    assert!(ns
        .ip(&["-d", "link", "show", "vx0"])
        .contains("vxlan id 42"));
    assert!(ns
        .ip(&["-d", "link", "show", "mv0"])
        .contains("macvlan mode private"));
    let v4 = ns.ip(&["route", "show", "table", "all", "proto", "72"]);
    for want in [
        "10.244.0.0/16 via 192.0.2.1 dev br-ext metric 100",
        "blackhole 10.99.0.0/16 table 100",
        "198.51.100.0/24 via 10.0.0.1 dev br-ext onlink",
        "nexthop via 192.0.2.1 dev br-ext weight 2",
    ] {
        assert!(v4.contains(want), "missing {want:?} in\n{v4}");
    }
    assert!(ns
        .ip(&["-6", "route", "show", "proto", "72"])
        .contains("2001:db8:1::/64 via 2001:db8::1 dev br-ext"));
    assert!(ns
        .ip(&["neigh", "show"])
        .contains("192.0.2.50 dev br-ext lladdr 02:00:00:00:00:50 PERMANENT proto 72"));
    assert!(ns
        .ip(&["neigh", "show", "proxy"])
        .contains("192.0.2.51 dev br-ext proxy proto 72"));
    assert!(ns
        .ip(&["rule"])
        .contains("100:\tfrom 10.9.0.0/16 lookup 100 proto 72"));
    assert!(ns
        .ip(&["-6", "rule"])
        .contains("102:\tfrom all to 2001:db8:5::/64 blackhole proto 72"));
    let addrs = ns.ip(&["addr", "show", "dev", "br-ext"]);
    assert!(
        addrs.contains("inet 192.0.2.10/24") && addrs.contains("inet6 2001:db8::10/64"),
        "{addrs}"
    );
    assert_eq!(sysctl(&ns, "net/ipv4/ip_forward"), "1");
    assert_eq!(sysctl(&ns, "net/ipv4/conf/br-ext/rp_filter"), "2");
}

#[test]
fn reapply_makes_no_netlink_writes() {
    if !ready("reapply_makes_no_netlink_writes") {
        return;
    }
    let (ns, dir) = (NetNs::new("idem"), tempfile::tempdir().unwrap());
    let path = file(&dir, "full.yaml", FULL);
    assert_eq!(apply(&ns, &path).0, 0);
    let mut monitor = Kill(
        std::process::Command::new("ip")
            .args([
                "-n",
                ns.name(),
                "monitor",
                "link",
                "address",
                "route",
                "neigh",
                "rule",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let events: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let reader = {
        let (events, stdout) = (Arc::clone(&events), monitor.0.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                events.lock().unwrap().push((Instant::now(), line));
            }
        })
    };
    // The kernel finishes bringing the new links up on its own (carrier, IPv6 link-local
    // routes, neighbour discovery between the veth ends); wait until it has been quiet.
    let settle = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let last = events.lock().unwrap().last().map(|(t, _)| *t);
        let quiet = last.is_none_or(|t| t.elapsed() > Duration::from_millis(1000));
        if (quiet && settle.elapsed() > Duration::from_secs(2))
            || settle.elapsed() > Duration::from_secs(15)
        {
            break;
        }
    }
    let start = Instant::now();
    let (code, out, err) = apply(&ns, &path);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("plan: 0 to add, 0 to change, 0 to remove"),
        "{out}"
    );
    assert!(out.contains("applied: 0 writes"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    let end = Instant::now();
    // Prove the monitor sees changes: one foreign route after the second apply.
    ns.ip(&["route", "add", "10.77.0.0/16", "dev", "br-ext"]);
    std::thread::sleep(Duration::from_millis(300));
    drop(monitor);
    let _ = reader.join();
    let events = events.lock().unwrap();
    // The kernel's own IPv6 autoconfiguration (link-local addresses and their local routes)
    // can land at any time after a link comes up; it is not a write of Hearth's.
    let kernel_own = |l: &str| l.contains("fe80::") || l.trim_start().starts_with("valid_lft");
    let during: Vec<&str> = events
        .iter()
        .filter(|(t, _)| *t >= start && *t < end)
        .map(|(_, l)| l.as_str())
        .filter(|l| !kernel_own(l))
        .collect();
    assert!(
        during.is_empty(),
        "netlink events during the re-apply: {during:#?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, l)| l.contains("10.77.0.0/16 dev br-ext")),
        "the monitor saw nothing at all"
    );
}

/// Kills and reaps a helper process however the test ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything about the foreign objects, as `ip` prints them.
fn foreign_view(ns: &NetNs) -> String {
    [
        ns.ip(&["link", "show", "foreign0"]),
        ns.ip(&["addr", "show", "dev", "foreign0"]),
        ns.ip(&["route", "show", "table", "all", "dev", "foreign0"]),
        ns.ip(&["route", "show", "table", "60"]),
        ns.ip(&["neigh", "show", "dev", "foreign0"]),
        ns.ip(&["rule"])
            .lines()
            .filter(|l| !l.contains("proto 72"))
            .collect::<Vec<_>>()
            .join("\n"),
    ]
    .join("\n")
}

#[test]
fn foreign_objects_are_left_untouched() {
    if !ready("foreign_objects_are_left_untouched") {
        return;
    }
    let (ns, dir) = (NetNs::new("foreign"), tempfile::tempdir().unwrap());
    ns.ip(&["link", "add", "foreign0", "type", "bridge"]);
    ns.ip(&["link", "set", "foreign0", "up", "mtu", "1400"]);
    ns.ip(&["addr", "add", "203.0.113.1/24", "dev", "foreign0"]);
    ns.ip(&[
        "route",
        "add",
        "10.50.0.0/16",
        "via",
        "203.0.113.2",
        "dev",
        "foreign0",
        "proto",
        "static",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.52.0.0/16",
        "dev",
        "foreign0",
        "table",
        "60",
    ]);
    ns.ip(&[
        "neigh",
        "add",
        "203.0.113.9",
        "lladdr",
        "02:00:00:00:00:09",
        "dev",
        "foreign0",
    ]);
    ns.ip(&[
        "rule",
        "add",
        "pref",
        "500",
        "from",
        "10.60.0.0/16",
        "lookup",
        "60",
    ]);
    let before = foreign_view(&ns);

    // The file wants a link named foreign0 and a route with the key of a foreign route.
    let conflicting = FULL
        .replace("routes:\n", "routes:\n  - {dst: 10.50.0.0/16, dev: br-ext}\n  - {dst: 10.55.0.0/16, dev: foreign0}\n")
        .replace("links:\n", "links:\n  - {name: foreign0, kind: bridge, mtu: 9000}\n");
    let (code, out, err) = apply(&ns, &file(&dir, "conflict.yaml", &conflicting));
    assert_eq!(code, 1, "conflicts are an error\n{out}\n{err}");
    assert!(out.contains("! link foreign0 (bridge, mtu 9000, up): a bridge link with this name exists without the hearth:managed alias; left alone"), "{out}");
    assert!(
        out.contains(
            "! route 10.50.0.0/16 dev br-ext table 254 metric 0: an object Hearth does not own"
        ),
        "{out}"
    );
    assert!(
        err.contains("blocked by objects Hearth does not own"),
        "{err}"
    );
    // A Hearth route through a foreign link is fine: the route is Hearth's, the link is not.
    assert!(ns
        .ip(&["route", "show", "proto", "72"])
        .contains("10.55.0.0/16 dev foreign0"));
    assert!(
        ns.ip(&["route", "show", "proto", "72"])
            .contains("10.244.0.0/16"),
        "everything else was applied"
    );

    // Removing everything removes Hearth's objects only.
    let (code, out, err) = apply(&ns, &file(&dir, "empty.yaml", ""));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("- link br-ext"), "{out}");
    assert_eq!(ns.ip(&["route", "show", "table", "all", "proto", "72"]), "");
    assert_eq!(ns.ip(&["neigh", "show", "proxy"]), "");
    assert!(!ns.ip(&["-d", "link", "show"]).contains("hearth:managed"));
    assert_eq!(foreign_view(&ns), before, "foreign objects changed");
}

#[test]
fn invalid_files_exit_2_name_the_field_and_change_nothing() {
    if !ready("invalid_files") {
        return;
    }
    let (ns, dir) = (NetNs::new("invalid"), tempfile::tempdir().unwrap());
    let cases = [
        ("links:\n  - {name: br0, kind: tap}\n", "links[0].kind"),
        (
            "links:\n  - {name: br0, kind: bridge}\nroutes:\n  - {dst: 10.0.0.1/8, dev: br0}\n",
            "routes[0].dst",
        ),
        (
            "routes:\n  - {dst: 10.0.0.0/8, via: \"2001:db8::1\"}\n",
            "routes[0].via",
        ),
        (
            "neighbours:\n  - {address: 10.0.0.1, dev: br0}\n",
            "neighbours[0].mac",
        ),
        ("sysctls:\n  kernel.panic: \"1\"\n", "sysctls.kernel.panic"),
        ("links: [\n", "while parsing"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let (code, out, err) = apply(&ns, &file(&dir, &format!("bad{i}.yaml"), text));
        assert_eq!(code, 2, "{text:?}\n{out}\n{err}");
        assert!(err.contains(field), "{text:?}: {err}");
    }
    let out = ns.hearth(&["net", "apply", "--file", "/nonexistent/desired.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(ns.ip(&["-o", "link", "show"]).lines().count(), 1, "only lo");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    if !ready("dry_run") {
        return;
    }
    let (ns, dir) = (NetNs::new("dry"), tempfile::tempdir().unwrap());
    let out = ns.hearth(&[
        "net",
        "apply",
        "--dry-run",
        "--file",
        &file(&dir, "full.yaml", FULL),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("+ route 10.244.0.0/16 via 192.0.2.1 dev br-ext table 254 metric 100"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing changed"));
    assert_eq!(ns.ip(&["-o", "link", "show"]).lines().count(), 1, "only lo");
    assert_eq!(ns.ip(&["route", "show", "table", "all", "proto", "72"]), "");
}

fn dry(ns: &NetNs, path: &str) -> (i32, String, String) {
    let out = ns.hearth(&["net", "apply", "--dry-run", "--file", path]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The plan lines of an apply's output (the `+`, `~` and `-` lines).
fn plan_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with(['+', '~', '-']))
        .collect()
}

#[test]
fn a_missing_device_is_refused_with_field_value_and_line_also_in_a_dry_run() {
    if !ready("a_missing_device_is_refused") {
        return;
    }
    let (ns, dir) = (NetNs::new("nodev"), tempfile::tempdir().unwrap());
    let text = "links:\n  - {name: br-ext, kind: bridge}\naddresses:\n  - {address: 192.0.2.1/24, dev: br-ext}\n  - {address: 192.0.2.2/24, dev: eth9}\n";
    let path = file(&dir, "nodev.yaml", text);
    for (code, out, err) in [dry(&ns, &path), apply(&ns, &path)] {
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(
            err.contains("addresses[1].dev: eth9: no such interface") && err.contains("(line 5)"),
            "{err}"
        );
    }
    assert_eq!(ns.ip(&["-o", "link", "show"]).lines().count(), 1, "only lo");
}

#[test]
fn failed_writes_are_not_counted_as_applied() {
    if !ready("failed_writes_are_not_counted") {
        return;
    }
    let (ns, dir) = (NetNs::new("fail"), tempfile::tempdir().unwrap());
    // The kernel refuses a route via a gateway that is not on the link.
    let text = "links:\n  - {name: br-ext, kind: bridge}\naddresses:\n  - {address: 192.0.2.1/24, dev: br-ext}\n\
                routes:\n  - {dst: 10.5.0.0/16, via: 198.18.0.1, dev: br-ext}\n";
    let (code, out, err) = apply(&ns, &file(&dir, "fail.yaml", text));
    assert_ne!(code, 0, "{out}\n{err}");
    let applied = out
        .lines()
        .find(|l| l.starts_with("applied:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        applied.ends_with(" writes, 1 failed") && applied.contains(" of "),
        "{applied}"
    );
}

#[test]
fn floating_ip_changes_are_planned_counted_and_the_same_in_a_dry_run() {
    if !ready("floating_ip_changes_are_counted") {
        return;
    }
    let (ns, dir) = (NetNs::new("fipc"), tempfile::tempdir().unwrap());
    let with = "links:\n  - {name: br-ext, kind: bridge}\nfloatingIPs:\n  - {address: 192.0.2.77, dev: br-ext}\n";
    let (code, out, err) = apply(&ns, &file(&dir, "with.yaml", with));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("+ floating IP 192.0.2.77 dev br-ext"), "{out}");
    assert!(out.contains("plan: 2 to add,"), "{out}");
    // Withdrawing only the floating IP: a removal, and a write.
    let without = file(
        &dir,
        "without.yaml",
        "links:\n  - {name: br-ext, kind: bridge}\n",
    );
    let (code, out, err) = apply(&ns, &without);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("plan: 0 to add, 0 to change, 1 to remove"),
        "{out}"
    );
    assert!(out.contains("applied: 1 writes"), "{out}");
    assert!(!ns
        .ip(&["addr", "show", "dev", "br-ext"])
        .contains("192.0.2.77"));

    // An empty file takes the link and, with it, the floating IP on it: the dry run and the
    // real apply list the same removals.
    apply(&ns, &file(&dir, "with2.yaml", with));
    let empty = file(&dir, "empty.yaml", "");
    let (code, planned, err) = dry(&ns, &empty);
    assert_eq!(code, 0, "{planned}\n{err}");
    let (code, done, err) = apply(&ns, &empty);
    assert_eq!(code, 0, "{done}\n{err}");
    assert_eq!(plan_lines(&planned), plan_lines(&done));
    assert!(
        plan_lines(&done).contains(&"- floating IP 192.0.2.77 dev br-ext"),
        "{done}"
    );
}
