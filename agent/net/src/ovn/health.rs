//! The chassis health snapshot: registered in the southbound DB, ovn-controller connected and
//! caught up, encap IP as configured, join interface up and its gateway reachable. Reads only.
//!
//! "Caught up" compares the southbound `SB_Global.nb_cfg` with the chassis's
//! `Chassis_Private.nb_cfg`, which ovn-controller writes after it has installed the flows of
//! that configuration (ovn-nbctl's `--wait=hv` uses the same pair). "Connected" is the
//! Chassis_Private row existing: ovn-controller creates it once it holds the southbound lock
//! for its chassis.
//! Gateway reachability is ping-free: a neighbour entry for the gateway on the join interface
//! in state REACHABLE, STALE, DELAY or PROBE in `/proc/net/arp` (IPv4, flags "complete") or in
//! a caller-supplied neighbour view; Hearth's own traffic (or ovn-controller's) keeps it fresh.

use serde::Serialize;
use serde_json::Value;

use crate::ovsdb::datum::{decode_strings, eq, select};
use crate::ovsdb::{tables, Ovsdb, OvsdbError};

use super::OvnSpec;

/// The snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OvnHealth {
    /// The chassis row named system-id exists in the southbound DB.
    pub chassis_registered: bool,
    /// ovn-controller wrote its Chassis_Private row.
    pub controller_connected: bool,
    /// Chassis_Private.nb_cfg >= SB_Global.nb_cfg.
    pub caught_up: bool,
    /// SB_Global.nb_cfg.
    pub sb_nb_cfg: i64,
    /// Chassis_Private.nb_cfg.
    pub chassis_nb_cfg: i64,
    /// The chassis's Encap rows carry the configured encap IP.
    pub encap_ip_matches: bool,
    /// The encap IPs the southbound DB has for this chassis.
    pub encap_ips: Vec<String>,
    /// The join interface is up.
    pub join_up: bool,
    /// The join gateway has a complete neighbour entry.
    pub gateway_reachable: bool,
    /// Cilium chaining prerequisites that do not hold (sysctls, join MTU).
    pub cilium_mismatches: Vec<super::cilium::Mismatch>,
    /// Problems, one line each (empty when healthy).
    pub problems: Vec<String>,
}

fn rows(v: Option<&Value>) -> Vec<Value> {
    v.and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// What the node reports about the join interface.
pub trait JoinView: Send + Sync {
    /// Whether the link is up (operstate up or unknown with carrier, as internal ports show).
    fn link_up(&self, dev: &str) -> bool;
    /// Whether the neighbour table has a complete entry for `ip` on `dev`.
    fn neighbour_complete(&self, dev: &str, ip: std::net::IpAddr) -> bool;
}

/// The current network namespace via `/sys/class/net` and `/proc/net/arp`.
#[derive(Debug, Default)]
pub struct ProcJoin;

impl JoinView for ProcJoin {
    fn link_up(&self, dev: &str) -> bool {
        let read = |f: &str| {
            std::fs::read_to_string(format!("/sys/class/net/{dev}/{f}")).unwrap_or_default()
        };
        let oper = read("operstate");
        oper.trim() == "up" || (oper.trim() == "unknown" && read("carrier").trim() == "1")
    }
    fn neighbour_complete(&self, dev: &str, ip: std::net::IpAddr) -> bool {
        let arp = std::fs::read_to_string("/proc/thread-self/net/arp").unwrap_or_default();
        arp.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 6 && f[0] == ip.to_string() && f[5] == dev && f[2] == "0x2"
        })
    }
}

/// Builds the snapshot from the southbound DB, the local OVSDB and the join view.
pub async fn check(
    spec: &OvnSpec,
    sb: &dyn Ovsdb,
    local: &dyn Ovsdb,
    join: &dyn JoinView,
    host: &dyn super::cilium::HostView,
) -> Result<OvnHealth, OvsdbError> {
    let mut h = OvnHealth::default();
    let name = Value::String(spec.system_id.clone());
    let r = sb
        .transact(
            "OVN_Southbound",
            vec![
                select("SB_Global", vec![], &["nb_cfg"]),
                select(
                    "Chassis",
                    vec![eq("name", name.clone())],
                    &["name", "encaps"],
                ),
                select(
                    "Chassis_Private",
                    vec![eq("name", name.clone())],
                    &["name", "nb_cfg"],
                ),
                select("Encap", vec![eq("chassis_name", name)], &["ip", "type"]),
            ],
        )
        .await?;
    h.sb_nb_cfg = rows(r.first())
        .first()
        .and_then(|g| g.get("nb_cfg"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    h.chassis_registered = !rows(r.get(1)).is_empty();
    let private = rows(r.get(2));
    h.controller_connected = !private.is_empty();
    h.chassis_nb_cfg = private
        .first()
        .and_then(|p| p.get("nb_cfg"))
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    h.caught_up = h.controller_connected && h.chassis_nb_cfg >= h.sb_nb_cfg;
    h.encap_ips = rows(r.get(3))
        .iter()
        .flat_map(|e| decode_strings(e.get("ip").unwrap_or(&Value::Null)))
        .collect();
    let want_ip = spec.encap_ip.to_string();
    h.encap_ip_matches = !h.encap_ips.is_empty() && h.encap_ips.iter().all(|ip| *ip == want_ip);

    let ovs = tables::read(local).await?;
    let local_ids = ovs.root.map(|r| r.external_ids).unwrap_or_default();
    if local_ids.get("system-id") != Some(&spec.system_id) {
        h.problems.push(format!(
            "local system-id is {:?}",
            local_ids.get("system-id")
        ));
    }
    if let Some(j) = &spec.join {
        h.join_up = join.link_up(&j.name.0);
        h.gateway_reachable = join.neighbour_complete(&j.name.0, j.gateway);
        if !h.join_up {
            h.problems.push(format!("{} is not up", j.name));
        }
        if !h.gateway_reachable {
            h.problems.push(format!(
                "no complete neighbour entry for {} on {}",
                j.gateway, j.name
            ));
        }
    }
    if !h.chassis_registered {
        h.problems.push(format!(
            "chassis {} is not in the southbound DB",
            spec.system_id
        ));
    }
    if !h.caught_up {
        h.problems.push(format!(
            "ovn-controller at nb_cfg {} of {}",
            h.chassis_nb_cfg, h.sb_nb_cfg
        ));
    }
    if !h.encap_ip_matches {
        h.problems
            .push(format!("encap IPs {:?}, want {want_ip}", h.encap_ips));
    }
    h.cilium_mismatches = super::cilium::check(spec, host);
    for m in &h.cilium_mismatches {
        h.problems
            .push(format!("{}: want {}, found {}", m.what, m.want, m.found));
    }
    Ok(h)
}
