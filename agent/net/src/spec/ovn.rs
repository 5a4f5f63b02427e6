//! The `ovn:` section of the node network file: its serde shape, defaults and checks, run by
//! [`super::parse`] with the rest of the file. Reads text only, except [`OvnSpec::tls`], which
//! reads the certificate files it names.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::SpecError;
use crate::model::{IfName, Mac, Prefix};

/// The `ovn:` section. Keys of DESIGN.md's contract plus optional ones with defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OvnSpec {
    /// The local OVSDB: `unix:PATH`, `tcp:HOST:PORT` or `ssl:HOST:PORT`.
    #[serde(default = "default_ovsdb")]
    pub ovsdb: String,
    /// The client certificate for Hearth's `ssl:` OVSDB connections: required when `ovsdb` is
    /// `ssl:`, also used for an `ssl:` southbound health read, refused when neither is `ssl:`.
    #[serde(default, rename = "ovsdbTLS")]
    pub ovsdb_tls: Option<TlsSpec>,
    /// external_ids:system-id, the chassis name.
    pub system_id: String,
    /// external_ids:ovn-remote, the southbound DB (`tcp:10.0.0.1:6642`, comma-separated list).
    pub remote: String,
    /// external_ids:ovn-encap-type.
    #[serde(default = "default_encap")]
    pub encap_type: String,
    /// external_ids:ovn-encap-ip.
    #[serde(rename = "encapIP", deserialize_with = "super::scalars::ip")]
    pub encap_ip: IpAddr,
    /// external_ids:ovn-bridge-mappings, physical network -> provider bridge.
    #[serde(default)]
    pub bridge_mappings: BTreeMap<String, String>,
    /// Uplink port of each provider bridge: bridge -> device (optional).
    #[serde(default)]
    pub uplinks: BTreeMap<String, String>,
    /// br-int's datapath_type: `system`, or `netdev` without the OVS kernel module. Provider
    /// bridges get the same.
    #[serde(default = "default_datapath")]
    pub datapath_type: String,
    /// The integration bridge.
    #[serde(default = "default_br_int")]
    pub integration_bridge: String,
    /// The join interface.
    pub join: Option<JoinSpec>,
    /// external_ids:hostname (omitted when unset).
    pub hostname: Option<String>,
    /// external_ids:ovn-encap-csum.
    #[serde(default = "yes")]
    pub encap_csum: bool,
    /// external_ids:ovn-remote-probe-interval, milliseconds.
    #[serde(default = "default_remote_probe")]
    pub remote_probe_interval: u64,
    /// external_ids:ovn-openflow-probe-interval, seconds.
    #[serde(default = "default_of_probe")]
    pub openflow_probe_interval: u64,
    /// external_ids:ovn-monitor-all.
    #[serde(default)]
    pub monitor_all: bool,
    /// Pod CIDRs, routed via the join gateway.
    #[serde(default, rename = "podCIDRs")]
    pub pod_cidrs: Vec<Prefix>,
    /// Service CIDRs, routed via the join gateway.
    #[serde(default, rename = "serviceCIDRs")]
    pub service_cidrs: Vec<Prefix>,
    /// The underlay MTU; the overlay MTU is this minus the Geneve overhead (default 1500).
    #[serde(default = "default_underlay_mtu")]
    pub underlay_mtu: u32,
    /// The southbound DB the health check reads (default: the first of `remote`).
    pub southbound: Option<String>,
}

/// `ovsdbTLS`: PEM files, like OVS's `--ca-cert`, `--certificate` and `--private-key`. All
/// three are required; they are optional here only so the error can name the missing one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsSpec {
    /// The CA the server's certificate chain must lead to (its name is not checked).
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain).
    pub cert_file: Option<PathBuf>,
    /// The client's private key.
    pub key_file: Option<PathBuf>,
}

impl TlsSpec {
    fn files(&self) -> Result<crate::ovsdb::TlsFiles, SpecError> {
        let need = |v: &Option<PathBuf>, key: &str| {
            v.clone().ok_or_else(|| SpecError::Validate {
                field: format!("ovn.ovsdbTLS.{key}"),
                message: "required (caFile, certFile and keyFile go together)".into(),
            })
        };
        Ok(crate::ovsdb::TlsFiles {
            ca_file: need(&self.ca_file, "caFile")?,
            cert_file: need(&self.cert_file, "certFile")?,
            key_file: need(&self.key_file, "keyFile")?,
        })
    }
}

/// The join interface: an internal port on br-int.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinSpec {
    /// Its name.
    #[serde(default = "default_join")]
    pub name: IfName,
    /// Its MAC.
    pub mac: Mac,
    /// Its address with prefix length.
    pub address: Prefix,
    /// The join gateway (the OVN router port).
    #[serde(deserialize_with = "super::scalars::ip")]
    pub gateway: IpAddr,
    /// Its MTU (default: the overlay MTU).
    pub mtu: Option<u32>,
    /// external_ids:iface-id of the port, binding it to a logical switch port (Kube-OVN uses
    /// `node-<name>`).
    pub iface_id: Option<String>,
}

fn default_ovsdb() -> String {
    "unix:/run/openvswitch/db.sock".into()
}
fn default_encap() -> String {
    "geneve".into()
}
fn default_datapath() -> String {
    "system".into()
}
fn default_br_int() -> String {
    "br-int".into()
}
fn default_join() -> IfName {
    IfName("ovn0".into())
}
fn yes() -> bool {
    true
}
fn default_remote_probe() -> u64 {
    10_000
}
fn default_of_probe() -> u64 {
    180
}
fn default_underlay_mtu() -> u32 {
    1500
}

/// Whether `ip` lies in `prefix`'s network.
fn in_prefix(ip: IpAddr, prefix: &Prefix) -> bool {
    let bits = |a: IpAddr| -> u128 {
        match a {
            IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
            IpAddr::V6(v) => u128::from(v),
        }
    };
    if ip.is_ipv4() != prefix.addr.is_ipv4() {
        return false;
    }
    // IPv4 sits in the top 32 bits, so the mask is the top `len` bits for both families.
    let len = u32::from(prefix.len);
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    bits(ip) & mask == bits(prefix.addr) & mask
}

impl OvnSpec {
    pub(super) fn check(&self) -> Result<(), SpecError> {
        let bad = |field: &str, message: String| SpecError::Validate {
            field: format!("ovn.{field}"),
            message,
        };
        if self.system_id.is_empty() {
            return Err(bad("systemId", "must not be empty".into()));
        }
        if !["system", "netdev"].contains(&self.datapath_type.as_str()) {
            return Err(bad(
                "datapathType",
                format!("{:?}: expected system or netdev", self.datapath_type),
            ));
        }
        if !["geneve", "vxlan", "stt"].contains(&self.encap_type.as_str()) {
            return Err(bad(
                "encapType",
                format!("{:?}: expected geneve, vxlan or stt", self.encap_type),
            ));
        }
        let local =
            crate::ovsdb::Endpoint::parse(&self.ovsdb).map_err(|e| bad("ovsdb", e.to_string()))?;
        match &self.ovsdb_tls {
            Some(t) => {
                t.files()?;
                let sb = self.southbound_db();
                if !local.is_ssl() && !sb.starts_with("ssl:") {
                    return Err(bad(
                        "ovsdbTLS",
                        format!(
                            "set, but no OVSDB connection of Hearth is ssl: (ovsdb is {}, the \
                             southbound health read is {sb}); use ssl: or drop ovsdbTLS",
                            self.ovsdb
                        ),
                    ));
                }
            }
            None if local.is_ssl() => {
                return Err(bad(
                    "ovsdbTLS",
                    format!(
                        "required: ovsdb is {} (caFile, certFile, keyFile)",
                        self.ovsdb
                    ),
                ));
            }
            None => {}
        }
        for remote in self.remote.split(',').map(str::trim) {
            if crate::ovsdb::Endpoint::parse(remote).is_err() {
                let hint = if remote.parse::<std::net::SocketAddr>().is_ok() {
                    format!(" (did you mean tcp:{remote}?)")
                } else {
                    String::new()
                };
                return Err(bad(
                    "remote",
                    format!("{remote:?}: expected tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH{hint}"),
                ));
            }
        }
        for (net, br) in &self.bridge_mappings {
            if net.contains([':', ',']) || br.contains([':', ',']) || br.is_empty() {
                return Err(bad(
                    "bridgeMappings",
                    format!("{net}: {br}: names must not contain : or ,"),
                ));
            }
            if *br == self.integration_bridge {
                return Err(bad(
                    "bridgeMappings",
                    format!("{net}: the integration bridge cannot be a provider bridge"),
                ));
            }
        }
        for br in self.uplinks.keys() {
            if !self.bridge_mappings.values().any(|b| b == br) {
                return Err(bad(
                    "uplinks",
                    format!("{br} is not a bridge of bridgeMappings"),
                ));
            }
        }
        if let Some(j) = &self.join {
            if j.gateway.is_ipv4() != j.address.addr.is_ipv4() {
                return Err(bad("join.gateway", "not the family of join.address".into()));
            }
            if j.address.len == Prefix::max_len(j.address.addr) {
                return Err(bad(
                    "join.address",
                    format!(
                        "{}/{} has no room for the gateway {}: give the join network's prefix \
                         length (for example {}/16)",
                        j.address.addr, j.address.len, j.gateway, j.address.addr
                    ),
                ));
            }
            if !in_prefix(j.gateway, &j.address) || j.gateway == j.address.addr {
                return Err(bad(
                    "join.gateway",
                    format!(
                        "{} is not another address of join.address {}/{} (the kernel refuses a \
                         route via a gateway off the link)",
                        j.gateway, j.address.addr, j.address.len
                    ),
                ));
            }
            if self
                .pod_cidrs
                .iter()
                .chain(&self.service_cidrs)
                .any(|c| c.addr.is_ipv4() != j.gateway.is_ipv4())
            {
                return Err(bad(
                    "podCIDRs",
                    "a CIDR is not the family of join.gateway".into(),
                ));
            }
        } else if !self.pod_cidrs.is_empty() || !self.service_cidrs.is_empty() {
            return Err(bad(
                "podCIDRs",
                "routes via the join gateway need ovn.join".into(),
            ));
        }
        Ok(())
    }

    /// The southbound DB the health check reads: `southbound`, or the first of `remote`.
    pub fn southbound_db(&self) -> String {
        self.southbound.clone().unwrap_or_else(|| {
            self.remote
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
    }

    /// Reads the `ovsdbTLS` files (None without the section). Read on each call, so a
    /// connection made after a certificate rotation uses the new files. An unreadable or
    /// invalid file is a [`SpecError::Validate`] naming its key.
    pub fn tls(&self) -> Result<Option<crate::ovsdb::Tls>, SpecError> {
        let Some(t) = &self.ovsdb_tls else {
            return Ok(None);
        };
        crate::ovsdb::Tls::load(&t.files()?)
            .map(Some)
            .map_err(|e| match e {
                crate::ovsdb::OvsdbError::Tls { file, path, reason } => SpecError::Validate {
                    field: format!(
                        "ovn.ovsdbTLS.{}",
                        match file {
                            crate::ovsdb::TlsFile::CaCert => "caFile",
                            crate::ovsdb::TlsFile::Certificate => "certFile",
                            crate::ovsdb::TlsFile::PrivateKey => "keyFile",
                        }
                    ),
                    message: format!("{}: {reason}", path.display()),
                },
                other => SpecError::Validate {
                    field: "ovn.ovsdbTLS".into(),
                    message: other.to_string(),
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "{systemId: a, remote: 'tcp:10.0.0.1:6642', encapIP: 1.2.3.4";

    fn parse(extra: &str) -> Result<OvnSpec, String> {
        let y = format!("{BASE}{extra}}}");
        crate::spec::ovn_section(&y).map_err(|e| e.to_string())
    }

    #[test]
    fn a_remote_without_its_scheme_is_refused_with_a_hint() {
        let with = |remote: &str| {
            let y = format!("{{systemId: a, remote: '{remote}', encapIP: 1.2.3.4}}");
            crate::spec::ovn_section(&y).map_err(|e| e.to_string())
        };
        let e = with("127.0.0.1:6642").unwrap_err();
        assert!(e.starts_with("ovn.remote: \"127.0.0.1:6642\""), "{e}");
        assert!(e.contains("did you mean tcp:127.0.0.1:6642?"), "{e}");
        let e = with("tcp:10.0.0.1:6642,10.0.0.2:6642").unwrap_err();
        assert!(e.contains("10.0.0.2:6642"), "{e}");
        with("tcp:10.0.0.1:6642, ssl:10.0.0.2:6642").unwrap();
    }

    #[test]
    fn the_join_gateway_lies_on_the_join_network() {
        let join = |a: &str, g: &str| {
            parse(&format!(
                ", join: {{mac: '0a:00:00:64:00:02', address: {a}, gateway: {g}}}"
            ))
        };
        join("100.64.0.2/16", "100.64.0.1").unwrap();
        let e = join("100.64.0.2", "100.64.0.1").unwrap_err();
        assert!(
            e.starts_with("ovn.join.address: 100.64.0.2/32 has no room"),
            "{e}"
        );
        let e = join("100.64.0.2/16", "100.65.0.1").unwrap_err();
        assert!(e.starts_with("ovn.join.gateway: 100.65.0.1 is not"), "{e}");
        let e = join("100.64.0.2/16", "100.64.0.2").unwrap_err();
        assert!(e.starts_with("ovn.join.gateway"), "{e}");
        join("'fd00:64::2/64'", "'fd00:64::1'").unwrap();
    }

    #[test]
    fn ssl_needs_all_three_files() {
        let e = parse(", ovsdb: 'ssl:127.0.0.1:6640'").unwrap_err();
        assert!(e.starts_with("ovn.ovsdbTLS: required"), "{e}");
        let e = parse(", ovsdb: 'ssl:127.0.0.1:6640', ovsdbTLS: {caFile: /ca, keyFile: /k}")
            .unwrap_err();
        assert!(e.starts_with("ovn.ovsdbTLS.certFile: required"), "{e}");
        let s = parse(
            ", ovsdb: 'ssl:127.0.0.1:6640', ovsdbTLS: {caFile: /ca, certFile: /c, keyFile: /k}",
        )
        .unwrap();
        assert_eq!(s.ovsdb_tls.unwrap().cert_file, Some(PathBuf::from("/c")));
    }

    #[test]
    fn tls_without_any_ssl_connection_is_refused() {
        let tls = ", ovsdbTLS: {caFile: /ca, certFile: /c, keyFile: /k}";
        let e = parse(tls).unwrap_err();
        assert!(e.starts_with("ovn.ovsdbTLS: set, but no OVSDB"), "{e}");
        // An ssl: southbound (read by the health check) is a use for it.
        parse(&format!("{tls}, southbound: 'ssl:10.0.0.1:6642'")).unwrap();
    }

    #[test]
    fn unreadable_files_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let s = parse(&format!(
            ", ovsdb: 'ssl:127.0.0.1:6640', ovsdbTLS: {{caFile: {d}/ca, certFile: {d}/c, keyFile: {d}/k}}"
        ))
        .unwrap();
        let e = s.tls().unwrap_err().to_string();
        assert!(e.starts_with("ovn.ovsdbTLS.caFile: "), "{e}");
        assert!(e.contains(&format!("{d}/ca")), "{e}");
        assert!(parse("").unwrap().tls().unwrap().is_none());
    }
}
