//! Cilium chaining prerequisites: the overlay MTU (underlay minus the encapsulation overhead),
//! the sysctls (`ip_forward`, `rp_filter=0` on the join and tunnel interfaces), and
//! [`check`], which reports every mismatch on the node. Writes nothing: the sysctls are applied
//! by the netlink reconciler through [`super::netfile`].

use std::collections::BTreeMap;

use super::OvnSpec;

/// Geneve (and VXLAN) overhead over an IPv4 underlay: outer IPv4 20 + UDP 8 + header 8 + inner
/// Ethernet 14.
pub const OVERHEAD_V4: u32 = 50;
/// The same over IPv6: the outer header is 40 bytes.
pub const OVERHEAD_V6: u32 = 70;
/// The kernel datapath's Geneve tunnel device.
pub const GENEVE_DEV: &str = "genev_sys_6081";

/// The one MTU of the overlay: the join interface and pod interfaces use it.
pub fn overlay_mtu(s: &OvnSpec) -> u32 {
    let overhead = if s.encap_ip.is_ipv4() {
        OVERHEAD_V4
    } else {
        OVERHEAD_V6
    };
    s.underlay_mtu.saturating_sub(overhead)
}

/// Global sysctls (`/proc/sys` paths with dots) and their values.
pub fn sysctls(s: &OvnSpec) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("net.ipv4.ip_forward".into(), "1".into());
    m.insert("net.ipv4.conf.all.rp_filter".into(), "0".into());
    if s.join.as_ref().is_some_and(|j| j.address.is_v6()) || s.encap_ip.is_ipv6() {
        m.insert("net.ipv6.conf.all.forwarding".into(), "1".into());
    }
    m
}

/// The interfaces that need `rp_filter=0`: the join interface, and the kernel Geneve device
/// when the kernel datapath carries Geneve.
pub fn rp_filter_interfaces(s: &OvnSpec) -> Vec<String> {
    let mut v: Vec<String> = s.join.iter().map(|j| j.name.0.clone()).collect();
    if s.datapath_type == "system" && s.encap_type == "geneve" {
        v.push(GENEVE_DEV.into());
    }
    v
}

/// What [`check`] reads from the node.
pub trait HostView: Send + Sync {
    /// A sysctl by its dotted name; `None` when it does not exist.
    fn sysctl(&self, name: &str) -> Option<String>;
    /// A link's MTU; `None` when there is no such link.
    fn mtu(&self, dev: &str) -> Option<u32>;
}

/// The current network namespace, through `/proc/sys` and `/sys/class/net`.
#[derive(Debug, Default)]
pub struct ProcHost;

impl HostView for ProcHost {
    fn sysctl(&self, name: &str) -> Option<String> {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    }
    fn mtu(&self, dev: &str) -> Option<u32> {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// One difference between what Cilium chaining needs and the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    /// The sysctl or `mtu <dev>`.
    pub what: String,
    /// The required value.
    pub want: String,
    /// The value found (`missing` when absent).
    pub found: String,
}

/// Reports every mismatch: sysctls, per-interface rp_filter, and the join MTU (which must
/// equal the overlay MTU, or the section's explicit `join.mtu`).
pub fn check(s: &OvnSpec, host: &dyn HostView) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut want = |what: String, want: String, found: Option<String>| {
        let found = found.unwrap_or_else(|| "missing".into());
        if found != want {
            out.push(Mismatch { what, want, found });
        }
    };
    for (k, v) in sysctls(s) {
        let found = host.sysctl(&k);
        want(k, v, found);
    }
    for dev in rp_filter_interfaces(s) {
        let k = format!("net.ipv4.conf.{dev}.rp_filter");
        let found = host.sysctl(&k);
        want(k, "0".into(), found);
    }
    if let Some(j) = &s.join {
        let mtu = j.mtu.unwrap_or_else(|| overlay_mtu(s));
        want(
            format!("mtu {}", j.name),
            mtu.to_string(),
            host.mtu(&j.name.0).map(|m| m.to_string()),
        );
        if j.mtu.is_some_and(|m| m > overlay_mtu(s)) {
            want(
                format!("join.mtu of {}", j.name),
                format!("<= {}", overlay_mtu(s)),
                Some(mtu.to_string()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(BTreeMap<String, String>, Option<u32>);
    impl HostView for Fake {
        fn sysctl(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn mtu(&self, _: &str) -> Option<u32> {
            self.1
        }
    }

    fn spec(y: &str) -> OvnSpec {
        OvnSpec::from_yaml(&serde_yaml_ng::from_str(y).unwrap()).unwrap()
    }

    #[test]
    fn mtu_overhead_by_underlay_family() {
        assert_eq!(
            overlay_mtu(&spec("{systemId: a, remote: r, encapIP: 10.0.0.1}")),
            1450
        );
        assert_eq!(
            overlay_mtu(&spec(
                "{systemId: a, remote: r, encapIP: 'fd00::1', underlayMtu: 9000}"
            )),
            8930
        );
    }

    #[test]
    fn check_reports_each_mismatch() {
        let s = spec("{systemId: a, remote: r, encapIP: 10.0.0.1, join: {mac: '0a:00:00:00:00:01', address: 100.64.0.2/16, gateway: 100.64.0.1}}");
        let good: BTreeMap<String, String> = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.ovn0.rp_filter", "0"),
            ("net.ipv4.conf.genev_sys_6081.rp_filter", "0"),
        ]
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
        assert_eq!(check(&s, &Fake(good.clone(), Some(1450))), vec![]);
        let mut bad = good;
        bad.insert("net.ipv4.ip_forward".into(), "0".into());
        let m = check(&s, &Fake(bad, Some(1500)));
        let whats: Vec<&str> = m.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(whats, ["net.ipv4.ip_forward", "mtu ovn0"]);
    }
}
