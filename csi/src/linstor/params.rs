//! StorageClass parameters of the LINSTOR backend, parsed and checked.
//!
//! Hearth reads the parameter names linstor-csi uses, so a StorageClass written for
//! linstor-csi (Cozystack's, say) keeps working: keys may be bare (`placementCount`), prefixed
//! with `linstor.csi.linbit.com/` or `hearth.dev/`, and LINSTOR properties are passed with
//! `property.linstor.csi.linbit.com/<property>` or `property.hearth.dev/<property>`. Keys the
//! CSI sidecars add (`csi.storage.k8s.io/...`) are ignored. Anything else is refused.
//!
//! The parameters map to one resource group per distinct set of parameters (one per
//! StorageClass in practice). This module is pure: it touches nothing.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::CsiError;

const PREFIXES: &[&str] = &["linstor.csi.linbit.com/", "hearth.dev/"];
const PROPERTY_PREFIXES: &[&str] = &["property.linstor.csi.linbit.com/", "property.hearth.dev/"];
const SIDECAR_PREFIX: &str = "csi.storage.k8s.io/";

/// LINSTOR layers Hearth accepts in a layer list.
const LAYERS: &[&str] = &[
    "DRBD",
    "STORAGE",
    "LUKS",
    "NVME",
    "WRITECACHE",
    "CACHE",
    "BCACHE",
];

/// The parsed parameters of a StorageClass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageClassParams {
    /// An explicit resource group; otherwise Hearth names one after the parameters.
    pub resource_group: Option<String>,
    /// How many diskful replicas LINSTOR places (`autoPlace`, `placementCount`).
    pub place_count: u32,
    /// Storage pools to place replicas in (`storagePool`, comma or space separated).
    pub storage_pools: Vec<String>,
    /// The storage pool for diskless replicas (`disklessStoragePool`).
    pub diskless_storage_pool: Option<String>,
    /// The layer stack, top first, as LINSTOR spells it (`layerList: drbd storage` gives
    /// `DRBD`, `STORAGE`).
    pub layer_list: Vec<String>,
    /// Whether a node without a replica may attach the volume disklessly
    /// (`allowRemoteVolumeAccess`, default true).
    pub allow_remote_volume_access: bool,
    /// Node properties all replicas must share (`replicasOnSame`).
    pub replicas_on_same: Vec<String>,
    /// Node properties on which replicas must differ (`replicasOnDifferent`).
    pub replicas_on_different: Vec<String>,
    /// Do not place beside resources whose names match (`doNotPlaceWithRegex`).
    pub do_not_place_with_regex: Option<String>,
    /// Explicit nodes for the diskful replicas (`nodeList`); LINSTOR's autoplacer is skipped.
    pub node_list: Vec<String>,
    /// LINSTOR properties for the resource group (`DrbdOptions/...`).
    pub properties: BTreeMap<String, String>,
}

fn bad(key: &str, value: &str, why: &str) -> CsiError {
    CsiError::InvalidArgument(format!("StorageClass parameter {key}={value:?}: {why}"))
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn boolean(key: &str, value: &str) -> Result<bool, CsiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl StorageClassParams {
    /// Whether Hearth's placement may choose the replica nodes: not when the class names
    /// nodes, or carries placement rules only LINSTOR's autoplacer understands (node-property
    /// constraints, name-based anti-affinity, a diskless pool).
    pub fn placer_may_choose(&self) -> bool {
        self.node_list.is_empty()
            && self.replicas_on_same.is_empty()
            && self.replicas_on_different.is_empty()
            && self.do_not_place_with_regex.is_none()
            && self.diskless_storage_pool.is_none()
    }

    /// Parses and checks StorageClass parameters.
    pub fn parse(parameters: &BTreeMap<String, String>) -> Result<Self, CsiError> {
        let mut p = Self {
            place_count: 1,
            allow_remote_volume_access: true,
            ..Self::default()
        };
        for (key, value) in parameters {
            if key.starts_with(SIDECAR_PREFIX) {
                continue;
            }
            if let Some(prop) = PROPERTY_PREFIXES
                .iter()
                .find_map(|pre| key.strip_prefix(pre))
            {
                if prop.is_empty() || prop.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad(key, value, "not a LINSTOR property name"));
                }
                p.properties.insert(prop.to_owned(), value.clone());
                continue;
            }
            let bare = PREFIXES
                .iter()
                .find_map(|pre| key.strip_prefix(pre))
                .unwrap_or(key);
            match bare {
                "autoPlace" | "placementCount" => {
                    p.place_count = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=16).contains(n))
                        .ok_or_else(|| bad(key, value, "expected a replica count from 1 to 16"))?;
                }
                "storagePool" | "storagePools" => p.storage_pools = list(value),
                "disklessStoragePool" => p.diskless_storage_pool = Some(value.clone()),
                "resourceGroup" => {
                    if !name_ok(value) {
                        return Err(bad(key, value, "not a LINSTOR resource group name"));
                    }
                    p.resource_group = Some(value.clone());
                }
                "layerList" => {
                    let layers = list(value)
                        .into_iter()
                        .map(|l| l.to_ascii_uppercase())
                        .collect::<Vec<_>>();
                    if let Some(l) = layers.iter().find(|l| !LAYERS.contains(&l.as_str())) {
                        return Err(bad(key, value, &format!("unknown layer {l:?}")));
                    }
                    if layers.last().map(String::as_str) != Some("STORAGE") {
                        return Err(bad(key, value, "the layer list must end with storage"));
                    }
                    p.layer_list = layers;
                }
                "allowRemoteVolumeAccess" => p.allow_remote_volume_access = boolean(key, value)?,
                "replicasOnSame" => p.replicas_on_same = list(value),
                "replicasOnDifferent" => p.replicas_on_different = list(value),
                "doNotPlaceWithRegex" => p.do_not_place_with_regex = Some(value.clone()),
                "nodeList" => p.node_list = list(value),
                _ => {
                    return Err(CsiError::InvalidArgument(format!(
                        "unknown StorageClass parameter {key:?}; see docs/storageclass.md"
                    )))
                }
            }
        }
        let node_name_ok = |n: &String| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !p.node_list.iter().all(node_name_ok) {
            return Err(CsiError::InvalidArgument(
                "a nodeList entry is not a node name".into(),
            ));
        }
        if p.storage_pools
            .iter()
            .chain(&p.diskless_storage_pool)
            .any(|s| !name_ok(s))
        {
            return Err(CsiError::InvalidArgument(
                "a storage pool name is not a LINSTOR name".into(),
            ));
        }
        Ok(p)
    }

    /// The resource group for these parameters: the explicit one, or `hearth-<hash>` named
    /// after the parameters, so one StorageClass maps to one group and a changed class to a
    /// new one.
    pub fn resource_group_name(&self) -> String {
        match &self.resource_group {
            Some(rg) => rg.clone(),
            None => format!("hearth-{}", self.digest()),
        }
    }

    /// A short digest of the parameters that shape a volume; equal parameters in any spelling
    /// give the same digest.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        let canon = format!(
            "{:?}|{}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.resource_group,
            self.place_count,
            self.storage_pools,
            self.diskless_storage_pool,
            self.layer_list,
            self.allow_remote_volume_access,
            self.replicas_on_same,
            self.replicas_on_different,
            self.do_not_place_with_regex,
            self.node_list,
            self.properties
        );
        h.update(canon.as_bytes());
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cozystack_replicated_class_parses() {
        let p = StorageClassParams::parse(&map(&[
            ("linstor.csi.linbit.com/storagePool", "data"),
            ("linstor.csi.linbit.com/autoPlace", "3"),
            ("linstor.csi.linbit.com/layerList", "drbd storage"),
            ("linstor.csi.linbit.com/allowRemoteVolumeAccess", "true"),
            (
                "property.linstor.csi.linbit.com/DrbdOptions/auto-quorum",
                "suspend-io",
            ),
            ("csi.storage.k8s.io/pvc/name", "ignored"),
        ]))
        .unwrap();
        assert_eq!(p.place_count, 3);
        assert_eq!(p.storage_pools, ["data"]);
        assert_eq!(p.layer_list, ["DRBD", "STORAGE"]);
        assert_eq!(
            p.properties
                .get("DrbdOptions/auto-quorum")
                .map(String::as_str),
            Some("suspend-io")
        );
        let name = p.resource_group_name();
        assert!(name.starts_with("hearth-") && name.len() == 23, "{name}");
        assert_eq!(
            name,
            StorageClassParams::parse(&map(&[
                ("autoPlace", "3"),
                ("storagePool", "data"),
                ("layerList", "drbd,storage"),
                ("property.hearth.dev/DrbdOptions/auto-quorum", "suspend-io"),
            ]))
            .unwrap()
            .resource_group_name(),
            "the same class in other spellings is the same group"
        );
    }

    #[test]
    fn bare_linstor_csi_keys_and_explicit_group() {
        let p = StorageClassParams::parse(&map(&[
            ("placementCount", "2"),
            ("storagePool", "lvm-thin"),
            ("resourceGroup", "kubevirt"),
        ]))
        .unwrap();
        assert_eq!(
            (p.place_count, p.resource_group_name().as_str()),
            (2, "kubevirt")
        );
    }

    #[test]
    fn refuses_unknown_and_malformed() {
        for bad in [
            map(&[("replicas", "3")]),
            map(&[("autoPlace", "0")]),
            map(&[("autoPlace", "many")]),
            map(&[("layerList", "drbd zfs")]),
            map(&[("layerList", "storage drbd")]),
            map(&[("allowRemoteVolumeAccess", "maybe")]),
            map(&[("resourceGroup", "../x")]),
            map(&[("storagePool", "a;b")]),
            map(&[("property.hearth.dev/", "x")]),
        ] {
            assert!(
                matches!(
                    StorageClassParams::parse(&bad),
                    Err(CsiError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
    }
}
