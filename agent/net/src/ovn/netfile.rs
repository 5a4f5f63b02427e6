//! The part of the `ovn:` section that the netlink reconciler applies: the join interface's
//! address, the routes to the pod and service CIDRs via the join gateway, and the Cilium
//! sysctls. [`merge`] adds them to a parsed network file before its render. Pure.

use crate::model::IfName;
use crate::spec::{AddressSpec, Dst, NetworkFile, RouteSpec, SysctlValue};

use super::{cilium, OvnSpec};

/// Adds the section's netlink objects and sysctls to `file` (entries the file already has
/// for the same key win).
pub fn merge(s: &OvnSpec, file: &mut NetworkFile) {
    for (k, v) in cilium::sysctls(s) {
        file.sysctls.entry(k).or_insert(SysctlValue(v));
    }
    for dev in cilium::rp_filter_interfaces(s) {
        if dev == cilium::GENEVE_DEV {
            continue; // created by ovs-vswitchd on demand; checked by cilium::check only
        }
        file.interface_sysctls
            .entry(IfName(dev))
            .or_default()
            .entry("ipv4.rp_filter".into())
            .or_insert(SysctlValue("0".into()));
    }
    let Some(j) = &s.join else { return };
    if !file
        .addresses
        .iter()
        .any(|a| a.dev == j.name && a.address == j.address)
    {
        file.addresses.push(AddressSpec {
            address: j.address,
            dev: j.name.clone(),
            nodad: j.address.is_v6().then_some(true), // IFA_F_NODAD is IPv6-only: the kernel does not report it back on IPv4,
        });
    }
    for cidr in s.pod_cidrs.iter().chain(&s.service_cidrs) {
        file.routes.push(RouteSpec {
            dst: Dst::Prefix(*cidr),
            via: Some(j.gateway),
            dev: Some(j.name.clone()),
            table: None,
            metric: None,
            onlink: None,
            src: None,
            kind: None,
            multipath: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_address_routes_and_sysctls() {
        let y = "{systemId: a, remote: r, encapIP: 10.0.0.1, datapathType: netdev, podCIDRs: [10.244.0.0/16], \
                 join: {mac: '0a:00:00:00:00:01', address: 100.64.0.2/16, gateway: 100.64.0.1}}";
        let s = OvnSpec::from_yaml(&serde_yaml_ng::from_str(y).unwrap()).unwrap();
        let mut f = NetworkFile::default();
        merge(&s, &mut f);
        assert_eq!(f.addresses.len(), 1);
        assert_eq!(f.routes.len(), 1);
        assert_eq!(f.routes[0].via, Some("100.64.0.1".parse().unwrap()));
        assert_eq!(
            f.sysctls.get("net.ipv4.ip_forward").map(|v| v.0.as_str()),
            Some("1")
        );
        assert_eq!(f.interface_sysctls.len(), 1);
        merge(&s, &mut f);
        assert_eq!(f.addresses.len(), 1, "an address is not added twice");
    }
}
