//! The simulated controller's state: nodes, storage pools, resource groups, resource and
//! volume definitions (DRBD minors from 1000), resources, snapshots, clones, remotes and
//! backups, plus the devices behind the volumes.
//!
//! Owns: the data and its invariants (capacity in KiB, minor allocation, one device per
//! definition volume while any resource of it exists). The operations are in the `ops_*`
//! modules, the JSON in `render`; nothing here speaks HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::consts::{MINOR_FIRST, MINOR_LAST};
use super::devices::{Backing, Devices};

/// Properties.
pub type Props = BTreeMap<String, String>;

/// The diskless pseudo-pool every node has.
pub const DISKLESS_POOL: &str = "DfltDisklessStorPool";

/// A satellite.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub props: Props,
    pub address: String,
    pub uuid: String,
    /// `ONLINE`, `OFFLINE`, ... (set by the admin API).
    pub connection_status: String,
    /// `EVICTED`, `EVACUATE`, ... (set by the admin API).
    pub flags: Vec<String>,
}

/// A storage pool on a node; sizes in KiB.
#[derive(Debug, Clone)]
pub struct Pool {
    pub node: String,
    pub name: String,
    /// `LVM_THIN`, `ZFS`, `DISKLESS`, ...
    pub kind: String,
    pub total_kib: u64,
    pub uuid: String,
}

/// A resource group; the select filter is kept as the JSON object it was given.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub props: Props,
    pub filter: Map<String, Value>,
    pub uuid: String,
}

/// A resource definition.
#[derive(Debug, Clone)]
pub struct Rd {
    pub name: String,
    pub group: String,
    pub props: Props,
    pub port: u32,
    pub vds: BTreeMap<u32, Vd>,
    pub rscs: BTreeMap<String, Rsc>,
    pub snaps: BTreeMap<String, Snap>,
    pub uuid: String,
}

/// A volume definition; `backing` exists while any resource of the definition exists.
#[derive(Debug, Clone)]
pub struct Vd {
    pub number: u32,
    /// The size LINSTOR has recorded.
    pub size_kib: u64,
    /// The size the satellites' devices have: behind `size_kib` until a resize lands
    /// ([`RESIZE_TIME`] later; see `State::settle`).
    pub device_kib: u64,
    /// When a pending resize reaches the devices.
    pub resize_due: Option<Instant>,
    pub minor: u32,
    pub props: Props,
    pub backing: Option<Backing>,
    pub uuid: String,
}

/// A resource on one node; `pool` is `None` for a diskless replica.
#[derive(Debug, Clone)]
pub struct Rsc {
    pub node: String,
    pub pool: Option<String>,
    pub props: Props,
    pub in_use: bool,
    pub created_ms: i64,
    pub uuid: String,
    /// A diskless replica LINSTOR added for quorum (`TIE_BREAKER`), see `ops_drbd`.
    pub tie_breaker: bool,
    /// The layer stack, top first (`DRBD`, `STORAGE`, ...).
    pub layers: Vec<String>,
    /// The DRBD disk state when set by the admin API; `UpToDate`/`Diskless` otherwise.
    pub disk_state: Option<String>,
    /// The peer this replica resyncs from (`SyncTarget`) and the progress in percent.
    pub sync_from: Option<(String, f64)>,
}

impl Rsc {
    /// True when the stack has a DRBD layer.
    pub fn has_drbd(&self) -> bool {
        self.layers.iter().any(|l| l == "DRBD")
    }
}

/// A snapshot of a resource definition.
#[derive(Debug, Clone)]
pub struct Snap {
    pub name: String,
    /// The resource definition's properties when the snapshot was taken (LINSTOR keeps
    /// them in the snapshot definition and copies them back on restore).
    pub rd_props: Props,
    pub nodes: Vec<String>,
    /// Volume number -> (size in KiB, image file when devices are real).
    pub vols: BTreeMap<u32, (u64, Option<PathBuf>)>,
    /// Node -> the pool its replica was in.
    pub pools: BTreeMap<String, String>,
    pub created_ms: i64,
    pub uuid: String,
}

/// An S3 remote.
#[derive(Debug, Clone)]
pub struct Remote {
    pub name: String,
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub use_path_style: bool,
}

/// A backup shipped to a remote.
#[derive(Debug, Clone)]
pub struct BackupRec {
    pub id: String,
    pub rsc: String,
    pub snap: String,
    pub node: String,
    pub start_ms: i64,
    pub finished_ms: i64,
}

/// Everything.
#[derive(Debug)]
pub struct State {
    pub nodes: BTreeMap<String, Node>,
    /// (node, pool) -> pool.
    pub pools: BTreeMap<(String, String), Pool>,
    pub groups: BTreeMap<String, Group>,
    pub rds: BTreeMap<String, Rd>,
    pub ctrl_props: Props,
    pub remotes: BTreeMap<String, Remote>,
    /// Remote -> backups.
    pub backups: BTreeMap<String, Vec<BackupRec>>,
    /// (source, clone) -> when the clone completes (CLONING until then).
    pub clones: BTreeMap<(String, String), Instant>,
    pub devices: Devices,
    seq: u64,
}

/// How long the simulated satellites take to grow devices after a resize.
pub const RESIZE_TIME: std::time::Duration = std::time::Duration::from_millis(400);

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl State {
    /// Nodes `names`, each with one pool per `(name, kind)` of `total_kib` and the diskless
    /// pool, and LINSTOR's default resource group.
    pub fn new(
        names: &[String],
        pools: &[(String, String)],
        total_kib: u64,
        devices: Devices,
    ) -> Self {
        let mut s = Self {
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            groups: BTreeMap::new(),
            rds: BTreeMap::new(),
            ctrl_props: Props::new(),
            remotes: BTreeMap::new(),
            backups: BTreeMap::new(),
            clones: BTreeMap::new(),
            devices,
            seq: 0,
        };
        for (i, name) in names.iter().enumerate() {
            let mut props = Props::new();
            props.insert("Aux/topology/kubernetes.io/hostname".into(), name.clone());
            props.insert("CurStltConnName".into(), "default".into());
            let uuid = s.uuid();
            s.nodes.insert(
                name.clone(),
                Node {
                    name: name.clone(),
                    props,
                    address: format!("10.0.0.{}", 10 + i),
                    uuid,
                    connection_status: "ONLINE".into(),
                    flags: Vec::new(),
                },
            );
            let mut add = |pool: &str, kind: &str, total: u64, uuid: String| {
                s.pools.insert(
                    (name.clone(), pool.to_owned()),
                    Pool {
                        node: name.clone(),
                        name: pool.to_owned(),
                        kind: kind.to_owned(),
                        total_kib: total,
                        uuid,
                    },
                );
            };
            add(DISKLESS_POOL, "DISKLESS", 0, format!("sp-{name}-diskless"));
            for (pool, kind) in pools {
                add(pool, kind, total_kib, format!("sp-{name}-{pool}"));
            }
        }
        let uuid = s.uuid();
        s.groups.insert(
            "DfltRscGrp".into(),
            Group {
                name: "DfltRscGrp".into(),
                description: String::new(),
                props: Props::new(),
                filter: Map::new(),
                uuid,
            },
        );
        s
    }

    /// A fresh UUID-shaped ID (deterministic, for readable dumps).
    pub fn uuid(&mut self) -> String {
        self.seq += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.seq)
    }

    /// KiB used in a pool by diskful replicas.
    pub fn used_kib(&self, node: &str, pool: &str) -> u64 {
        self.rds
            .values()
            .filter(|rd| {
                rd.rscs
                    .get(node)
                    .is_some_and(|r| r.pool.as_deref() == Some(pool))
            })
            .map(|rd| rd.vds.values().map(|v| v.size_kib).sum::<u64>())
            .sum()
    }

    /// KiB free in a pool.
    pub fn free_kib(&self, node: &str, pool: &str) -> u64 {
        self.pools
            .get(&(node.to_owned(), pool.to_owned()))
            .map_or(0, |p| p.total_kib.saturating_sub(self.used_kib(node, pool)))
    }

    /// The lowest free DRBD minor.
    pub fn next_minor(&self) -> Option<u32> {
        let used: BTreeSet<u32> = self
            .rds
            .values()
            .flat_map(|rd| rd.vds.values().map(|v| v.minor))
            .collect();
        (MINOR_FIRST..=MINOR_LAST).find(|m| !used.contains(m))
    }

    /// The lowest free DRBD TCP port from 7000.
    pub fn next_port(&self) -> u32 {
        let used: BTreeSet<u32> = self.rds.values().map(|rd| rd.port).collect();
        (7000..).find(|p| !used.contains(p)).unwrap_or(7000)
    }

    /// Disk pools (not diskless) of a node, by name.
    pub fn disk_pools(&self, node: &str) -> Vec<&Pool> {
        self.pools
            .values()
            .filter(|p| p.node == node && p.kind != "DISKLESS")
            .collect()
    }

    /// Lands the resizes whose time has come: the devices grow (`LOOP_SET_CAPACITY` with real
    /// devices) and report the new size. Called on every access to the state.
    pub fn settle(&mut self) {
        let now = Instant::now();
        let devices = &self.devices;
        for vd in self.rds.values_mut().flat_map(|r| r.vds.values_mut()) {
            if vd.resize_due.is_some_and(|due| due <= now) {
                if let Some(b) = &vd.backing {
                    if let Err(e) = devices.resize(b, vd.size_kib) {
                        eprintln!("linstor-sim: resize failed: {e}");
                        continue;
                    }
                }
                vd.device_kib = vd.size_kib;
                vd.resize_due = None;
            }
        }
    }

    /// Every loop device and file the simulator holds.
    pub fn held_devices(&self) -> Vec<Backing> {
        self.rds
            .values()
            .flat_map(|rd| rd.vds.values().filter_map(|v| v.backing.clone()))
            .collect()
    }
}
