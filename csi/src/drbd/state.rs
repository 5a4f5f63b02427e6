//! The model of DRBD's state on one node: resources, devices, connections, peer devices.
//!
//! This module owns the shape of [`DrbdState`] and its lookups. Both parsers fill it: events2
//! through [`DrbdState::apply`] (in `apply.rs`) and the status JSON through
//! `status_json::parse`. It is plain data: it must not run tools, read files or judge health
//! (that is `health.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::kinds::{ConnectionState, DiskState, ReplicationState, Role};

/// What DRBD reports on this node, keyed by resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrbdState {
    /// The resources configured in the kernel, by name.
    pub resources: BTreeMap<String, Resource>,
    /// True when the model holds a full dump: a status JSON was parsed, or events2 printed
    /// its end-of-initial-state marker (`exists -`) and the stream is still followed.
    pub complete: bool,
}

/// One DRBD resource as this node sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// The resource name (LINSTOR: the resource definition name).
    pub name: String,
    /// This node's DRBD node id in the resource (status JSON only).
    pub node_id: Option<u32>,
    /// This node's role.
    pub role: Role,
    /// Why I/O is suspended (`user`, `no-data`, `fencing`, `quorum`); empty when it is not.
    pub suspended: Vec<String>,
    /// Whether this node could be promoted now (events2 only).
    pub may_promote: Option<bool>,
    /// The promotion score (events2 only).
    pub promotion_score: Option<u64>,
    /// The volumes, by volume number.
    pub devices: BTreeMap<u32, Device>,
    /// The connections, by peer node id.
    pub connections: BTreeMap<u32, Connection>,
}

/// One volume of a resource on this node: a `/dev/drbdN` device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    /// The resource this volume belongs to.
    pub resource: String,
    /// The volume number within the resource.
    pub volume: u32,
    /// The device minor: the device node is `/dev/drbd<minor>`.
    pub minor: Option<u32>,
    /// The local disk state; `Diskless` for a client.
    pub disk: DiskState,
    /// The backing block device, if any.
    pub backing_dev: Option<String>,
    /// True for an intentionally diskless client (LINSTOR's diskless resource). A `Diskless`
    /// device that is not a client has lost or detached its disk.
    pub client: bool,
    /// Whether the device is open (mounted or in use).
    pub open: Option<bool>,
    /// Whether the volume has quorum; `None` when DRBD did not say.
    pub quorum: Option<bool>,
    /// The usable size in KiB.
    pub size_kib: Option<u64>,
    /// I/O statistics (`--statistics`).
    pub stats: DeviceStatistics,
}

impl Device {
    /// The device node, `/dev/drbd<minor>`, when the minor is known.
    pub fn path(&self) -> Option<PathBuf> {
        self.minor
            .map(|minor| PathBuf::from(format!("/dev/drbd{minor}")))
    }
}

/// I/O statistics of a device. Sizes are in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStatistics {
    /// KiB read from the backing disk.
    pub read_kib: Option<u64>,
    /// KiB written to the backing disk.
    pub written_kib: Option<u64>,
    /// Activity-log updates.
    pub al_writes: Option<u64>,
    /// Bitmap updates.
    pub bm_writes: Option<u64>,
    /// Requests from upper layers not yet completed.
    pub upper_pending: Option<u64>,
    /// Requests to the backing disk not yet completed.
    pub lower_pending: Option<u64>,
    /// Whether activity-log updates are suspended.
    pub al_suspended: Option<bool>,
    /// What blocks I/O: `no`, `upper`, `lower` or both.
    pub blocked: Option<String>,
}

/// The connection from this node to one peer of a resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connection {
    /// The peer's DRBD node id.
    pub peer_node_id: u32,
    /// The peer's name (`conn-name`; LINSTOR uses the node name).
    pub name: Option<String>,
    /// The connection state; `Unconnected` until DRBD says otherwise.
    pub state: ConnectionState,
    /// The peer's role.
    pub peer_role: Role,
    /// Whether the connection is congested.
    pub congested: Option<bool>,
    /// The volumes as seen through this connection, by volume number.
    pub peer_devices: BTreeMap<u32, PeerDevice>,
    /// The network paths of the connection.
    pub paths: Vec<NetPath>,
}

impl Connection {
    /// The peer's name, or `node <id>` when DRBD did not print one.
    pub fn peer_label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("node {}", self.peer_node_id),
        }
    }
}

/// One volume of a resource as seen through the connection to a peer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerDevice {
    /// The volume number.
    pub volume: u32,
    /// The replication state towards the peer.
    pub replication: ReplicationState,
    /// The peer's disk state.
    pub peer_disk: DiskState,
    /// Whether the peer is a diskless client.
    pub peer_client: Option<bool>,
    /// Why a resync is suspended (`no`, `user`, `peer`, `dependency`, ...).
    pub resync_suspended: Option<String>,
    /// The percentage of the volume in sync with the peer (status JSON `percent-in-sync`).
    pub in_sync_percent: Option<f64>,
    /// Replication and resync statistics.
    pub stats: PeerDeviceStatistics,
}

/// Replication statistics of a peer device. Sizes are in KiB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerDeviceStatistics {
    /// KiB received from the peer.
    pub received_kib: Option<u64>,
    /// KiB sent to the peer.
    pub sent_kib: Option<u64>,
    /// KiB that differ between this node and the peer.
    pub out_of_sync_kib: Option<u64>,
    /// Requests sent to the peer and not yet answered.
    pub pending: Option<u64>,
    /// Requests from the peer not yet answered.
    pub unacked: Option<u64>,
    /// Progress of a running resync in percent (events2 `done:`, JSON `percent-resync-done`).
    pub resync_done_percent: Option<f64>,
    /// The recent resync rate in MiB/s (events2 `dbdt1:`).
    pub resync_rate_mib_s: Option<f64>,
    /// Estimated seconds until the resync finishes (events2 `eta:`).
    pub resync_eta_secs: Option<f64>,
}

/// One network path of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPath {
    /// The local address, as events2 prints it: `ipv4:10.0.0.1:7000`.
    pub local: String,
    /// The peer address, same form.
    pub peer: String,
    /// Whether the path carries the connection.
    pub established: bool,
}

impl DrbdState {
    /// The device with this minor, in any resource.
    pub fn device_by_minor(&self, minor: u32) -> Option<&Device> {
        self.resources
            .values()
            .flat_map(|resource| resource.devices.values())
            .find(|device| device.minor == Some(minor))
    }

    /// The device of `resource`, volume `volume`.
    pub fn device(&self, resource: &str, volume: u32) -> Option<&Device> {
        self.resources.get(resource)?.devices.get(&volume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(minors: &[(&str, u32, u32)]) -> DrbdState {
        let mut state = DrbdState::default();
        for &(name, volume, minor) in minors {
            let resource = state
                .resources
                .entry(name.to_owned())
                .or_insert_with(|| Resource {
                    name: name.to_owned(),
                    ..Resource::default()
                });
            resource.devices.insert(
                volume,
                Device {
                    resource: name.to_owned(),
                    volume,
                    minor: Some(minor),
                    ..Device::default()
                },
            );
        }
        state
    }

    #[test]
    fn finds_devices_by_minor_across_resources() {
        let state = state_with(&[("pvc-a", 0, 1000), ("pvc-b", 0, 1001), ("pvc-b", 1, 1002)]);
        let device = state
            .device_by_minor(1002)
            .map(|d| (d.resource.as_str(), d.volume));
        assert_eq!(device, Some(("pvc-b", 1)));
        assert!(state.device_by_minor(999).is_none());
        assert_eq!(
            state.device("pvc-a", 0).and_then(Device::path),
            Some(PathBuf::from("/dev/drbd1000"))
        );
        assert!(state.device("pvc-a", 1).is_none());
    }

    #[test]
    fn peer_label_falls_back_to_node_id() {
        let mut connection = Connection {
            peer_node_id: 2,
            ..Connection::default()
        };
        assert_eq!(connection.peer_label(), "node 2");
        connection.name = Some("node-b".into());
        assert_eq!(connection.peer_label(), "node-b");
    }
}
