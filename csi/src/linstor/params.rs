//! StorageClass parameters of the LINSTOR backend, parsed and checked.
//!
//! Hearth reads StorageClass parameters the way linstor-csi does (its `pkg/volume/parameter.go`),
//! so every class written for linstor-csi (Cozystack's, piraeus') works unchanged:
//! - keys are bare (`placementCount`) or in the `linstor.csi.linbit.com/` or `hearth.dev/`
//!   prefix, matched case-insensitively (`storagePool`, `StoragePool`, `storagepool`);
//! - `property.linstor.csi.linbit.com/<p>` and `property.hearth.dev/<p>` set LINSTOR property
//!   `<p>` on the resource group, and so does a bare `DrbdOptions/<p>` key;
//! - keys the CSI sidecars add (`csi.storage.k8s.io/...`) and keys of any other prefix
//!   (someone else's: `qos.linbit.com/...`, `example.com/...`) are ignored, each logged once;
//! - an unknown key without a prefix or in the LINSTOR or Hearth prefix is refused, naming it.
//!
//! The parameters map to one resource group per distinct set of parameters (one per
//! StorageClass in practice). This module is pure apart from that one log line per foreign key.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};

use sha2::{Digest, Sha256};

use super::remote_access::RemoteAccess;
use crate::mount::extra;
use crate::node::context as ctx;
use crate::CsiError;

const PREFIXES: &[&str] = &["linstor.csi.linbit.com/", "hearth.dev/"];
const PROPERTY_PREFIXES: &[&str] = &["property.linstor.csi.linbit.com/", "property.hearth.dev/"];
const SIDECAR_PREFIX: &str = "csi.storage.k8s.io/";
/// The namespace linstor-csi takes as LINSTOR properties without a prefix.
const DRBD_OPTIONS: &str = "DrbdOptions/";
/// Where node labels live as LINSTOR node properties (linstor-csi's default
/// `--property-namespace`): `replicasOnSame: topology.kubernetes.io/zone` means
/// `Aux/topology.kubernetes.io/zone`.
const TOPOLOGY_NAMESPACE: &str = "Aux/";

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

/// linstor-csi's placement policies (`placementPolicy`).
const PLACEMENT_POLICIES: &[&str] = &[
    "autoplacetopology",
    "autoplace",
    "manual",
    "followtopology",
    "balanced",
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
    /// `DRBD`, `STORAGE`); empty lets LINSTOR use its default (DRBD over STORAGE).
    pub layer_list: Vec<String>,
    /// Which nodes without a replica may attach the volume disklessly
    /// (`allowRemoteVolumeAccess`: `true`, `false` or linstor-csi's `- fromSame: [...]`
    /// rules; by default anywhere when the stack has DRBD or NVMe, else local only).
    pub remote_access: RemoteAccess,
    /// Node properties all replicas must share (`replicasOnSame`).
    pub replicas_on_same: Vec<String>,
    /// Node properties on which replicas must differ (`replicasOnDifferent`).
    pub replicas_on_different: Vec<String>,
    /// At most this many replicas per value of a node property (`xReplicasOnDifferent`).
    pub x_replicas_on_different: BTreeMap<String, u32>,
    /// Do not place beside resources whose names match (`doNotPlaceWithRegex`).
    pub do_not_place_with_regex: Option<String>,
    /// Explicit nodes for the diskful replicas (`nodeList`); LINSTOR's autoplacer is skipped.
    pub node_list: Vec<String>,
    /// Nodes that get a diskless replica at creation (`clientList`).
    pub client_list: Vec<String>,
    /// Diskless replicas on every other node (`disklessOnRemaining`).
    pub diskless_on_remaining: bool,
    /// Report free capacity as total × this − used (`overProvision`), for thin pools.
    pub over_provision: Option<OverProvision>,
    /// LINSTOR properties for the resource group (`DrbdOptions/...`).
    pub properties: BTreeMap<String, String>,
    /// mkfs arguments (`fsOpts`), checked; the node passes them as argv words.
    pub fs_opts: Option<String>,
    /// Mount options (`mountOpts`), checked against the mount-flag policy.
    pub mount_opts: Option<String>,
    /// One xfs_io command run after mounting an XFS (`postMountXfsOpts`).
    pub post_mount_xfs_opts: Option<String>,
}

/// An over-provisioning factor, kept as text so the parameters stay `Eq` and hashable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverProvision(String);

impl OverProvision {
    /// The factor.
    pub fn factor(&self) -> f64 {
        self.0.parse().unwrap_or(1.0)
    }
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
        "true" | "yes" | "1" | "t" => Ok(true),
        "false" | "no" | "0" | "f" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A node label as the LINSTOR node property it is (see [`TOPOLOGY_NAMESPACE`]).
fn topology_prop(label: &str) -> String {
    if label.starts_with(TOPOLOGY_NAMESPACE) {
        label.to_owned()
    } else {
        format!("{TOPOLOGY_NAMESPACE}{label}")
    }
}

/// Logs a parameter Hearth does not act on, once per key and process.
fn note_once(key: &str, why: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key.to_owned());
    if first {
        tracing::info!(parameter = %key, "StorageClass parameter ignored: {why}");
    }
}

/// What a key is.
enum Key<'a> {
    /// A LINSTOR property.
    Property(&'a str),
    /// A parameter of ours, lower-cased, without its prefix.
    Ours(String),
    /// The CSI sidecars' or someone else's.
    Foreign,
}

fn classify(key: &str) -> Key<'_> {
    if let Some(prop) = PROPERTY_PREFIXES
        .iter()
        .find_map(|pre| key.strip_prefix(pre))
    {
        return Key::Property(prop);
    }
    if key.starts_with(DRBD_OPTIONS) {
        return Key::Property(key);
    }
    if let Some(bare) = PREFIXES.iter().find_map(|pre| key.strip_prefix(pre)) {
        return Key::Ours(bare.to_ascii_lowercase());
    }
    if key.contains('/') {
        return Key::Foreign;
    }
    Key::Ours(key.to_ascii_lowercase())
}

impl StorageClassParams {
    /// Whether Hearth's placement may choose the replica nodes: not when the class names
    /// nodes, or carries placement rules only LINSTOR's autoplacer understands (node-property
    /// constraints, name-based anti-affinity, a diskless pool).
    pub fn placer_may_choose(&self) -> bool {
        self.node_list.is_empty()
            && self.replicas_on_same.is_empty()
            && self.replicas_on_different.is_empty()
            && self.x_replicas_on_different.is_empty()
            && self.do_not_place_with_regex.is_none()
            && self.diskless_storage_pool.is_none()
    }

    /// True when the layer stack has a layer that can attach without a local disk (DRBD,
    /// NVMe); LINSTOR's default stack has DRBD.
    pub fn has_diskless_layer(&self) -> bool {
        self.layer_list.is_empty() || self.layer_list.iter().any(|l| l == "DRBD" || l == "NVME")
    }

    /// Parses and checks StorageClass parameters.
    pub fn parse(parameters: &BTreeMap<String, String>) -> Result<Self, CsiError> {
        let mut p = Self {
            place_count: 1,
            ..Self::default()
        };
        let mut remote: Option<RemoteAccess> = None;
        let mut encryption = false;
        for (key, value) in parameters {
            let bare = match classify(key) {
                Key::Property(prop) => {
                    if prop.is_empty() || prop.chars().any(|c| c.is_whitespace() || c.is_control())
                    {
                        return Err(bad(key, value, "not a LINSTOR property name"));
                    }
                    p.properties.insert(prop.to_owned(), value.clone());
                    continue;
                }
                Key::Foreign => {
                    if !key.starts_with(SIDECAR_PREFIX) {
                        note_once(key, "another component's parameter");
                    }
                    continue;
                }
                Key::Ours(bare) => bare,
            };
            match bare.as_str() {
                "autoplace" | "placementcount" => {
                    let v = if value.is_empty() { "1" } else { value };
                    p.place_count = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=16).contains(n))
                        .ok_or_else(|| bad(key, value, "expected a replica count from 1 to 16"))?;
                }
                "storagepool" | "storagepools" => p.storage_pools = list(value),
                "disklessstoragepool" => p.diskless_storage_pool = Some(value.clone()),
                "resourcegroup" => {
                    if !name_ok(value) {
                        return Err(bad(key, value, "not a LINSTOR resource group name"));
                    }
                    p.resource_group = Some(value.clone());
                }
                "layerlist" => {
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
                "allowremotevolumeaccess" => {
                    remote = Some(RemoteAccess::parse(value).map_err(|e| bad(key, value, &e))?);
                }
                "replicasonsame" => {
                    p.replicas_on_same = list(value).iter().map(|l| topology_prop(l)).collect();
                }
                "replicasondifferent" => {
                    p.replicas_on_different =
                        list(value).iter().map(|l| topology_prop(l)).collect();
                }
                "xreplicasondifferent" => {
                    let m: BTreeMap<String, u32> = serde_yaml_ng::from_str(value)
                        .map_err(|e| bad(key, value, &format!("expected `label: count` ({e})")))?;
                    p.x_replicas_on_different =
                        m.into_iter().map(|(k, v)| (topology_prop(&k), v)).collect();
                }
                "donotplacewithregex" => p.do_not_place_with_regex = Some(value.clone()),
                "nodelist" => p.node_list = list(value),
                "clientlist" => p.client_list = list(value),
                "disklessonremaining" => p.diskless_on_remaining = boolean(key, value)?,
                "encryption" => encryption = boolean(key, value)?,
                "overprovision" => {
                    let f: f64 = value
                        .parse()
                        .ok()
                        .filter(|f: &f64| f.is_finite() && *f > 0.0)
                        .ok_or_else(|| bad(key, value, "expected a positive number"))?;
                    p.over_provision = Some(OverProvision(f.to_string()));
                }
                "placementpolicy" => {
                    if !PLACEMENT_POLICIES.contains(&value.to_ascii_lowercase().as_str()) {
                        return Err(bad(
                            key,
                            value,
                            "expected AutoPlaceTopology, AutoPlace, Manual, FollowTopology or Balanced",
                        ));
                    }
                    // Hearth always places the first replica on the CO's preferred node and
                    // lets LINSTOR's autoplacer place the rest under the class's rules: what
                    // AutoPlaceTopology (linstor-csi's default) does.
                    note_once(key, "Hearth places as AutoPlaceTopology does");
                }
                "usepvcname" => {
                    if boolean(key, value)? {
                        note_once(
                            key,
                            "Hearth names volumes after the PV, so a retry finds them",
                        );
                    }
                }
                "sizekib" => note_once(key, "sizes come from the CSI request"),
                "fsopts" => {
                    extra::mkfs_args(value).map_err(|e| bad(key, value, &e))?;
                    p.fs_opts = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                }
                "mountopts" => {
                    extra::mount_flags(value).map_err(|e| bad(key, value, &e))?;
                    p.mount_opts = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                }
                "postmountxfsopts" => {
                    if !value.trim().is_empty() {
                        let c = extra::xfs_io_command(value).map_err(|e| bad(key, value, &e))?;
                        p.post_mount_xfs_opts = Some(c);
                    }
                }
                "nfsconfigtemplate" | "nfsservicename" | "nfssquash" | "nfsrecoveryvolumesize" => {
                    // Only for linstor-csi's NFS-exported RWX filesystems, which Hearth does
                    // not offer: such a volume request is refused on its access mode.
                    note_once(key, "Hearth has no NFS export");
                }
                _ => {
                    return Err(CsiError::InvalidArgument(format!(
                        "unknown StorageClass parameter {key:?}; see docs/storageclass.md"
                    )))
                }
            }
        }
        if encryption && !p.layer_list.iter().any(|l| l == "LUKS") {
            // LINSTOR encrypts with its LUKS layer, right above the storage.
            if p.layer_list.is_empty() {
                p.layer_list = vec!["DRBD".into(), "STORAGE".into()];
            }
            let at = p.layer_list.len().saturating_sub(1);
            p.layer_list.insert(at, "LUKS".into());
        }
        p.remote_access = remote.unwrap_or(if p.has_diskless_layer() {
            RemoteAccess::Anywhere
        } else {
            RemoteAccess::LocalOnly
        });
        if !p.node_list.is_empty() || !p.client_list.is_empty() {
            // linstor-csi: a manual placement ignores the autoplacing options.
            p.replicas_on_same.clear();
            p.replicas_on_different.clear();
            p.x_replicas_on_different.clear();
            p.do_not_place_with_regex = None;
        }
        let node_name_ok = |n: &String| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !p.node_list.iter().chain(&p.client_list).all(node_name_ok) {
            return Err(CsiError::InvalidArgument(
                "a nodeList or clientList entry is not a node name".into(),
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

    /// The volume-context entries NodeStage reads (see [`crate::node::context`]): the class's
    /// filesystem options, and `nouuid` for XFS on a restore or clone (`copy`), whose UUID is
    /// its source's.
    pub fn node_context(&self, copy: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in [
            (ctx::FS_OPTIONS_CONTEXT, &self.fs_opts),
            (ctx::MOUNT_OPTIONS_CONTEXT, &self.mount_opts),
            (ctx::POST_MOUNT_XFS_CONTEXT, &self.post_mount_xfs_opts),
        ] {
            if let Some(v) = value {
                out.insert(key.to_owned(), v.clone());
            }
        }
        if copy {
            out.insert(ctx::XFS_NOUUID_CONTEXT.to_owned(), "true".to_owned());
        }
        out
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
            self.remote_access.to_prop(),
            self.replicas_on_same,
            self.replicas_on_different,
            self.do_not_place_with_regex,
            self.node_list,
            self.properties
        );
        h.update(canon.as_bytes());
        // Newer parameters join the digest only when set, so classes without them keep
        // their resource group.
        if !self.x_replicas_on_different.is_empty()
            || !self.client_list.is_empty()
            || self.diskless_on_remaining
        {
            h.update(
                format!(
                    "|{:?}|{:?}|{}",
                    self.x_replicas_on_different, self.client_list, self.diskless_on_remaining
                )
                .as_bytes(),
            );
        }
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
