//! Whether a DRBD volume can be used on this node, and how healthy it is.
//!
//! This module owns the judgement the node side needs: [`DrbdState::readiness`] before
//! NodeStage/NodePublish (can the device be mounted now?), and [`DrbdState::condition`] for
//! CSI `VolumeCondition` (is anything not optimal?). It reads the model only: it must not run
//! tools or change the state.

use std::fmt::Write as _;

use super::kinds::{ConnectionState, DiskState, ReplicationState};
use super::state::{Connection, Device, DrbdState, PeerDevice};
use crate::attach::Condition;

/// Whether a volume can be mounted on this node now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Yes: the data is current, locally or through peers.
    Ready(ReadyVia),
    /// No, and why, in words for an event or a log line.
    NotReady(String),
}

/// Where a ready volume's current data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyVia {
    /// The local disk is UpToDate.
    LocalDisk,
    /// The device is diskless; these peers (labels) have UpToDate disks.
    Peers(Vec<String>),
    /// The local disk is Inconsistent or Outdated and resyncs from this connected UpToDate
    /// peer; DRBD serves reads of blocks not yet in sync from that peer, so the device is
    /// usable now (the resync may take hours; waiting for it would keep the pod down).
    Resync {
        /// The peer the data comes from.
        from: String,
        /// The resync progress in percent, rounded to one decimal, when DRBD reports it.
        percent: Option<String>,
    },
}

impl Readiness {
    /// True when the volume can be mounted.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }

    /// A one-line description.
    pub fn message(&self) -> String {
        match self {
            Self::Ready(ReadyVia::LocalDisk) => "local disk UpToDate".to_owned(),
            Self::Ready(ReadyVia::Peers(peers)) => {
                format!("diskless, UpToDate data on {}", peers.join(", "))
            }
            Self::Ready(ReadyVia::Resync { from, percent }) => {
                let done = percent.as_ref().map_or(String::new(), |p| format!(" {p}%"));
                format!("local disk resyncing{done} from UpToDate {from}")
            }
            Self::NotReady(reason) => reason.clone(),
        }
    }
}

impl DrbdState {
    /// Whether volume `volume` of `resource` can be mounted here: the local disk is UpToDate,
    /// or the device is diskless and at least one connected peer's disk is UpToDate, or the
    /// local disk is Inconsistent/Outdated and syncs from a connected UpToDate peer (DRBD
    /// serves I/O then); and the volume has not lost quorum, and I/O is not suspended. What
    /// is refused is a device that cannot reach good data, with the reason.
    pub fn readiness(&self, resource: &str, volume: u32) -> Readiness {
        let Some(res) = self.resources.get(resource) else {
            return Readiness::NotReady(format!("DRBD resource {resource} is not up on this node"));
        };
        let Some(device) = res.devices.get(&volume) else {
            return Readiness::NotReady(format!("DRBD resource {resource} has no volume {volume}"));
        };
        if device.quorum == Some(false) {
            return Readiness::NotReady(format!(
                "{} has no quorum{}",
                volume_label(device),
                reachable_summary(res.connections.values())
            ));
        }
        if !res.suspended.is_empty() {
            // A mount would block on the first read.
            return Readiness::NotReady(format!("{resource}: {}", suspension(&res.suspended)));
        }
        match &device.disk {
            DiskState::UpToDate => Readiness::Ready(ReadyVia::LocalDisk),
            DiskState::Diskless => {
                let peers: Vec<String> = res
                    .connections
                    .values()
                    .filter(|c| serves_current_data(c, volume))
                    .map(Connection::peer_label)
                    .collect();
                if peers.is_empty() {
                    Readiness::NotReady(format!(
                        "diskless and no peer is UpToDate{}",
                        peer_summary(res.connections.values(), volume)
                    ))
                } else {
                    Readiness::Ready(ReadyVia::Peers(peers))
                }
            }
            DiskState::Inconsistent | DiskState::Outdated => {
                match res
                    .connections
                    .values()
                    .find_map(|c| resync_source(c, volume).map(|pd| (c, pd)))
                {
                    Some((c, pd)) => Readiness::Ready(ReadyVia::Resync {
                        from: c.peer_label(),
                        percent: pd
                            .stats
                            .resync_done_percent
                            .or(pd.in_sync_percent)
                            .map(percent_word),
                    }),
                    None => Readiness::NotReady(local_disk_reason(
                        &device.disk,
                        res.connections.values(),
                        volume,
                    )),
                }
            }
            other => {
                Readiness::NotReady(local_disk_reason(other, res.connections.values(), volume))
            }
        }
    }

    /// The volume's health for CSI `VolumeCondition`: abnormal when it is not ready or not
    /// operating optimally (I/O suspended, disk lost, a peer disconnected or not UpToDate,
    /// a resync running). The message lists every finding, the most severe first.
    pub fn condition(&self, resource: &str, volume: u32) -> Condition {
        let readiness = self.readiness(resource, volume);
        let (Some(res), Some(device)) =
            (self.resources.get(resource), self.device(resource, volume))
        else {
            return Condition::abnormal(readiness.message());
        };
        let mut findings = Vec::new();
        if !readiness.is_ready() || matches!(readiness, Readiness::Ready(ReadyVia::Resync { .. })) {
            findings.push(readiness.message());
        }
        if !res.suspended.is_empty() {
            let finding = suspension(&res.suspended);
            if !findings.iter().any(|f| f.contains(&finding)) {
                findings.push(finding);
            }
        }
        if device.disk == DiskState::Diskless && !device.client {
            findings.push("local disk lost: Diskless but not a diskless client".to_owned());
        }
        for connection in res.connections.values() {
            let peer = connection.peer_label();
            if connection.state != ConnectionState::Connected {
                findings.push(format!("{peer}: {}", connection.state));
                continue;
            }
            let Some(pd) = connection.peer_devices.get(&volume) else {
                continue;
            };
            if pd.replication != ReplicationState::Established {
                findings.push(format!("{peer}: {}{}", pd.replication, progress(pd)));
            } else if pd.peer_disk != DiskState::UpToDate && pd.peer_client != Some(true) {
                findings.push(format!("{peer}: peer disk {}", pd.peer_disk));
            }
        }
        if findings.is_empty() {
            Condition::healthy(readiness.message())
        } else {
            Condition::abnormal(findings.join("; "))
        }
    }
}

/// `I/O suspended (user,quorum)`.
fn suspension(reasons: &[String]) -> String {
    format!("I/O suspended ({})", reasons.join(","))
}

/// `resource/volume`, for messages.
fn volume_label(device: &Device) -> String {
    format!("{}/{}", device.resource, device.volume)
}

/// True when `connection`'s peer serves current data of `volume` to this node.
fn serves_current_data(connection: &Connection, volume: u32) -> bool {
    connection.state == ConnectionState::Connected
        && connection.peer_devices.get(&volume).is_some_and(|pd| {
            pd.peer_disk == DiskState::UpToDate && pd.replication == ReplicationState::Established
        })
}

/// The peer device of `connection` that is an UpToDate source this node syncs from (or
/// is about to: the bitmap exchange before a resync), over a live connection.
fn resync_source(connection: &Connection, volume: u32) -> Option<&PeerDevice> {
    let pd = connection.peer_devices.get(&volume)?;
    (connection.state == ConnectionState::Connected
        && pd.peer_disk == DiskState::UpToDate
        && pd.replication.is_sync_target())
    .then_some(pd)
}

/// Why a local disk in `state` (not UpToDate, not Diskless) is not usable.
fn local_disk_reason<'a>(
    state: &DiskState,
    connections: impl Iterator<Item = &'a Connection>,
    volume: u32,
) -> String {
    let mut reason = format!("local disk {state}");
    let source = connections
        .filter_map(|c| c.peer_devices.get(&volume).map(|pd| (c, pd)))
        .find(|(_, pd)| pd.replication.is_sync_target());
    match source {
        Some((connection, pd)) => {
            let _ = write!(
                reason,
                ", resync{} from {}",
                progress(pd),
                connection.peer_label()
            );
            if pd.replication == ReplicationState::PausedSyncT {
                reason.push_str(" (paused)");
            }
        }
        None if *state == DiskState::Inconsistent || *state == DiskState::Outdated => {
            reason.push_str(", and no connected UpToDate peer to sync from");
        }
        None => {}
    }
    reason
}

/// ` 42%` for a peer device with a known resync progress, or the empty string.
fn progress(pd: &PeerDevice) -> String {
    match pd.stats.resync_done_percent.or(pd.in_sync_percent) {
        Some(percent) if pd.replication.is_resync() => format!(" {}%", percent_word(percent)),
        _ => String::new(),
    }
}

/// `42` or `37.5`: a percentage rounded to one decimal, without a trailing `.0`.
fn percent_word(percent: f64) -> String {
    let rounded = (percent * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// ` (node-b: Connecting, node-c: peer disk Outdated)`: the state of each peer for `volume`.
fn peer_summary<'a>(connections: impl Iterator<Item = &'a Connection>, volume: u32) -> String {
    let parts: Vec<String> = connections
        .map(|c| {
            let peer = c.peer_label();
            match c.peer_devices.get(&volume) {
                _ if c.state != ConnectionState::Connected => format!("{peer}: {}", c.state),
                Some(pd) if pd.replication != ReplicationState::Established => {
                    format!("{peer}: {}{}", pd.replication, progress(pd))
                }
                Some(pd) => format!("{peer}: peer disk {}", pd.peer_disk),
                None => format!("{peer}: volume {volume} unknown"),
            }
        })
        .collect();
    if parts.is_empty() {
        " (no peers)".to_owned()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// ` (node-b: Connected, node-c: Connecting)`: the connection to each peer.
fn reachable_summary<'a>(connections: impl Iterator<Item = &'a Connection>) -> String {
    let parts: Vec<String> = connections
        .map(|c| format!("{}: {}", c.peer_label(), c.state))
        .collect();
    if parts.is_empty() {
        " (no peers)".to_owned()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
