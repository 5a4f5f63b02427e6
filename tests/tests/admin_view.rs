//! The admin's view of a coordinator and its nodes (issue 17), with the real binaries in
//! throwaway namespaces and mTLS: `hearth status --addr <coordinator>` as a table with headers
//! and as JSON (nodes, leases, floating IPs with owner and epoch, volumes with their node);
//! where a loopfile volume lives (`hearth csi create`/`list`, staging on the wrong node); a
//! killed node shown as it is; a failover logged with its node and cause and counted across a
//! coordinator restart; logs without colour codes when stderr is a file.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::time::Duration;

use hearth_tests::netns::failover::{node_name, FailoverLab, COORDINATOR_IP};
use hearth_tests::{root_or_skip, tool_or_skip};

const CONFIG: &str = "floatingIPPools:\n  - {name: lan, cidrs: [10.9.1.0/24], interface: eth0}\n\
                      floatingIPs:\n  - {name: web, pool: lan}\n";
const FIP: &str = "10.9.1.1";

fn status(lab: &FailoverLab, output: &str) -> (i32, String, String) {
    let addr = format!("{COORDINATOR_IP}:9810");
    let out = lab
        .client()
        .hearth(&["status", "--addr", &addr, "--output", output]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ready_nodes(lab: &FailoverLab) -> usize {
    lab.coordinator_get("/status")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|s| {
            Some(
                s["nodes"]
                    .as_array()?
                    .iter()
                    .filter(|n| n["healthy"] == true && n["free_bytes"].as_u64() > Some(0))
                    .count(),
            )
        })
        .unwrap_or(0)
}

/// The row of the table that starts (after its mark) with `name`.
fn row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table.lines().find(|l| {
        l.trim_start_matches(|c: char| !c.is_alphanumeric())
            .starts_with(name)
    })
}

#[test]
fn hearth_status_shows_a_coordinator_its_nodes_floating_ips_and_volumes() {
    let test = "hearth_status_shows_a_coordinator";
    if !root_or_skip(test) || !tool_or_skip(test, "ip") || !tool_or_skip(test, "mkfs.ext4") {
        return;
    }
    let mut lab = FailoverLab::new("adm", 2, CONFIG);
    lab.start_coordinator();
    lab.start_agent(0);
    lab.start_agent(1);
    assert!(
        FailoverLab::wait_for(Duration::from_secs(20), || (ready_nodes(&lab) == 2
            && lab.holders(FIP).len() == 1)
            .then_some(()))
        .is_some(),
        "two healthy nodes and {FIP} held: {:?}\n{}",
        lab.coordinator_get("/status"),
        lab.log("coordinator-1")
    );

    // Point 2: create and list name the node that holds the volume.
    let (ok, out) = lab.csi("coordinator", &["create", "pvc-admin", "--size", "32Mi"]);
    assert!(ok, "{out}\n{}", lab.log("coordinator-1"));
    let id = out.split_whitespace().next().expect("an ID").to_owned();
    let owner = (0..2)
        .find(|i| {
            lab.state_dir(&node_name(*i))
                .join(format!("volumes/{id}.img"))
                .exists()
        })
        .expect("an image on one node");
    let (owner_name, other_name) = (node_name(owner), node_name(1 - owner));
    assert!(out.contains(&owner_name), "create names the node: {out}");
    let (ok, list) = lab.csi("coordinator", &["list"]);
    assert!(ok, "{list}");
    let line = list
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{id} in {list}"));
    assert!(line.contains(&owner_name), "list names the node: {line}");

    // Staging it on the other node, with the volume context kubelet passes from the PV
    // (create printed it as node=...), names where it lives.
    let staging = lab.state_dir(&other_name).join("kubelet/staging/x");
    let context = format!("csi.hearth.dev/node={owner_name}");
    let (ok, out) = lab.csi(
        &other_name,
        &[
            "stage",
            &id,
            "--staging",
            &staging.display().to_string(),
            "--volume-context",
            &context,
        ],
    );
    assert!(!ok, "staged on the wrong node: {out}");
    assert!(
        out.contains(&owner_name) && !out.contains("does not exist"),
        "the error names the node holding {id}: {out}"
    );

    // Point 1: the coordinator's status as a table with headers and as JSON.
    let (code, table, err) = status(&lab, "table");
    assert_eq!(code, 0, "hearth status --addr <coordinator>: {table}{err}");
    for header in ["NODE", "SESSION", "LEASE", "FLOATING IP", "EPOCH", "VOLUME"] {
        assert!(table.contains(header), "header {header} in:\n{table}");
    }
    let fip_row = row(&table, "web").unwrap_or_else(|| panic!("web in:\n{table}"));
    assert!(fip_row.contains(FIP), "{fip_row}");
    let vol_row = row(&table, &id).unwrap_or_else(|| panic!("{id} in:\n{table}"));
    assert!(vol_row.contains(&owner_name), "{vol_row}");
    let (code, json, err) = status(&lab, "json");
    assert_eq!(code, 0, "{json}{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["role"], "coordinator");
    let vols = doc["volumes"].as_array().expect("volumes");
    assert!(
        vols.iter()
            .any(|v| v["id"] == id.as_str() && v["nodes"][0] == owner_name.as_str()),
        "{json}"
    );

    // Point 3: the floating IP's owner is killed: the table says so truthfully, the failover
    // is logged with its node and cause, and its count survives a restart.
    let fip_owner = lab.holders(FIP)[0];
    let dead = node_name(fip_owner);
    lab.kill_agent(fip_owner);
    assert!(
        FailoverLab::wait_for(Duration::from_secs(10), || (lab.holders(FIP)
            == vec![1 - fip_owner])
        .then_some(()))
        .is_some(),
        "{FIP} moved"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, table, _) = status(&lab, "table");
    let dead_row = row(&table, &dead).unwrap_or_else(|| panic!("{dead} in:\n{table}"));
    assert!(
        dead_row.contains("disconnected") && !dead_row.contains(" healthy"),
        "a killed node is not shown healthy: {dead_row}"
    );
    assert!(
        table.contains('→'),
        "failed checks say what to look at next:\n{table}"
    );
    assert_ne!(code, 0, "a node without a session is a failed check");
    let log = lab.log("coordinator-1");
    assert!(
        log.lines()
            .any(|l| l.contains("failover") && l.contains(&dead) && l.contains(FIP)),
        "a failover line naming {dead} and {FIP}:\n{log}"
    );
    let before = lab.coordinator_status()["failovers"].as_u64().unwrap_or(0);
    assert!(before >= 1, "{before}");
    lab.kill_coordinator();
    lab.start_coordinator();
    let after = FailoverLab::wait_for(Duration::from_secs(10), || {
        let (_, body) = lab.coordinator_get("/status")?;
        let s: serde_json::Value = serde_json::from_str(&body).ok()?;
        s["failovers"].as_u64()
    })
    .expect("the restarted coordinator answers");
    assert_eq!(after, before, "failovers counted across a restart");

    // Point 9: logs in a file carry no colour codes, no `node="-"`, and no error text twice.
    for name in ["coordinator-1", "coordinator-2", "node-a", "node-b"] {
        let log = lab.log(name);
        assert!(
            !log.contains('\u{1b}'),
            "{name}: ANSI codes in a file:\n{log}"
        );
        assert!(!log.contains("node=\"-\""), "{name}: node=\"-\":\n{log}");
    }
    // Best effort: the image goes with the lab's directory; the owner may still be
    // reconnecting to the restarted coordinator.
    let _ = lab.csi("coordinator", &["delete", &id]);
}
