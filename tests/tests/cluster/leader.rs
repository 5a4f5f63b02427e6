//! Two coordinator replicas on the real API server: the leader's API-server traffic is
//! black-holed, then the new leader's pod is paused (SIGSTOP of its processes) and resumed.
//! Sampled every 100 ms: moments when both replicas say they lead (the target is zero); the
//! FloatingIP bound to the node keeps its address and node, and its term never goes back.
//!
//! The cluster has one node, so "two nodes answering ARP for one address" cannot happen here;
//! the namespace lab (`coordinator_leader.rs`) counts that with three nodes.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{apply, coordinator_pods, json, k, lease_holder, node, wait, NS};

/// One value of the harness's `cluster.env`.
fn cluster_env(key: &str) -> String {
    let env =
        std::fs::read_to_string(super::cluster_dir().join("cluster.env")).expect("cluster.env");
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in cluster.env"))
        .to_owned()
}

/// The PIDs of the `hearth` processes of `pod` (found by the pod's UID in their cgroup path).
fn hearth_pids(pod: &str) -> Vec<i32> {
    let uid = k(&[
        "-n",
        NS,
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let mark = format!("pod{uid}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if cgroup.contains(&mark) && comm.trim() == "hearth" {
            pids.push(pid);
        }
    }
    assert!(
        !pids.is_empty(),
        "no hearth process of pod {pod} (uid {uid})"
    );
    pids
}

/// `/status` of the coordinator whose network namespace `pid` is in, on its loopback (open
/// without a token); `None` when it does not answer within 300 ms.
fn leads(pid: i32, port: &str) -> Option<bool> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["curl", "-s", "-m", "0.3"])
        .arg(format!("http://127.0.0.1:{port}/status"))
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["leader"].as_bool()
}

fn nft_in(pid: i32, script: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nsenter nft");
    let wrote = child
        .stdin
        .take()
        .is_some_and(|mut s| s.write_all(script.as_bytes()).is_ok());
    wrote && child.wait().is_ok_and(|s| s.success())
}

/// Drops (silently, no reset) what a pod sends to the API server, until dropped.
struct BlackHole(i32);

impl BlackHole {
    fn new(pid: i32) -> Self {
        let svc = k(&[
            "-n",
            "default",
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        let api = cluster_env("API");
        let hostport = api.trim_start_matches("https://");
        let (ip, port) = hostport.rsplit_once(':').expect("API host:port");
        let script = format!(
            "table inet hearth_t19 {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
             ip daddr {svc} tcp dport 443 drop\n  ip daddr {ip} tcp dport {port} drop\n }}\n}}\n"
        );
        assert!(nft_in(pid, &script), "nft in the leader's netns");
        BlackHole(pid)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        let _ = nft_in(self.0, "delete table inet hearth_t19\n");
    }
}

/// SIGSTOPs processes, and SIGCONTs them when dropped (also when the test panics).
struct Paused(Vec<i32>);

impl Paused {
    fn new(pids: Vec<i32>) -> Self {
        for &p in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGSTOP,
            );
        }
        Paused(pids)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for &p in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }
}

/// What the sampler saw.
#[derive(Default)]
struct Samples {
    total: usize,
    two_leaders: usize,
    /// (address, node, term) of the FloatingIP, once a second.
    fip: Vec<(Value, Value, u64)>,
}

fn fip_now() -> (Value, Value, u64) {
    let s = json(&["get", "floatingip", "t19-fip"])["status"].clone();
    (
        s["address"].clone(),
        s["node"].clone(),
        s["term"].as_u64().unwrap_or(0),
    )
}

fn holder_is(pod: &str) -> Option<()> {
    lease_holder().contains(pod).then_some(())
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn coordinator_fenced_when_its_apiserver_is_black_holed_or_its_pod_paused() {
    let pods = coordinator_pods();
    assert_eq!(pods.len(), 2, "two coordinator replicas: {pods:?}");
    let holder = wait(60, "a Lease holder", || {
        let h = lease_holder();
        (!h.is_empty()).then_some(h)
    });
    let (first, second) = if holder.contains(pods[0].as_str()) {
        (pods[0].clone(), pods[1].clone())
    } else {
        (pods[1].clone(), pods[0].clone())
    };
    let (pids_first, pids_second) = (hearth_pids(&first), hearth_pids(&second));
    let (net_first, net_second) = (pids_first[0], pids_second[0]);
    let port = cluster_env("STATUS_PORT");
    wait(60, "the second replica to say it is a standby", || {
        (leads(net_second, &port) == Some(false)).then_some(())
    });
    apply(&format!(
        "apiVersion: hearth.io/v1alpha1\nkind: FloatingIPPool\nmetadata: {{name: t19-pool}}\n\
         spec: {{cidrs: [198.51.100.16/28], interface: {br}}}\n---\n\
         apiVersion: hearth.io/v1alpha1\nkind: FloatingIP\nmetadata: {{name: t19-fip}}\nspec: {{pool: t19-pool}}\n",
        br = std::env::var("HEARTH_CLUSTER_BRIDGE").unwrap_or_else(|_| "eth0".into())
    ));
    wait(90, "FloatingIP t19-fip bound to the node", || {
        let s = json(&["get", "floatingip", "t19-fip"]);
        (s["status"]["node"].as_str() == Some(node().as_str())).then_some(())
    });
    let before = fip_now();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let port = port.clone();
        std::thread::spawn(move || {
            let mut s = Samples::default();
            let mut next_fip = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (a, b) = (leads(net_first, &port), leads(net_second, &port));
                s.total += 1;
                if a == Some(true) && b == Some(true) {
                    s.two_leaders += 1;
                    eprintln!("two leaders at sample {}", s.total);
                }
                if Instant::now() >= next_fip {
                    s.fip.push(fip_now());
                    next_fip = Instant::now() + Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            s
        })
    };

    // 1. The leader's API-server traffic is black-holed: it must stop leading before the
    // standby takes the Lease.
    let t0 = Instant::now();
    let hole = BlackHole::new(net_first);
    wait(60, "the standby to take the Lease", || holder_is(&second));
    let took_over = t0.elapsed();
    wait(
        30,
        "the black-holed replica to say it no longer leads",
        || (leads(net_first, &port) == Some(false)).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(3));
    drop(hole);
    std::thread::sleep(Duration::from_secs(5));

    // 2. The new leader's processes are paused: the first replica takes over; resumed, the
    // paused one must not act as a leader.
    let t1 = Instant::now();
    let paused = Paused::new(pids_second);
    wait(60, "the first replica to take the Lease back", || {
        holder_is(&first)
    });
    let took_back = t1.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    drop(paused);
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    let s = sampler.join().expect("sampler");
    let after = fip_now();

    eprintln!(
        "black hole: standby led after {:.1} s; pause: the other led after {:.1} s; {} of {} \
         samples with two leaders; FloatingIP {} on {} before, {} on {} after, terms {:?}",
        took_over.as_secs_f64(),
        took_back.as_secs_f64(),
        s.two_leaders,
        s.total,
        before.0,
        before.1,
        after.0,
        after.1,
        s.fip.iter().map(|f| f.2).collect::<Vec<_>>()
    );
    k(&["delete", "floatingip", "t19-fip", "--wait=true"]);
    k(&["delete", "floatingippool", "t19-pool"]);
    assert_eq!(s.two_leaders, 0, "moments with two leaders");
    for (address, node, _) in &s.fip {
        assert_eq!(
            (address, node),
            (&before.0, &before.1),
            "the FloatingIP moved"
        );
    }
    assert!(
        s.fip.windows(2).all(|w| w[0].2 <= w[1].2),
        "a FloatingIP term went back: {:?}",
        s.fip
    );
}
