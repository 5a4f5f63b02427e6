//! `hearth net run` in a throwaway namespace: it converges, repairs drift (an owned route,
//! address or neighbour deleted by someone else, a link set down, a sysctl rewritten, the
//! floating address removed) within a second, leaves a foreign route alone, picks up file
//! edits, and exits cleanly on SIGTERM leaving the state in place.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::process::Child;
use std::time::{Duration, Instant};

use hearth_tests::netns::NetNs;
use hearth_tests::{root_or_skip, tool_or_skip};

const FILE: &str = r#"
links:
  - {name: br-ext, kind: bridge, up: true}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
routes:
  - {dst: 10.244.0.0/16, via: 192.0.2.1, dev: br-ext}
neighbours:
  - {address: 192.0.2.50, dev: br-ext, mac: "02:00:00:00:00:50"}
rules:
  - {priority: 100, from: 10.9.0.0/16, table: 100}
sysctls:
  net.ipv4.ip_forward: "1"
floatingIPs:
  - {address: 192.0.2.77, dev: br-ext}
"#;

/// Kills the agent when the test ends, however it ends.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{what}: not within {limit:?}");
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
fn the_reconciler_repairs_drift_within_a_second() {
    if !root_or_skip("drift") || !tool_or_skip("drift", "ip") {
        return;
    }
    let (ns, dir) = (NetNs::new("drift"), tempfile::tempdir().unwrap());
    let path = dir.path().join("net.yaml");
    std::fs::write(&path, FILE).unwrap();
    let log = dir.path().join("hearth.log");
    let mut agent =
        Agent(ns.spawn_hearth(&["net", "run", "--file", &path.display().to_string()], &log));
    let route = || {
        ns.ip(&["route", "show", "proto", "72"])
            .contains("10.244.0.0/16 via 192.0.2.1")
    };
    let fip = || {
        ns.ip(&["addr", "show", "dev", "br-ext"])
            .contains("192.0.2.77/32")
    };
    wait_for("initial convergence", Duration::from_secs(10), || {
        route() && fip()
    });
    let second = Duration::from_secs(1);

    ns.ip(&["route", "del", "10.244.0.0/16", "proto", "72"]);
    let took = wait_for("route repaired", second, route);
    eprintln!("route repaired in {took:?}");

    ns.ip(&["addr", "del", "192.0.2.10/24", "dev", "br-ext"]);
    wait_for("address repaired", second, || {
        ns.ip(&["addr", "show", "dev", "br-ext"])
            .contains("192.0.2.10/24")
    });
    // Deleting the address took the routes through it along; they come back too.
    wait_for("route back after the address", second, route);

    ns.ip(&["neigh", "del", "192.0.2.50", "dev", "br-ext"]);
    wait_for("neighbour repaired", second, || {
        ns.ip(&["neigh", "show"])
            .contains("192.0.2.50 dev br-ext lladdr 02:00:00:00:00:50 PERMANENT proto 72")
    });

    ns.ip(&["rule", "del", "pref", "100"]);
    wait_for("rule repaired", second, || {
        ns.ip(&["rule"])
            .contains("100:\tfrom 10.9.0.0/16 lookup 100 proto 72")
    });

    ns.ip(&["link", "set", "br-ext", "down"]);
    wait_for("link up again, with its route", second, || {
        ns.ip(&["link", "show", "br-ext"]).contains(",UP") && route()
    });

    ns.command("sh")
        .args(["-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"])
        .status()
        .unwrap();
    wait_for("sysctl repaired", second, || {
        sysctl(&ns, "net/ipv4/ip_forward") == "1"
    });

    ns.ip(&["addr", "del", "192.0.2.77/32", "dev", "br-ext"]);
    wait_for("floating IP repaired", second, fip);

    ns.ip(&["route", "add", "10.88.0.0/16", "dev", "br-ext"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        ns.ip(&["route", "show"])
            .contains("10.88.0.0/16 dev br-ext"),
        "a foreign route was removed"
    );

    let edited = FILE
        .replace(
            "routes:\n",
            "routes:\n  - {dst: 10.245.0.0/16, via: 192.0.2.1}\n",
        )
        .replace("floatingIPs:\n  - {address: 192.0.2.77, dev: br-ext}\n", "");
    std::fs::write(&path, edited).unwrap();
    wait_for("file edit picked up", Duration::from_secs(3), || {
        ns.ip(&["route", "show", "proto", "72"])
            .contains("10.245.0.0/16")
            && !fip()
    });

    let pid = nix::unistd::Pid::from_raw(agent.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = agent.0.wait().unwrap();
    assert!(
        status.success(),
        "hearth net run exited with {status}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(route(), "the state stays in place after the agent stops");
}
