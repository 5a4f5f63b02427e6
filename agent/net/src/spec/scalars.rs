//! Scalar fields of the file that YAML can spell several ways: a route destination
//! (`default` or a prefix), a firewall mark (`0x10/0xff` or a number), a sysctl value
//! (a string or a number).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::model::Prefix;

/// A route destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// `default`: 0.0.0.0/0, or ::/0 when the gateway is IPv6.
    Default,
    /// A prefix.
    Prefix(Prefix),
}

impl FromStr for Dst {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "default" {
            Ok(Self::Default)
        } else {
            s.parse().map(Self::Prefix)
        }
    }
}

impl<'de> Deserialize<'de> for Dst {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(crate::model::FromStrVisitor(std::marker::PhantomData))
    }
}

/// A firewall mark with its mask (the mask defaults to all ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwMark {
    /// The mark.
    pub mark: u32,
    /// The mask.
    pub mask: u32,
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl FromStr for FwMark {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a mark like 0x10 or 0x10/0xff");
        let (mark, mask) = match s.split_once('/') {
            Some((m, k)) => (parse_u32(m).ok_or_else(bad)?, parse_u32(k).ok_or_else(bad)?),
            None => (parse_u32(s).ok_or_else(bad)?, u32::MAX),
        };
        Ok(Self { mark, mask })
    }
}

struct FwMarkVisitor;

impl Visitor<'_> for FwMarkVisitor {
    type Value = FwMark;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mark like 0x10, 0x10/0xff or 16")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FwMark, E> {
        let mark = u32::try_from(v).map_err(|_| E::custom(format!("{v} does not fit 32 bits")))?;
        Ok(FwMark {
            mark,
            mask: u32::MAX,
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FwMark, E> {
        let v = u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))?;
        self.visit_u64(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FwMark, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for FwMark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FwMarkVisitor)
    }
}

/// A sysctl value: YAML may write `"1"` or `1`; both mean the text `1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlValue(pub String);

struct SysctlVisitor;

impl Visitor<'_> for SysctlVisitor {
    type Value = SysctlValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sysctl value (a string or a number)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SysctlValue, E> {
        Ok(SysctlValue(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SysctlValue, E> {
        Ok(SysctlValue(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SysctlValue, E> {
        Ok(SysctlValue(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SysctlVisitor)
    }
}

/// An IP address field whose error names the value (`"10.0.0.300" is not an IP address`);
/// serde's own says only `invalid IP address syntax`. Parsed inside the scalar's visit, so
/// the error keeps the field's path and line.
pub(crate) fn ip<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::IpAddr, D::Error> {
    struct Ip;
    impl Visitor<'_> for Ip {
        type Value = std::net::IpAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an IP address")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            s.parse()
                .map_err(|_| E::custom(format!("{s:?} is not an IP address")))
        }
    }
    d.deserialize_str(Ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks() {
        assert_eq!(
            "0x10/0xff".parse::<FwMark>().unwrap(),
            FwMark {
                mark: 16,
                mask: 255
            }
        );
        assert_eq!("7".parse::<FwMark>().unwrap().mask, u32::MAX);
        assert!("0x1/".parse::<FwMark>().is_err());
        assert!("zz".parse::<FwMark>().is_err());
    }

    #[test]
    fn destinations() {
        assert_eq!("default".parse::<Dst>().unwrap(), Dst::Default);
        assert!(matches!(
            "10.0.0.0/8".parse::<Dst>().unwrap(),
            Dst::Prefix(_)
        ));
        assert!("defaults".parse::<Dst>().is_err());
    }
}
