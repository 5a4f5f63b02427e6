//! The checks of a network file that need the node: every interface the file puts something
//! on exists or is made by the file (or by OVS for its `ovn:` section), and `ovn.encapIP` is
//! an address of this node. Pure: the caller observes the node ([`Host`]) and `hearth net
//! apply` refuses the file, dry run or not, before it changes anything. The long-running
//! loop does not refuse: a device may appear later, and it retries.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{NetworkFile, SpecError};

/// What the node has.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// The interface names in this network namespace.
    pub links: BTreeSet<String>,
    /// The addresses in this network namespace.
    pub addresses: BTreeSet<IpAddr>,
}

/// The interfaces that exist once the file is applied, besides the host's.
fn made_by(file: &NetworkFile) -> BTreeSet<String> {
    let mut made: BTreeSet<String> = BTreeSet::new();
    for l in &file.links {
        made.insert(l.name.0.clone());
        if let Some(p) = &l.peer {
            made.insert(p.0.clone());
        }
    }
    if let Some(o) = &file.ovn {
        made.insert(o.integration_bridge.clone());
        made.extend(o.bridge_mappings.values().cloned());
        if let Some(j) = &o.join {
            made.insert(j.name.0.clone());
        }
    }
    made
}

/// Checks `file` against `host`; the error names the field and the value.
pub fn check(file: &NetworkFile, host: &Host) -> Result<(), SpecError> {
    let made = made_by(file);
    let mut devs: Vec<(String, &str)> = Vec::new();
    for (i, l) in file.links.iter().enumerate() {
        for (key, dev) in [
            ("master", &l.master),
            ("dev", &l.dev),
            ("parent", &l.parent),
        ] {
            if let Some(d) = dev {
                devs.push((format!("links[{i}].{key}"), &d.0));
            }
        }
    }
    for (i, a) in file.addresses.iter().enumerate() {
        devs.push((format!("addresses[{i}].dev"), &a.dev.0));
    }
    for (i, r) in file.routes.iter().enumerate() {
        if let Some(d) = &r.dev {
            devs.push((format!("routes[{i}].dev"), &d.0));
        }
        for (j, nh) in r.multipath.iter().flatten().enumerate() {
            if let Some(d) = &nh.dev {
                devs.push((format!("routes[{i}].multipath[{j}].dev"), &d.0));
            }
        }
    }
    for (i, n) in file.neighbours.iter().enumerate() {
        devs.push((format!("neighbours[{i}].dev"), &n.dev.0));
    }
    for dev in file.interface_sysctls.keys() {
        devs.push((format!("interfaceSysctls.{}", dev.0), &dev.0));
    }
    for (i, f) in file.floating_ips.iter().enumerate() {
        devs.push((format!("floatingIPs[{i}].dev"), &f.dev.0));
    }
    if let Some(o) = &file.ovn {
        for (br, up) in &o.uplinks {
            devs.push((format!("ovn.uplinks.{br}"), up));
        }
    }
    for (field, dev) in devs {
        if !host.links.contains(dev) && !made.contains(dev) {
            return Err(SpecError::Validate {
                field,
                message: format!(
                    "{dev}: no such interface in this network namespace, and the file does not \
                     create it"
                ),
            });
        }
    }
    if let Some(o) = &file.ovn {
        let ours = host.addresses.contains(&o.encap_ip)
            || file.addresses.iter().any(|a| a.address.addr == o.encap_ip);
        if !ours {
            return Err(SpecError::Validate {
                field: "ovn.encapIP".into(),
                message: format!(
                    "{}: not an address of this node (the other chassis send their tunnel \
                     traffic to it)",
                    o.encap_ip
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, Host};
    use crate::spec::parse;

    fn host() -> Host {
        Host {
            links: ["lo", "eth0"].into_iter().map(String::from).collect(),
            addresses: ["10.0.0.11".parse().unwrap()].into(),
        }
    }

    fn err(text: &str) -> String {
        check(&parse(text).unwrap(), &host())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_missing_device_is_named_with_its_field() {
        let e = err("addresses:\n  - {address: 192.0.2.1/24, dev: eth0}\n  - {address: 192.0.2.2/24, dev: eth9}\n");
        assert!(
            e.starts_with("addresses[1].dev: eth9: no such interface"),
            "{e}"
        );
        let e = err("routes:\n  - {dst: 10.0.0.0/8, multipath: [{via: 10.0.0.1, dev: eth7}]}\n");
        assert!(e.starts_with("routes[0].multipath[0].dev: eth7"), "{e}");
    }

    #[test]
    fn devices_the_file_or_ovs_creates_are_fine() {
        let text = "links:\n  - {name: veth-a, kind: veth, peer: veth-b}\naddresses:\n  - {address: 192.0.2.1/24, dev: veth-b}\n\
                    ovn:\n  systemId: a\n  remote: tcp:10.0.0.1:6642\n  encapIP: 10.0.0.11\n  join: {name: ovn0, mac: '0a:00:00:00:00:01', address: 100.64.0.2/16, gateway: 100.64.0.1}\n\
                    interfaceSysctls:\n  ovn0: {ipv4.rp_filter: '0'}\n";
        check(&parse(text).unwrap(), &host()).unwrap();
    }

    #[test]
    fn an_encap_ip_of_another_node_is_refused() {
        let e = err("ovn:\n  systemId: a\n  remote: tcp:10.0.0.1:6642\n  encapIP: 10.0.0.99\n");
        assert!(
            e.starts_with("ovn.encapIP: 10.0.0.99: not an address of this node"),
            "{e}"
        );
    }
}
