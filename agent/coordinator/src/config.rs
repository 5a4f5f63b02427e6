//! The coordinator config file (YAML, camelCase; the contract in DESIGN.md): its serde shape,
//! [`parse`] and [`load`]. Every problem is reported, each naming the entry and field. This
//! module reads text only; it never touches the store or the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::labels::Labels;
use super::pools::Pool;
use crate::store::model::{FloatingIp, FloatingIpPool};
use hearth_net::model::IfName;

/// Why a coordinator config was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno.
        source: std::io::Error,
    },
    /// The YAML does not have the file's shape: unknown key, wrong type (the message names the
    /// field and line).
    #[error("{0}")]
    Parse(String),
    /// The shape is right but values are not; every problem found.
    #[error("{}", Problems(.0))]
    Validate(Vec<Problem>),
}

/// One invalid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, like `floatingIPPools[0] (public).cidrs[1]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Pools that floating IPs are allocated from.
    #[serde(default, rename = "floatingIPPools", deserialize_with = "null_default")]
    pub floating_ip_pools: Vec<FloatingIpPool>,
    /// Floating IPs.
    #[serde(default, rename = "floatingIPs", deserialize_with = "null_default")]
    pub floating_ips: Vec<FloatingIp>,
}

/// A checked config: the records, and each pool parsed, by name.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as written.
    pub file: ConfigFile,
    /// The parsed pools, by name.
    pub pools: BTreeMap<String, Pool>,
}

/// Missing and `null` both mean empty.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads and checks a coordinator config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// Parses and checks the text of a coordinator config. An empty file is an empty config.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let file: Option<ConfigFile> =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    check(file.unwrap_or_default())
}

/// Checks a config's values; `Err` carries every problem found.
pub fn check(file: ConfigFile) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut report = |field: String, message: String| problems.push(Problem { field, message });
    let mut pools: BTreeMap<String, Pool> = BTreeMap::new();
    let mut pool_fields: BTreeMap<&str, String> = BTreeMap::new();
    for (i, p) in file.floating_ip_pools.iter().enumerate() {
        let at = format!("floatingIPPools[{i}] ({})", p.name);
        if let Err(m) = check_name(&p.name) {
            report(format!("floatingIPPools[{i}].name"), m);
        }
        if let Some(first) = pool_fields.get(p.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate; first defined at {first}"),
            );
            continue;
        }
        pool_fields.insert(&p.name, format!("floatingIPPools[{i}]"));
        if let Err(m) = p.interface.parse::<IfName>() {
            report(format!("{at}.interface"), m);
        }
        check_selector(&p.node_selector, &format!("{at}.nodeSelector"), &mut report);
        if p.cidrs.is_empty() && p.ranges.is_empty() {
            report(
                at.clone(),
                "has no addresses: give cidrs or ranges".to_owned(),
            );
            continue;
        }
        match Pool::parse(p) {
            Ok(pool) if pool.size() == 0 => {
                report(at, "every address is excluded".to_owned());
            }
            Ok(pool) => {
                for (other, other_pool) in &pools {
                    if let Some(a) = pool.overlap(other_pool) {
                        report(
                            at.clone(),
                            format!("overlaps pool {other} (both contain {a})"),
                        );
                    }
                }
                pools.insert(p.name.clone(), pool);
            }
            Err(e) => report(
                format!("{at}.{}[{}]", e.field, e.index),
                format!("{:?}: {}", e.value, e.message),
            ),
        }
    }
    let mut ip_fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut addresses: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (i, f) in file.floating_ips.iter().enumerate() {
        let at = format!("floatingIPs[{i}] ({})", f.name);
        if let Err(m) = check_name(&f.name) {
            report(format!("floatingIPs[{i}].name"), m);
        }
        if let Some(first) = ip_fields.get(f.name.as_str()) {
            report(
                format!("{at}.name"),
                format!("duplicate; first defined at {first}"),
            );
        } else {
            ip_fields.insert(&f.name, format!("floatingIPs[{i}]"));
        }
        check_selector(&f.node_selector, &format!("{at}.nodeSelector"), &mut report);
        if !pool_fields.contains_key(f.pool.as_str()) {
            report(format!("{at}.pool"), format!("no pool named {:?}", f.pool));
        }
        let Some(address) = f.address else { continue };
        if let Some(other) = addresses.insert(address, &f.name) {
            report(
                format!("{at}.address"),
                format!("{address} is also requested by floating IP {other}"),
            );
        }
        // A pool that failed to parse was reported already.
        if let Some(pool) = pools.get(&f.pool) {
            if pool.is_excluded(address) {
                report(
                    format!("{at}.address"),
                    format!("{address} is excluded from pool {}", f.pool),
                );
            } else if !pool.contains(address) {
                report(
                    format!("{at}.address"),
                    format!(
                        "{address} is not an address of pool {} (outside its CIDRs and ranges, \
                         or an IPv4 network or broadcast address)",
                        f.pool
                    ),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(Config { file, pools })
    } else {
        Err(ConfigError::Validate(problems))
    }
}

/// A Kubernetes object name (RFC 1123 subdomain): on Kubernetes pools and floating IPs are
/// objects, so the embedded config takes the same names.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: 1 to 253 lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// Label keys and values as Kubernetes accepts them, so a selector can ever match.
fn check_selector(selector: &Labels, at: &str, report: &mut impl FnMut(String, String)) {
    let segment = |s: &str| {
        s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
    };
    for (k, v) in selector {
        let (prefix, name) = k.rsplit_once('/').unwrap_or(("", k));
        let prefix_ok = k.find('/').is_none_or(|_| check_name(prefix).is_ok());
        if name.is_empty() || !segment(name) || !prefix_ok {
            report(
                format!("{at}.{k}"),
                format!("{k:?} is not a valid label key"),
            );
        }
        if !segment(v) {
            report(
                format!("{at}.{k}"),
                format!("{v:?} is not a valid label value"),
            );
        }
    }
}

/// Every address requested by a floating IP of `config`, for [`super::pools::allocate`]'s
/// `taken` set when allocating the ones without a request first would steal them.
pub fn requested_addresses(config: &Config) -> BTreeSet<IpAddr> {
    config
        .file
        .floating_ips
        .iter()
        .filter_map(|f| f.address)
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
