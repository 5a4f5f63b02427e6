//! `drbdsetup status --json` into a [`DrbdState`].
//!
//! This module owns the JSON shapes: DRBD 9.0 (no `open`, no `paths`, one `suspended` flag)
//! and recent 9.x (`open`, `paths`, `suspended-user`/`-no-data`/`-fencing`/`-quorum`, `tls`,
//! resync details). Unknown fields are ignored and missing ones stay unknown; a value of the
//! wrong JSON type is an error naming the line and column. Pure: it must not run drbdsetup.

use serde::Deserialize;
use serde_json::Value;

use super::kinds::{ConnectionState, DiskState, ReplicationState, Role};
use super::state::{
    Connection, Device, DeviceStatistics, DrbdState, NetPath, PeerDevice, PeerDeviceStatistics,
    Resource,
};

/// Why a status JSON document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusJsonError {
    /// The text is not JSON of the expected shape.
    #[error("status JSON line {line} column {column}: {reason}")]
    Decode {
        line: usize,
        column: usize,
        reason: String,
    },
}

/// Parses the output of `drbdsetup status --json` (a JSON array of resources).
pub fn parse(text: &str) -> Result<DrbdState, StatusJsonError> {
    let resources: Vec<JsonResource> =
        serde_json::from_str(text).map_err(|e| StatusJsonError::Decode {
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
    let mut state = DrbdState {
        complete: true,
        ..DrbdState::default()
    };
    for json in resources {
        let resource = json.into_resource();
        state.resources.insert(resource.name.clone(), resource);
    }
    Ok(state)
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JsonResource {
    name: String,
    node_id: Option<u32>,
    role: Option<String>,
    /// A flag in every version seen; tolerated as a string too.
    suspended: Option<Value>,
    suspended_user: Option<bool>,
    suspended_no_data: Option<bool>,
    suspended_fencing: Option<bool>,
    suspended_quorum: Option<bool>,
    #[serde(default)]
    devices: Vec<JsonDevice>,
    #[serde(default)]
    connections: Vec<JsonConnection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JsonDevice {
    volume: u32,
    minor: Option<u32>,
    disk_state: Option<String>,
    client: Option<bool>,
    open: Option<bool>,
    quorum: Option<bool>,
    size: Option<u64>,
    read: Option<u64>,
    written: Option<u64>,
    al_writes: Option<u64>,
    bm_writes: Option<u64>,
    upper_pending: Option<u64>,
    lower_pending: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JsonConnection {
    peer_node_id: u32,
    name: Option<String>,
    connection_state: Option<String>,
    congested: Option<bool>,
    peer_role: Option<String>,
    #[serde(default)]
    paths: Vec<JsonPath>,
    #[serde(default, rename = "peer_devices")]
    peer_devices: Vec<JsonPeerDevice>,
}

#[derive(Deserialize)]
struct JsonPath {
    this_host: Option<JsonHost>,
    remote_host: Option<JsonHost>,
    established: Option<bool>,
}

#[derive(Deserialize)]
struct JsonHost {
    address: Option<String>,
    port: Option<u16>,
    family: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JsonPeerDevice {
    volume: u32,
    replication_state: Option<String>,
    peer_disk_state: Option<String>,
    peer_client: Option<bool>,
    resync_suspended: Option<Value>,
    received: Option<u64>,
    sent: Option<u64>,
    out_of_sync: Option<u64>,
    pending: Option<u64>,
    unacked: Option<u64>,
    percent_in_sync: Option<f64>,
    percent_resync_done: Option<f64>,
    estimated_seconds_to_finish: Option<f64>,
}

impl JsonResource {
    fn into_resource(self) -> Resource {
        let mut suspended: Vec<String> = [
            ("user", self.suspended_user),
            ("no-data", self.suspended_no_data),
            ("fencing", self.suspended_fencing),
            ("quorum", self.suspended_quorum),
        ]
        .into_iter()
        .filter(|(_, on)| *on == Some(true))
        .map(|(reason, _)| reason.to_owned())
        .collect();
        if suspended.is_empty() {
            match self.suspended {
                Some(Value::Bool(true)) => suspended.push("yes".to_owned()),
                Some(Value::String(word)) if word != "no" => suspended.push(word),
                _ => {}
            }
        }
        let name = self.name;
        Resource {
            node_id: self.node_id,
            role: self.role.as_deref().map(Role::parse).unwrap_or_default(),
            suspended,
            may_promote: None,
            promotion_score: None,
            devices: self
                .devices
                .into_iter()
                .map(|d| (d.volume, d.into_device(&name)))
                .collect(),
            connections: self
                .connections
                .into_iter()
                .map(|c| (c.peer_node_id, c.into_connection()))
                .collect(),
            name,
        }
    }
}

impl JsonDevice {
    fn into_device(self, resource: &str) -> Device {
        Device {
            resource: resource.to_owned(),
            volume: self.volume,
            minor: self.minor,
            disk: self
                .disk_state
                .as_deref()
                .map(DiskState::parse)
                .unwrap_or_default(),
            backing_dev: None,
            client: self.client.unwrap_or(false),
            open: self.open,
            quorum: self.quorum,
            size_kib: self.size,
            stats: DeviceStatistics {
                read_kib: self.read,
                written_kib: self.written,
                al_writes: self.al_writes,
                bm_writes: self.bm_writes,
                upper_pending: self.upper_pending,
                lower_pending: self.lower_pending,
                al_suspended: None,
                blocked: None,
            },
        }
    }
}

impl JsonConnection {
    fn into_connection(self) -> Connection {
        Connection {
            peer_node_id: self.peer_node_id,
            name: self.name,
            state: self
                .connection_state
                .as_deref()
                .map(ConnectionState::parse)
                .unwrap_or_default(),
            peer_role: self
                .peer_role
                .as_deref()
                .map(Role::parse)
                .unwrap_or_default(),
            congested: self.congested,
            peer_devices: self
                .peer_devices
                .into_iter()
                .map(|p| (p.volume, p.into_peer_device()))
                .collect(),
            paths: self.paths.into_iter().map(JsonPath::into_path).collect(),
        }
    }
}

impl JsonPath {
    fn into_path(self) -> NetPath {
        NetPath {
            local: host_word(self.this_host),
            peer: host_word(self.remote_host),
            established: self.established.unwrap_or(false),
        }
    }
}

/// Spells an address as events2 does: `ipv4:10.0.0.1:7000`, `ipv6:[fe80::1]:7000`.
fn host_word(host: Option<JsonHost>) -> String {
    let Some(host) = host else {
        return String::new();
    };
    let family = host.family.unwrap_or_default();
    let address = host.address.unwrap_or_default();
    let port = host.port.map(|p| p.to_string()).unwrap_or_default();
    if family == "ipv6" && !address.starts_with('[') {
        format!("{family}:[{address}]:{port}")
    } else {
        format!("{family}:{address}:{port}")
    }
}

impl JsonPeerDevice {
    fn into_peer_device(self) -> PeerDevice {
        let resync_suspended = match self.resync_suspended {
            Some(Value::String(word)) => Some(word),
            Some(Value::Bool(flag)) => Some(if flag { "yes" } else { "no" }.to_owned()),
            _ => None,
        };
        PeerDevice {
            volume: self.volume,
            replication: self
                .replication_state
                .as_deref()
                .map(ReplicationState::parse)
                .unwrap_or_default(),
            peer_disk: self
                .peer_disk_state
                .as_deref()
                .map(DiskState::parse)
                .unwrap_or_default(),
            peer_client: self.peer_client,
            resync_suspended,
            in_sync_percent: self.percent_in_sync,
            stats: PeerDeviceStatistics {
                received_kib: self.received,
                sent_kib: self.sent,
                out_of_sync_kib: self.out_of_sync,
                pending: self.pending,
                unacked: self.unacked,
                resync_done_percent: self.percent_resync_done,
                resync_rate_mib_s: None,
                resync_eta_secs: self.estimated_seconds_to_finish,
            },
        }
    }
}

#[cfg(test)]
#[path = "status_json_tests.rs"]
mod tests;
