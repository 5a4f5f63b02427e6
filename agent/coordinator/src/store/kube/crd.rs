//! The Kubernetes shapes of the coordinator's records: four cluster-scoped custom resources
//! in `hearth.io/v1alpha1`, their CRDs (what `hearth crds` prints), and the conversions to and
//! from [`crate::store::model`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::validate::is_dns1123_subdomain;
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState, VolumeLocation};

/// A pool that floating IPs are allocated from; the pool's name is `metadata.name`.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hearth.io",
    version = "v1alpha1",
    kind = "FloatingIPPool",
    plural = "floatingippools",
    shortname = "fippool",
    category = "hearth",
    doc = "A pool of addresses that Hearth hands out to FloatingIPs.",
    printcolumn = r#"{"name": "Interface", "type": "string", "jsonPath": ".spec.interface"}"#,
    printcolumn = r#"{"name": "CIDRs", "type": "string", "jsonPath": ".spec.cidrs"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpPoolSpec {
    /// Whole networks, `203.0.113.0/28` or `2001:db8::/120`.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Inclusive ranges, `203.0.113.10-203.0.113.20`.
    #[serde(default)]
    pub ranges: Vec<String>,
    /// Addresses or networks never handed out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The interface where agents add and announce the addresses.
    pub interface: String,
    /// Only nodes with all these labels may hold this pool's addresses.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// A floating IP; the coordinator's decision (address, owner, epoch) is its status.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hearth.io",
    version = "v1alpha1",
    kind = "FloatingIP",
    plural = "floatingips",
    shortname = "fip",
    category = "hearth",
    status = "FloatingIpStatus",
    doc = "A floating IP: an address of a pool that one healthy node answers for.",
    printcolumn = r#"{"name": "Pool", "type": "string", "jsonPath": ".spec.pool"}"#,
    printcolumn = r#"{"name": "Address", "type": "string", "jsonPath": ".status.address"}"#,
    printcolumn = r#"{"name": "Node", "type": "string", "jsonPath": ".status.node"}"#,
    printcolumn = r#"{"name": "Epoch", "type": "integer", "jsonPath": ".status.epoch"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpSpec {
    /// The pool to allocate from.
    pub pool: String,
    /// A specific address of the pool; any free one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Only nodes with all these labels may hold it (on top of the pool's selector).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// An overlay workload to forward the address to through OVN NAT: a logical IP,
    /// `pod/NAMESPACE/NAME` or `vmi/NAMESPACE/NAME`. No node answers for it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What the coordinator decided for a floating IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpStatus {
    /// The allocated address.
    pub address: IpAddr,
    /// The node that answers for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Grows by one at every change of owner (including to none).
    pub epoch: u64,
    /// The coordinator leader's term (the Lease's `leaseTransitions`) this was written in.
    #[serde(default)]
    pub term: u64,
}

/// Where a volume of a node-local backend lives. `metadata.name` is [`volume_object_name`].
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hearth.io",
    version = "v1alpha1",
    kind = "HearthVolume",
    plural = "hearthvolumes",
    shortname = "hvol",
    category = "hearth",
    doc = "The placement of a Hearth volume: the nodes that hold its data.",
    printcolumn = r#"{"name": "Volume", "type": "string", "jsonPath": ".spec.volumeId"}"#,
    printcolumn = r#"{"name": "Size", "type": "integer", "jsonPath": ".spec.sizeBytes"}"#,
    printcolumn = r#"{"name": "Nodes", "type": "string", "jsonPath": ".spec.nodes"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HearthVolumeSpec {
    /// The CSI volume ID.
    pub volume_id: String,
    /// The nodes holding its data.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Capacity in bytes.
    pub size_bytes: u64,
}

/// One address held by one floating IP. `metadata.name` is derived from the address
/// (`ipv4-203-0-113-7`, `ipv6-` and 32 hex digits), so creating it once lets at most one
/// floating IP hold the address.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hearth.io",
    version = "v1alpha1",
    kind = "FloatingIPClaim",
    plural = "floatingipclaims",
    shortname = "fipclaim",
    category = "hearth",
    doc = "An address held by one FloatingIP (created once by the coordinator; never edit).",
    printcolumn = r#"{"name": "Address", "type": "string", "jsonPath": ".spec.address"}"#,
    printcolumn = r#"{"name": "FloatingIP", "type": "string", "jsonPath": ".spec.floatingIP"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpClaimSpec {
    /// The address claimed.
    pub address: IpAddr,
    /// The FloatingIP that holds it.
    #[serde(rename = "floatingIP")]
    pub floating_ip: String,
    /// That FloatingIP's `metadata.uid`: a FloatingIP deleted and declared again is another.
    #[serde(rename = "floatingIPUID")]
    pub floating_ip_uid: String,
}

/// The object name of the claim of `address`: `ipv4-` and its four decimal octets joined by
/// `-`, or `ipv6-` and its 32 lowercase hex digits (one name per address, whatever its text).
pub fn claim_object_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("ipv4-{a}-{b}-{c}-{d}")
        }
        IpAddr::V6(a) => format!("ipv6-{:032x}", u128::from(a)),
    }
}

/// Every CRD Hearth owns, sorted by name.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        FloatingIPPool::crd(),
        FloatingIP::crd(),
        FloatingIPClaim::crd(),
        HearthVolume::crd(),
    ];
    crds.sort_by_key(|crd| crd.name_any());
    crds
}

/// [`crds`] as one multi-document YAML stream, each document starting with `---`.
pub fn crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}

/// The object name of the volume `id`: the ID itself when it is a valid object name, else
/// `hv-` and 40 hex digits of its SHA-256. The object's `spec.volumeId` is the real key; a
/// name whose object carries another ID is a collision and refused.
pub fn volume_object_name(id: &str) -> String {
    if is_dns1123_subdomain(id) {
        return id.to_owned();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("hv-{hex}")
}

impl FloatingIPPool {
    /// The object for `pool`.
    pub fn from_record(pool: &FloatingIpPool) -> Self {
        let spec = FloatingIpPoolSpec {
            cidrs: pool.cidrs.clone(),
            ranges: pool.ranges.clone(),
            exclude: pool.exclude.clone(),
            interface: pool.interface.clone(),
            node_selector: pool.node_selector.clone(),
        };
        FloatingIPPool::new(&pool.name, spec)
    }

    /// The record of this object.
    pub fn to_record(&self) -> FloatingIpPool {
        FloatingIpPool {
            name: self.name_any(),
            cidrs: self.spec.cidrs.clone(),
            ranges: self.spec.ranges.clone(),
            exclude: self.spec.exclude.clone(),
            interface: self.spec.interface.clone(),
            node_selector: self.spec.node_selector.clone(),
        }
    }
}

impl FloatingIP {
    /// The object for `fip` (no status).
    pub fn from_record(fip: &FloatingIp) -> Self {
        let spec = FloatingIpSpec {
            pool: fip.pool.clone(),
            address: fip.address,
            node_selector: fip.node_selector.clone(),
            target: fip.target.clone(),
        };
        FloatingIP::new(&fip.name, spec)
    }

    /// The declaration of this object.
    pub fn to_record(&self) -> FloatingIp {
        FloatingIp {
            name: self.name_any(),
            pool: self.spec.pool.clone(),
            address: self.spec.address,
            node_selector: self.spec.node_selector.clone(),
            target: self.spec.target.clone(),
        }
    }

    /// The state in this object's status, if the coordinator has written one.
    pub fn to_state(&self) -> Option<FloatingIpState> {
        self.status.as_ref().map(|s| FloatingIpState {
            name: self.name_any(),
            address: s.address,
            node: s.node.clone(),
            epoch: s.epoch,
            term: s.term,
        })
    }
}

impl HearthVolume {
    /// The object for `volume`.
    pub fn from_record(volume: &VolumeLocation) -> Self {
        let spec = HearthVolumeSpec {
            volume_id: volume.id.clone(),
            nodes: volume.nodes.clone(),
            size_bytes: volume.size_bytes,
        };
        HearthVolume::new(&volume_object_name(&volume.id), spec)
    }

    /// The record of this object.
    pub fn to_record(&self) -> VolumeLocation {
        VolumeLocation {
            id: self.spec.volume_id.clone(),
            nodes: self.spec.nodes.clone(),
            size_bytes: self.spec.size_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{claim_object_name, crds_yaml, volume_object_name};
    use crate::store::validate::is_dns1123_subdomain;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use serde::Deserialize;

    #[test]
    fn crds_yaml_is_four_sorted_documents() {
        let yaml = crds_yaml().unwrap();
        assert!(yaml.starts_with("---\n"));
        let crds: Vec<CustomResourceDefinition> = serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|doc| CustomResourceDefinition::deserialize(doc).unwrap())
            .collect();
        let names: Vec<_> = crds
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "floatingipclaims.hearth.io",
                "floatingippools.hearth.io",
                "floatingips.hearth.io",
                "hearthvolumes.hearth.io"
            ]
        );
        for crd in &crds {
            assert_eq!(crd.spec.group, "hearth.io");
            assert_eq!(crd.spec.scope, "Cluster");
            assert_eq!(crd.spec.versions.len(), 1);
            assert_eq!(crd.spec.versions[0].name, "v1alpha1");
            assert!(crd.spec.versions[0].schema.is_some());
        }
        let fip = &crds[2].spec.versions[0];
        assert!(fip
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
        let columns: Vec<_> = fip
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Pool", "Address", "Node", "Epoch", "Age"]);
    }

    #[test]
    fn claim_names_are_one_per_address_and_valid() {
        let v4 = claim_object_name("203.0.113.7".parse().unwrap());
        assert_eq!(v4, "ipv4-203-0-113-7");
        let v6 = claim_object_name("2001:db8::7".parse().unwrap());
        assert_eq!(v6, "ipv6-20010db8000000000000000000000007");
        assert_eq!(
            v6,
            claim_object_name("2001:0db8:0:0::0:7".parse().unwrap()),
            "one name whatever the text"
        );
        for name in [v4, v6] {
            assert!(is_dns1123_subdomain(&name) && name.len() <= 63, "{name}");
        }
    }

    #[test]
    fn volume_names_are_deterministic_and_valid() {
        assert_eq!(volume_object_name("pvc-0a1b"), "pvc-0a1b");
        for id in [
            "Vol_B/with:odd chars",
            "PVC-UPPER",
            "-lead",
            &"x".repeat(300),
        ] {
            let name = volume_object_name(id);
            assert_eq!(name, volume_object_name(id));
            assert!(is_dns1123_subdomain(&name) && name.len() <= 63, "{name}");
            assert!(name.starts_with("hv-"), "{name}");
        }
        assert_ne!(volume_object_name("A"), volume_object_name("B"));
    }
}
