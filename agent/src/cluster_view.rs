//! The coordinator's `/status` document as `hearth status` and `/status?format=text` read it:
//! its checks (each failed one with the next thing to look at) and its table with headers —
//! nodes with session, health, lease and last report; floating IPs with address, owner and
//! epoch; volumes with the nodes that hold them. Pure: parsing and formatting only.

use std::fmt::Write;

use serde::Deserialize;

/// One node as the coordinator sees it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct NodeRow {
    /// Name.
    pub name: String,
    /// Whether a session is open.
    pub connected: bool,
    /// Whether its last report said healthy.
    pub healthy: bool,
    /// Whether its lease is valid.
    pub lease_valid: bool,
    /// Floating IPs it owns.
    #[serde(default)]
    pub floating_ips: usize,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// Storage capacity it reported, bytes.
    #[serde(default)]
    pub total_bytes: u64,
    /// Free storage it reported, bytes.
    #[serde(default)]
    pub free_bytes: u64,
    /// When its last health snapshot arrived (seconds since the Unix epoch).
    #[serde(default)]
    pub snapshot_unix: Option<u64>,
}

/// One floating IP.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct FloatingIpRow {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Owner.
    #[serde(default)]
    pub node: Option<String>,
    /// Epoch.
    pub epoch: u64,
}

/// One volume of a node-local backend.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRow {
    /// The CSI volume ID.
    pub id: String,
    /// The nodes holding its data.
    pub nodes: Vec<String>,
    /// Capacity, bytes.
    #[serde(default)]
    pub size_bytes: u64,
}

/// The coordinator's `/status`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct CoordinatorDoc {
    /// This replica's identity.
    pub id: String,
    /// Whether it leads.
    pub leader: bool,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// Floating IPs moved off a node whose lease ended.
    #[serde(default)]
    pub failovers: u64,
    /// When the document was built (seconds since the Unix epoch).
    #[serde(default)]
    pub collected_at_unix: Option<u64>,
    /// Nodes.
    #[serde(default)]
    pub nodes: Vec<NodeRow>,
    /// Floating IPs.
    #[serde(default)]
    pub floating_ips: Vec<FloatingIpRow>,
    /// Volumes placed on node agents.
    #[serde(default)]
    pub volumes: Vec<VolumeRow>,
}

/// A check of the coordinator's view, with the next thing to look at when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCheck {
    /// What was checked (`node node-b`, `floating IP web`).
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// What was found.
    pub reason: String,
    /// The next thing to look at, when failing.
    pub hint: Option<String>,
}

fn ago(now: Option<u64>, at: Option<u64>) -> String {
    match (now, at) {
        (Some(now), Some(at)) => format!("{}s ago", now.saturating_sub(at)),
        (None, Some(_)) => "yes".into(),
        _ => "never".into(),
    }
}

fn node_check(n: &NodeRow, now: Option<u64>) -> ClusterCheck {
    let name = format!("node {}", n.name);
    let (ok, reason, hint) = if !n.connected {
        (
            false,
            format!(
                "no session (last report {}); its floating IPs moved, its volumes are unavailable",
                ago(now, n.snapshot_unix)
            ),
            Some(format!(
                "is the agent on {} running? Read its log and `hearth status --addr <its --status-addr>`; \
                 check it reaches the coordinator's --listen address and its certificate names {}",
                n.name, n.name
            )),
        )
    } else if !n.lease_valid {
        (
            false,
            "session open, lease ended (reports late)".into(),
            Some(format!(
                "check {}'s load and the network to the coordinator (report interval, --lease-ms)",
                n.name
            )),
        )
    } else if !n.healthy {
        (
            false,
            "session open, lease valid, reports unhealthy".into(),
            Some(format!(
                "`hearth status --addr <{}'s --status-addr>` or GET /nodes/{}/status here shows the failing check",
                n.name, n.name
            )),
        )
    } else {
        (true, "session open, healthy, lease valid".into(), None)
    };
    ClusterCheck {
        name,
        ok,
        reason,
        hint,
    }
}

/// Every check of `doc`: one per node, per unowned floating IP, per volume whose node is gone.
pub fn checks(doc: &CoordinatorDoc) -> Vec<ClusterCheck> {
    let now = doc.collected_at_unix;
    let mut out: Vec<ClusterCheck> = doc.nodes.iter().map(|n| node_check(n, now)).collect();
    if doc.leader {
        for f in doc.floating_ips.iter().filter(|f| f.node.is_none()) {
            out.push(ClusterCheck {
                name: format!("floating IP {}", f.name),
                ok: false,
                reason: format!("{} has no owner (epoch {})", f.address, f.epoch),
                hint: Some(
                    "no healthy node with a valid lease matches its pool's and its own nodeSelector: \
                     check the nodes above and the selectors in the coordinator config"
                        .into(),
                ),
            });
        }
    }
    let connected = |name: &str| doc.nodes.iter().any(|n| n.name == name && n.connected);
    for v in &doc.volumes {
        let gone: Vec<&str> = v
            .nodes
            .iter()
            .map(String::as_str)
            .filter(|n| !connected(n))
            .collect();
        if !gone.is_empty() {
            out.push(ClusterCheck {
                name: format!("volume {}", v.id),
                ok: false,
                reason: format!("held by {} without a session", gone.join(", ")),
                hint: Some(format!(
                    "calls for it answer UNAVAILABLE until the agent on {} is back",
                    gone.join(", ")
                )),
            });
        }
    }
    out
}

fn mib(b: u64) -> String {
    format!("{} MiB", b >> 20)
}

/// The table of `doc` (`wide` adds versions and capacity).
pub fn render(doc: &CoordinatorDoc, wide: bool) -> String {
    let now = doc.collected_at_unix;
    let mut out = format!(
        "coordinator {}  hearth {}  {}  failovers {}\n",
        doc.id,
        doc.version,
        if doc.leader { "leader" } else { "standby" },
        doc.failovers
    );
    let checks = checks(doc);
    let failing: Vec<&ClusterCheck> = checks.iter().filter(|c| !c.ok).collect();
    out.push_str("\nCHECKS\n");
    if failing.is_empty() {
        let _ = writeln!(
            out,
            "  ✓ {} node(s), all connected, healthy and leased",
            doc.nodes.len()
        );
    }
    for c in &failing {
        let _ = writeln!(out, "  ✗ {}: {}", c.name, c.reason);
        if let Some(h) = &c.hint {
            let _ = writeln!(out, "      → {h}");
        }
    }
    let _ = writeln!(out, "\nNODES ({})", doc.nodes.len());
    let _ = write!(
        out,
        "    {:<24} {:<13} {:<9} {:<6} {:>4} {:<12}",
        "NODE", "SESSION", "HEALTH", "LEASE", "FIPS", "LAST REPORT"
    );
    if wide {
        let _ = write!(out, " {:>10} {:>10} VERSION", "FREE", "TOTAL");
    }
    out.push('\n');
    for n in &doc.nodes {
        let mark = if node_check(n, now).ok { "✓" } else { "✗" };
        // Without a session the last health report says nothing about now.
        let health = match (n.connected, n.healthy) {
            (false, _) => "unknown",
            (true, true) => "healthy",
            (true, false) => "unhealthy",
        };
        let _ = write!(
            out,
            "  {mark} {:<24} {:<13} {health:<9} {:<6} {:>4} {:<12}",
            n.name,
            if n.connected {
                "connected"
            } else {
                "disconnected"
            },
            if n.lease_valid { "valid" } else { "ended" },
            n.floating_ips,
            ago(now, n.snapshot_unix)
        );
        if wide {
            let _ = write!(
                out,
                " {:>10} {:>10} {}",
                mib(n.free_bytes),
                mib(n.total_bytes),
                n.version
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\nFLOATING IPS ({})", doc.floating_ips.len());
    let _ = writeln!(
        out,
        "    {:<24} {:<40} {:<24} EPOCH",
        "FLOATING IP", "ADDRESS", "OWNER"
    );
    for f in &doc.floating_ips {
        let mark = if f.node.is_some() { "✓" } else { "✗" };
        let _ = writeln!(
            out,
            "  {mark} {:<24} {:<40} {:<24} {}",
            f.name,
            f.address,
            f.node.as_deref().unwrap_or("(none)"),
            f.epoch
        );
    }
    let _ = writeln!(out, "\nVOLUMES ({})", doc.volumes.len());
    let _ = writeln!(out, "    {:<40} {:>10}  NODES", "VOLUME", "SIZE");
    for v in &doc.volumes {
        let _ = writeln!(
            out,
            "    {:<40} {:>10}  {}",
            v.id,
            mib(v.size_bytes),
            v.nodes.join(",")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> CoordinatorDoc {
        CoordinatorDoc {
            id: "c1".into(),
            leader: true,
            version: "0.1.0".into(),
            failovers: 2,
            collected_at_unix: Some(1000),
            nodes: vec![
                NodeRow {
                    name: "node-a".into(),
                    connected: true,
                    healthy: true,
                    lease_valid: true,
                    floating_ips: 1,
                    snapshot_unix: Some(999),
                    ..NodeRow::default()
                },
                NodeRow {
                    name: "node-b".into(),
                    connected: false,
                    healthy: true,
                    lease_valid: false,
                    snapshot_unix: Some(970),
                    ..NodeRow::default()
                },
            ],
            floating_ips: vec![FloatingIpRow {
                name: "web".into(),
                address: "10.9.1.1".into(),
                node: Some("node-a".into()),
                epoch: 3,
            }],
            volumes: vec![VolumeRow {
                id: "vol-1".into(),
                nodes: vec!["node-b".into()],
                size_bytes: 64 << 20,
            }],
        }
    }

    #[test]
    fn parses_the_coordinators_document() {
        let json = r#"{"role":"coordinator","id":"c1","leader":true,"version":"0.1.0",
            "failovers":1,"nodes":[{"name":"node-a","connected":true,"healthy":true,
            "lease_valid":true,"floating_ips":0,"version":"0.1.0","total_bytes":1,
            "free_bytes":1,"snapshot_unix":null}],"floating_ips":[{"name":"web",
            "address":"10.9.1.1","node":null,"epoch":1}],
            "volumes":[{"id":"vol-1","nodes":["node-a"],"sizeBytes":1048576}]}"#;
        let d: CoordinatorDoc = serde_json::from_str(json).unwrap();
        assert_eq!(d.volumes[0].nodes, vec!["node-a"]);
        assert_eq!(d.floating_ips[0].node, None);
    }

    #[test]
    fn a_disconnected_node_is_not_shown_healthy_and_says_what_to_look_at() {
        let text = render(&doc(), false);
        let row = text.lines().find(|l| l.contains("✗ node-b")).unwrap();
        assert!(
            row.contains("disconnected") && row.contains("unknown"),
            "{row}"
        );
        assert!(!row.contains("healthy"), "{row}");
        assert!(row.contains("30s ago"), "{row}");
        assert!(text.contains("✗ node node-b: no session"), "{text}");
        assert!(text.contains("✗ volume vol-1: held by node-b"), "{text}");
        assert!(text.contains("→ is the agent on node-b running?"), "{text}");
        for h in [
            "NODE",
            "SESSION",
            "HEALTH",
            "LEASE",
            "FLOATING IP",
            "OWNER",
            "EPOCH",
            "VOLUME",
        ] {
            assert!(text.contains(h), "{h}: {text}");
        }
    }

    #[test]
    fn an_unowned_floating_ip_fails_on_the_leader_only() {
        let mut d = doc();
        d.floating_ips[0].node = None;
        assert!(checks(&d)
            .iter()
            .any(|c| c.name == "floating IP web" && !c.ok));
        d.leader = false;
        assert!(!checks(&d).iter().any(|c| c.name == "floating IP web"));
    }
}
