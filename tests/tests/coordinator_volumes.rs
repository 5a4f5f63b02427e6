//! Loopfile volumes on node agents, placed by the coordinator (real binaries, mTLS, network
//! namespaces): CreateVolume goes to the coordinator's CSI socket, lands as an image in one
//! node's state directory, is idempotent, stages on that node with a real mount, grows, refuses
//! to be deleted while staged, and is deleted by its node; a node whose agent is gone gets no
//! new volumes.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::time::Duration;

use hearth_tests::netns::failover::{node_name, FailoverLab};
use hearth_tests::{root_or_skip, tool_or_skip};

const CONFIG: &str = "floatingIPPools: []\nfloatingIPs: []\n";

fn image_owners(lab: &FailoverLab, id: &str) -> Vec<usize> {
    (0..3)
        .filter(|i| {
            lab.state_dir(&node_name(*i))
                .join("volumes")
                .join(format!("{id}.img"))
                .exists()
        })
        .collect()
}

fn all_nodes_ready(lab: &FailoverLab, want: usize) -> bool {
    lab.coordinator_get("/status")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|s| {
            let nodes = s["nodes"].as_array()?.clone();
            Some(
                nodes
                    .iter()
                    .filter(|n| {
                        n["healthy"] == true
                            && n["lease_valid"] == true
                            && n["free_bytes"].as_u64() > Some(0)
                    })
                    .count()
                    >= want,
            )
        })
        .unwrap_or(false)
}

#[test]
fn loopfile_volumes_live_on_the_node_the_coordinator_chose() {
    let test = "loopfile_volumes_live_on_the_node";
    if !root_or_skip(test) || !tool_or_skip(test, "ip") || !tool_or_skip(test, "mkfs.ext4") {
        return;
    }
    let mut lab = FailoverLab::new("vol", 3, CONFIG);
    lab.start_coordinator();
    for i in 0..3 {
        lab.start_agent(i);
    }
    assert!(
        FailoverLab::wait_for(Duration::from_secs(20), || all_nodes_ready(&lab, 3)
            .then_some(()))
        .is_some(),
        "three healthy nodes with capacity: {:?}\n{}",
        lab.coordinator_get("/status"),
        lab.log("coordinator-1")
    );

    let (ok, out) = lab.csi("coordinator", &["create", "pvc-a", "--size", "64Mi"]);
    assert!(ok, "{out}\n{}", lab.log("coordinator-1"));
    let id = out.split_whitespace().next().expect("an ID").to_owned();
    let owners = image_owners(&lab, &id);
    assert_eq!(owners.len(), 1, "image of {id} on {owners:?}");
    let owner = owners[0];
    let node = node_name(owner);

    // A retried create finds the same volume on the same node.
    let (ok, again) = lab.csi("coordinator", &["create", "pvc-a", "--size", "64Mi"]);
    assert!(ok, "{again}");
    assert!(again.starts_with(&id), "{again} vs {id}");
    assert_eq!(image_owners(&lab, &id), vec![owner]);

    // Stage on the owning node: a real ext4 mount of its loop device.
    let staging = lab.state_dir(&node).join("kubelet/staging/a");
    let staging = staging.display().to_string();
    let (ok, out) = lab.csi(&node, &["stage", &id, "--staging", &staging]);
    assert!(ok, "{out}\n{}", lab.log(&node));
    assert!(lab.agent_mounted(owner, &staging), "{staging} not mounted");

    // Grow through the coordinator; the node grows the image.
    let (ok, out) = lab.csi("coordinator", &["expand", &id, "--size", "128Mi"]);
    assert!(ok, "{out}");
    let image = lab.state_dir(&node).join(format!("volumes/{id}.img"));
    assert_eq!(std::fs::metadata(&image).expect("image").len(), 128 << 20);

    // Deleting a staged volume is refused by its node; after unstage it goes.
    let (ok, out) = lab.csi("coordinator", &["delete", &id]);
    assert!(!ok, "delete of a staged volume succeeded: {out}");
    assert!(image.exists());
    let (ok, out) = lab.csi(&node, &["unstage", &id, "--staging", &staging]);
    assert!(ok, "{out}");
    assert!(!lab.agent_mounted(owner, &staging));
    let (ok, out) = lab.csi("coordinator", &["delete", &id]);
    assert!(ok, "{out}");
    assert!(!image.exists(), "image left after delete");
    let (ok, out) = lab.csi("coordinator", &["delete", &id]);
    assert!(ok, "a second delete: {out}");

    // A node whose agent is gone gets no new volume.
    lab.kill_agent(owner);
    std::thread::sleep(Duration::from_millis(600));
    for k in 0..4 {
        let name = format!("pvc-b{k}");
        let (ok, out) = lab.csi("coordinator", &["create", &name, "--size", "16Mi"]);
        assert!(ok, "{out}");
        let id = out.split_whitespace().next().expect("an ID").to_owned();
        let owners = image_owners(&lab, &id);
        assert_eq!(owners.len(), 1);
        assert_ne!(owners[0], owner, "{name} placed on the dead node");
        let (ok, out) = lab.csi("coordinator", &["delete", &id]);
        assert!(ok, "{out}");
    }
}
