//! Small value types shared by the file format and the object model: IP prefixes, MAC
//! addresses and interface names, each parsed from text with a message that says what is wrong.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An IP address with a prefix length: `192.0.2.10/24`, `2001:db8::/64`. A bare address means
/// the host prefix (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The address as written (host bits are kept; routes check they are zero).
    pub addr: IpAddr,
    /// Prefix length, at most 32 (IPv4) or 128 (IPv6).
    pub len: u8,
}

impl Prefix {
    /// The longest prefix length of the address family.
    pub fn max_len(addr: IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// True for IPv6.
    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The prefix with host bits cleared.
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Self {
            addr,
            len: self.len,
        }
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or prefix"))?;
        let max = Self::max_len(addr);
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        Ok(Self { addr, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address like 0a:00:00:64:00:02");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// A Linux interface name: 1 to 15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(pub String);

impl FromStr for IfName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 15 {
            return Err(format!("{s:?}: an interface name has 1 to 15 bytes"));
        }
        if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
            return Err(format!(
                "{s:?}: an interface name may not contain '/', ':' or spaces"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Deserializes a `FromStr` type inside `visit_str`, so that the YAML error carries the
/// field's path and position.
pub(crate) struct FromStrVisitor<T>(pub std::marker::PhantomData<T>);

impl<T: FromStr<Err = String>> serde::de::Visitor<'_> for FromStrVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(FromStrVisitor(std::marker::PhantomData))
            }
        }
    )*};
}
deserialize_from_str!(Prefix, Mac, IfName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_print() {
        assert_eq!(
            "10.0.0.0/8".parse::<Prefix>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("192.0.2.7".parse::<Prefix>().unwrap().len, 32);
        assert_eq!("2001:db8::1".parse::<Prefix>().unwrap().len, 128);
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("10.0.0.0/".parse::<Prefix>().is_err());
        assert!("eth0".parse::<Prefix>().is_err());
        let p: Prefix = "10.1.2.3/16".parse().unwrap();
        assert_eq!(p.network().to_string(), "10.1.0.0/16");
        let p: Prefix = "2001:db8::1/0".parse().unwrap();
        assert_eq!(p.network().to_string(), "::/0");
    }

    #[test]
    fn macs_and_names() {
        let m: Mac = "0A:00:00:64:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "0a:00:00:64:00:02");
        assert!("0a:00:00:64:00".parse::<Mac>().is_err());
        assert!("0a:00:00:64:00:02:03".parse::<Mac>().is_err());
        assert!("0a:0:00:64:00:02".parse::<Mac>().is_err());
        assert!("br-ext".parse::<IfName>().is_ok());
        assert!("eth0.100".parse::<IfName>().is_ok());
        assert!("a-very-long-name".parse::<IfName>().is_err());
        assert!("a/b".parse::<IfName>().is_err());
        assert!("".parse::<IfName>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn prefix_parse_never_panics_and_roundtrips(s in "\\PC{0,40}") {
            if let Ok(p) = s.parse::<Prefix>() {
                proptest::prop_assert_eq!(p.to_string().parse::<Prefix>().unwrap(), p);
            }
        }

        #[test]
        fn mac_roundtrips(b in proptest::array::uniform6(0u8..)) {
            let m = Mac(b);
            proptest::prop_assert_eq!(m.to_string().parse::<Mac>().unwrap(), m);
        }
    }
}
