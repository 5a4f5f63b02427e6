//! Addresses, routes, neighbours, policy rules and sysctls: their fields, identity keys and
//! the one-line text the plan prints for each.

use std::fmt;
use std::net::IpAddr;

use super::{Mac, Prefix};

/// An address on an interface. Identity: (dev, address, prefix length).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The interface.
    pub dev: String,
    /// Address and prefix length.
    pub prefix: Prefix,
    /// IPv6: skip duplicate address detection.
    pub nodad: bool,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "address {} dev {}", self.prefix, self.dev)?;
        if self.nodad {
            f.write_str(" nodad")?;
        }
        Ok(())
    }
}

/// Route types Hearth writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteType {
    /// Forward via a gateway or a device.
    Unicast,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Unreachable,
    /// Drop with ICMP prohibited.
    Prohibit,
    /// Stop the lookup in this table and go on with the next rule.
    Throw,
    /// Any other type (observed only).
    Other(u8),
}

impl RouteType {
    /// The iproute2 spelling.
    pub fn name(self) -> String {
        match self {
            Self::Unicast => "unicast".into(),
            Self::Blackhole => "blackhole".into(),
            Self::Unreachable => "unreachable".into(),
            Self::Prohibit => "prohibit".into(),
            Self::Throw => "throw".into(),
            Self::Other(n) => format!("type{n}"),
        }
    }
}

/// One next hop of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The gateway.
    pub via: Option<IpAddr>,
    /// The output device; in a desired route `None` means "whatever the kernel resolves".
    pub dev: Option<String>,
    /// Multipath weight, 1..=256 (1 for a single path).
    pub weight: u16,
    /// Treat the gateway as on-link even without a covering address.
    pub onlink: bool,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(v) = self.via {
            write!(f, "via {v}")?;
            sep = " ";
        }
        if let Some(d) = &self.dev {
            write!(f, "{sep}dev {d}")?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        Ok(())
    }
}

/// The identity of a route in the kernel: family, table, destination, TOS and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// Routing table (254 is main).
    pub table: u32,
    /// Destination prefix (host bits zero).
    pub dst: Prefix,
    /// TOS (always 0 for Hearth's routes).
    pub tos: u8,
    /// Metric (priority). IPv6 routes default to 1024, as the kernel does.
    pub metric: u32,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// Identity.
    pub key: RouteKey,
    /// Type.
    pub kind: RouteType,
    /// Next hops: none for blackhole-like types, one for a plain route, several for multipath.
    pub nexthops: Vec<NextHop>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("route ")?;
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind.name())?;
        }
        write!(f, "{}", self.key.dst)?;
        match self.nexthops.as_slice() {
            [] => {}
            [one] if one.weight <= 1 => write!(f, " {one}")?,
            many => {
                for nh in many {
                    write!(f, " nexthop {nh} weight {}", nh.weight)?;
                }
            }
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        write!(f, " table {} metric {}", self.key.table, self.key.metric)
    }
}

/// A neighbour entry (permanent) or a proxy entry. Identity: (dev, address, proxy).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Neighbour {
    /// The interface.
    pub dev: String,
    /// The IP address.
    pub address: IpAddr,
    /// The link-layer address (none for a proxy entry).
    pub mac: Option<Mac>,
    /// A proxy ARP/NDP entry: the node answers for `address` on `dev`.
    pub proxy: bool,
}

impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = if self.proxy { "proxy " } else { "" };
        write!(f, "neighbour {proxy}{} dev {}", self.address, self.dev)?;
        if let Some(m) = self.mac {
            write!(f, " lladdr {m}")?;
        }
        Ok(())
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleAction {
    /// Look up `table`.
    Lookup,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Unreachable,
    /// Drop with ICMP prohibited.
    Prohibit,
    /// Any other action (observed only).
    Other(u8),
}

/// A policy routing rule. Its identity is all of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// True for IPv6.
    pub v6: bool,
    /// Priority (preference).
    pub priority: u32,
    /// Source prefix.
    pub from: Option<Prefix>,
    /// Destination prefix.
    pub to: Option<Prefix>,
    /// Input interface.
    pub iif: Option<String>,
    /// Output interface.
    pub oif: Option<String>,
    /// Firewall mark and mask.
    pub fwmark: Option<(u32, u32)>,
    /// Table for `Lookup` (0 otherwise).
    pub table: u32,
    /// Action.
    pub action: RuleAction,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = if self.v6 { "-6 " } else { "" };
        write!(f, "rule {fam}priority {}", self.priority)?;
        if let Some(p) = self.from {
            write!(f, " from {p}")?;
        }
        if let Some(p) = self.to {
            write!(f, " to {p}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        if let Some((m, mask)) = self.fwmark {
            write!(f, " fwmark {m:#x}/{mask:#x}")?;
        }
        match self.action {
            RuleAction::Lookup => write!(f, " lookup {}", self.table),
            RuleAction::Blackhole => f.write_str(" blackhole"),
            RuleAction::Unreachable => f.write_str(" unreachable"),
            RuleAction::Prohibit => f.write_str(" prohibit"),
            RuleAction::Other(n) => write!(f, " action {n}"),
        }
    }
}

/// A sysctl under `/proc/sys`, by its slash path (`net/ipv4/ip_forward`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sysctl {
    /// Path below `/proc/sys`, always starting with `net/`.
    pub path: String,
    /// The value, whitespace-normalized.
    pub value: String,
    /// For a per-interface sysctl, the interface it needs.
    pub dev: Option<String>,
}

impl Sysctl {
    /// The dotted name sysctl(8) prints (slashes in interface names stay as dots would clash,
    /// so the interface keeps its own spelling).
    pub fn display_name(&self) -> String {
        match &self.dev {
            None => self.path.replace('/', "."),
            Some(dev) => self
                .path
                .split('/')
                .map(|c| {
                    if c == dev {
                        c.to_owned()
                    } else {
                        c.replace('.', "/")
                    }
                })
                .collect::<Vec<_>>()
                .join("."),
        }
    }
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sysctl {} = {}", self.display_name(), self.value)
    }
}
