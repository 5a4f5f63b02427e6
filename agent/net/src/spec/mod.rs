//! The node network file (YAML, camelCase): its serde shape and [`parse`], which checks it
//! and names the field at fault. This module reads text only; it never touches the kernel.
//!
//! The keys of the contract in DESIGN.md are fixed here; new keys may be added.

pub mod host;
pub mod locate;
mod ovn;
mod scalars;
mod validate;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::model::{IfName, Mac, Prefix};
pub use ovn::{JoinSpec, OvnSpec, TlsSpec};
pub use scalars::{Dst, FwMark, SysctlValue};
pub(crate) use validate::{interface_sysctl_path, sysctl_path};

/// Why a node network file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno.
        source: std::io::Error,
    },
    /// The YAML does not have the file's shape (the message names the field and line).
    #[error("{0}")]
    Parse(String),
    /// A field has a value the file format does not allow.
    #[error("{field}: {message}")]
    Validate {
        /// The field, like `routes[3].via`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SpecError {
    /// The error with the line of its field in `text` (`(line N)`), when it has a field and
    /// the field can be found.
    #[must_use]
    pub fn at_line(self, text: &str) -> Self {
        match self {
            Self::Validate { field, message } => {
                let message = match locate::line_of(text, &field) {
                    Some(n) => format!("{message} (line {n})"),
                    None => message,
                };
                Self::Validate { field, message }
            }
            other => other,
        }
    }
}

/// Reads and checks a node network file.
pub fn load(path: &Path) -> Result<NetworkFile, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// Parses and checks the text of a node network file. An empty file is an empty state.
pub fn parse(text: &str) -> Result<NetworkFile, SpecError> {
    let file: Option<NetworkFile> =
        serde_yaml_ng::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
    let file = file.unwrap_or_default();
    validate::check(&file).map_err(|e| e.at_line(text))?;
    if let Some(o) = &file.ovn {
        o.check().map_err(|e| e.at_line(text))?;
    }
    Ok(file)
}

/// Parses `y` as the `ovn:` section of an otherwise empty network file.
#[cfg(test)]
pub(crate) fn ovn_section(y: &str) -> Result<OvnSpec, SpecError> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(y).expect("YAML");
    let file = serde_yaml_ng::to_string(&BTreeMap::from([("ovn", value)])).expect("YAML");
    Ok(parse(&file)?.ovn.expect("an ovn section"))
}

/// Missing and `null` both mean empty.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkFile {
    /// Links Hearth creates and owns.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<LinkSpec>,
    /// Addresses.
    #[serde(default, deserialize_with = "null_default")]
    pub addresses: Vec<AddressSpec>,
    /// Routes.
    #[serde(default, deserialize_with = "null_default")]
    pub routes: Vec<RouteSpec>,
    /// Neighbour and proxy-neighbour entries.
    #[serde(default, deserialize_with = "null_default", alias = "neighbors")]
    pub neighbours: Vec<NeighbourSpec>,
    /// Policy rules.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<RuleSpec>,
    /// Global sysctls: `net.ipv4.ip_forward: "1"` (or the slash form `net/ipv4/ip_forward`).
    #[serde(default, deserialize_with = "null_default")]
    pub sysctls: BTreeMap<String, SysctlValue>,
    /// Per-interface sysctls: `{br-ext: {ipv4.rp_filter: "0", ipv6.neigh.retrans_time_ms: "500"}}`.
    #[serde(default, deserialize_with = "null_default")]
    pub interface_sysctls: BTreeMap<IfName, BTreeMap<String, SysctlValue>>,
    /// Floating IPs announced with gratuitous ARP / unsolicited NA.
    #[serde(default, deserialize_with = "null_default", rename = "floatingIPs")]
    pub floating_ips: Vec<FloatingIpSpec>,
    /// OVN settings: applied by the OVN node configuration ([`crate::ovn`]), whose netlink
    /// part ([`crate::ovn::netfile::merge`]) is added to the file before its render.
    #[serde(default)]
    pub ovn: Option<OvnSpec>,
}

/// Link kinds of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKindSpec {
    /// A Linux bridge.
    Bridge,
    /// A veth pair (`peer` names the other end).
    Veth,
    /// A VXLAN device (`vni`, `local`, `remote`, `port`, `dev`, `learning`).
    Vxlan,
    /// A macvlan device (`parent`, `mode`).
    Macvlan,
}

/// Macvlan modes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanModeSpec {
    /// bridge (the default).
    Bridge,
    /// private.
    Private,
    /// vepa.
    Vepa,
    /// passthru.
    Passthru,
}

/// `links[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkSpec {
    pub name: IfName,
    pub kind: LinkKindSpec,
    pub mtu: Option<u32>,
    /// Default true.
    pub up: Option<bool>,
    pub master: Option<IfName>,
    pub mac: Option<Mac>,
    /// veth: the other end.
    pub peer: Option<IfName>,
    /// vxlan: the VNI.
    pub vni: Option<u32>,
    /// vxlan: local tunnel address.
    pub local: Option<IpAddr>,
    /// vxlan: remote endpoint or multicast group.
    pub remote: Option<IpAddr>,
    /// vxlan: UDP port (default 4789).
    pub port: Option<u16>,
    /// vxlan: underlay device.
    pub dev: Option<IfName>,
    /// vxlan: MAC learning (default true).
    pub learning: Option<bool>,
    /// macvlan: the parent device.
    pub parent: Option<IfName>,
    /// macvlan: the mode (default bridge).
    pub mode: Option<MacvlanModeSpec>,
}

/// `addresses[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressSpec {
    pub address: Prefix,
    pub dev: IfName,
    /// IPv6 only: skip duplicate address detection.
    pub nodad: Option<bool>,
}

/// Route types of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTypeSpec {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// `routes[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteSpec {
    /// A prefix, or `default` (IPv4 unless the gateway is IPv6; `::/0` for IPv6).
    pub dst: Dst,
    pub via: Option<IpAddr>,
    pub dev: Option<IfName>,
    /// Default 254 (main).
    pub table: Option<u32>,
    /// Default 0 for IPv4 and 1024 for IPv6, as the kernel does.
    pub metric: Option<u32>,
    pub onlink: Option<bool>,
    pub src: Option<IpAddr>,
    #[serde(rename = "type")]
    pub kind: Option<RouteTypeSpec>,
    pub multipath: Option<Vec<NextHopSpec>>,
}

/// `routes[].multipath[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NextHopSpec {
    pub via: Option<IpAddr>,
    pub dev: Option<IfName>,
    /// 1..=256, default 1.
    pub weight: Option<u16>,
    pub onlink: Option<bool>,
}

/// `neighbours[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NeighbourSpec {
    pub address: IpAddr,
    pub dev: IfName,
    /// Required unless `proxy`.
    pub mac: Option<Mac>,
    /// A proxy ARP/NDP entry.
    pub proxy: Option<bool>,
}

/// Rule actions of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleActionSpec {
    Lookup,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// Address families of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilySpec {
    Ipv4,
    Ipv6,
}

/// `rules[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSpec {
    pub priority: u32,
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    pub iif: Option<IfName>,
    pub oif: Option<IfName>,
    /// `0x10`, `0x10/0xff` or a number.
    pub fwmark: Option<FwMark>,
    /// Default 254 (main) for `lookup`.
    pub table: Option<u32>,
    /// Default `lookup`.
    pub action: Option<RuleActionSpec>,
    /// Needed only when neither `from` nor `to` says; default ipv4.
    pub family: Option<FamilySpec>,
}

/// `floatingIPs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FloatingIpSpec {
    pub address: IpAddr,
    pub dev: IfName,
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
