//! The pure render of an [`OvnSpec`] into the OVSDB state Hearth wants: the Open_vSwitch
//! external_ids it owns and the bridges, ports and interfaces it manages.

use std::collections::BTreeMap;

use super::OvnSpec;

/// The Open_vSwitch external_ids keys Hearth owns: it sets them, and removes one the section
/// no longer asks for.
pub const OWNED_KEYS: [&str; 10] = [
    "system-id",
    "hostname",
    "ovn-remote",
    "ovn-encap-type",
    "ovn-encap-ip",
    "ovn-encap-csum",
    "ovn-bridge-mappings",
    "ovn-remote-probe-interval",
    "ovn-openflow-probe-interval",
    "ovn-monitor-all",
];

/// The Open_vSwitch external_ids key in which Hearth lists the [`OWNED_KEYS`] it set
/// (comma-separated), so that removing the `ovn:` section removes those and no other.
pub const KEYS_KEY: &str = "hearth-keys";

/// The desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Values of [`OWNED_KEYS`]; a key missing here is removed.
    pub external_ids: BTreeMap<String, String>,
    /// Bridges, by name.
    pub bridges: Vec<DesiredBridge>,
}

/// A bridge with the ports Hearth manages on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBridge {
    /// Its name.
    pub name: String,
    /// Its datapath_type.
    pub datapath_type: String,
    /// Its ports (each with one interface of the same name).
    pub ports: Vec<DesiredPort>,
}

/// A port with its single interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPort {
    /// The port and interface name.
    pub name: String,
    /// Interface type: `internal`, or empty for a system device.
    pub kind: String,
    /// Requested MAC (`mac` column).
    pub mac: Option<String>,
    /// `mtu_request`.
    pub mtu: Option<i64>,
    /// Interface external_ids Hearth sets (besides the marker), like `iface-id`.
    pub external_ids: BTreeMap<String, String>,
}

impl DesiredPort {
    fn local(name: &str) -> Self {
        Self {
            name: name.into(),
            kind: "internal".into(),
            mac: None,
            mtu: None,
            external_ids: BTreeMap::new(),
        }
    }
}

/// Renders the section. Bridges come out sorted by name, br-int first.
pub fn render(s: &OvnSpec) -> Desired {
    let mut ids = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        ids.insert(k.to_owned(), v);
    };
    put("system-id", s.system_id.clone());
    if let Some(h) = &s.hostname {
        put("hostname", h.clone());
    }
    put("ovn-remote", s.remote.clone());
    put("ovn-encap-type", s.encap_type.clone());
    put("ovn-encap-ip", s.encap_ip.to_string());
    put("ovn-encap-csum", s.encap_csum.to_string());
    if !s.bridge_mappings.is_empty() {
        let m: Vec<String> = s
            .bridge_mappings
            .iter()
            .map(|(n, b)| format!("{n}:{b}"))
            .collect();
        put("ovn-bridge-mappings", m.join(","));
    }
    put(
        "ovn-remote-probe-interval",
        s.remote_probe_interval.to_string(),
    );
    put(
        "ovn-openflow-probe-interval",
        s.openflow_probe_interval.to_string(),
    );
    put("ovn-monitor-all", s.monitor_all.to_string());
    let set: Vec<&str> = ids.keys().map(String::as_str).collect();
    let list = set.join(",");
    ids.insert(KEYS_KEY.to_owned(), list);

    let mut int_ports = vec![DesiredPort::local(&s.integration_bridge)];
    if let Some(j) = &s.join {
        let mut external_ids = BTreeMap::new();
        if let Some(id) = &j.iface_id {
            external_ids.insert("iface-id".into(), id.clone());
        }
        int_ports.push(DesiredPort {
            name: j.name.0.clone(),
            kind: "internal".into(),
            mac: Some(j.mac.to_string()),
            mtu: Some(i64::from(
                j.mtu.unwrap_or_else(|| super::cilium::overlay_mtu(s)),
            )),
            external_ids,
        });
    }
    let mut bridges = vec![DesiredBridge {
        name: s.integration_bridge.clone(),
        datapath_type: s.datapath_type.clone(),
        ports: int_ports,
    }];
    let mut providers: Vec<&String> = s.bridge_mappings.values().collect();
    providers.sort();
    providers.dedup();
    for br in providers {
        let mut ports = vec![DesiredPort::local(br)];
        if let Some(up) = s.uplinks.get(br) {
            ports.push(DesiredPort {
                kind: String::new(),
                ..DesiredPort::local(up)
            });
        }
        bridges.push(DesiredBridge {
            name: br.clone(),
            datapath_type: s.datapath_type.clone(),
            ports,
        });
    }
    Desired {
        external_ids: ids,
        bridges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example() -> OvnSpec {
        let y = r#"
ovsdb: unix:/run/openvswitch/db.sock
systemId: node-a
remote: tcp:10.0.0.1:6642
encapType: geneve
encapIP: 10.0.0.11
bridgeMappings: {physnet1: br-ext}
uplinks: {br-ext: eth1}
datapathType: netdev
join: {name: ovn0, mac: "0a:00:00:64:00:02", address: 100.64.0.2/16, gateway: 100.64.0.1, mtu: 1400}
podCIDRs: [10.244.0.0/16]
serviceCIDRs: [10.96.0.0/12]
"#;
        crate::spec::ovn_section(y).unwrap()
    }

    #[test]
    fn golden() {
        let d = render(&example());
        let ids: Vec<String> = d
            .external_ids
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            ids.join(" "),
            "hearth-keys=ovn-bridge-mappings,ovn-encap-csum,ovn-encap-ip,ovn-encap-type,\
             ovn-monitor-all,ovn-openflow-probe-interval,ovn-remote,ovn-remote-probe-interval,\
             system-id ovn-bridge-mappings=physnet1:br-ext ovn-encap-csum=true ovn-encap-ip=10.0.0.11 \
             ovn-encap-type=geneve ovn-monitor-all=false ovn-openflow-probe-interval=180 \
             ovn-remote=tcp:10.0.0.1:6642 ovn-remote-probe-interval=10000 system-id=node-a"
        );
        let shape: Vec<String> = d
            .bridges
            .iter()
            .map(|b| {
                let ports: Vec<String> = b
                    .ports
                    .iter()
                    .map(|p| format!("{}:{}:{:?}:{:?}", p.name, p.kind, p.mac, p.mtu))
                    .collect();
                format!("{}[{}] {}", b.name, b.datapath_type, ports.join(" "))
            })
            .collect();
        assert_eq!(
            shape,
            [
                "br-int[netdev] br-int:internal:None:None ovn0:internal:Some(\"0a:00:00:64:00:02\"):Some(1400)",
                "br-ext[netdev] br-ext:internal:None:None eth1::None:None",
            ]
        );
        assert!(OWNED_KEYS
            .iter()
            .all(|k| *k == "hostname" || d.external_ids.contains_key(*k)));
    }

    #[test]
    fn invalid_sections_name_the_field() {
        let bad = |y: &str| crate::spec::ovn_section(y).unwrap_err().to_string();
        assert!(bad(
            "{systemId: a, remote: 'tcp:10.0.0.1:6642', encapIP: 1.2.3.4, datapathType: dpdk}"
        )
        .contains("ovn.datapathType"));
        assert!(bad(
            "{systemId: a, remote: 'tcp:10.0.0.1:6642', encapIP: 1.2.3.4, uplinks: {br-x: eth0}}"
        )
        .contains("ovn.uplinks"));
        assert!(
            bad("{systemId: a, remote: 'tcp:10.0.0.1:6642', encapIP: 1.2.3.4, nope: 1}")
                .contains("nope")
        );
        assert!(
            bad("{systemId: a, remote: 'tcp:10.0.0.1:6642', encapIP: 1.2.3.4, ovsdb: x}")
                .contains("ovn.ovsdb")
        );
    }
}
