//! Hearth in a real single-node Kubernetes, the way users use it: PVCs and pods through the
//! kubelet and the CSI sidecars, the coordinator on the API server, the chart's RBAC.
//!
//! Ignored by default: they need the cluster `tests/cluster/run` starts (KUBECONFIG, kubectl on
//! PATH, HEARTH_CLUSTER_DIR and HEARTH_CLUSTER_NODE set):
//!
//! ```sh
//! tests/cluster/run -- cargo test -p hearth-tests --test cluster -- --ignored --test-threads=1
//! ```

#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "cluster/leader.rs"]
mod leader;

const NS: &str = "hearth";
const BUSYBOX: &str = "localhost/hearth-test/busybox:latest";

fn kubectl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn k(args: &[&str]) -> String {
    kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

fn apply(yaml: &str) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl apply");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kubectl apply:\n{yaml}");
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&k(&a)).expect("kubectl json")
}

/// Polls `f` until it returns Some, or panics after `secs` with `what`.
fn wait<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out after {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn node() -> String {
    std::env::var("HEARTH_CLUSTER_NODE").expect("HEARTH_CLUSTER_NODE (run under tests/cluster/run)")
}

fn cluster_dir() -> PathBuf {
    std::env::var_os("HEARTH_CLUSTER_DIR")
        .expect("HEARTH_CLUSTER_DIR")
        .into()
}

/// A namespace of the test's own, deleted (with everything in it) when dropped.
struct Namespace(String);

impl Namespace {
    fn new(name: &str) -> Self {
        let _ = kubectl(&["delete", "namespace", name, "--wait=true"]);
        k(&["create", "namespace", name]);
        Namespace(name.into())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.0,
            "--wait=true",
            "--timeout=120s",
        ]);
    }
}

fn storage_class(name: &str, fs: &str) {
    apply(&format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {name}}}\n\
         provisioner: csi.hearth.dev\nvolumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\n\
         allowVolumeExpansion: true\nparameters: {{csi.storage.k8s.io/fstype: {fs}}}\n"
    ));
}

fn pvc(ns: &str, name: &str, class: &str, size: &str, block: bool, source: Option<(&str, &str)>) {
    let mode = if block { "Block" } else { "Filesystem" };
    let source = match source {
        Some(("VolumeSnapshot", from)) => format!(
            "\n  dataSource: {{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: {from}}}"
        ),
        Some((kind, from)) => format!("\n  dataSource: {{kind: {kind}, name: {from}}}"),
        None => String::new(),
    };
    apply(&format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  storageClassName: {class}\n  accessModes: [ReadWriteOnce]\n  volumeMode: {mode}\n\
         \x20 resources: {{requests: {{storage: {size}}}}}{source}\n"
    ));
}

/// Runs `script` in a busybox pod with the claim at /data (or as /dev/xvda when `block`), and
/// waits for it to succeed. Returns the time from apply to Running.
fn run_pod(ns: &str, name: &str, claim: &str, block: bool, script: &str) -> Duration {
    let mount = if block {
        "volumeDevices: [{name: v, devicePath: /dev/xvda}]"
    } else {
        "volumeMounts: [{name: v, mountPath: /data}]"
    };
    let script = script.replace('\'', "''");
    let start = Instant::now();
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n\
         \x20 restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n\
         \x20 - name: c\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n\
         \x20   command: [sh, -c, '{script}']\n    {mount}\n\
         \x20 volumes: [{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}]\n"
    ));
    let mut running = None;
    let phase = wait(240, &format!("pod {ns}/{name} to finish"), || {
        let p = kubectl(&[
            "-n",
            ns,
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.status.phase}",
        ])
        .ok()?;
        if running.is_none() && (p == "Running" || p == "Succeeded" || p == "Failed") {
            running = Some(start.elapsed());
        }
        (p == "Succeeded" || p == "Failed").then_some(p)
    });
    let logs = kubectl(&["-n", ns, "logs", name]).unwrap_or_default();
    assert_eq!(phase, "Succeeded", "pod {ns}/{name}: {logs}");
    k(&["-n", ns, "delete", "pod", name, "--wait=true"]);
    running.unwrap()
}

fn pv_of(ns: &str, claim: &str) -> String {
    k(&[
        "-n",
        ns,
        "get",
        "pvc",
        claim,
        "-o",
        "jsonpath={.spec.volumeName}",
    ])
}

/// Files under the node's state directory (the loop images of the loopfile backend).
fn state_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![cluster_dir().join("state")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The CSI volume ID of a PV (the loop image is named after it).
fn handle_of(pv: &str) -> String {
    k(&["get", "pv", pv, "-o", "jsonpath={.spec.csi.volumeHandle}"])
}

fn delete_claims_and_check_gone(ns: &str, claims: &[&str]) {
    let pvs: Vec<String> = claims.iter().map(|c| pv_of(ns, c)).collect();
    let handles: Vec<String> = pvs.iter().map(|pv| handle_of(pv)).collect();
    for c in claims {
        k(&["-n", ns, "delete", "pvc", c, "--wait=true"]);
    }
    for (pv, id) in pvs.iter().zip(&handles) {
        assert!(!id.is_empty(), "PV {pv} has no volume handle");
        wait(120, &format!("PV {pv} deleted"), || {
            kubectl(&["get", "pv", pv]).is_err().then_some(())
        });
        wait(60, &format!("no image of {pv} ({id}) on the node"), || {
            (!state_files().iter().any(|f| f.contains(id.as_str()))).then_some(())
        });
    }
}

const WRITE: &str = "dd if=/dev/urandom of=/data/blob bs=1M count=8 && sha256sum /data/blob > /data/blob.sha256 && sync";
const READ: &str = "sha256sum -c /data/blob.sha256";

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn filesystem_volumes_keep_their_data_across_pods() {
    for fs in ["ext4", "xfs"] {
        let ns = Namespace::new(&format!("t-fs-{fs}"));
        let class = format!("hearth-test-{fs}");
        storage_class(&class, fs);
        pvc(&ns.0, "data", &class, "300Mi", false, None);
        // WaitForFirstConsumer: nothing is provisioned before a pod uses the claim.
        std::thread::sleep(Duration::from_secs(3));
        let phase = k(&[
            "-n",
            &ns.0,
            "get",
            "pvc",
            "data",
            "-o",
            "jsonpath={.status.phase}",
        ]);
        assert_eq!(phase, "Pending", "{fs}: bound before any consumer");
        let t = run_pod(&ns.0, "writer", "data", false, WRITE);
        eprintln!("{fs}: kubectl apply of the pod to Running: {t:?}");
        run_pod(
            &ns.0,
            "reader",
            "data",
            false,
            &format!("{READ} && mount | grep ' /data ' | grep -w {fs}"),
        );
        // Topology: the PV is pinned to the node the pod ran on.
        let pv = json(&["get", "pv", &pv_of(&ns.0, "data")]);
        let terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"].to_string();
        assert!(terms.contains(&node()), "{fs}: PV node affinity {terms}");
        delete_claims_and_check_gone(&ns.0, &["data"]);
        k(&["delete", "storageclass", &class]);
    }
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn block_volume_is_a_device_in_the_pod() {
    let ns = Namespace::new("t-block");
    storage_class("hearth-test-block", "ext4");
    pvc(&ns.0, "disk", "hearth-test-block", "64Mi", true, None);
    let t = run_pod(
        &ns.0,
        "writer",
        "disk",
        true,
        "dd if=/dev/urandom of=/tmp/blob bs=1M count=4 && dd if=/tmp/blob of=/dev/xvda bs=1M conv=fsync \
         && sha256sum /tmp/blob | cut -d\" \" -f1 > /dev/termination-log",
    );
    eprintln!("block: kubectl apply of the pod to Running: {t:?}");
    run_pod(
        &ns.0,
        "reader",
        "disk",
        true,
        "test -b /dev/xvda && dd if=/dev/xvda bs=1M count=4 2>/dev/null | sha256sum | grep -v e3b0c442",
    );
    delete_claims_and_check_gone(&ns.0, &["disk"]);
    k(&["delete", "storageclass", "hearth-test-block"]);
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn online_xfs_expansion() {
    // Snapshots and clones: the loopfile backend on node agents offers neither (the coordinator
    // refuses a dataSource and lacks CREATE_DELETE_SNAPSHOT; the chart runs csi-snapshotter
    // only with linstor), so they are not tested in this cluster.
    let ns = Namespace::new("t-snap");
    storage_class("hearth-test-snap", "xfs");
    pvc(&ns.0, "src", "hearth-test-snap", "300Mi", false, None);
    run_pod(&ns.0, "writer", "src", false, WRITE);
    // Online expansion: a pod keeps the xfs volume mounted while the claim grows.
    let script = "while [ $(df -k /data | tail -1 | awk \"{print \\$2}\") -lt 500000 ]; do sleep 1; done; sha256sum -c /data/blob.sha256";
    let sc = script.replace('\'', "''");
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: grower, namespace: {}}}\nspec:\n  restartPolicy: Never\n\
         \x20 terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n\
         \x20   command: [sh, -c, '{sc}']\n    volumeMounts: [{{name: v, mountPath: /data}}]\n\
         \x20 volumes: [{{name: v, persistentVolumeClaim: {{claimName: src}}}}]\n",
        ns.0
    ));
    wait(180, "grower running", || {
        let p = kubectl(&[
            "-n",
            &ns.0,
            "get",
            "pod",
            "grower",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .ok()?;
        (p == "Running").then_some(())
    });
    k(&[
        "-n",
        &ns.0,
        "patch",
        "pvc",
        "src",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"600Mi"}}}}"#,
    ]);
    let phase = wait(240, "the pod to see the grown filesystem", || {
        let p = kubectl(&[
            "-n",
            &ns.0,
            "get",
            "pod",
            "grower",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .ok()?;
        (p == "Succeeded" || p == "Failed").then_some(p)
    });
    assert_eq!(
        phase,
        "Succeeded",
        "{}",
        kubectl(&["-n", &ns.0, "logs", "grower"]).unwrap_or_default()
    );
    let cap = k(&[
        "-n",
        &ns.0,
        "get",
        "pvc",
        "src",
        "-o",
        "jsonpath={.status.capacity.storage}",
    ]);
    assert_eq!(cap, "600Mi");
    k(&["-n", &ns.0, "delete", "pod", "grower"]);
    delete_claims_and_check_gone(&ns.0, &["src"]);
    k(&["delete", "storageclass", "hearth-test-snap"]);
}

fn lease_holder() -> String {
    k(&[
        "-n",
        NS,
        "get",
        "lease",
        "hearth-coordinator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

fn coordinator_pods() -> Vec<String> {
    k(&[
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=coordinator",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .split_whitespace()
    .map(String::from)
    .collect()
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn coordinator_leads_through_a_lease_and_fails_over() {
    // The CRDs of `hearth crds` are what the store uses.
    for crd in [
        "floatingipclaims.hearth.io",
        "floatingippools.hearth.io",
        "floatingips.hearth.io",
        "hearthvolumes.hearth.io",
    ] {
        k(&["get", "crd", crd]);
    }
    let pods = coordinator_pods();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let holder = wait(60, "a Lease holder", || {
        let h = lease_holder();
        (!h.is_empty()).then_some(h)
    });
    let leader = pods
        .iter()
        .find(|p| holder.contains(p.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("holder {holder} is none of {pods:?}"));
    // A FloatingIP bound to the node; the takeover must keep it where it is.
    apply(&format!(
        "apiVersion: hearth.io/v1alpha1\nkind: FloatingIPPool\nmetadata: {{name: t-pool}}\n\
         spec: {{cidrs: [198.51.100.0/28], interface: {br}}}\n---\n\
         apiVersion: hearth.io/v1alpha1\nkind: FloatingIP\nmetadata: {{name: t-fip}}\nspec: {{pool: t-pool}}\n",
        br = std::env::var("HEARTH_CLUSTER_BRIDGE").unwrap_or_else(|_| "eth0".into())
    ));
    let bound = wait(90, "FloatingIP t-fip bound to the node", || {
        let s = json(&["get", "floatingip", "t-fip"]);
        (s["status"]["node"].as_str() == Some(node().as_str())).then_some(s["status"].clone())
    });
    k(&["-n", NS, "delete", "pod", &leader, "--wait=false"]);
    let new = wait(90, "another coordinator to take the Lease", || {
        let h = lease_holder();
        (!h.is_empty() && !h.contains(leader.as_str())).then_some(h)
    });
    eprintln!("lease: {holder} -> {new}");
    std::thread::sleep(Duration::from_secs(5));
    let after = json(&["get", "floatingip", "t-fip"])["status"].clone();
    assert_eq!(after["address"], bound["address"], "the address moved");
    assert_eq!(after["node"], bound["node"], "the node changed");
    k(&["delete", "floatingip", "t-fip", "--wait=true"]);
    k(&["delete", "floatingippool", "t-pool"]);
    k(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deploy/hearth-coordinator",
        "--timeout=120s",
    ]);
}

fn can_i(sa: &str, verb: &str, resource: &str, ns: Option<&str>) -> bool {
    let who = format!("system:serviceaccount:{NS}:{sa}");
    let mut args = vec!["auth", "can-i", verb, resource, "--as", &who];
    match ns {
        Some(n) => args.extend(["-n", n]),
        None => args.push("--all-namespaces"),
    }
    let out = Command::new("kubectl")
        .args(&args)
        .output()
        .expect("kubectl");
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn rbac_allows_what_hearth_uses_and_nothing_else() {
    // No container of Hearth's pods was refused anything while the other tests ran.
    let pods = k(&[
        "-n",
        NS,
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\" \"}{end}",
    ]);
    for pod in pods.split_whitespace() {
        let logs =
            kubectl(&["-n", NS, "logs", pod, "--all-containers", "--prefix"]).unwrap_or_default();
        let refused: Vec<&str> = logs.lines().filter(|l| l.contains("forbidden")).collect();
        assert!(
            refused.is_empty(),
            "{pod} was refused:\n{}",
            refused.join("\n")
        );
    }
    let c = "hearth-coordinator";
    for (verb, res) in [
        ("update", "floatingips.hearth.io/status"),
        ("create", "floatingipclaims.hearth.io"),
        ("delete", "floatingipclaims.hearth.io"),
        ("create", "hearthvolumes.hearth.io"),
        ("update", "hearthvolumes.hearth.io"),
        ("create", "persistentvolumes"),
        ("patch", "volumeattachments.storage.k8s.io/status"),
        ("watch", "csinodes.storage.k8s.io"),
        (
            "update",
            "volumesnapshotcontents.snapshot.storage.k8s.io/status",
        ),
    ] {
        assert!(can_i(c, verb, res, None), "{c} may not {verb} {res}");
    }
    for (verb, res) in [
        ("update", "leases.coordination.k8s.io"),
        ("create", "csistoragecapacities.storage.k8s.io"),
    ] {
        assert!(
            can_i(c, verb, res, Some(NS)),
            "{c} may not {verb} {res} in {NS}"
        );
        assert!(
            !can_i(c, verb, res, Some("default")),
            "{c} may {verb} {res} in default"
        );
    }
    for (verb, res) in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("delete", "pods"),
        ("create", "pods"),
        ("update", "nodes"),
        ("delete", "persistentvolumeclaims"),
        ("create", "volumesnapshotcontents.snapshot.storage.k8s.io"),
        ("*", "clusterroles.rbac.authorization.k8s.io"),
        // Exactly the verbs the store uses: no watch, no patch, no claim edits.
        ("watch", "floatingips.hearth.io"),
        ("patch", "hearthvolumes.hearth.io"),
        ("update", "floatingipclaims.hearth.io"),
    ] {
        assert!(!can_i(c, verb, res, None), "{c} may {verb} {res}");
    }
    // The node agent calls the API only to review who reads its /status and /metrics.
    for (verb, res) in [
        ("get", "pods"),
        ("get", "nodes"),
        ("list", "secrets"),
        ("get", "leases.coordination.k8s.io"),
        ("get", "tokenreviews.authentication.k8s.io"),
    ] {
        assert!(
            !can_i("hearth-node", verb, res, None),
            "hearth-node may {verb} {res}"
        );
    }
    for who in ["hearth-node", c] {
        for res in [
            "tokenreviews.authentication.k8s.io",
            "subjectaccessreviews.authorization.k8s.io",
        ] {
            assert!(
                can_i(who, "create", res, None),
                "{who} may not create {res}"
            );
        }
    }
}

/// `GET path` on the node agent's status port (host network, `STATUS_PORT` of cluster.env).
fn node_status(path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let env = std::fs::read_to_string(cluster_dir().join("cluster.env")).ok()?;
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
    };
    let addr = format!("{}:{}", value("NODE_IP")?, value("STATUS_PORT")?);
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

/// The drivers in the node's CSINode, with their node IDs.
fn csinode_drivers() -> Vec<(String, String)> {
    json(&["get", "csinode", &node()])["spec"]["drivers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["nodeID"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn kubelet_registration_is_the_agents_own() {
    // One container: the agent registered itself, no node-driver-registrar beside it.
    let containers = k(&[
        "-n",
        NS,
        "get",
        "ds/hearth-node",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(containers.trim(), "hearth");
    // Kubelet found the socket, asked GetInfo, called NodeGetInfo on the CSI socket and wrote
    // the result into the CSINode.
    assert!(
        csinode_drivers().contains(&("csi.hearth.dev".into(), node())),
        "CSINode drivers: {:?}",
        csinode_drivers()
    );
    let socket = cluster_dir().join("kubelet/plugins_registry/csi.hearth.dev-reg.sock");
    assert!(socket.exists(), "{} missing", socket.display());
    let (code, body) = node_status("/status").expect("the node's /status answers");
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).expect("/status is JSON");
    let reg = &status["kubelet_registration"]["data"];
    assert_eq!(reg["state"], "registered", "{reg}");
    assert_eq!(reg["driver"], "csi.hearth.dev");
    assert_eq!(
        reg["endpoint"].as_str().unwrap_or(""),
        cluster_dir()
            .join("kubelet/plugins/csi.hearth.dev/csi.sock")
            .display()
            .to_string()
    );
    let (code, body) = node_status("/readyz").expect("/readyz answers");
    assert_eq!(code, 200, "{body}");
}

/// Mounts below `dir` (the kubelet's staging and publish paths, the agent's state).
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// Loop devices backed by files below the state directory.
fn hearth_loop_devices() -> Vec<String> {
    let out = Command::new("losetup")
        .args(["-nO", "NAME,BACK-FILE"])
        .output()
        .expect("losetup");
    let state = format!("{}/", cluster_dir().join("state").display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&state))
        .map(str::to_owned)
        .collect()
}

/// Names of `kind` objects (all namespaces when `ns` is None), `namespace/name` or `name`.
fn names(kind: &str, ns: Option<&str>) -> Vec<String> {
    let mut args = vec!["get", kind];
    match ns {
        Some(n) => args.extend(["-n", n]),
        None => args.push("-A"),
    }
    let list = json(&args);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let m = &o["metadata"];
            match m["namespace"].as_str() {
                Some(n) if ns.is_none() => format!("{n}/{}", m["name"].as_str().unwrap_or("")),
                _ => m["name"].as_str().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

/// Runs last (libtest orders by name; tests/run runs it after the volume tests, with one
/// coordinator replica like them): it removes the chart. docs/install.md ("Uninstall without losing volumes") says what stays: the CRDs and
/// their objects (HearthVolume, FloatingIP, FloatingIPPool), the PVs and PVCs, the loop images
/// in the state directory, the Secrets the user made, and the leader-election Leases.
#[test]
#[ignore = "needs the test cluster: tests/cluster/run"]
fn uninstall_leaves_only_what_the_docs_keep() {
    let ns = Namespace::new("t-uninstall");
    storage_class("hearth-test-uninstall", "ext4");
    pvc(&ns.0, "kept", "hearth-test-uninstall", "100Mi", false, None);
    run_pod(&ns.0, "writer", "kept", false, WRITE);
    let pv = pv_of(&ns.0, "kept");
    // Workloads stopped (docs/install.md step 2): the pod is gone, so kubelet unpublished and
    // unstaged the volume and the attacher detached it.
    wait(120, &format!("VolumeAttachment of {pv} gone"), || {
        let vas = json(&["get", "volumeattachments"]);
        let attached = vas["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|va| va["spec"]["source"]["persistentVolumeName"] == pv.as_str());
        (!attached).then_some(())
    });
    // Step 1 of the docs: Retain, so no PV is deleted while Hearth is gone.
    k(&[
        "patch",
        "pv",
        &pv,
        "-p",
        r#"{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}"#,
    ]);
    let kubelet_dir = cluster_dir().join("kubelet");
    let id = handle_of(&pv);
    let images_before = state_files();
    assert!(
        images_before.iter().any(|f| f.contains(id.as_str())),
        "an image for {pv} ({id}) in {images_before:?}"
    );
    let volumes_before = names("hearthvolumes.hearth.io", None);
    let leases_before = names("leases.coordination.k8s.io", Some(NS));

    k(&["-n", NS, "get", "secret", "hearth-coordinator-tls"]);
    let out = Command::new("helm")
        .args([
            "uninstall",
            "hearth",
            "-n",
            NS,
            "--wait",
            "--timeout",
            "180s",
        ])
        .output()
        .expect("helm");
    assert!(
        out.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait(180, "Hearth's pods gone", || {
        names("pods", Some(NS)).is_empty().then_some(())
    });

    // The agent removed its registration socket on SIGTERM; kubelet deregistered the driver.
    let socket = kubelet_dir.join("plugins_registry/csi.hearth.dev-reg.sock");
    wait(60, "registration socket removed", || {
        (!socket.exists()).then_some(())
    });
    wait(120, "csi.hearth.dev gone from the CSINode", || {
        (!csinode_drivers().iter().any(|(d, _)| d == "csi.hearth.dev")).then_some(())
    });
    // No mount or loop device of Hearth's is left.
    let left: Vec<String> = mounts_under(&kubelet_dir)
        .into_iter()
        .filter(|m| m.contains("csi.hearth.dev") || m.contains("kubernetes.io~csi"))
        .chain(mounts_under(&cluster_dir().join("state")))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    assert!(
        hearth_loop_devices().is_empty(),
        "loop devices left: {:?}",
        hearth_loop_devices()
    );
    // No object of the chart's is left, cluster-wide or in its namespace (the garbage
    // collector removes what the chart's objects own, such as CSIStorageCapacity, in a while).
    let leftovers = || {
        let mut left = Vec::new();
        if kubectl(&["get", "csidriver", "csi.hearth.dev"]).is_ok() {
            left.push("csidriver/csi.hearth.dev".to_owned());
        }
        for kind in ["clusterroles", "clusterrolebindings"] {
            left.extend(
                names(kind, None)
                    .into_iter()
                    .filter(|n| n.contains("hearth"))
                    .map(|n| format!("{kind}/{n}")),
            );
        }
        for kind in [
            "daemonsets",
            "deployments",
            "replicasets",
            "services",
            "poddisruptionbudgets",
            "roles",
            "rolebindings",
            "configmaps",
            "serviceaccounts",
            "csistoragecapacities.storage.k8s.io",
        ] {
            left.extend(
                names(kind, Some(NS))
                    .into_iter()
                    .filter(|n| n != "kube-root-ca.crt" && n != "default")
                    .map(|n| format!("{kind}/{n}")),
            );
        }
        left
    };
    let until = Instant::now() + Duration::from_secs(120);
    let mut left = leftovers();
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_secs(2));
        left = leftovers();
    }
    assert!(left.is_empty(), "left after helm uninstall: {left:?}");
    // What the docs keep.
    for crd in [
        "hearthvolumes.hearth.io",
        "floatingips.hearth.io",
        "floatingippools.hearth.io",
    ] {
        k(&["get", "crd", crd]);
    }
    assert_eq!(names("hearthvolumes.hearth.io", None), volumes_before);
    k(&["get", "pv", &pv]);
    assert!(state_files().iter().any(|f| f.contains(id.as_str())));
    k(&["-n", NS, "get", "secret", "hearth-coordinator-tls"]);
    let leases: Vec<String> = names("leases.coordination.k8s.io", Some(NS));
    assert!(
        leases.iter().all(|l| leases_before.contains(l)),
        "new Leases after uninstall: {leases:?} (before: {leases_before:?})"
    );
    k(&["delete", "storageclass", "hearth-test-uninstall"]);
    drop(ns);
}
