//! Floating IPs for overlay workloads (KubeVirt VMs, pods) through OVN: a FloatingIP with
//! `target` becomes one `dnat_and_snat` NAT row on the gateway router, and the gateway port's
//! HA chassis group gets priorities from node health and leases.
//!
//! Owns the decision (pure: [`desired`]) and the loop that writes it ([`run`]) through
//! [`hearth_net::ovn::nb`], which touches only rows marked as Hearth's. It must not change the
//! engine's decisions: the engine allocates the address (and never gives a targeted floating
//! IP a node); this module only reads the store and the engine's node views.

pub mod run;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::store::model::{FloatingIp, FloatingIpState};
use hearth_net::ovn::nb::gateway::{priorities, Gateway};
use hearth_net::ovn::nb::{Desired, HaWant, NatWant};

/// The `ovn:` section of the coordinator config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OvnNatConfig {
    /// The northbound database, `tcp:HOST:6641`, `unix:PATH` (ssl: is not wired here yet).
    pub northbound: String,
    /// The southbound database, to report the active gateway chassis; optional.
    #[serde(default)]
    pub southbound: Option<String>,
    /// The gateway logical router that gets the NAT rows.
    pub router: String,
    /// Its gateway port (with the provider network behind it).
    pub gateway_port: String,
    /// The HA chassis group Hearth creates and keeps on the gateway port.
    #[serde(default = "default_group")]
    pub ha_group: String,
    /// The node label that marks gateway-capable nodes (value `true`).
    #[serde(default = "default_label")]
    pub gateway_label: String,
}

fn default_group() -> String {
    "hearth-gateway".into()
}

fn default_label() -> String {
    "hearth.io/gateway".into()
}

/// What a FloatingIP's `target` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A logical IP on the overlay.
    Ip(IpAddr),
    /// A pod, `pod/NAMESPACE/NAME`.
    Pod(String, String),
    /// A KubeVirt VirtualMachineInstance, `vmi/NAMESPACE/NAME`.
    Vmi(String, String),
}

impl Target {
    /// Parses `10.0.0.5`, `pod/NS/NAME` or `vmi/NS/NAME`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse() {
            return Ok(Self::Ip(ip));
        }
        let mut parts = s.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("pod"), Some(ns), Some(n)) if !ns.is_empty() && !n.is_empty() => {
                Ok(Self::Pod(ns.into(), n.into()))
            }
            (Some("vmi"), Some(ns), Some(n)) if !ns.is_empty() && !n.is_empty() => {
                Ok(Self::Vmi(ns.into(), n.into()))
            }
            _ => Err(format!(
                "{s:?}: expected a logical IP, pod/NAMESPACE/NAME or vmi/NAMESPACE/NAME"
            )),
        }
    }
}

/// A node as the coordinator sees it, for the gateway role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// The node (and chassis) name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Healthy by its last report.
    pub healthy: bool,
    /// Holds a valid lease.
    pub lease_valid: bool,
}

/// One targeted floating IP's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatStatus {
    /// The FloatingIP's name.
    pub name: String,
    /// The external address (none until allocated).
    pub address: Option<IpAddr>,
    /// The target as written.
    pub target: String,
    /// The logical IP it resolved to (none when unresolved).
    pub logical_ip: Option<IpAddr>,
    /// The gateway chassis active now, if known.
    pub gateway_chassis: Option<String>,
    /// Since when (Unix seconds) that chassis is the gateway, as observed by this coordinator.
    pub gateway_since_unix: Option<u64>,
    /// Why it is not in the northbound database, if it is not.
    pub problem: Option<String>,
}

/// The OVN NAT part of the coordinator's `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OvnNatStatus {
    /// The gateway router.
    pub router: String,
    /// The gateway chassis active now, if known.
    pub gateway_chassis: Option<String>,
    /// Since when (Unix seconds).
    pub gateway_since_unix: Option<u64>,
    /// Gateway changes observed since start.
    pub gateway_changes: u64,
    /// HA member priorities written, by chassis.
    pub priorities: BTreeMap<String, i64>,
    /// The last northbound error, if the last pass failed.
    pub error: Option<String>,
    /// Each targeted floating IP.
    pub floating_ips: Vec<NatStatus>,
}

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The northbound contents Hearth wants, and each targeted floating IP's status (without the
/// gateway fields, which [`run`] fills in). Pod and VMI targets are not resolved yet: they are
/// reported as a problem and get no NAT row.
pub fn desired(
    config: &OvnNatConfig,
    fips: &[FloatingIp],
    states: &[FloatingIpState],
    nodes: &[NodeFacts],
    active: Option<&str>,
) -> (Desired, Vec<NatStatus>) {
    let mut nats = Vec::new();
    let mut status = Vec::new();
    for fip in fips {
        let Some(target) = &fip.target else { continue };
        let address = states
            .iter()
            .find(|s| s.name == fip.name)
            .map(|s| s.address);
        let (logical_ip, problem) = match Target::parse(target) {
            Ok(Target::Ip(ip)) => (Some(ip), None),
            Ok(_) => (
                None,
                Some("pod and vmi targets are not resolved yet".to_owned()),
            ),
            Err(e) => (None, Some(e)),
        };
        let problem = match (address, logical_ip, problem) {
            (_, _, Some(p)) => Some(p),
            (None, _, None) => Some("no address allocated yet".to_owned()),
            (Some(a), Some(l), None) if a.is_ipv4() != l.is_ipv4() => Some(format!(
                "address {a} and target {l} are of different families"
            )),
            (Some(a), Some(l), None) => {
                nats.push(NatWant {
                    name: fip.name.clone(),
                    external_ip: a,
                    logical_ip: l,
                });
                None
            }
            (Some(_), None, None) => None,
        };
        status.push(NatStatus {
            name: fip.name.clone(),
            address,
            target: target.clone(),
            logical_ip,
            gateway_chassis: None,
            gateway_since_unix: None,
            problem,
        });
    }
    let gateways: Vec<Gateway> = nodes
        .iter()
        .filter(|n| n.labels.get(&config.gateway_label).map(String::as_str) == Some("true"))
        .map(|n| Gateway {
            chassis: n.name.clone(),
            healthy: n.healthy,
            lease_valid: n.lease_valid,
        })
        .collect();
    let ha = (!gateways.is_empty()).then(|| HaWant {
        group: config.ha_group.clone(),
        members: priorities(&gateways, active),
    });
    (
        Desired {
            router: config.router.clone(),
            gateway_port: config.gateway_port.clone(),
            nats,
            ha,
        },
        status,
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
